"""Ballot crypto benchmark: encrypt/verify cost per ballot, tally decoding, the libsodium floor, and
protocol v1 (edwards25519) measured in the same run.

Run: ``.venv/bin/python bench/bench_crypto.py`` (pinned to one core; about a minute). Prints markdown.
``--tiny`` runs every section with a handful of repetitions (what ``make test`` runs, so this script
cannot rot); its figures are not measurements.

* The **bound** of an operation is ``Σ count(op) × cost(op)`` over the libsodium calls it makes (counted
  exactly by wrapping the functions :mod:`crypto._group` and :mod:`crypto._dlog` call), each op's cost
  measured in isolation. ``bound / actual`` is the share of the time spent inside libsodium.
* The **floor** is stricter: the exact calls one decode + verify made, replayed back to back with the
  same arguments and no Python work at all. No Python code making these calls can be faster.
* **v1**: protocol version 1 (edwards25519 through PyNaCl) is not in the tree any more; its ``crypto``
  package is read from git (``bench/_v1.py``) into a temporary directory, and the same measurement runs
  there in a child process, on the same machine, in the same run. Without git history the v1 columns say
  why they are missing.

Targets (issue 9): decode + verify a 1-of-5 ballot ≥ 1.5× faster than v1 in the same run and ≥ 90 % of
the new floor; encryption ≥ 90 % of its floor.

**Native engine** (issue 17; a section of its own, when ``tvote_native`` is installed: ``make native``):
1-of-5 ballots in dict form verified in batches on one core, side by side with the reference
(libsodium) path the verifier uses without it (``decode_verified_ballot`` one by one); and the
multiscalar multiplication's own cost per point (curve25519-dalek's variable-time MSM at the batch's size,
with full and with 128-bit scalars) and RFC 9496 decoding per point, which together give the floor of a
batch: ``floor/actual`` says how close the batch is to it. Target: ≥ 2,000 1-of-5 ballots/s per core.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _v1 import V1_COMMIT, extract  # noqa: E402

#: A smoke run of every path (``make test`` runs it; its figures are not measurements).
TINY_ARGS = ("--tiny",)

OP_NAMES = {
    "_mul_base": "base mult",
    "_mul": "variable mult",
    "_add": "add",
    "_sub": "sub",
    "_valid": "point validation",
}


def _pin_one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return "not pinned"


def per_call(fn: Callable[[], Any], number: int, repeat: int) -> float:
    """Fastest batch: seconds of this process's CPU per call, best of ``repeat`` batches of ``number`` calls
    (CPU time, not wall time: time the shared machine gives to other processes does not count)."""
    samples = []
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(number):
            fn()
        samples.append((time.process_time() - t0) / number)
    return min(samples)


def paired(a: Callable[[], Any], b: Callable[[], Any], number: int, repeat: int) -> tuple[float, float]:
    """:func:`per_call` of ``a`` and of ``b`` with their batches interleaved (a, b, a, b, …), so that a slow
    phase of the machine weighs on both alike: what a ratio of the two needs."""
    sa, sb = [], []
    for _ in range(repeat):
        sa.append(per_call(a, number, 1))
        sb.append(per_call(b, number, 1))
    return min(sa), min(sb)


class Counts(Counter[str]):
    """Call counts per op, and the calls themselves (op name, function, arguments) in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any, tuple[Any, ...]]] = []


@contextmanager
def counting(modules: list[Any]) -> Iterator[Counts]:
    """Count (and record) the libsodium calls made through the group and dlog modules' op names."""
    counts = Counts()
    saved: list[tuple[Any, str, Any]] = []

    def wrap(name: str, fn: Any) -> Any:
        def counted(*args: Any) -> Any:
            counts[name] += 1
            counts.calls.append((name, fn, args))
            return fn(*args)

        return counted

    for mod in modules:
        for name in OP_NAMES:
            if hasattr(mod, name):
                saved.append((mod, name, getattr(mod, name)))
                setattr(mod, name, wrap(name, getattr(mod, name)))
    try:
        yield counts
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def replayer(calls: list[tuple[str, Any, tuple[Any, ...]]]) -> Callable[[], None]:
    """The recorded libsodium calls, made again back to back with the same arguments (the floor)."""
    plan = [(fn, args) for _, fn, args in calls]

    def run() -> None:
        for fn, args in plan:
            fn(*args)

    return run


def _decode_verify(verify: Any, ballot_type: Any, ctx: Any, wire: Any) -> Any:
    """What a verifier does with a ballot off the wire: decode, then verify."""
    return verify(ctx, ballot_type.from_dict(wire))


