"""Results that show themselves in a notebook, and are otherwise what they always were.

``Dataset.compare_commits`` returns a :class:`Comparison` (a ``dict``, as in
the original Kirin) and ``Dataset.audit`` an :class:`AuditResults` (a
``list`` of ``(commit, report)``): equal to, and used as, the plain values,
with a ``_repr_html_`` that Jupyter calls. The HTML is built by
:mod:`kirin.ui.notebook`, imported only when a notebook asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .policy import Report
    from .values import Commit


class Comparison(dict[str, Any]):
    """What changed between two commits (see ``Dataset.compare_commits``)."""

    def _repr_html_(self) -> str:
        from .ui.notebook import comparison_html

        return comparison_html(self)


class AuditResults(list["tuple[Commit, Report]"]):
    """The commits ``Dataset.audit`` re-judged, each with its report, newest first."""

    def _repr_html_(self) -> str:
        from .ui.notebook import audit_html

        return audit_html(self)
