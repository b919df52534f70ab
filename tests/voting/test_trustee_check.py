"""Trustees check before they decrypt (issue 11, attack 1): a malicious server cannot get anything but the
sum of the counted ballots decrypted.

The server here is the real app (``running_app``); the malice is an httpx transport in front of it that
rewrites its answers as a dishonest operator could, holding the log's signing key (it runs the log). Each
attack must be refused with its named reason, and nothing may be submitted: no ``POST /trustee/partials``
leaves the trustee and the ledger gains no ``tally.partial``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from _ledger_util import witnesses
from _service_util import (
    ADMIN,
    ADMIN_TOKEN,
    CLOSE_EARLY,
    OPEN_EARLY,
    cast_directly,
    manifest_dict,
    ok,
    roll_aliases,
    running_app,
)
from _service_util import EXAMPLE_ROLL as ROLL
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crypto import Ciphertext, EncryptedBallot
from ledger.merkle import leaf_hash
from ledger.merkle import root as merkle_root
from ledger.record import ZERO_HASH, Checkpoint, Entry, LogSigner, SignedCheckpoint
from verifier import Options, verify_record
from voting import _cli_trustee
from voting._tally_check import REFUSAL_CODES, TallyRefused
from voting.cli import app as tvote
from voting.clients.trustee import KdfLimits, Trustee
from voting.service import ElectionService
from voting.testing import run_key_ceremony

A_VOTE = {"mayor": ["cand-1"], "projects": ["library"], "referendum": ["yes"]}
B_VOTE = {"mayor": ["cand-2"], "projects": ["cycling"], "referendum": ["no"]}


# ------------------------------------------------------------------------------------------- the election


@dataclass
class Tallied:
    client: TestClient
    service: ElectionService
    trustees: dict[int, Trustee]
    victim: str  # the ballot hash of the voter whose choices the server wants decrypted


def _setup(client: TestClient, service: ElectionService, manifest: dict[str, Any]) -> Tallied:
    out = ok(client.post("/api/v1/admin/election", json=manifest, headers=ADMIN), 201)
    ok(
        client.put(
            "/api/v1/admin/roll", content=ROLL.read_bytes(), headers={**ADMIN, "Content-Type": "text/csv"}
        )
    )
    ok(client.post("/api/v1/admin/roll/publish", headers=ADMIN))
    invitations = {int(k): v for k, v in out["invitations"].items()}
    trustees = run_key_ceremony(client, invitations, admin_token=ADMIN_TOKEN)
    ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
    rng = random.Random(11)
    a, b, c = roll_aliases(service)[:3]
    cast_directly(service, a, "internet", B_VOTE, 1, rng)  # superseded by a's second ballot
    victim = cast_directly(service, a, "internet", A_VOTE, 2, rng)
    cast_directly(service, b, "internet", B_VOTE, 1, rng)
    cast_directly(service, c, "kiosk", B_VOTE, 1, rng)
    ok(client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
    ok(client.post("/api/v1/admin/tally", headers=ADMIN))
    return Tallied(client, service, trustees, victim)


@pytest.fixture(scope="module")
def tallied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tallied]:
    """An election whose manifest names no witnesses (quorum 0, allowed outside production): each attack below
    is refused by the trustee's own recomputation, not merely for want of cosignatures (a server cannot
    forge those; ``witnessed`` below checks the quorum)."""
    m = manifest_dict(3, 2)
    m["witnesses"] = {"quorum": 0, "keys": []}
    with running_app(tmp_path_factory.mktemp("check")) as (client, service):
        yield _setup(client, service, m)


# ------------------------------------------------------------------------------------ the malicious server


Rewrite = Callable[[httpx.Request, httpx.Response], httpx.Response]


class Malicious(httpx.BaseTransport):
    """The honest app behind a rewriting proxy; remembers every request it forwarded."""

    def __init__(self, inner: httpx.BaseTransport, rewrite: Rewrite) -> None:
        self.inner, self.rewrite = inner, rewrite
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        response = self.inner.handle_request(request)
        response.read()
        return self.rewrite(request, response)


def _json(obj: Any) -> httpx.Response:
    return httpx.Response(200, json=obj)


def malicious(client: TestClient, rewrite: Rewrite) -> tuple[httpx.Client, Malicious]:
    transport = Malicious(client._transport, rewrite)
    return httpx.Client(transport=transport, base_url=str(client.base_url)), transport


def serve(answers: dict[str, Callable[[httpx.Request], Any]]) -> Rewrite:
    """Replace the answers of the given paths (under /api/v1); everything else passes through."""

    def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        fn = answers.get(request.url.path.removeprefix("/api/v1"))
        return response if fn is None else _json(fn(request))

    return rewrite


@dataclass
class Forged:
    entries: list[Entry]
    checkpoint: dict[str, Any]

    def entries_answer(self, request: httpx.Request) -> dict[str, Any]:
        start, stop = int(request.url.params["start"]), int(request.url.params["stop"])
        return {
            "entries": [
                {"index": e.index, "hash": e.hash.hex(), "entry": e.canonical.decode()}
                for e in self.entries[start:stop]
            ]
        }

    def tally(self) -> dict[str, Any]:
        return next(e for e in reversed(self.entries) if e.type == "tally.encrypted").payload


def signed_checkpoint(signer: LogSigner, size: int, root: bytes) -> dict[str, Any]:
    now = int(time.time())
    signed = SignedCheckpoint.sign(Checkpoint(signer.name, size, root, now), signer)
    return {
        "size": size,
        "root": root.hex(),
        "note": signed.note,
        "issued_at": now,
        "witnessed": True,
        "cosignatures": None,
    }


def honest_items(service: ElectionService) -> list[tuple[str, dict[str, Any]]]:
    size = service.ledger.latest_checkpoint().size
    return [(e.type, e.payload) for e in service.ledger.entries(0, size)]


def forge(
    service: ElectionService, items: list[tuple[str, dict[str, Any]]], signer: LogSigner | None = None
) -> Forged:
    """A self-consistent ledger of ``items``: re-chained, its Merkle root signed with the log's key (the
    dishonest operator holds it) or ``signer``."""
    out: list[Entry] = []
    prev = ZERO_HASH
    for i, (t, p) in enumerate(items):
        e = Entry.create(i, prev, t, p)
        out.append(e)
        prev = e.hash
    root = merkle_root([e.hash for e in out])
    return Forged(out, signed_checkpoint(signer or service.ledger.config.signer, len(out), root))


def ballot_cts(payload: dict[str, Any]) -> dict[tuple[str, str], Ciphertext]:
    b = EncryptedBallot.from_dict(payload["ballot"])
    return {(c.contest_id, s.selection_id): s.ciphertext for c in b.contests for s in c.selections}


def cts_dict(cts: dict[tuple[str, str], Ciphertext]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (c, s), ct in cts.items():
        out.setdefault(c, {})[s] = ct.to_dict()
    return out


def with_tally(items: list[tuple[str, dict[str, Any]]], **changes: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(t, {**p, **changes} if t == "tally.encrypted" else p) for t, p in items]


def partials_on_ledger(service: ElectionService) -> int:
    return sum(1 for e in service.ledger.entries(0, service.ledger.size) if e.type == "tally.partial")


def refused(e: Tallied, http: httpx.Client, transport: Malicious, code: str, **kw: Any) -> TallyRefused:
    """Trustee 1 refuses with ``code``; nothing was submitted."""
    before = partials_on_ledger(e.service)
    with pytest.raises(TallyRefused) as info:
        e.trustees[1].decrypt(http, **kw)
    assert info.value.code == code, info.value.message
    assert info.value.message.startswith(REFUSAL_CODES[code])
    assert ("POST", "/api/v1/trustee/partials") not in transport.requests
    assert partials_on_ledger(e.service) == before
    return info.value


# ------------------------------------------------------------------------------------------------ attacks


def test_a_one_voters_ballot_served_as_the_tally_endpoint(tallied: Tallied) -> None:
    """(a) The server answers GET /election/tally with one voter's ciphertexts: the trustee decrypts only
    the ledger's entry, and refuses a server that contradicts its own ledger."""
    e = tallied
    victim = next(
        p for t, p in honest_items(e.service) if t == "ballot.cast" and p["ballot_hash"] == e.victim
    )
    tally = e.service.encrypted_tally()
    fake = {**tally, "ciphertexts": cts_dict(ballot_cts(victim))}
    http, transport = malicious(e.client, serve({"/election/tally": lambda r: fake}))
    refused(e, http, transport, "tally.served_differs")


