"""Ballot crypto benchmark: encrypt/verify cost per ballot, tally decoding, and the libsodium bound.

Run: ``.venv/bin/python bench/bench_crypto.py`` (pinned to one core; about 30 s). Prints markdown.

The "libsodium bound" of an operation is ``Σ count(op) × cost(op)`` over the libsodium calls it makes
(counted exactly by wrapping the bindings that :mod:`crypto._group` and :mod:`crypto._dlog` call),
with each op's cost measured here in isolation. ``bound / actual`` is the share of the time spent
inside libsodium; the rest is Python (object wrappers, hashing, JSON, hex).
Targets for the 1-of-5 ballot: ≤ 4 ms to encrypt, ≤ 4 ms to verify, ratio ≥ 80 %.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl
from nacl import bindings as na

import crypto._dlog as dlog_mod
import crypto._group as group_mod
from crypto._ballot import (
    ContestSpec,
    ElectionContext,
    EncryptedBallot,
    encrypt_ballot,
    verify_ballot,
)
from crypto._dlog import discrete_log
from crypto._group import G, Scalar

OPS = {
    "_mul_base": ("base mult", na.crypto_scalarmult_ed25519_base_noclamp),
    "_mul": ("variable mult", na.crypto_scalarmult_ed25519_noclamp),
    "_add": ("add", na.crypto_core_ed25519_add),
    "_sub": ("sub", na.crypto_core_ed25519_sub),
    "_valid": ("point validation", na.crypto_core_ed25519_is_valid_point),
}


def _pin_one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return "not pinned"


def per_call(fn: Callable[[], Any], number: int, repeat: int = 25) -> float:
    """Fastest batch: seconds per call, best of ``repeat`` batches of ``number`` calls (least disturbed
    by other processes; the same statistic is used for op costs and for whole operations)."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return min(samples)


def op_costs() -> dict[str, float]:
    s = Scalar.random().to_bytes()
    p = (Scalar.random() * G).to_bytes()
    q = (Scalar.random() * G).to_bytes()
    calls = {
        "_mul_base": lambda: na.crypto_scalarmult_ed25519_base_noclamp(s),
        "_mul": lambda: na.crypto_scalarmult_ed25519_noclamp(s, p),
        "_add": lambda: na.crypto_core_ed25519_add(p, q),
        "_sub": lambda: na.crypto_core_ed25519_sub(p, q),
        "_valid": lambda: na.crypto_core_ed25519_is_valid_point(p),
    }
    return {k: per_call(fn, 100 if k in ("_mul", "_valid") else 300, repeat=40) for k, fn in calls.items()}


