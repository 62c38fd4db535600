"""What signing costs a registry: a signed commit, opening a signed history, verifying it.

Two datasets in one local root, built side by side through the public API, the
same policy rules on both; only ``signed``'s policy has a ``signing:`` section
(``require.commit``), and its commits are signed with an Ed25519 key file:

* **commit**: each round commits one small file to ``plain`` and to ``signed``
  (alternating which goes first), so both see the same machine load; the
  per-commit medians and their difference, the time signing adds (issue 13:
  <= 2 ms), with the bare ``KeyFileSigner.sign`` of one hash for scale.
* **open**: a fresh process opens a one-commit dataset first (so lazy imports
  are not counted as opening), then times ``Dataset(root, name).current_commit``
  and ``history(limit=10)``; signed vs plain, alternating, median of
  ``--repeats`` processes each (target: signed <= 1.2x plain). Opening does not
  check signatures (``verify``, ``audit`` and the gates do), so this is the cost
  of longer records.
* **verify**: ``Dataset.verify()`` of each, in process; the difference is what
  checking every signature (and who signed, under the admitting policy) adds,
  next to the bare libsodium loop (the primitive Kirin checks Ed25519 with) over
  the same number of signatures.

    .venv/bin/python benchmarks/bench_signed_registry.py                 # 2,000 commits
    .venv/bin/python benchmarks/bench_signed_registry.py --commits 10000 --repeats 7
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import _common as c
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl.bindings import crypto_sign_open

from kirin import Dataset, sshsig

SIGN_ADDS_TARGET_S = 0.002
OPEN_RATIO_TARGET = 1.2

RULES = "version: 1\nmessage: {min_length: 3}\ntags: {allowed: [staging, production]}\n"
SIGNING = """signing:
  principals: {{ci: ["{key}"]}}
  require: {{commit: [ci]}}
