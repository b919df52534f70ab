"""``POST /ledger/cosignature`` as an attacker meets it (issue 11, attack 3): only the manifest's witnesses,
the cheap checks before the BLS verification, and a rate limit per client and for the whole server.

The BLS verification is counted, not timed: ``ledger.log._sequencer.verify_cosignature`` is wrapped by a
that calls the real verification."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ledger_util import Clock, log_signer, policy, witnesses
from fastapi.testclient import TestClient

import ledger.log._sequencer as ledger_impl
import ledger.record._cosign as cosign_impl
from ledger import Ledger, LedgerConfig
from ledger.record import WitnessSigner
from voting._deps import RateLimiter
from voting._ledger_api import CosignLimits, CosignPool, create_app

TOKEN = "cosign-test-admin-token-0123456789"


class Fixture:
    def __init__(self, client: TestClient, led: Ledger, calls: list[str]) -> None:
        self.c, self.led, self.calls = client, led, calls

    def post(self, witness: str, size: int, signature: bytes | str, **kw: Any) -> Any:
        sig = signature.hex() if isinstance(signature, bytes) else signature
        return self.c.post(
            "/ledger/cosignature", json={"witness": witness, "size": size, "signature": sig}, **kw
        )


@pytest.fixture
def fx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fixture]:
    calls: list[str] = []
    real = ledger_impl.verify_cosignature

    def counted(key: Any, body: str, signature: bytes, **kw: Any) -> None:
        calls.append(key.name)
        real(key, body, signature, **kw)

    monkeypatch.setattr(ledger_impl, "verify_cosignature", counted)
    with Ledger(
        f"sqlite:///{tmp_path / 'l.db'}", LedgerConfig(log_signer(), policy(2), clock=Clock())
    ) as led:
        led.append_many([("x", {"i": i}) for i in range(3)])
        led.checkpoint()
        app = create_app(led, TOKEN)
        try:
            yield Fixture(TestClient(app), led, calls)
        finally:
            pool = getattr(app.state, "cosign_pool", None)
            if isinstance(pool, CosignPool):
                pool.close()


def _code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def _body(led: Ledger) -> str:
    return led.latest_checkpoint().signed.body


def test_unknown_witness_is_refused_before_bls(fx: Fixture) -> None:
    outsider = WitnessSigner.from_secret_bytes("mallory", b"\x07" * 32)
    r = fx.post("mallory", 3, outsider.cosign(_body(fx.led)))
    assert r.status_code == 403 and _code(r) == "ledger.witness_unknown", r.text
    assert fx.calls == [] and fx.led.latest_checkpoint().cosignatures is None


def test_outsider_key_under_a_witness_name_fails_bls_and_stores_nothing(fx: Fixture) -> None:
    outsider = WitnessSigner.from_secret_bytes("witness-0", b"\x07" * 32)  # not the manifest's key
    r = fx.post("witness-0", 3, outsider.cosign(_body(fx.led)))
    assert r.status_code == 422 and _code(r) == "ledger.verification", r.text
    assert fx.calls == ["witness-0"] and fx.led.latest_checkpoint().cosignatures is None


def test_the_bls_verification_runs_in_a_worker_process_with_the_same_answers(
    fx: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """py_ecc's ``Verify`` (about 0.35 s of CPU) does not run in the serving process, whose GIL its other
    requests keep: a worker process verifies, and a bad cosignature is refused as before, a good one stored.
    A worker that died is replaced."""
    real = cosign_impl._Bls
    here: list[str] = []

    class CountingBls:  # this process's BLS: counts the verifications run here
        def __getattr__(self, name: str) -> Any:
            return getattr(real(), name)

        def Verify(self, *args: Any) -> bool:
            here.append("Verify")
            return bool(real().Verify(*args))

    monkeypatch.setattr(cosign_impl, "_Bls", CountingBls)
    outsider = WitnessSigner.from_secret_bytes("witness-0", b"\x07" * 32)  # not the manifest's key
    bad = fx.post("witness-0", 3, outsider.cosign(_body(fx.led)))
    assert bad.status_code == 422 and _code(bad) == "ledger.verification", bad.text
    assert "cosignature by witness 'witness-0' does not verify" in bad.json()["error"]["message"]
    good = fx.post("witness-1", 3, witnesses()[1].cosign(_body(fx.led)))
    assert good.status_code == 200 and good.json()["cosignatures"]["signers"] == ["witness-1"], good.text
    assert fx.calls == ["witness-0", "witness-1"] and here == []  # verified, but not in this process
    pool = fx.c.app.state.cosign_pool  # type: ignore[attr-defined]
    for worker in list(pool._executor()._processes.values()):  # the worker dies between two cosignatures
        worker.kill()
        worker.join()
    again = fx.post("witness-2", 3, witnesses()[2].cosign(_body(fx.led)))
    assert again.status_code == 200 and again.json()["witnessed"] is True, again.text
    assert here == []


def test_replayed_cosignature_is_not_verified_again_and_a_conflicting_one_is_refused(fx: Fixture) -> None:
    w0 = witnesses()[0]
    good = w0.cosign(_body(fx.led))
    first = fx.post("witness-0", 3, good)
    assert first.status_code == 200 and first.json()["witnessed"] is False  # 1 of quorum 2
    for _ in range(3):  # replays: the checkpoint unchanged, no BLS verification
        again = fx.post("witness-0", 3, good)
        assert again.status_code == 200 and again.json() == first.json()
    other = w0.cosign("some other checkpoint body\n")  # a valid signature, but not of this checkpoint
    r = fx.post("witness-0", 3, other)
    assert r.status_code == 409 and _code(r) == "ledger.cosignature_conflict", r.text
    assert fx.calls == ["witness-0"]
    done = fx.post("witness-2", 3, witnesses()[2].cosign(_body(fx.led)))
    assert done.status_code == 200 and done.json()["witnessed"] is True
    assert done.json()["cosignatures"]["signers"] == ["witness-0", "witness-2"]


@pytest.mark.parametrize(
    ("witness", "size", "signature", "status", "code"),
    [
        ("witness-0", 99, "00" * 96, 404, "ledger.not_found"),  # no checkpoint of that size
        ("witness-0", 3, "zz" * 96, 400, "ledger.encoding"),
        ("witness-0", 3, "00" * 95, 400, "ledger.encoding"),
        ("witness-0", 3, "00" * 97, 422, "request.invalid"),
        ("w" * 65, 3, "00" * 96, 422, "request.invalid"),
        ("Witness 0", 3, "00" * 96, 403, "ledger.witness_unknown"),
        ("witness-0", -1, "00" * 96, 422, "request.invalid"),
    ],
)
def test_garbage_is_refused_without_bls(
    fx: Fixture, witness: str, size: int, signature: str, status: int, code: str
) -> None:
    r = fx.post(witness, size, signature)
    assert (r.status_code, _code(r)) == (status, code), r.text
    assert fx.calls == [] and fx.led.latest_checkpoint().cosignatures is None


def test_flood_from_one_client_trips_its_bucket_before_bls(fx: Fixture) -> None:
    clock = Clock(0)
    limits = CosignLimits(
        RateLimiter(5, clock=clock, code="cosign.rate_limited"),
        RateLimiter(1000, clock=clock, code="cosign.busy"),
    )
    fx.c.app.state.cosign_limits = limits  # type: ignore[attr-defined]
    answers = [fx.post("witness-1", 3, bytes([i]) * 96) for i in range(40)]
    assert [a.status_code for a in answers[:5]] == [422] * 5
    assert {(a.status_code, _code(a)) for a in answers[5:]} == {(429, "cosign.rate_limited")}
    assert answers[5].headers["Retry-After"] == "12"
    assert len(fx.calls) == 5


def test_flood_from_many_clients_trips_the_server_bucket_before_bls(fx: Fixture) -> None:
    clock = Clock(0)
    limits = CosignLimits(
        RateLimiter(1000, clock=clock, code="cosign.rate_limited"),
        RateLimiter(3, clock=clock, code="cosign.busy"),
    )
    fx.c.app.state.cosign_limits = limits  # type: ignore[attr-defined]
    codes = []
    for i in range(30):  # a botnet: another client address each time
        c = TestClient(fx.c.app, client=(f"198.51.100.{i}", 50000))
        r = c.post(
            "/ledger/cosignature", json={"witness": "witness-1", "size": 3, "signature": f"{i:02x}" * 96}
        )
        codes.append((r.status_code, _code(r)))
    assert codes[:3] == [(422, "ledger.verification")] * 3
    assert set(codes[3:]) == {(429, "cosign.busy")}
    assert len(fx.calls) == 3
    # cheap refusals cost no server token: once the bucket refills, an honest witness gets in
    clock.now += 20
    r = fx.post("witness-1", 3, witnesses()[1].cosign(_body(fx.led)))
    assert r.status_code == 200 and len(fx.calls) == 4
