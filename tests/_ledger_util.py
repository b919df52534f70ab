"""Shared helpers for the ledger tests (witness keys are slow to make: build them once)."""

from __future__ import annotations

from functools import cache

from ledger.record import LogSigner, WitnessPolicy, WitnessSigner

ORIGIN = "tsukuba.example/tvote/test"


@cache
def witnesses() -> tuple[WitnessSigner, ...]:
    return tuple(WitnessSigner.from_secret_bytes(f"witness-{i}", bytes([i + 1]) * 32) for i in range(3))


@cache
def policy(quorum: int = 2) -> WitnessPolicy:
    return WitnessPolicy(tuple(w.public for w in witnesses()), quorum)


def log_signer() -> LogSigner:
    return LogSigner.generate(ORIGIN, bytes(range(32)))


class Clock:
    """An injected clock: returns the time it is set to."""

    def __init__(self, now: int = 1_750_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