def _one_voter_tally_server(e: Tallied) -> tuple[httpx.Client, Malicious]:
    """Attack (a) on a signed ledger: the server rewrites its ledger so that tally.encrypted holds one
    voter's ciphertexts, re-chains it, signs it with its own log key and serves it (checkpoint, entries,
    tally)."""
    items = honest_items(e.service)
    victim = next(p for t, p in items if t == "ballot.cast" and p["ballot_hash"] == e.victim)
    forged = forge(e.service, with_tally(items, ciphertexts=cts_dict(ballot_cts(victim))))
    return malicious(
        e.client,
        serve(
            {
                "/ledger/checkpoint": lambda r: forged.checkpoint,
                "/ledger/entries": forged.entries_answer,
                "/election/tally": lambda r: forged.tally(),
            }
        ),
    )


def test_a_one_voters_ballot_as_the_tally_entry_of_a_signed_ledger(tallied: Tallied) -> None:
    """(a) The server rewrites its ledger so that tally.encrypted holds one voter's ciphertexts, re-chains
    it and signs it with its own log key: chain, root and signature hold, the sum does not."""
    e = tallied
    http, transport = _one_voter_tally_server(e)
    err = refused(e, http, transport, "tally.not_the_sum")
    assert "V18 'tally.aggregate'" in err.message


