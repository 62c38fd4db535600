"""The content of ``kirin.yaml`` as a pydantic model (imported only when one is read)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr


class ConfigFile(BaseModel):
    """``root`` (a folder relative to the file, or an fsspec URL), ``dataset``, and
    ``require_policy`` (commits need a dataset or root policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: StrictStr | None = None
    dataset: StrictStr | None = None
    require_policy: StrictBool | None = None
    trust: StrictStr | None = None
