"""Exponential ElGamal: round trip, homomorphism, identity handling, reference cross-check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import _reference as ref
from crypto._dlog import discrete_log
from crypto._elgamal import ZERO, Ciphertext, encrypt, sum_ciphertexts
from crypto._errors import InvalidEncoding
from crypto._group import IDENTITY, G, Point, Scalar, small_multiple
from tests.strategies import nonzero_scalars, scalars

plaintexts = st.integers(min_value=0, max_value=1000)


@given(nonzero_scalars, plaintexts, scalars)
@settings(max_examples=30)
def test_round_trip(secret: Scalar, m: int, r: Scalar) -> None:
    k = secret * G
    ct = encrypt(k, m, r)
    assert ct.decrypt_point(secret) == small_multiple(m)
    assert discrete_log(ct.decrypt_point(secret), 1000) == m


@given(nonzero_scalars, plaintexts, plaintexts, scalars, scalars)
@settings(max_examples=30)
def test_homomorphism(secret: Scalar, m1: int, m2: int, r1: Scalar, r2: Scalar) -> None:
    k = secret * G
    total = encrypt(k, m1, r1) + encrypt(k, m2, r2)
    assert total == encrypt(k, m1 + m2, r1 + r2)
    assert discrete_log(total.decrypt_point(secret), 2000) == m1 + m2


@given(nonzero_scalars, plaintexts, plaintexts, scalars, scalars)
@settings(max_examples=30)
def test_difference_undoes_the_sum(secret: Scalar, m1: int, m2: int, r1: Scalar, r2: Scalar) -> None:
    """What the tally relies on: (sum of every cast ballot) - (the ones not counted) = the counted ones."""
    k = secret * G
    a, b = encrypt(k, m1, r1), encrypt(k, m2, r2)
    assert (a + b) - b == a
    assert a - a == ZERO
    assert discrete_log(((a + b) - a).decrypt_point(secret), 1000) == m2


@given(nonzero_scalars, st.lists(st.tuples(st.integers(0, 1), scalars), max_size=8))
@settings(max_examples=25)
def test_sum_of_many(secret: Scalar, votes: list[tuple[int, Scalar]]) -> None:
    k = secret * G
    total = sum_ciphertexts(encrypt(k, m, r) for m, r in votes)
    assert discrete_log(total.decrypt_point(secret), len(votes)) == sum(m for m, _ in votes)


@given(nonzero_scalars)
@settings(max_examples=10)
def test_zero_tally_decrypts_to_identity(secret: Scalar) -> None:
    assert sum_ciphertexts([]) == ZERO
    assert ZERO.decrypt_point(secret) == IDENTITY
    assert discrete_log(ZERO.decrypt_point(secret), 10) == 0
    k = secret * G
    zero_votes = sum_ciphertexts([encrypt(k, 0, Scalar(5)), encrypt(k, 0, Scalar(7))])
    assert zero_votes.decrypt_point(secret) == IDENTITY
    assert discrete_log(zero_votes.decrypt_point(secret), 2) == 0


def test_zero_randomness_is_identity_pad() -> None:
    ct = encrypt(Scalar(3) * G, 0, Scalar(0))
    assert ct == ZERO


@given(nonzero_scalars, st.integers(0, 3), scalars)
@settings(max_examples=8, deadline=None)
def test_matches_reference(secret: Scalar, m: int, r: Scalar) -> None:
    k = secret * G
    ct = encrypt(k, m, r)
    ra, rb = ref.elgamal_encrypt(ref.decode(k.to_bytes()), m, r.value)
    assert (ct.a.to_bytes(), ct.b.to_bytes()) == (ref.encode(ra), ref.encode(rb))


def test_refuses_identity_key() -> None:
    with pytest.raises(ValueError):
        encrypt(IDENTITY, 1, Scalar(3))


@given(nonzero_scalars, plaintexts, scalars)
@settings(max_examples=15)
def test_dict_round_trip(secret: Scalar, m: int, r: Scalar) -> None:
    ct = encrypt(secret * G, m, r)
    d = ct.to_dict()
    assert set(d) == {"a", "b"}
    assert Ciphertext.from_dict(d) == ct


@pytest.mark.parametrize(
    "bad",
    [
        {"a": G.hex()},
        {"a": G.hex(), "b": G.hex(), "c": G.hex()},
        {"a": G.hex(), "b": (Scalar(9) * G).hex().upper()},
        {"a": G.hex(), "b": "01" + "00" * 31},  # the edwards25519 identity: not a ristretto255 encoding
        {"a": G.hex(), "b": G.hex()[:-2]},
        [G.hex(), G.hex()],
    ],
)
def test_dict_strict(bad: object) -> None:
    with pytest.raises(InvalidEncoding):
        Ciphertext.from_dict(bad)


def test_ciphertext_holds_points() -> None:
    with pytest.raises(TypeError):
        Ciphertext(G.to_bytes(), G)  # type: ignore[arg-type]
    assert isinstance(ZERO.a, Point)
