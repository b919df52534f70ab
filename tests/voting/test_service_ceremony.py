"""Key ceremony over HTTP: a bad share triggers a public complaint; an answered complaint keeps the dealer,
an unanswered one disqualifies it; decryption still works with the remaining trustees.

Every test runs on SQLite and on a real PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import random

import nacl.utils
import pytest
from _service_util import (
    ADMIN,
    CLOSE_EARLY,
    OPEN_EARLY,
    cast_directly,
    cosign,
    create_election,
    error_code,
    ok,
    roll_aliases,
    running_app,
)
from nacl.public import Box, PrivateKey, PublicKey

from crypto import EncryptedShare, TrusteeCommitments
from crypto._dkg import share_plaintext
from crypto._group import Scalar
from voting.clients.trustee import Trustee, TrusteeApi
from voting.testing import run_decryption


def _bad_share(dealer: Trustee, recipient: TrusteeCommitments) -> dict:
    """The dealer's share for ``recipient`` replaced by a wrong value under a valid Box (a cheater)."""
    kg = dealer.keygen
    wrong = kg.share_for(recipient.trustee) + Scalar(1)
    msg = share_plaintext(kg.base_hash, kg.trustee, recipient.trustee, wrong)
    box = Box(PrivateKey(bytes(kg.x25519_private_key)), PublicKey(recipient.x25519_public_key))
    ct = bytes(box.encrypt(msg, nacl.utils.random(Box.NONCE_SIZE)))
    return EncryptedShare(kg.trustee, recipient.trustee, ct).to_dict()


def _ceremony_with_cheater(client, invitations, *, answer: bool) -> dict[int, Trustee]:
    api = TrusteeApi(client)
    trustees = {i: Trustee.init(api, code, f"Trustee {i}") for i, code in invitations.items()}
    for t in trustees.values():
        t.register(client)
    ceremony = ok(client.get("/api/v1/election/ceremony"))
    commitments = {x["index"]: TrusteeCommitments.from_dict(x["commitments"]) for x in ceremony["trustees"]}
    for i, t in trustees.items():
        if i == 2:  # dealer 2 cheats trustee 3
            shares = [
                _bad_share(t, c) if j == 3 else t.keygen.encrypt_share(c).to_dict()
                for j, c in sorted(commitments.items())
                if j != 2
            ]
            TrusteeApi(client, t.token).deal(shares)
        else:
            t.deal(client)
    complaints = {i: t.verify_shares(client) for i, t in trustees.items()}
    assert complaints == {1: [], 2: [], 3: [2], 4: []}
    ceremony = ok(client.get("/api/v1/election/ceremony"))
    assert [c["complaint"]["complainant"] for c in ceremony["complaints"]] == [3]
    if answer:
        assert trustees[2].answer_complaints(client) == 1
    return trustees