def test_b_tally_not_included_under_the_checkpoint(tallied: Tallied) -> None:
    """(b) The checkpoint served (genuinely signed) covers the ledger only up to before the tally entry."""
    e = tallied
    items = honest_items(e.service)
    at = next(i for i, (t, _) in enumerate(items) if t == "tally.encrypted")
    entries = e.service.ledger.entries(0, at)
    cp = signed_checkpoint(e.service.ledger.config.signer, at, merkle_root([x.hash for x in entries]))
    http, transport = malicious(e.client, serve({"/ledger/checkpoint": lambda r: cp}))
    refused(e, http, transport, "tally.not_on_ledger")


def test_c_checkpoint_with_a_bad_signature(tallied: Tallied) -> None:
    e = tallied

    def bad_signature(_: httpx.Request) -> dict[str, Any]:
        cp = json.loads(e.client.get("/api/v1/ledger/checkpoint").text)
        body, sig = cp["note"].split("\n\n")
        name, b64 = sig.rsplit(" ", 1)
        flipped = ("A" if b64[10] != "A" else "B").join((b64[:10], b64[11:]))
        return {**cp, "note": f"{body}\n\n{name} {flipped}"}

    http, transport = malicious(e.client, serve({"/ledger/checkpoint": bad_signature}))
    refused(e, http, transport, "tally.checkpoint_signature")


def test_c_checkpoint_signed_by_another_key_against_a_pinned_log_key(tallied: Tallied) -> None:
    """A whole ledger made up and signed with another key (same origin) is refused when the trustee pins
    the log key; the server also serves that other key as its own."""
    e = tallied
    items = honest_items(e.service)
    victim = next(p for t, p in items if t == "ballot.cast" and p["ballot_hash"] == e.victim)
    other = LogSigner.generate(e.service.ledger.config.signer.name)
    forged = forge(e.service, with_tally(items, ciphertexts=cts_dict(ballot_cts(victim))), signer=other)
    policy = e.client.get("/api/v1/ledger/witnesses").json()
    http, transport = malicious(
        e.client,
        serve(
            {
                "/ledger/checkpoint": lambda r: forged.checkpoint,
                "/ledger/entries": forged.entries_answer,
                "/ledger/witnesses": lambda r: {**policy, "log_key": other.public.vkey},
            }
        ),
    )
    refused(e, http, transport, "tally.checkpoint_signature", log_key=e.service.ledger.log_key.vkey)


def test_c_forked_ledger_entries_do_not_match_the_signed_root(tallied: Tallied) -> None:
    """(c) The genuine checkpoint, but entries of another (re-chained) ledger under it."""
    e = tallied
    items = honest_items(e.service)
    victim = next(p for t, p in items if t == "ballot.cast" and p["ballot_hash"] == e.victim)
    forged = forge(e.service, with_tally(items, ciphertexts=cts_dict(ballot_cts(victim))))
    http, transport = malicious(
        e.client,
        serve({"/ledger/entries": forged.entries_answer, "/election/tally": lambda r: forged.tally()}),
    )
    err = refused(e, http, transport, "tally.ledger_mismatch")
    assert "V3 'ledger.tree'" in err.message


def test_c_entries_missing_under_the_checkpoint(tallied: Tallied) -> None:
    e = tallied
    http, transport = malicious(e.client, serve({"/ledger/entries": lambda r: {"entries": []}}))
    refused(e, http, transport, "tally.ledger_mismatch")


