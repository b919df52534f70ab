"""The booth's JavaScript protocol library (``web/src/protocol/``) is byte-compatible with Python, for real.

A real election (``voting.testing.start_election`` behind uvicorn, with three witnesses, quorum 2) is driven
from both sides: node (``web/test/bridge.mjs``, one JSON request per run) encrypts ballots for the manifest
the server publishes and computes the JPKI message the card signs; Python decodes and verifies them with
``crypto``, a test card signs the JS-computed message and the server casts the ballot; a JS reveal is
accepted by the spoil route; and a real receipt (inclusion proof, signed checkpoint, the witnesses' BLS
cosignatures) verifies in JS, while tampered ones are refused with the check that failed. The library's own
node:test unit tests (``npm test``) run here too.

Without node/npm the tests skip, unless ``TVOTE_REQUIRE_ALL=1`` (CI), where they fail.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _node import web_node

from crypto import EncryptedBallot, RevealedBallot, verify_ballot, verify_revealed
from voting.auth import signed_message
from voting.testing import (
    DEMO_WITNESSES,
    DemoElection,
    JpkiTestCa,
    RsaKeyPool,
    make_residents,
    start_election,
    tsukuba_manifest,
)

pytestmark = pytest.mark.xdist_group("interop")

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
BRIDGE = WEB / "test" / "bridge.mjs"
API = "/api/v1"
CHOICES = {"mayor": ["cand-2"], "referendum": ["yes"], "subsidy": []}


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with web/node_modules installed from the lock file."""
    return web_node()


