"""Sizes in words people read: one formatting for the CLI, the web view and notebooks."""

from __future__ import annotations


def human_size(n: int) -> str:
    """``1536`` -> ``1.5 KiB``; bytes below 1 KiB as ``12 B`` (binary units, one decimal)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