@pytest.mark.parametrize("answer", [True, False])
def test_complaint_path(tmp_path, answer, database_url):
    with running_app(tmp_path, database_url) as (client, service):
        invitations = create_election(client, n=4, t=2)
        trustees = _ceremony_with_cheater(client, invitations, answer=answer)
        jk = ok(client.post("/api/v1/admin/key-ceremony/finalize", headers=ADMIN))
        types = [e.type for e in service.ledger.entries(0, service.ledger.size)]
        assert "trustee.complaint" in types
        if answer:
            assert jk["qualified"] == [1, 2, 3, 4]
            assert "trustee.answer" in types and "trustee.disqualified" not in types
        else:
            assert jk["qualified"] == [1, 3, 4]
            dq = [
                e.payload
                for e in service.ledger.entries(0, service.ledger.size)
                if e.type == "trustee.disqualified"
            ]
            assert [d["dealer"] for d in dq] == [2] and "complaint by trustee 3" in dq[0]["reason"]
        for t in trustees.values():
            t.finalize(client)  # trustee 3 uses the revealed share, or drops dealer 2
        ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        rng = random.Random(7)
        voter = roll_aliases(service)[0]
        cast_directly(service, voter, "internet", {"mayor": ["cand-3"], "projects": ["science"],
                                                   "referendum": ["no"]}, 1, rng)  # fmt: skip
        ok(client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
        ok(client.post("/api/v1/admin/tally", headers=ADMIN))
        cosign(client, service)  # trustees decrypt only a tally under a witnessed checkpoint
        # the cheated trustee 3 and trustee 4 decrypt (1 and 2 absent)
        assert all(a["accepted"] for a in run_decryption(client, [trustees[3], trustees[4]]).values())
        result = ok(client.post("/api/v1/admin/result", headers=ADMIN))
        assert result["trustees_used"] == [3, 4]
        assert result["results"]["mayor"] == {"cand-1": 0, "cand-2": 0, "cand-3": 1}
        assert result["results"]["referendum"] == {"yes": 0, "no": 1}


def test_ceremony_refusals_change_nothing(tmp_path, database_url):
    with running_app(tmp_path, database_url) as (client, service):
        invitations = create_election(client, n=3, t=2)
        api = TrusteeApi(client)
        t1 = Trustee.init(api, invitations[1], "One")
        t2 = Trustee.init(api, invitations[2], "Two")
        size = service.ledger.size

        def unchanged() -> None:
            assert service.ledger.size == size

        # a wrong code, and trustee 2's commitments under trustee 1's code
        bad = {
            "invitation": invitations[1][:-2] + "xx",
            "name": "X",
            "commitments": t1.keygen.commitments.to_dict(),
        }
        assert error_code(client.post("/api/v1/trustee/register", json=bad), 401) == "trustee.invitation"
        swapped = {"invitation": invitations[1], "name": "X", "commitments": t2.keygen.commitments.to_dict()}
        assert error_code(client.post("/api/v1/trustee/register", json=swapped), 422) == "trustee.index"
        # a tampered commitment proof
        c = t1.keygen.commitments.to_dict()
        c["proofs"][0] = c["proofs"][1]
        r = client.post(
            "/api/v1/trustee/register", json={"invitation": invitations[1], "name": "X", "commitments": c}
        )
        assert error_code(r, 422) == "crypto.coefficient-proof"
        unchanged()
        t1.register(client)
        size = service.ledger.size
        # the code is one-time; dealing before everyone registered is refused
        again = {"invitation": invitations[1], "name": "X", "commitments": t1.keygen.commitments.to_dict()}
        assert error_code(client.post("/api/v1/trustee/register", json=again), 409) == "trustee.registered"
        h1 = {"Authorization": f"Bearer {t1.token}"}
        assert error_code(client.post("/api/v1/trustee/shares", json={"shares": []}, headers=h1), 409) == (
            "ceremony.waiting"
        )
        # trustee routes need the trustee's token
        assert error_code(client.get("/api/v1/trustee/shares"), 401) == "auth.required"
        assert error_code(client.get("/api/v1/trustee/shares", headers=ADMIN), 401) == "auth.invalid"
        # finalize before the ceremony is complete
        assert error_code(client.post("/api/v1/admin/key-ceremony/finalize", headers=ADMIN), 409) in (
            "ceremony.too_few",
            "ceremony.waiting",
        )
        unchanged()


def test_silent_dealer_is_disqualified_through_complaints(tmp_path, database_url):
    with running_app(tmp_path, database_url) as (client, service):
        invitations = create_election(client, n=3, t=2)
        api = TrusteeApi(client)
        trustees = {i: Trustee.init(api, code, f"T{i}") for i, code in invitations.items()}
        for t in trustees.values():
            t.register(client)
        trustees[1].deal(client)
        trustees[3].deal(client)  # trustee 2 never deals
        size = service.ledger.size
        assert error_code(client.post("/api/v1/admin/key-ceremony/finalize", headers=ADMIN), 409) == (
            "ceremony.waiting"
        )
        assert service.ledger.size == size
        assert (
            trustees[1].verify_shares(client) == []
        )  # without the flag, a missing share is not (yet) a fault
        assert trustees[1].verify_shares(client, complain_missing=True) == [2]
        assert trustees[3].verify_shares(client, complain_missing=True) == [2]
        jk = ok(client.post("/api/v1/admin/key-ceremony/finalize", headers=ADMIN))
        assert jk["qualified"] == [1, 3]
        for i in (1, 3):
            trustees[i].finalize(client)
