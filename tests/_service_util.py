"""Helpers for the election-service tests: an app on a real database, admin calls, ballots."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _ledger_util import witnesses
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from crypto import ElectionContext, encrypt_ballot
from voting import testing as demo
from voting._kiosk_sign import ballot_digest, format_time, opened_digest
from voting._manifest import load_manifest
from voting._settings import Settings
from voting.app import create_app
from voting.clients.kiosk import KioskKey
from voting.service import ElectionService

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_MANIFEST = ROOT / "examples" / "tsukuba-2027" / "manifest.yaml"
EXAMPLE_ROLL = ROOT / "examples" / "tsukuba-2027" / "roll.csv"
ADMIN_TOKEN = "test-admin-token-" + "x" * 32
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: the example manifest's voting period is in 2027: tests open and close voting now with a published reason
OPEN_EARLY = {"override_reason": "test: opened before the voting period"}
CLOSE_EARLY = {"override_reason": "test: closed before the end of the voting period"}


def manifest_dict(n: int = 5, t: int = 3) -> dict[str, Any]:
    """The example manifest with ``n`` trustees (quorum ``t``); its three example witnesses are replaced by
    the tests' (:func:`_ledger_util.witnesses`, quorum 2), whose secrets :func:`cosign` holds."""
    m = copy.deepcopy(load_manifest(EXAMPLE_MANIFEST).to_dict())
    m["trustees"] = {"n": n, "threshold": t}
    m["witnesses"] = {
        "quorum": 2,
        "keys": [
            {"name": w.name, "bls_public_key": w.public.public_key.hex(), "pop": w.public.pop.hex()}
            for w in witnesses()
        ],
    }
    return m


def cosign(client: TestClient, service: ElectionService, signers: tuple[int, ...] = (0, 1)) -> int:
    """A round of the tests' witnesses (``signers``, default a quorum of two): a checkpoint covering the
    committed ledger, cosigned over the cosignature route; returns its size."""
    cp = service.ledger.checkpoint()
    for i in signers:
        w = witnesses()[i]
        body = {"witness": w.name, "size": cp.size, "signature": w.cosign(cp.signed.body).hex()}
        r = client.post("/api/v1/ledger/cosignature", json=body)
        assert r.status_code == 200, r.text
    return int(cp.size)


@contextmanager
def running_app(
    tmp_path: Path,
    database_url: str | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    period_poll_seconds: float = 1.0,
) -> Iterator[tuple[TestClient, ElectionService]]:
    """The app on a real database, its lifespan (and so its period keeper) running; ``clock`` is the
    service's time source (default: the wall clock)."""
    settings = Settings(
        environment="test", data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN, database_url=database_url
    )
    service = ElectionService.from_settings(settings, **({"clock": clock} if clock is not None else {}))
    app = create_app(settings, service=service, period_poll_seconds=period_poll_seconds)
    try:
        with TestClient(app) as client:
            yield client, service
    finally:
        service.close()


@contextmanager
def start_election_on(database_url: str | None, *args: Any, **kw: Any) -> Iterator[demo.DemoElection]:
    """:func:`voting.testing.start_election` (an open election behind uvicorn on loopback) on
    ``database_url``; ``None`` keeps the demo's SQLite file in its data directory."""
    with demo.start_election(*args, database_url=database_url, **kw) as election:
        assert election.service.engine.dialect.name == ("sqlite" if database_url is None else "postgresql")
        yield election


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def error_code(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return str(body["error"]["code"])


def create_election(client: TestClient, n: int = 5, t: int = 3) -> dict[int, str]:
    out = ok(client.post("/api/v1/admin/election", json=manifest_dict(n, t), headers=ADMIN), 201)
    ok(
        client.put(
            "/api/v1/admin/roll",
            content=EXAMPLE_ROLL.read_bytes(),
            headers={**ADMIN, "Content-Type": "text/csv"},
        )
    )
    ok(client.post("/api/v1/admin/roll/publish", headers=ADMIN))
    return {int(k): v for k, v in out["invitations"].items()}


def roll_aliases(service: ElectionService) -> list[str]:
    """The committed roll's voter aliases (hex), in leaf order."""
    from sqlmodel import Session, select

    from voting._db import RollEntryRow

    with Session(service.engine) as s:
        rows = s.exec(select(RollEntryRow.alias, RollEntryRow.leaf_index)).all()
    return [a for a, _ in sorted(rows, key=lambda r: r[1])]


def cast_directly(
    service: ElectionService,
    alias: str,
    channel: str,
    choices: dict[str, list[str]],
    seq: int,
    rng: random.Random,
) -> str:
    """Stand-in for ballot intake (tested in its own suite): encrypt a real ballot and append the
    ``ballot.cast`` entry exactly as docs/events.md shapes it (``alias`` must be on the committed roll: the
    entry carries its roll inclusion proof). A ``"kiosk"`` ballot is cast at :func:`direct_kiosk`'s enrolled,
    open kiosk and signed by it. Returns the ballot hash."""
    ctx = ElectionContext(
        service.base_hash, service.joint_key().public_key, tuple(service.manifest.contest_specs())
    )
    ballot, _ = encrypt_ballot(ctx, choices, rng=rng)
    bh = ballot.ballot_hash().hex()
    kiosk: dict[str, Any] = {}
    if channel == "kiosk":
        key = direct_kiosk(service)
        sig = key.sign(ballot_digest(service.base_hash, DIRECT_KIOSK, 1, ballot.ballot_hash()))
        kiosk = {"kiosk": {"kiosk_id": DIRECT_KIOSK, "session": 1, "signature": sig.hex()}}
    service.ledger.append(
        "ballot.cast",
        {
            "election_id": service.election_id,
            "base_hash": service.base_hash.hex(),
            "ballot": ballot.to_dict(),
            "ballot_hash": bh,
            "tracking_code": ballot.tracking_code(),
            "voter_alias": alias,
            "roll_proof": service.roll_proof(bytes.fromhex(alias)).to_dict(),
            "channel": channel,
            "auth": {"method": "jpki", "evidence_hash": rng.randbytes(32).hex()},
            "seq": seq,
            **kiosk,
        },
    )
    return bh


#: the polling-place kiosk of :func:`cast_directly`'s kiosk ballots
DIRECT_KIOSK = "direct-test-kiosk"


def direct_kiosk(service: ElectionService) -> KioskKey:
    """The key of :data:`DIRECT_KIOSK` (derived from the base hash: one per election); its ``kiosk.enrolled``
    and ``kiosk.opened`` (session 1) are appended directly the first time, as docs/events.md shapes them."""
    key = KioskKey(SigningKey(hashlib.sha256(b"direct-test-kiosk/" + service.base_hash).digest()))
    size = service.ledger.size
    types = {(e.type, e.payload.get("kiosk_id")) for e in service.ledger.entries(0, size)} if size else set()
    bound = {
        "election_id": service.election_id,
        "base_hash": service.base_hash.hex(),
        "kiosk_id": DIRECT_KIOSK,
    }
    if ("kiosk.enrolled", DIRECT_KIOSK) not in types:
        service.ledger.append(
            "kiosk.enrolled", {**bound, "public_key": key.public_key_hex, "polling_place": "Test hall"}
        )
        at = format_time(dt.datetime.now(dt.UTC))
        sig = key.sign(opened_digest(service.base_hash, DIRECT_KIOSK, 1, at)).hex()
        service.ledger.append(
            "kiosk.opened", {**bound, "session": 1, "opened_at": at, "kiosk_signature": sig}
        )
    return key
