"""The group layer (Scalar, Point) against the slow reference in crypto._reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import _reference as ref
from crypto._errors import InvalidEncoding
from crypto._group import IDENTITY, G, L, Point, Scalar, small_multiple
from tests.strategies import nonzero_scalars, points, points_or_identity, scalars

P = 2**255 - 19
IDENTITY_BYTES = bytes(32)


def _ref_point(p: Point) -> ref.RefPoint:
    return ref.decode(p.to_bytes())


# --- scalars -----------------------------------------------------------------------------------------


@given(scalars)
def test_scalar_round_trip(s: Scalar) -> None:
    assert Scalar.from_bytes(s.to_bytes()) == s
    assert Scalar.from_hex(s.hex()) == s
    assert ref.scalar_decode(s.to_bytes()) == s.value


@pytest.mark.parametrize("v", [L, L + 1, 2 * L - 1, 2**253, 2**256 - 1])
def test_non_canonical_scalars_rejected(v: int) -> None:
    data = v.to_bytes(32, "little")
    with pytest.raises(InvalidEncoding, match="non-canonical"):
        Scalar.from_bytes(data)
    with pytest.raises(ref.RefRejected):
        ref.scalar_decode(data)


@pytest.mark.parametrize("n", [0, 1, 31, 33, 64])
def test_scalar_wrong_length_rejected(n: int) -> None:
    with pytest.raises(InvalidEncoding):
        Scalar.from_bytes(bytes(n))
    with pytest.raises(InvalidEncoding):
        Scalar.from_hex("00" * n)


@pytest.mark.parametrize(
    "text",
    ["AB" + "00" * 31, "0" * 63, "0" * 65, "zz" + "00" * 31, " " + "0" * 63, "0x" + "00" * 31],
)
def test_scalar_bad_hex_rejected(text: str) -> None:
    with pytest.raises(InvalidEncoding):
        Scalar.from_hex(text)


@given(scalars, scalars)
def test_scalar_arithmetic_is_mod_l(a: Scalar, b: Scalar) -> None:
    assert (a + b).value == (a.value + b.value) % L
    assert (a - b).value == (a.value - b.value) % L
    assert (a * b).value == (a.value * b.value) % L
    assert (-a).value == (-a.value) % L
    if a:
        assert (a * a.inverse()).value == 1


def test_scalar_immutable_and_typed() -> None:
    s = Scalar(5)
    with pytest.raises(AttributeError):
        s._v = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        Scalar(True)
    with pytest.raises(ZeroDivisionError):
        Scalar(0).inverse()


# --- points: encodings -------------------------------------------------------------------------------


def test_base_point_matches_reference() -> None:
    assert G.to_bytes() == ref.encode(ref.BASE)


@given(points)
@settings(max_examples=25)
def test_point_round_trip_and_reference_accepts(p: Point) -> None:
    assert Point(p.to_bytes()) == p
    assert Point.from_hex(p.hex()) == p
    assert ref.encode(ref.validate(p.to_bytes())) == p.to_bytes()


def test_identity_canonical_encoding_accepted() -> None:
    assert Point(IDENTITY_BYTES) == IDENTITY
    assert IDENTITY.is_identity
    assert ref.validate(IDENTITY_BYTES) == ref.IDENTITY


def test_identity_is_all_zero() -> None:
    """RFC 9496: the identity encodes as 32 zero bytes; the edwards25519 identity encoding is invalid."""
    assert ref.encode(ref.IDENTITY) == IDENTITY_BYTES
    with pytest.raises(InvalidEncoding):
        Point(b"\x01" + bytes(31))


@given(points_or_identity, st.sampled_from(range(4)))
@settings(max_examples=20)
def test_four_torsion_does_not_change_the_element(p: Point, k: int) -> None:
    """ristretto255 is a quotient: an edwards25519 representative plus a 4-torsion point encodes the same,
    so there is no small-order or mixed-order element to reject (what an edwards25519 protocol had to)."""
    t = ref.torsion4()[k]
    moved = ref.add(_ref_point(p), t)
    assert ref.encode(moved) == p.to_bytes()
    assert ref.equal(moved, _ref_point(p))


# Every s in [p, 2^255) and with the top bit set: non-canonical field encodings.
NON_CANONICAL = [((P + k) | (top << 255)).to_bytes(32, "little") for k in range(19) for top in (0, 1)]


@pytest.mark.parametrize("enc", NON_CANONICAL, ids=lambda b: b.hex()[:4] + ".." + b.hex()[-2:])
def test_non_canonical_s_rejected(enc: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        Point(enc)
    with pytest.raises(ref.RefRejected, match="s >= p"):
        ref.validate(enc)


@given(points)
@settings(max_examples=20)
def test_negative_s_rejected(p: Point) -> None:
    """Every valid encoding has an even (non-negative) s; p − s is the other square root and is refused."""
    s = int.from_bytes(p.to_bytes(), "little")
    assert s % 2 == 0
    if s:
        enc = (P - s).to_bytes(32, "little")
        with pytest.raises(InvalidEncoding):
            Point(enc)
        with pytest.raises(ref.RefRejected, match="negative"):
            ref.validate(enc)


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=50)
def test_random_bytes_fast_path_agrees_with_reference(data: bytes) -> None:
    try:
        ref.validate(data)
        ref_ok = True
    except ref.RefRejected:
        ref_ok = False
    try:
        Point(data)
        fast_ok = True
    except InvalidEncoding:
        fast_ok = False
    assert fast_ok == ref_ok


@pytest.mark.parametrize("n", [0, 31, 33])
def test_point_wrong_length_rejected(n: int) -> None:
    with pytest.raises(InvalidEncoding):
        Point(bytes(n))
    with pytest.raises(InvalidEncoding):
        Point.from_hex("01" * n)


def test_point_uppercase_or_odd_hex_rejected() -> None:
    p = Scalar(12345) * G
    assert p.hex() != p.hex().upper()
    with pytest.raises(InvalidEncoding):
        Point.from_hex(p.hex().upper())
    with pytest.raises(InvalidEncoding):
        Point.from_hex(p.hex()[:-1])
    with pytest.raises(InvalidEncoding):
        Point.from_hex(p.hex()[:-2] + "g6")


# --- points: arithmetic against the reference ----------------------------------------------------------


@given(points_or_identity, points_or_identity)
@settings(max_examples=30)
def test_add_sub_neg_match_reference(p: Point, q: Point) -> None:
    rp, rq = _ref_point(p), _ref_point(q)
    assert (p + q).to_bytes() == ref.encode(ref.add(rp, rq))
    assert (p - q).to_bytes() == ref.encode(ref.sub(rp, rq))
    assert (-p).to_bytes() == ref.encode(ref.neg(rp))


@given(scalars, points_or_identity)
@settings(max_examples=15, deadline=None)
def test_scalar_mult_matches_reference(s: Scalar, p: Point) -> None:
    assert (s * p).to_bytes() == ref.encode(ref.mul(s.value, _ref_point(p)))


@given(scalars)
@settings(max_examples=15, deadline=None)
def test_base_mult_matches_reference(s: Scalar) -> None:
    assert (s * G).to_bytes() == ref.encode(ref.mul(s.value, ref.BASE))


@given(points)
@settings(max_examples=20)
def test_identity_rules(p: Point) -> None:
    assert Scalar(0) * p == IDENTITY
    assert p - p == IDENTITY
    assert p + IDENTITY == p
    assert IDENTITY + p == p
    assert Scalar(1) * p == p
    assert Scalar(L - 1) * p == -p
    assert Scalar(7) * IDENTITY == IDENTITY
    assert -IDENTITY == IDENTITY


@given(nonzero_scalars, nonzero_scalars)
@settings(max_examples=20)
def test_scalar_mult_distributes(a: Scalar, b: Scalar) -> None:
    p = a * G
    assert b * p == (a * b) * G
    assert (a + b) * G == a * G + b * G


@pytest.mark.parametrize("k", [0, 1, 2, 3, 17, 1000])
def test_small_multiple(k: int) -> None:
    assert small_multiple(k) == Scalar(k) * G
    assert small_multiple(k).to_bytes() == ref.encode(ref.mul(k, ref.BASE))


def test_small_multiple_refuses_negative() -> None:
    with pytest.raises(ValueError):
        small_multiple(-1)


def test_point_immutable_and_typed() -> None:
    with pytest.raises(AttributeError):
        G._b = bytes(32)  # type: ignore[misc]
    with pytest.raises(TypeError):
        _ = 3 * G  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    [
        "00 00 " + "0" * 58,  # bytes.fromhex skips whitespace: 64 characters but only 31 bytes
        "0" * 62 + "\t0",
        "0x" + "0" * 62,
        "0" * 63 + "A",
        "0" * 63 + "\u0660",  # ARABIC-INDIC DIGIT ZERO
    ],
)
def test_hex_decoding_is_strict(text: str) -> None:
    """One strict decoder serves every hex field: exactly 2n lowercase hex digits, nothing else."""
    from crypto._codec import fixed_hex

    with pytest.raises(InvalidEncoding):
        fixed_hex(text, 32, "field")
    with pytest.raises(InvalidEncoding):
        Scalar.from_hex(text)
    with pytest.raises(InvalidEncoding):
        Point.from_hex(text)


@given(points_or_identity)
@settings(max_examples=20)
def test_top_bit_set_rejected(p: Point) -> None:
    """Regression: libsodium 1.0.18's ristretto255 decoder ignores the top bit of s, so ``s + 2^255`` would
    be a second encoding of every element (a copied ciphertext with fresh bytes). RFC 9496 refuses it."""
    enc = bytearray(p.to_bytes())
    enc[31] |= 0x80
    with pytest.raises(InvalidEncoding):
        Point(bytes(enc))
    with pytest.raises(ref.RefRejected, match="s >= p"):
        ref.validate(bytes(enc))


@pytest.mark.parametrize("v", [0, 1, 2**200 + 12345, L - 1])
@pytest.mark.parametrize("which", ["identity", "base", "other"])
@pytest.mark.parametrize("d", [0, 7, L - 2])
def test_value_kernels_match_the_point_operators(v: int, which: str, d: int) -> None:
    """The prover's encoding-level products (ints in, encodings out) are the operators' results, zero
    scalars and the identity included."""
    from crypto._group import _mul_value_pair, _mul_value_pair_minus

    p = {"identity": IDENTITY, "base": G, "other": Scalar(987654321) * G}[which]
    vg, vp = Scalar(v) * G, Scalar(v) * p
    assert _mul_value_pair(v, p.to_bytes()) == (vg.to_bytes(), vp.to_bytes())
    assert _mul_value_pair_minus(v, p.to_bytes(), d) == (vg.to_bytes(), (vp - Scalar(d) * G).to_bytes())