def measure(tiny: bool) -> dict[str, Any]:
    """Every figure of one protocol version (whichever ``crypto`` package is importable: this tree's or v1's,
    whose types differ, hence :func:`importlib.import_module`)."""
    crypto = importlib.import_module("crypto")
    hazmat = importlib.import_module("crypto.hazmat")
    # The two modules whose libsodium calls :func:`counting` wraps, and dlog's table cache: the internals
    # this benchmark measures, private on purpose (tests/system/test_layering.py lists this exception).
    group = importlib.import_module("crypto._group")
    dlog = importlib.import_module("crypto._dlog")
    Scalar, G = crypto.Scalar, hazmat.G
    CS, Ctx, EB = crypto.ContestSpec, crypto.ElectionContext, crypto.EncryptedBallot
    enc, ver = crypto.encrypt_ballot, crypto.verify_ballot
    rep = 3 if tiny else 40
    key = Scalar.random() * G
    base = bytes(range(32))
    mayor = CS.one_of("mayor", ["a", "b", "c", "d", "e"])
    shapes = [
        ("1-of-5", Ctx(base, key, (mayor,)), {"mayor": ["c"]}, 20),
        (
            "3 contests (1-of-5, 3-of-8, yes/no)",
            Ctx(base, key, (mayor, CS.up_to("council", [f"s{i}" for i in range(8)], 3), CS.yes_no("ref-1"))),
            {"mayor": ["c"], "council": ["s1", "s6"], "ref-1": ["no"]},
            6,
        ),
    ]
    mods = [group, dlog]
    rows: list[dict[str, Any]] = []
    costs: dict[str, float] = {}
    for label, ctx, vote, n in shapes:
        n = 2 if tiny else n
        ballot, _ = enc(ctx, vote)
        wire = ballot.to_dict()
        with counting(mods) as c_enc:
            enc(ctx, vote)
        with counting(mods) as c_ver:
            ver(ctx, EB.from_dict(wire))
        for name, fn, args in c_ver.calls + c_enc.calls:  # each op's cost, with arguments it really had
            if name not in costs:
                costs[name] = per_call(partial(fn, *args), 20 if tiny else 200, rep)
        t_enc, f_enc = paired(partial(enc, ctx, vote), replayer(c_enc.calls), n, rep)
        t_ver, f_ver = paired(partial(_decode_verify, ver, EB, ctx, wire), replayer(c_ver.calls), n, rep)
        t_hash = per_call(ballot.ballot_hash, n, rep)
        for what, t, f, c in (("encrypt", t_enc, f_enc, c_enc), ("decode + verify", t_ver, f_ver, c_ver)):
            rows.append({"op": f"{what} {label}", "ms": t * 1e3, "counts": dict(c), "floor_ms": f * 1e3})
        rows.append({"op": f"ballot hash {label}", "ms": t_hash * 1e3, "counts": {}, "floor_ms": None})
    tally = 10_000 if tiny else 10_000_000
    worst = Scalar(tally) * G
    dlog._tables.clear()
    t0 = time.perf_counter()
    crypto.discrete_log(worst, tally)
    t_first = time.perf_counter() - t0  # wall time, once
    t_dec = per_call(lambda: crypto.discrete_log(worst, tally), 1, 3 if tiny else 15)
    with counting(mods) as c_dlog:
        crypto.discrete_log(worst, tally)
    return {
        "protocol": crypto.PROTOCOL_VERSION,
        "op_us": {k: v * 1e6 for k, v in costs.items()},
        "rows": rows,
        "dlog": {"tally": tally, "ms": t_dec * 1e3, "first_ms": t_first * 1e3, "counts": dict(c_dlog)},
    }


def measure_v1(tiny: bool) -> dict[str, Any] | str:
    """The same measurement on protocol v1's ``crypto`` read from git, in a child process; or why not."""
    with tempfile.TemporaryDirectory(prefix="tvote-bench-v1-") as tmp:
        why = extract(Path(tmp))
        if why:
            return f"v1 not measured: {why}"
        args = [sys.executable, __file__, "--worker", *(["--tiny"] if tiny else [])]
        env = {**os.environ, "PYTHONPATH": tmp}
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
        if out.returncode != 0:
            return f"v1 not measured: the child process failed: {out.stderr.strip()[-300:]}"
        result: dict[str, Any] = json.loads(out.stdout)
        return result