class Counts(Counter[str]):
    """Call counts per op, and the calls themselves (op name, function, arguments) in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any, tuple[Any, ...]]] = []


@contextmanager
def counting() -> Iterator[Counts]:
    """Count (and record) the libsodium calls made through crypto._group and crypto._dlog."""
    counts = Counts()
    saved: list[tuple[Any, str, Any]] = []

    def wrap(name: str, fn: Any) -> Any:
        def counted(*args: Any) -> Any:
            counts[name] += 1
            counts.calls.append((name, fn, args))
            return fn(*args)

        return counted

    for mod in (group_mod, dlog_mod):
        for name in OPS:
            if hasattr(mod, name):
                saved.append((mod, name, getattr(mod, name)))
                setattr(mod, name, wrap(name, getattr(mod, name)))
    try:
        yield counts
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def bound(counts: Counter[str], costs: dict[str, float]) -> float:
    return sum(counts[k] * costs[k] for k in counts)


def replay(calls: list[tuple[str, Any, tuple[Any, ...]]], skip: frozenset[str] = frozenset()) -> float:
    """Seconds to make exactly these libsodium calls again, back to back, with no Python object work:
    the floor any Python code using the same calls can reach."""
    plan = [(fn, args) for name, fn, args in calls if name not in skip]

    def run() -> None:
        for fn, args in plan:
            fn(*args)

    return per_call(run, 20)


def main() -> None:
    pin = _pin_one_core()
    secret = Scalar.random()
    key = secret * G
    base = bytes(range(32))
    mayor = ContestSpec.one_of("mayor", ["a", "b", "c", "d", "e"])
    ctx1 = ElectionContext(base, key, (mayor,))
    ctx3 = ElectionContext(
        base,
        key,
        (mayor, ContestSpec.up_to("council", [f"s{i}" for i in range(8)], 3), ContestSpec.yes_no("ref-1")),
    )
    vote1 = {"mayor": ["c"]}
    vote3 = {"mayor": ["c"], "council": ["s1", "s6"], "ref-1": ["no"]}

    costs = op_costs()
    rows = []
    floors = []
    for label, ctx, vote, n in (
        ("1-of-5", ctx1, vote1, 20),
        ("3 contests (1-of-5, 3-of-8, yes/no)", ctx3, vote3, 6),
    ):
        ballot, _ = encrypt_ballot(ctx, vote)
        wire = ballot.to_dict()
        with counting() as c_enc:
            encrypt_ballot(ctx, vote)
        with counting() as c_ver:
            verify_ballot(ctx, EncryptedBallot.from_dict(wire))
        t_enc = per_call(lambda ctx=ctx, vote=vote: encrypt_ballot(ctx, vote), n)
        t_ver = per_call(lambda ctx=ctx, wire=wire: verify_ballot(ctx, EncryptedBallot.from_dict(wire)), n)
        t_hash = per_call(lambda ballot=ballot: ballot.ballot_hash(), n)
        rows.append((f"encrypt {label}", t_enc, c_enc, bound(c_enc, costs)))
        rows.append((f"decode + verify {label}", t_ver, c_ver, bound(c_ver, costs)))
        rows.append((f"ballot hash {label}", t_hash, Counter(), 0.0))
        floors.append((label, replay(c_ver.calls), replay(c_ver.calls, frozenset({"_valid"}))))

    # Tally decoding: a fresh table (first call) and then decodes with the table cached.
    dlog_mod._tables.clear()
    tally = 10_000_000
    worst = Scalar(tally) * G
    t0 = time.perf_counter()
    discrete_log(worst, tally)
    t_first = time.perf_counter() - t0
    t_dec = per_call(lambda: discrete_log(worst, tally), 1, repeat=15)
    with counting() as c_dlog:
        discrete_log(worst, tally)

    # the machine, Python version and command are written by bench/run_all.py above every section
    print(f"- {pin}; PyNaCl {nacl.__version__}")
    print()
    print("| libsodium op (PyNaCl call) | µs per call |")
    print("|---|---:|")
    for k, (name, _) in OPS.items():
        print(f"| {name} | {costs[k] * 1e6:.1f} |")
    print()
    print(
        "| operation | ms (best of 25 batches) | libsodium ops: base / var / add+sub / validate "
        "| bound ms | bound/actual |"
    )
    print("|---|---:|---|---:|---:|")
    for label, t, c, b in rows:
        ops = f"{c['_mul_base']} / {c['_mul']} / {c['_add'] + c['_sub']} / {c['_valid']}" if c else "–"
        ratio = f"{b / t:.0%}" if b else "–"
        bms = f"{b * 1e3:.2f}" if b else "–"
        print(f"| {label} | {t * 1e3:.2f} | {ops} | {bms} | {ratio} |")
    print(
        f"| dlog of a tally of {tally:,} (worst case), table cached | {t_dec * 1e3:.1f} | "
        f"0 / 0 / {c_dlog['_add'] + c_dlog['_sub']} / 0 | {bound(c_dlog, costs) * 1e3:.1f} | "
        f"{bound(c_dlog, costs) / t_dec:.0%} |"
    )
    print(f"| dlog first call (builds the 4096-entry table) | {t_first * 1e3:.1f} | | | |")
    print()
    print(
        "Floor: the libsodium calls that decode + verify made, replayed back to back with the same arguments "
        "and no Python object work (no hashing, no JSON, no wrappers); no Python implementation making "
        "these calls can be faster. The second column also drops the point validations on decoding."
    )
    print()
    print(
        "| verify | libsodium calls replayed, ms | without the point validations, ms "
        "| ballots/s per core at best |"
    )
    print("|---|---:|---:|---:|")
    for label, f_all, f_noval in floors:
        print(f"| {label} | {f_all * 1e3:.2f} | {f_noval * 1e3:.2f} | {1 / f_noval:.0f} |")


if __name__ == "__main__":
    main()
