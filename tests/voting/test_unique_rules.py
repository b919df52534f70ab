"""The uniqueness rules of ballots (ledger.record): one definition for intake and the verifier's V15."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crypto import ContestSpec, ElectionContext, Scalar, encrypt_ballot
from crypto.hazmat import G
from ledger.record import UNIQUE_KINDS, UniqueValue, ballot_unique_values, repeats_within

CTX = ElectionContext(
    b"\x05" * 32,
    Scalar(12345) * G,
    (ContestSpec.one_of("mayor", ["a", "b", "c"]), ContestSpec.yes_no("ref")),
)


def test_a_ballot_lists_its_hash_nonce_and_every_pad_in_order() -> None:
    b, _ = encrypt_ballot(CTX, {"mayor": ["b"], "ref": ["yes"]}, rng=random.Random(1))
    d = b.to_dict()
    values = ballot_unique_values(b.ballot_hash().hex(), d)
    assert [v.kind for v in values] == ["ballot_hash", "ballot_nonce", "pad", "pad", "pad", "pad", "pad"]
    assert values[0].value == b.ballot_hash().hex() and values[1].value == b.ballot_nonce.hex()
    pads = [
        (f"{c.contest_id}/{s.selection_id}", s.ciphertext.a.hex()) for c in b.contests for s in c.selections
    ]
    assert [(v.where, v.value) for v in values[2:]] == pads
    assert values[2].describe() == "ciphertext pad of mayor/a" and values[1].describe() == "ballot nonce"
    assert {v.kind for v in values} == set(UNIQUE_KINDS)
    assert repeats_within(values) == []


def test_a_repeated_pad_within_a_ballot_is_named() -> None:
    b, _ = encrypt_ballot(CTX, {"mayor": ["b"], "ref": ["yes"]}, rng=random.Random(2))
    d = b.to_dict()
    d["contests"][1]["selections"][1]["ciphertext"] = d["contests"][0]["selections"][0]["ciphertext"]
    ((first, again),) = repeats_within(ballot_unique_values("00" * 32, d))
    assert (first.where, again.where) == ("mayor/a", "ref/no")


def test_the_values_do_not_depend_on_proofs() -> None:
    """Proofs are not part of any rule: another proof format (protocol v2) leaves the values unchanged."""
    b, _ = encrypt_ballot(CTX, {"mayor": [], "ref": ["no"]}, rng=random.Random(3))
    d = b.to_dict()
    before = ballot_unique_values("11" * 32, d)
    for c in d["contests"]:
        c["proof"] = {"anything": ["else"]}
        for s in c["selections"]:
            s["proof"] = None
    assert ballot_unique_values("11" * 32, d) == before


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["ballot_nonce", "contests", "selections", "ciphertext", "a", "contest_id", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(JSONISH, JSONISH)
def test_malformed_ballots_never_raise(h: Any, ballot: Any) -> None:
    """The verifier runs the rules before decoding: any shape yields the well-formed values, no error."""
    values = ballot_unique_values(h, ballot)
    assert all(isinstance(v, UniqueValue) and isinstance(v.value, str) for v in values)
    repeats_within(values)
