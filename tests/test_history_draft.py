"""The incremental snapshot of a commit agrees with the full computation, always.

``History.draft`` computes a commit's tree hash and file/folder clash check by
editing the previous snapshot's tree text (O(changes)) instead of rebuilding
it (O(files)). These tests replay random histories — names with JSON's special
characters, folders, replacements, removals, batches above the splice limit —
and compare every step with the full computation: same tree hash, same clash
verdict and message, same snapshot, also for older commits read back.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from datetime import datetime, timezone

import pytest

from kirin.errors import InvalidNameError
from kirin.history import History, check_folder_clash, make_record, tree_hash

PIECES = ["a", "b", "c", "x[", "é", 'q"', "q\\", ",", '["', "d e", "a,b", "]"]


def random_name(rng: random.Random) -> str:
    depth = rng.choice([1, 1, 1, 2, 3])
    return "/".join(rng.choice(PIECES) + str(rng.randint(0, 30)) for _ in range(depth))


def full_clash(files: dict[str, tuple[str, int]]) -> str | None:
    try:
        check_folder_clash(files)
    except InvalidNameError as exc:
        return str(exc)
    return None


def names_a_real_clash(message: str, files: dict[str, tuple[str, int]]) -> bool:
    """Whether ``message`` names a file that is also the folder of another file of ``files``
    (with several clashes, which one is reported depends on the order of the snapshot)."""
    match = re.fullmatch(r"Invalid file name (.+): it is a file and also the folder of (.+)",
                         message)
    if match is None:
        return False
    file, other = (ast.literal_eval(group) for group in match.groups())
    return file in files and other in files and other.startswith(file + "/")


@pytest.mark.parametrize("seed", range(6))
def test_draft_matches_the_full_computation(seed: int) -> None:
    rng = random.Random(seed)
    spliced = 0
    for _ in range(15):
        history = History("ds", None)
        files: dict[str, tuple[str, int]] = {}
        trees: list[str] = []
        for _ in range(30):
            seq = len(history)
            assert dict(history.snapshot(seq - 1)) == files
            size = rng.choice([1, 1, 2, 3, 5, 40])  # 40: above the splice limit
            added = {random_name(rng): (hashlib.sha256(rng.randbytes(8)).hexdigest(),
                                        rng.randint(0, 10**6)) for _ in range(size)}
            if files and rng.random() < 0.2:  # same name, new content
                added[rng.choice(sorted(files))] = ("0" * 64, 1)
            removed = tuple(rng.sample(sorted(files), min(len(files), rng.choice([0, 0, 1, 2]))))
            expected = {n: v for n, v in files.items() if n not in removed} | added
            draft = history.draft(seq - 1, added, removed)
            try:
                draft.check_folder_clash()
                verdict = None
            except InvalidNameError as exc:
                verdict = str(exc)
            full = full_clash(expected)
            assert (verdict is None) == (full is None), (verdict, full)
            if verdict is not None:
                assert names_a_real_clash(verdict, expected), verdict
                continue
            tree = draft.tree()
            assert tree == tree_hash(expected)
            spliced += draft._body is not None
            record = make_record(seq=seq, parent=history.head_hash, tree=tree, added=added,
                                 removed=removed, message="m", metadata={}, tags=[],
                                 timestamp=datetime.now(timezone.utc), author="a", policy=None)
            history.append(record, where=f"#{seq}", draft=draft)
            files = expected
            trees.append(tree)
            if rng.random() < 0.15:  # an older snapshot, rebuilt and checked against its tree
                old = rng.randrange(len(history))
                assert tree_hash(history.snapshot(old)) == trees[old]
    assert spliced > 50  # the incremental path was actually taken