def _ops(c: dict[str, int]) -> str:
    return f"{c.get('_mul_base', 0)} / {c.get('_mul', 0)} / {c.get('_add', 0) + c.get('_sub', 0)} / " + str(
        c.get("_valid", 0)
    )


def _bound(c: dict[str, int], op_us: dict[str, float]) -> float:
    return sum(n * op_us.get(k, 0.0) for k, n in c.items()) / 1e3


def report(v2: dict[str, Any], v1: dict[str, Any] | str, pin: str, tiny: bool) -> None:
    import pysodium

    libsodium = pysodium.sodium.sodium_version_string().decode("ascii")  # the library crypto/ binds
    # the machine, Python version and command are written by bench/run_all.py above every section
    print(f"- {pin}; libsodium {libsodium} (system, through pysodium)" + (
        "; **--tiny: not a measurement**" if tiny else ""))  # fmt: skip
    print()
    v1_ops = v1["op_us"] if isinstance(v1, dict) else {}
    print("| libsodium op | v2 ristretto255, µs per call | v1 edwards25519, µs per call |")
    print("|---|---:|---:|")
    for k, name in OP_NAMES.items():
        a = f"{v2['op_us'][k]:.1f}" if k in v2["op_us"] else "–"
        b = f"{v1_ops[k]:.1f}" if k in v1_ops else "–"
        print(f"| {name} | {a} | {b} |")
    print()
    print(
        "| operation (v2) | ms (best batch) | libsodium ops: base / var / add+sub / validate | bound ms "
        "| floor ms | floor/actual | v1 ms | v1 / v2 |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    v1_rows = {r["op"]: r for r in v1["rows"]} if isinstance(v1, dict) else {}
    for r in v2["rows"]:
        old = v1_rows.get(r["op"])
        c = r["counts"]
        cells = [
            r["op"],
            f"{r['ms']:.2f}",
            _ops(c) if c else "–",
            f"{_bound(c, v2['op_us']):.2f}" if c else "–",
            f"{r['floor_ms']:.2f}" if r["floor_ms"] else "–",
            f"{r['floor_ms'] / r['ms']:.0%}" if r["floor_ms"] else "–",
            f"{old['ms']:.2f}" if old else "–",
            f"{old['ms'] / r['ms']:.2f}×" if old else "–",
        ]
        print("| " + " | ".join(cells) + " |")
    d = v2["dlog"]
    old_dlog = "– | –"
    if isinstance(v1, dict):
        old_dlog = f"{v1['dlog']['ms']:.1f} | {v1['dlog']['ms'] / d['ms']:.2f}×"
    print(
        f"| dlog of a tally of {d['tally']:,} (worst case), table cached | {d['ms']:.1f} "
        f"| {_ops(d['counts'])} | {_bound(d['counts'], v2['op_us']):.1f} | | | {old_dlog} |"
    )
    print(f"| dlog first call (builds the table) | {d['first_ms']:.1f} | | | | | | |")
    print()
    if isinstance(v1, str):
        print(f"v1: {v1}")
        print()
    else:
        print(
            f"v1 is protocol version {v1['protocol']} at commit `{V1_COMMIT}`, measured in a child process "
            "in this run."
        )
        print()
    print(
        "Floor: the libsodium calls that the operation made, replayed back to back with the same arguments "
        "and no Python work (no hashing, JSON, objects); floor/actual is the share of the operation's time "
        "that these calls take. Ballots/s per core at best (decode + verify, 1-of-5): "
        + f"{1e3 / v2['rows'][1]['floor_ms']:.0f} (v2 floor)"
        + (f", {1e3 / v1_rows['decode + verify 1-of-5']['floor_ms']:.0f} (v1 floor)." if v1_rows else ".")
    )  # fmt: skip


#: a 1-of-5 ballot's points in the native batch check: per selection its pad, its B and its proof's 4
#: commitments; the contest proof's 4 commitments (its ciphertext is the selections' sum, whose
#: coefficients go onto them). The commitments enter with a 128-bit weight, the pads and Bs with full ones.
NATIVE_POINTS = {"short": 5 * 4 + 4, "full": 5 * 2}


def native_section(tiny: bool) -> None:
    """Batches of 1-of-5 ballots through the native engine, beside the reference path; MSM cost per point."""
    crypto = importlib.import_module("crypto")
    hazmat = importlib.import_module("crypto.hazmat")
    print("### Native engine (`tvote_native`, issue 17)\n")
    if not crypto.native_available():
        print(f"Not measured: {crypto.NATIVE_INSTALL_HINT}\n")
        return
    import tvote_native

    native = crypto.select_engine("native")
    mayor = crypto.ContestSpec.one_of("mayor", list("abcde"))
    ctx = crypto.ElectionContext(bytes(range(32)), crypto.Scalar.random() * hazmat.G, (mayor,))
    batch = 8 if tiny else 256
    n = 2 * batch if tiny else 2048
    wires = [crypto.encrypt_ballot(ctx, {"mayor": [list("abcde")[i % 5]]})[0].to_dict() for i in range(n)]
    chunks = [wires[i : i + batch] for i in range(0, n, batch)]
    election = native._elections(ctx)  # the engine's cached native election (what check_dicts passes)
    rep = 2 if tiny else 5

    def best(fn: Callable[[], Any]) -> float:
        out = float("inf")
        for _ in range(rep):
            t = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t)
        return out

    def all_chunks(f: Callable[[list[Any]], Any]) -> Callable[[], None]:
        def run() -> None:
            for c in chunks:
                f(c)

        return run

    n_ref = min(n, 16 if tiny else 300)
    t_ref = best(lambda: [crypto.decode_verified_ballot(ctx, w) for w in wires[:n_ref]]) / n_ref
    t_raw = best(all_chunks(lambda c: tvote_native.verify_ballots(election, c))) / n
    t_dicts = best(all_chunks(lambda c: native.check_dicts(ctx, c, [True] * len(c)))) / n
    t_one = best(lambda: [tvote_native.verify_ballot(election, w) for w in wires[:n_ref]]) / n_ref
    assert all(native.check_dicts(ctx, c).valid == [True] * len(c) for c in chunks)
    points = batch * (NATIVE_POINTS["short"] + NATIVE_POINTS["full"]) + 2
    msm_full = tvote_native.msm_seconds_per_point(points, False, rep)
    msm_short = tvote_native.msm_seconds_per_point(points, True, rep)
    decode = tvote_native.decode_seconds_per_point(points, rep)
    floor_msm = NATIVE_POINTS["short"] * msm_short + NATIVE_POINTS["full"] * msm_full
    floor = floor_msm + (NATIVE_POINTS["short"] + NATIVE_POINTS["full"]) * decode
    print(f"1-of-5 ballots in dict form, {n} ballots in batches of {batch}, one core" + (
        "; **--tiny: not a measurement**" if tiny else "") + ".\n")  # fmt: skip
    print("| 1-of-5, one core | µs per ballot | ballots/s | × reference |")
    print("|---|---:|---:|---:|")
    rows = (
        ("reference: `decode_verified_ballot` one by one (libsodium)", t_ref),
        ("native: one by one (`tvote_native.verify_ballot`, no batch)", t_one),
        (f"native batch check, batches of {batch} (`tvote_native.verify_ballots`)", t_raw),
        ("native batch + ballot hashes + sums (`check_dicts`, the verifier's call)", t_dicts),
    )
    for label, t in rows:
        print(f"| {label} | {t * 1e6:.0f} | {1 / t:,.0f} | {t_ref / t:.1f}× |")
    print()
    print(
        f"Multiscalar multiplication (curve25519-dalek, variable time) of {points:,} points, the size of one "
        f"batch: {msm_full * 1e6:.2f} µs per point with full scalars, {msm_short * 1e6:.2f} µs with 128-bit "
        f"ones; RFC 9496 decoding {decode * 1e6:.2f} µs per point. A 1-of-5 ballot brings "
        f"{NATIVE_POINTS['short']} points with 128-bit weights (its commitments) and {NATIVE_POINTS['full']} "
        f"with full scalars (pads and Bs): MSM floor {floor_msm * 1e6:.0f} µs per ballot, with decoding "
        f"{floor * 1e6:.0f} µs; the batch check takes {t_raw * 1e6:.0f} µs (floor/actual "
        f"{floor / t_raw:.0%}; the rest is hashing the challenges, the Python-to-Rust conversion of the "
        "dicts and the bisection's bookkeeping).\n"
    )
    print("Target (issue 17): >= 2,000 1-of-5 ballots/s per core.\n")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="a few repetitions (a smoke run, not a measurement)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # the v1 child process
    a = ap.parse_args(argv)
    if a.worker:  # PYTHONPATH names v1's crypto package; nothing of the tree's crypto is imported here
        print(json.dumps(measure(a.tiny)))
        return 0
    sys.path.insert(0, str(ROOT))
    pin = _pin_one_core()
    v2 = measure(a.tiny)
    v1 = measure_v1(a.tiny)
    report(v2, v1, pin, a.tiny)
    print()
    native_section(a.tiny)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
