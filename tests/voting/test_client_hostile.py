"""The voter client against a hostile server's malformed answers: every one is a clear client error
(``ServerError``, ``ElectionDataError`` or ``ReceiptError`` ``receipt-shape``), never a stray ``KeyError``
or ``ValueError`` (the quality bar: every input from outside is validated)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from voting.clients.voter import ElectionDataError, ReceiptError, ServerError, VoterClient
from voting.receipt import Receipt

GOOD: dict[str, Any] = {
    "kind": "cast",
    "election_id": "e",
    "ballot_hash": "ab" * 32,
    "tracking_code": "ABCD-EFGH",
    "leaf_index": 3,
    "entry_hash": "cd" * 32,
    "checkpoint": None,
    "inclusion_proof": None,
    "channel": "internet",
    "seq": 1,
}


def _client(answer: Callable[[str], httpx.Response]) -> VoterClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer(request.url.path.removeprefix("/api/v1"))

    return VoterClient("http://hostile.test", transport=httpx.MockTransport(handler))


def test_a_good_receipt_reads_back_exactly() -> None:
    r = Receipt.from_dict(GOOD)
    assert r.to_dict() == GOOD and r.pending
    done = {**GOOD, "checkpoint": "note", "inclusion_proof": ["00" * 32]}
    assert Receipt.from_dict(done).to_dict() == done


@pytest.mark.parametrize(
    "answer",
    [
        [],
        "receipt",
        {},
        {k: v for k, v in GOOD.items() if k != "entry_hash"},
        {**GOOD, "kind": "counted"},
        {**GOOD, "leaf_index": "3"},
        {**GOOD, "leaf_index": -1},
        {**GOOD, "leaf_index": True},
        {**GOOD, "ballot_hash": 7},
        {**GOOD, "checkpoint": "note"},  # a checkpoint without its inclusion proof
        {**GOOD, "checkpoint": 5, "inclusion_proof": []},
        {**GOOD, "checkpoint": "note", "inclusion_proof": "00"},
        {**GOOD, "checkpoint": "note", "inclusion_proof": [0]},
        {**GOOD, "seq": "1"},
        {**GOOD, "channel": ["kiosk"]},
    ],
)
def test_a_malformed_receipt_is_a_receipt_shape_error(answer: Any) -> None:
    with _client(lambda path: httpx.Response(200, json=answer)) as c, pytest.raises(ReceiptError) as err:
        c.lookup("ABCD-EFGH")
    assert err.value.check == "receipt-shape"


def test_an_answer_that_is_not_json_is_a_server_error() -> None:
    with _client(lambda path: httpx.Response(200, text="<html>")) as c, pytest.raises(ServerError) as err:
        c.lookup("ABCD-EFGH")
    assert err.value.code == "response.malformed"


@pytest.mark.parametrize(
    "election, manifest",
    [
        ([], {"manifest": {}, "base_hash": "00"}),
        ({"base_hash": "00"}, {"manifest": "m", "base_hash": "00"}),
        ({"base_hash": "00"}, {"base_hash": "00"}),
        ({"base_hash": "00"}, {"manifest": {"n": 2**60}, "base_hash": "00"}),  # not canonicalizable
        ({"base_hash": "00"}, {"manifest": {"a": 1}, "base_hash": "00"}),  # another base hash
    ],
)
def test_malformed_election_data_is_an_election_data_error(election: Any, manifest: Any) -> None:
    def answer(path: str) -> httpx.Response:
        return httpx.Response(200, json=election if path == "/election" else manifest)

    with _client(answer) as c, pytest.raises(ElectionDataError):
        c.election()


def test_a_manifest_without_contests_is_an_election_data_error() -> None:
    import rfc8785

    from crypto import tagged_sha256

    manifest = {"election_id": "e"}
    bh = tagged_sha256("election-base-hash", rfc8785.dumps(manifest)).hex()
    answers = {
        "/election": {"base_hash": bh, "joint_key": "11" * 32, "phase": "voting"},
        "/election/manifest": {"manifest": manifest, "base_hash": bh},
        "/election/joint-key": {"joint_key": "11" * 32},
    }
    with _client(lambda path: httpx.Response(200, json=answers[path])) as c, pytest.raises(ElectionDataError):
        c.election()