"""

OPEN = """
import json, sys, time
from kirin import Dataset
Dataset(sys.argv[1], "warm").history(limit=10)  # lazy imports (fsspec...) are not opening
t0, c0 = time.perf_counter(), time.process_time()
ds = Dataset(sys.argv[1], sys.argv[2])
head = ds.current_commit
recent = ds.history(limit=10)
print(json.dumps({"open": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "signed": head.signature is not None}))
"""


def key_file(folder: Path) -> tuple[sshsig.KeyFileSigner, ed25519.Ed25519PrivateKey]:
    private = ed25519.Ed25519PrivateKey.generate()
    path = folder / "ci_key"
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    return sshsig.KeyFileSigner(path), private


def build(root: Path, src: Path, commits: int, signer: sshsig.KeyFileSigner
          ) -> tuple[list[float], list[float]]:
    """Commit ``commits`` times to each dataset; the seconds each commit took, by dataset."""
    src.mkdir(parents=True, exist_ok=True)
    plain, signed = Dataset(root, "plain"), Dataset(root, "signed")
    plain.set_policy(RULES)
    signed.set_policy(RULES + SIGNING.format(key=signer.public_key.openssh))
    warm = Dataset(root, "warm")  # opened first by each timed process
    warm.set_policy(RULES + SIGNING.format(key=signer.public_key.openssh))
    c.write_small_file(src / "model.bin", -1, 256)
    warm.commit("warm-up", add_files=[str(src / "model.bin")], signer=signer)
    times: dict[str, list[float]] = {"plain": [], "signed": []}
    for i in range(commits):
        c.write_small_file(src / "model.bin", i, 256)
        order = (plain, signed) if i % 2 == 0 else (signed, plain)
        for ds in order:
            t0 = time.perf_counter()
            ds.commit(f"model {i}", add_files=[str(src / "model.bin")],
                      metadata=c.commit_metadata(i),
                      signer=signer if ds is signed else None)
            times[ds.name].append(time.perf_counter() - t0)
        if (i + 1) % 500 == 0:
            print(f"  built {i + 1} commits in each", flush=True)
    return times["plain"], times["signed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", help="parent folder for the temporary data (default /tmp)")
    args = parser.parse_args()

    print(f"machine: {c.machine_summary()}")
    with c.workdir(args.workdir) as work:
        signer, private = key_file(work)
        root = work / "registry"
        t0 = time.perf_counter()
        plain_s, signed_s = build(root, work / "src", args.commits, signer)
        print(f"built {args.commits} commits in each dataset in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        tail = slice(len(plain_s) // 2, None)  # the second half: a history already long
        plain_commit, signed_commit = c.median(plain_s[tail]), c.median(signed_s[tail])
        digests = [hashlib.sha256(str(i).encode()).digest() for i in range(200)]
        t0 = time.perf_counter()
        for digest in digests:
            signer.sign(digest)
        bare_sign = (time.perf_counter() - t0) / len(digests)

        opened: dict[str, list[float]] = {"plain": [], "signed": []}
        opened_cpu: dict[str, list[float]] = {"plain": [], "signed": []}
        for rep in range(args.repeats):
            for name in (("plain", "signed") if rep % 2 == 0 else ("signed", "plain")):
                result = c.run_child([c.PYTHON, "-c", OPEN, str(root), name])
                assert result.report["signed"] is (name == "signed")
                opened[name].append(float(result.report["open"]))
                opened_cpu[name].append(float(result.report["cpu"]))
            print(f"  [open #{rep + 1}] plain {opened['plain'][-1]:.4f} s, signed "
                  f"{opened['signed'][-1]:.4f} s", flush=True)

        verified: dict[str, list[float]] = {"plain": [], "signed": []}
        Dataset(root, "warm").verify()  # the policy package and cryptography load once
        for rep in range(max(1, args.repeats // 2)):
            for name in (("plain", "signed") if rep % 2 == 0 else ("signed", "plain")):
                t0 = time.perf_counter()
                report = Dataset(root, name).verify()
                verified[name].append(time.perf_counter() - t0)
                assert report.ok, report.problems[:3]
        messages = [sshsig._signed_data("kirin", "sha512", d) for d in digests]
        raw = [private.sign(m) for m in messages]
        public = private.public_key().public_bytes_raw()
        t0 = time.perf_counter()
        for sig, message in zip(raw, messages, strict=True):
            crypto_sign_open(sig + message, public)  # what Kirin verifies with
        bare_verify = (time.perf_counter() - t0) / len(messages) * args.commits

    verify_adds = c.median(verified["signed"]) - c.median(verified["plain"])
    c.print_table(
        f"signed vs unsigned registry, {args.commits} commits each, local disk:",
        [
            c.Row("commit, signed vs plain (per commit, 2nd half)", signed_commit,
                  plain_commit, "s", None,
                  f"signing adds {(signed_commit - plain_commit) * 1000:.2f} ms; bare "
                  f"KeyFileSigner.sign {bare_sign * 1000:.3f} ms"),
            c.Row("what signing adds to a commit (target)", signed_commit - plain_commit,
                  None, "s", SIGN_ADDS_TARGET_S),
            c.Row("open + history(limit=10), fresh process, signed vs plain",
                  c.median(opened["signed"]), c.median(opened["plain"]), "s", None,
                  f"target ratio <= {OPEN_RATIO_TARGET}; "
                  + c.per_rep_ratios(opened["signed"], opened["plain"])),
            c.Row("open + history(limit=10), CPU time, signed vs plain",
                  c.median(opened_cpu["signed"]), c.median(opened_cpu["plain"]), "s", None,
                  "process CPU time: what the machine's load inflates least; "
                  + c.per_rep_ratios(opened_cpu["signed"], opened_cpu["plain"])),
            c.Row(f"verify: what checking {args.commits} signatures adds vs the bare "
                  "Ed25519 loop", verify_adds, bare_verify, "s", None,
                  f"verify plain {c.median(verified['plain']):.3f} s, signed "
                  f"{c.median(verified['signed']):.3f} s"),
        ])


if __name__ == "__main__":
    main()