def _without_one_counted(
    e: Tallied,
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any], dict[str, Any]]:
    """The honest items, the tally's ciphertexts less the victim's (counted) ballot, and that ballot."""
    items = honest_items(e.service)
    tally = next(p for t, p in items if t == "tally.encrypted")
    dropped = next(p for t, p in items if t == "ballot.cast" and p["ballot_hash"] == e.victim)
    minus = ballot_cts(dropped)
    less: dict[tuple[str, str], Ciphertext] = {}
    for c, sels in tally["ciphertexts"].items():
        for s, ct in sels.items():
            total = Ciphertext.from_dict(ct)
            less[(c, s)] = Ciphertext(total.a - minus[(c, s)].a, total.b - minus[(c, s)].b)
    return items, cts_dict(less), dropped


def test_d_counted_ballot_dropped_from_the_sum(tallied: Tallied) -> None:
    """(d) tally.encrypted omits one counted ballot from the sum (its counted_root still names it)."""
    e = tallied
    items, less, _ = _without_one_counted(e)
    forged = forge(e.service, with_tally(items, ciphertexts=less))
    http, transport = malicious(
        e.client,
        serve(
            {
                "/ledger/checkpoint": lambda r: forged.checkpoint,
                "/ledger/entries": forged.entries_answer,
                "/election/tally": lambda r: forged.tally(),
            }
        ),
    )
    refused(e, http, transport, "tally.not_the_sum")


def test_d_counted_ballot_dropped_from_the_sum_and_the_counted_set(tallied: Tallied) -> None:
    """(d) ... and its counted_root is recomputed without it too: the re-vote rule still counts it."""
    e = tallied
    items, less, dropped = _without_one_counted(e)
    # the counted set without the victim: every voter's one ballot but the victim's (who voted twice)
    counted = [
        p["ballot_hash"]
        for t, p in items
        if t == "ballot.cast" and p["voter_alias"] != dropped["voter_alias"]
    ]
    assert len(counted) == 2
    root = merkle_root([leaf_hash(bytes.fromhex(h)) for h in counted]).hex()
    forged = forge(e.service, with_tally(items, ciphertexts=less, counted_root=root))
    http, transport = malicious(
        e.client,
        serve(
            {
                "/ledger/checkpoint": lambda r: forged.checkpoint,
                "/ledger/entries": forged.entries_answer,
                "/election/tally": lambda r: forged.tally(),
            }
        ),
    )
    refused(e, http, transport, "tally.counting_rule")


def test_a_trustee_of_another_election_refuses(tallied: Tallied, witnessed: Tallied) -> None:
    """A trustee whose key was made for another election's base hash (V7, the pinned base hash)."""
    e = tallied
    http, transport = malicious(e.client, lambda request, response: response)
    before = partials_on_ledger(e.service)
    with pytest.raises(TallyRefused) as info:
        witnessed.trustees[1].decrypt(http)
    assert info.value.code == "tally.other_election", info.value.message
    assert ("POST", "/api/v1/trustee/partials") not in transport.requests
    assert partials_on_ledger(e.service) == before


def test_a_key_share_that_is_not_this_trustees_refuses(tallied: Tallied) -> None:
    """A secret file whose key share is not the one its commitments produced (another trustee's)."""
    e = tallied
    confused = dataclasses.replace(e.trustees[1], key=e.trustees[2].key)
    http, transport = malicious(e.client, lambda request, response: response)
    before = partials_on_ledger(e.service)
    with pytest.raises(TallyRefused) as info:
        confused.decrypt(http)
    assert info.value.code == "tally.key_mismatch", info.value.message
    assert ("POST", "/api/v1/trustee/partials") not in transport.requests
    assert partials_on_ledger(e.service) == before


def test_cli_refuses_with_the_reason_and_a_nonzero_exit(tallied: Tallied, tmp_path, monkeypatch) -> None:
    """``tvote trustee decrypt`` against the server of attack (a): ``error: tally.not_the_sum``, exit 1."""
    e = tallied
    http, transport = _one_voter_tally_server(e)
    secret = tmp_path / "t2.secret"
    e.trustees[2].save(secret, "a long trustee passphrase", KdfLimits.interactive())
    monkeypatch.setenv("PW", "a long trustee passphrase")
    monkeypatch.setattr(_cli_trustee, "client_for", lambda base_url, **kw: http)
    before = partials_on_ledger(e.service)
    args = ["trustee", "decrypt", "--server", "http://testserver", "--secret-file", str(secret)]
    result = CliRunner().invoke(tvote, [*args, "--passphrase-env", "PW"])
    assert result.exit_code == 1, result.output
    assert "error: tally.not_the_sum: tally.encrypted is not the sum of the counted ballots" in result.output
    assert ("POST", "/api/v1/trustee/partials") not in transport.requests
    assert partials_on_ledger(e.service) == before


