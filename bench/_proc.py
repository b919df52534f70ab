"""What the benchmarks read of live processes from ``/proc`` (Linux): peak resident memory and descendants."""

from __future__ import annotations

from pathlib import Path

__all__ = ["descendants", "hwm_kb"]


def hwm_kb(pid: int) -> int:
    """High-water mark of resident memory (kB, ``VmHWM``) of a live process, 0 if it is gone or unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children of each of its threads, recursively)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(k) for k in (task / "children").read_text().split()]
                out += kids
                todo += kids
        except (OSError, ValueError):
            continue
    return out