def js(node: str, op: str, **request: Any) -> dict[str, Any]:
    """One call into the JS library through the bridge; library errors come back as ``{"error": …}``."""
    done = subprocess.run(
        [node, str(BRIDGE)],
        input=json.dumps({"op": op, **request}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def js_ok(node: str, op: str, **request: Any) -> dict[str, Any]:
    answer = js(node, op, **request)
    assert "error" not in answer, answer
    return answer


def js_refused(node: str, op: str, **request: Any) -> str:
    answer = js(node, op, **request)
    assert "error" in answer, answer
    return str(answer["error"]["check"])


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now, pool=RsaKeyPool(3))
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election(
        tmp_path_factory.mktemp("web-protocol"), residents, ca, manifest, witnesses=DEMO_WITNESSES
    ) as e:
        yield e


def _get(e: DemoElection, path: str) -> Any:
    r = e.http.get(API + path)
    assert r.status_code == 200, r.text
    return r.json()


def _post(e: DemoElection, path: str, body: Any = None, status: int = 200) -> Any:
    r = e.http.post(API + path, json=body)
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture(scope="module")
def public(election: DemoElection) -> dict[str, Any]:
    """What the booth page fetches: the manifest with its base hash, and the joint key."""
    m = _get(election, "/election/manifest")
    return {
        "manifest": m["manifest"],
        "base_hash": m["base_hash"],
        "joint_key": _get(election, "/election/joint-key")["joint_key"],
    }


def test_a_js_ballot_is_verified_by_python_and_cast_by_the_server(
    node: str, election: DemoElection, public: dict[str, Any]
) -> None:
    e = election
    info = e.election_info()
    assert info.base_hash.hex() == public["base_hash"]
    challenge = _post(e, "/voter/challenge")["challenge"]
    made = js_ok(node, "encrypt", choices=CHOICES, challenge=challenge, **public)
    ballot = EncryptedBallot.from_dict(made["ballot"])
    verify_ballot(info.context, ballot)  # raises on any failed check
    assert ballot.ballot_hash().hex() == made["ballot_hash"]
    assert ballot.tracking_code() == made["tracking_code"]
    message = bytes.fromhex(made["jpki_message"])
    assert message == signed_message(info.base_hash, ballot.ballot_hash(), bytes.fromhex(challenge))
    card = e.residents[0].card
    auth = {
        "method": "jpki",
        "certificate": card.certificate_der.hex(),
        "intermediates": [],
        "signature": card.sign(message).hex(),
        "challenge": challenge,
    }
    receipt = _post(e, "/voter/ballots", {"ballot": made["ballot"], "auth": auth})
    assert receipt["kind"] == "cast"
    assert (receipt["ballot_hash"], receipt["tracking_code"]) == (made["ballot_hash"], made["tracking_code"])
    # the ledger's entry is the JS ballot, byte for byte
    entry = _get(e, f"/ledger/entries?start={receipt['leaf_index']}&stop={receipt['leaf_index'] + 1}")
    assert json.loads(entry["entries"][0]["entry"])["payload"]["ballot"] == made["ballot"]


def test_a_js_reveal_is_accepted_by_the_spoil_route(
    node: str, election: DemoElection, public: dict[str, Any]
) -> None:
    e = election
    made = js_ok(
        node, "encrypt", choices={"mayor": ["cand-1"], "referendum": ["no"], "subsidy": []}, **public
    )
    revealed = js_ok(node, "reveal", ballot=made["ballot"], secrets=made["secrets"])["revealed"]
    opened = verify_revealed(
        e.election_info().context,
        EncryptedBallot.from_dict(made["ballot"]),
        RevealedBallot.from_dict(revealed),
    )
    assert {c: list(v) for c, v in opened.items()} == {
        "mayor": ["cand-1"],
        "referendum": ["no"],
        "subsidy": [],
    }
    receipt = _post(e, "/voter/spoil", {"ballot": made["ballot"], "revealed": revealed})
    assert receipt["kind"] == "spoiled" and receipt["ballot_hash"] == made["ballot_hash"]
    # a second device opens it from the public record, in JS
    entry = _get(e, f"/ledger/entries?start={receipt['leaf_index']}&stop={receipt['leaf_index'] + 1}")
    payload = json.loads(entry["entries"][0]["entry"])["payload"]
    chosen = js_ok(node, "verify_revealed", ballot=payload["ballot"], revealed=payload["revealed"], **public)
    assert chosen["chosen"] == {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": []}
    # a reveal of other randomness is refused by the route and by the library alike
    other = js_ok(
        node, "encrypt", choices={"mayor": ["cand-1"], "referendum": ["no"], "subsidy": []}, **public
    )
    wrong = {"ballot_hash": other["ballot_hash"], "contests": revealed["contests"]}
    r = e.http.post(API + "/voter/spoil", json={"ballot": other["ballot"], "revealed": wrong})
    assert r.status_code == 422, r.text
    check = js_refused(node, "verify_revealed", ballot=other["ballot"], revealed=wrong, **public)
    assert check == "revealed-reencryption"


@pytest.fixture(scope="module")
def witnessed_receipt(election: DemoElection) -> dict[str, Any]:
    """A real receipt under a checkpoint the witnesses cosigned, and what the page fetches to check it."""
    e = election
    with e.client() as c:
        receipt = c.complete_receipt(c.cast_jpki(e.residents[1].card, CHOICES)).to_dict()
    e.cosign()
    latest = _get(e, "/ledger/checkpoint")
    assert latest["witnessed"] is True
    size = receipt["checkpoint"].split("\n")[1]
    proof = []
    if int(size) != latest["size"]:
        proof = _get(e, f"/ledger/proof/consistency?old_size={size}&new_size={latest['size']}")["proof"]
    index = receipt["leaf_index"]
    entry = _get(e, f"/ledger/entries?start={index}&stop={index + 1}")["entries"][0]["entry"]
    return {
        "receipt": receipt,
        "log_key": e.service.ledger.log_key.vkey,
        "witnesses": e.election_info().manifest["witnesses"],
        "witnessed": latest,
        "consistency_proof": proof,
        "entry": entry,
    }


def test_a_real_receipt_verifies_in_js(node: str, witnessed_receipt: dict[str, Any]) -> None:
    answer = js_ok(node, "verify_receipt", **witnessed_receipt)
    assert answer["signers"] == ["demo-w1", "demo-w2", "demo-w3"]
    assert answer["witnessed_size"] >= answer["size"] >= 1


def _flip(hex_text: str) -> str:
    return ("1" if hex_text[0] == "0" else "0") + hex_text[1:]


def test_tampered_receipts_are_refused_in_js(node: str, witnessed_receipt: dict[str, Any]) -> None:
    good = witnessed_receipt
    receipt = good["receipt"]
    cosigned = good["witnessed"]["cosignatures"]
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            "inclusion",
            {"receipt": {**receipt, "inclusion_proof": [_flip(h) for h in receipt["inclusion_proof"]]}},
        ),
        ("inclusion", {"receipt": {**receipt, "entry_hash": _flip(receipt["entry_hash"])}}),
        (
            "checkpoint-signature",
            {"receipt": {**receipt, "checkpoint": receipt["checkpoint"].replace("time ", "time 1")}},
        ),
        ("entry", {"receipt": {**receipt, "tracking_code": "0000-0000-0000-0000"}}),
        ("entry", {"entry": good["entry"].replace('"ballot.cast"', '"ballot.spoiled"')}),
        # the aggregate reversed; one signer dropped from the bundle; a witness the manifest does not pin
        (
            "checkpoint-cosignature",
            {
                "witnessed": {
                    **good["witnessed"],
                    "cosignatures": {**cosigned, "aggregate": cosigned["aggregate"][::-1]},
                }
            },
        ),
        (
            "checkpoint-cosignature",
            {
                "witnessed": {
                    **good["witnessed"],
                    "cosignatures": {**cosigned, "signers": cosigned["signers"][:2]},
                }
            },
        ),
        (
            "checkpoint-cosignature",
            {"witnesses": {**good["witnesses"], "keys": good["witnesses"]["keys"][:2], "quorum": 2}},
        ),
        ("checkpoint-unwitnessed", {"witnessed": {**good["witnessed"], "cosignatures": None}}),
        ("checkpoint-unwitnessed", {"witnessed": None}),
    ]
    for check, change in cases:
        assert js_refused(node, "verify_receipt", **{**good, **change}) == check, (check, change)
    other_key = good["log_key"].split("+")
    with pytest.raises(AssertionError):  # another log key is refused (a bad vkey or a bad signature)
        js_ok(node, "verify_receipt", **{**good, "log_key": f"{other_key[0]}x+{other_key[1]}+{other_key[2]}"})