# ---------------------------------------------------------------------------------------------- honest


def test_e_honest_server_decryption_proceeds_and_the_election_verifies(tallied: Tallied, tmp_path) -> None:
    e = tallied
    http, transport = malicious(e.client, lambda request, response: response)
    answers = {i: e.trustees[i].decrypt(http) for i in (2, 3)}
    assert all(a["accepted"] for a in answers.values())
    assert transport.requests.count(("POST", "/api/v1/trustee/partials")) == 2
    result = ok(e.client.post("/api/v1/admin/result", headers=ADMIN))
    assert result["results"]["mayor"] == {"cand-1": 1, "cand-2": 2, "cand-3": 0}
    e.service.export(tmp_path / "record")
    # this election names no witnesses (see ``tallied``): the verifier accepts that only when told to
    report = verify_record(tmp_path / "record", Options(partial=True, unsafe_allow_unwitnessed=True))
    assert [(f.check, f.message) for f in report.failures] == []


# ------------------------------------------------------------------------------------------- witnesses


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tallied]:
    """An election whose manifest names three witnesses, quorum 2."""
    m = manifest_dict(3, 2)
    m["witnesses"] = {
        "quorum": 2,
        "keys": [
            {"name": w.name, "bls_public_key": w.public.public_key.hex(), "pop": w.public.pop.hex()}
            for w in witnesses()
        ],
    }
    with running_app(tmp_path_factory.mktemp("witnessed")) as (client, service):
        yield _setup(client, service, m)


def _cosign(e: Tallied, *signers: int) -> None:
    cp = e.service.ledger.latest_checkpoint()
    for i in signers:
        w = witnesses()[i]
        body = {"witness": w.name, "size": cp.size, "signature": w.cosign(cp.signed.body).hex()}
        ok(e.client.post("/api/v1/ledger/cosignature", json=body))


def test_witness_quorum_of_the_manifest_is_required(witnessed: Tallied) -> None:
    """The manifest names 3 witnesses, quorum 2: an uncosigned or once-cosigned checkpoint is refused, and so
    is a server that serves a policy without witnesses; at 2 cosignatures the trustee decrypts."""
    e = witnessed
    http, transport = malicious(e.client, lambda request, response: response)
    refused(e, http, transport, "tally.unwitnessed")
    _cosign(e, 0)
    refused(e, http, transport, "tally.unwitnessed")
    _cosign(e, 1)
    policy = e.client.get("/api/v1/ledger/witnesses").json()
    no_witnesses = {**policy, "quorum": 0, "witnesses": []}

    def strip(_: httpx.Request) -> dict[str, Any]:
        return {**e.client.get("/api/v1/ledger/checkpoint").json(), "cosignatures": None}

    http2, transport2 = malicious(
        e.client, serve({"/ledger/witnesses": lambda r: no_witnesses, "/ledger/checkpoint": strip})
    )
    refused(e, http2, transport2, "tally.unwitnessed")
    assert e.trustees[1].decrypt(http)["accepted"]
    assert ("GET", "/api/v1/ledger/checkpoint/witnessed") in transport.requests

    # trustee 1's partial decryption is a new entry under a newer checkpoint the witnesses have not cosigned:
    # trustee 2 still relies on the newest witnessed one, which covers the tally
    newest = e.service.ledger.checkpoint()
    assert not newest.witnessed and newest.size > e.service.ledger.latest_witnessed_checkpoint().size

    # a server that passes that uncosigned checkpoint off as the witnessed one (the older cosignatures copied)
    def passed_off(_: httpx.Request) -> dict[str, Any]:
        real = e.client.get("/api/v1/ledger/checkpoint/witnessed").json()
        newest = e.client.get("/api/v1/ledger/checkpoint").json()
        return {**newest, "witnessed": True, "cosignatures": real["cosignatures"]}

    http3, transport3 = malicious(e.client, serve({"/ledger/checkpoint/witnessed": passed_off}))
    refused(e, http3, transport3, "tally.unwitnessed")
    assert e.trustees[2].decrypt(http)["accepted"]
