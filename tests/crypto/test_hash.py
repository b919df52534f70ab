"""Transcript hashing: exact layout, reduction and domain separation."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto._group import G, L, Scalar
from crypto._hash import challenge, encode_transcript, tagged_sha256
from tests.strategies import transcript_items


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def test_transcript_layout_by_hand() -> None:
    s = Scalar(5)
    got = encode_transcript("demo", [G, s, b"\x00\xff", "é", 258])
    want = (
        _lp(b"tvote/2/demo")
        + _lp(G.to_bytes())
        + _lp(b"\x05" + bytes(31))
        + _lp(b"\x00\xff")
        + _lp("é".encode())
        + _lp(bytes(6) + b"\x01\x02")
    )
    assert got == want


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-/", min_size=1, max_size=20), st.lists(transcript_items))
def test_challenge_is_sha512_mod_l(purpose: str, items: list) -> None:  # type: ignore[type-arg]
    raw = encode_transcript(purpose, items)
    digest = hashlib.sha512(raw).digest()
    assert challenge(purpose, *items).value == int.from_bytes(digest, "little") % L
    assert tagged_sha256(purpose, *items) == hashlib.sha256(raw).digest()


@given(st.lists(st.binary(max_size=8), max_size=4), st.lists(st.binary(max_size=8), max_size=4))
def test_distinct_item_lists_give_distinct_transcripts(xs: list[bytes], ys: list[bytes]) -> None:
    if xs != ys:
        assert encode_transcript("x", xs) != encode_transcript("x", ys)


def test_splits_differ() -> None:
    assert challenge("p", "ab", "c") != challenge("p", "a", "bc")
    assert challenge("p", b"ab") != challenge("p", b"a", b"b")
    assert challenge("p", b"") != challenge("p")


def test_purpose_separates() -> None:
    assert challenge("a", b"x") != challenge("b", b"x")
    assert tagged_sha256("a", b"x") != tagged_sha256("b", b"x")


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_int_range(bad: int) -> None:
    with pytest.raises(ValueError):
        encode_transcript("p", [bad])


@pytest.mark.parametrize("bad", [True, 1.5, None, [1], bytearray(b"x")])
def test_unknown_item_types_rejected(bad: object) -> None:
    with pytest.raises(TypeError):
        encode_transcript("p", [bad])  # type: ignore[list-item]


def test_non_ascii_purpose_rejected() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_transcript("é", [])
