"""Random promotions, withdrawals, rollbacks and commits agree with a model of the stages.

The model is a dict: stage -> the hash of the commit holding it (or ``None``).
After every step, ``stages()``, ``resolve(stage)``, ``stage_history`` and
reading the history back from storage in a new process-like instance agree
with it; every promotion's ``promoted_from`` is the commit it promoted.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kirin import Dataset
from kirin.errors import CommitNotFoundError, PolicyViolationError

STAGES = ["dev", "staging", "production"]
POLICY = """\
version: 1
tags: {allowed: [dev, staging, production]}
stages: [dev, staging, production]
rollback: allowed
"""


class StageModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="kirin-stages-"))
        self.ds = Dataset(str(self.tmp / "registry"), "models")
        self.ds.set_policy(POLICY)
        self.models: list[str] = []  # plain commits, in order
        self.holders: dict[str, str | None] = dict.fromkeys(STAGES)
        self.sources: dict[str, str] = {}  # promotion -> what it promoted
        self.ever_held: dict[str, set[str]] = {s: set() for s in STAGES}  # model hashes

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(content=st.binary(min_size=1, max_size=16))
    def commit_a_model(self, content: bytes) -> None:
        path = self.tmp / "model.pt"
        path.write_bytes(content)
        self.models.append(self.ds.commit("a model", add_files=[path]))

    @precondition(lambda self: self.models)
    @rule(pick=st.integers(0, 100), stage=st.sampled_from(STAGES))
    def promote(self, pick: int, stage: str) -> None:
        source = self.models[pick % len(self.models)]
        digest = self.ds.promote(source, [stage])
        self.holders[stage] = digest
        self.sources[digest] = source
        self.ever_held[stage].add(source)

    @rule(stage=st.sampled_from(STAGES))
    def withdraw(self, stage: str) -> None:
        holder = self.holders[stage]
        if holder is None:
            try:
                self.ds.withdraw(stage, "nothing to withdraw")
            except CommitNotFoundError:
                return
            raise AssertionError(f"withdrew {stage}, which nobody held")
        self.ds.withdraw(stage, f"withdraw {stage}", expect=holder)
        self.holders[stage] = None

    @precondition(lambda self: self.models)
    @rule(pick=st.integers(0, 100), stage=st.sampled_from(STAGES))
    def roll_back(self, pick: int, stage: str) -> None:
        source = self.models[pick % len(self.models)]
        same = {s for s in self.ever_held[stage]
                if self.ds.resolve(s).files["model.pt"].hash
                == self.ds.resolve(source).files["model.pt"].hash}
        try:
            digest = self.ds.promote(source, [stage], rollback=True)
        except PolicyViolationError as exc:
            assert not same, exc
            return
        assert same
        self.holders[stage] = digest
        self.sources[digest] = source
        self.ever_held[stage].add(source)

    @invariant()
    def stages_agree(self) -> None:
        for ds in (self.ds, Dataset(self.ds.root_dir, "models")):  # and read back
            status = {s.stage: s for s in ds.stages()}
            for stage, holder in self.holders.items():
                current = status[stage].commit
                assert (current.hash if current else None) == holder
                if holder is None:
                    try:
                        ds.resolve(stage)
                    except CommitNotFoundError:
                        pass
                    else:
                        raise AssertionError(f"{stage} resolved with no holder")
                else:
                    assert ds.resolve(stage).hash == holder
                    assert ds.resolve(holder).promoted_from == self.sources[holder]
                    assert ds.stage_history(stage)[-1].commit.hash == holder
                    assert ds.stage_history(stage)[-1].how is None


TestStageModel = StageModel.TestCase
TestStageModel.settings = settings(max_examples=25, stateful_step_count=12, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])
