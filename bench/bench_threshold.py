"""Benchmark the trustee operations: key ceremony, partial decryption (prove/verify) and combination.

Run: ``.venv/bin/python bench/bench_threshold.py``; it prints a markdown section that ``bench/run_all.py``
collects. Small and single-threaded on purpose; the decryption figures are per tally ciphertext.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

from crypto import JointKey, Scalar, TrusteeKey, TrusteeKeyGen, combine, qualify, verify_partial
from crypto.hazmat import encrypt

BASE = bytes(32)
HEADER = (
    "| t of n | key ceremony (all trustees, one process) | partial decryption + proof "
    "| verify one partial | combine t partials (verifies them) |"
)


def timeit(fn: Callable[[], object], repeat: int) -> float:
    """Best of 3 runs, mean seconds per call."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def ceremony(t: int, n: int) -> tuple[JointKey, dict[int, TrusteeKey]]:
    rng = random.Random(1)
    gens = {
        i: TrusteeKeyGen.generate(i, threshold=t, trustees=n, base_hash=BASE, rng=rng)
        for i in range(1, n + 1)
    }
    pub = {i: g.commitments for i, g in gens.items()}
    enc = {(i, j): gens[i].encrypt_share(pub[j]) for i in gens for j in gens if i != j}
    q = qualify(pub.values(), base_hash=BASE, threshold=t, trustees=n)
    joint = JointKey.from_commitments(pub.values(), q, base_hash=BASE)
    keys = {
        j: g.finalize(
            {i: g.decrypt_share(enc[(i, j)], pub[i]) for i in q.qualified if i != j}, list(pub.values())
        )
        for j, g in gens.items()
    }
    return joint, keys


def row(t: int, n: int) -> str:
    ceremony_s = timeit(lambda: ceremony(t, n), 3)
    joint, keys = ceremony(t, n)
    ct = encrypt(joint.public_key, 3, Scalar(12345))
    prove_s = timeit(lambda: keys[1].partial_decrypt(ct), 50)
    partials = [keys[j].partial_decrypt(ct) for j in range(1, t + 1)]
    verify_s = timeit(lambda: verify_partial(partials[0], ct, joint), 50)
    combine_s = timeit(lambda: combine(ct, partials, joint), 20)
    return (
        f"| {t} of {n} | {ceremony_s * 1e3:.1f} ms | {prove_s * 1e6:.0f} µs | {verify_s * 1e6:.0f} µs "
        f"| {combine_s * 1e6:.0f} µs |"
    )


#: A smoke run of every path (``make test`` runs it; its figures are not measurements).
TINY_ARGS = ("--tiny",)


def main() -> None:
    tiny = "--tiny" in sys.argv[1:]
    print("### Threshold trustees (`crypto/_trustee.py`, `crypto/_decryption.py`)\n")
    if tiny:
        print("**--tiny: a smoke run, not a measurement**\n")
    print(HEADER)
    print("|---|---|---|---|---|")
    for t, n in [(2, 3)] if tiny else [(2, 3), (3, 5), (5, 7)]:
        print(row(t, n))


if __name__ == "__main__":
    main()