def test_a_receipt_under_fewer_cosignatures_than_the_quorum_is_unwitnessed_in_js(
    node: str, election: DemoElection, witnessed_receipt: dict[str, Any]
) -> None:
    """Only one witness (of the quorum of two) cosigned the newest checkpoint: JS refuses it as unwitnessed,
    and accepts the same receipt once a second witness has cosigned."""
    e = election
    with e.client() as c:
        receipt = c.complete_receipt(c.cast_jpki(e.residents[2].card, CHOICES)).to_dict()
    e.cosign(["w2"])
    latest = _get(e, "/ledger/checkpoint")
    assert latest["cosignatures"]["signers"] == ["demo-w2"] and latest["witnessed"] is False
    size = int(receipt["checkpoint"].split("\n")[1])
    proof = []
    if size != latest["size"]:
        proof = _get(e, f"/ledger/proof/consistency?old_size={size}&new_size={latest['size']}")["proof"]
    request = {**witnessed_receipt, "receipt": receipt, "witnessed": latest, "consistency_proof": proof}
    del request["entry"]
    assert js_refused(node, "verify_receipt", **request) == "checkpoint-unwitnessed"
    e.cosign(["w3"])
    again = _get(e, f"/ledger/checkpoint/{latest['size']}")
    assert again["cosignatures"]["signers"] == ["demo-w2", "demo-w3"]
    assert js_ok(node, "verify_receipt", **{**request, "witnessed": again})["signers"] == [
        "demo-w2",
        "demo-w3",
    ]


def test_the_libraries_node_unit_tests_pass(node: str) -> None:
    """``npm test`` in web/: the node:test unit tests of the library's API, the worker and the build."""
    tests = sorted(str(p) for p in (WEB / "test").glob("*.test.mjs"))
    assert len(tests) >= 2
    done = subprocess.run([node, "--test", *tests], cwd=WEB, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
