"""Schnorr and Chaum–Pedersen proofs: completeness, soundness against tampering, strict encoding."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from _tools import load_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._errors import InvalidEncoding, ProofError
from crypto._group import IDENTITY, G, L, Point, Scalar
from crypto._hash import challenge, encode_transcript
from crypto._proofs import (
    ChaumPedersenProof,
    SchnorrProof,
    prove_chaum_pedersen,
    prove_schnorr,
    random_scalar,
    verify_chaum_pedersen,
    verify_schnorr,
)

scalars = st.integers(min_value=1, max_value=L - 1).map(Scalar)
seeds = st.integers(min_value=0, max_value=2**32)
contexts = st.lists(
    st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(0, 2**64 - 1)), max_size=4
)
BASE = bytes(range(32))
CTX = ("test", BASE, 3)


def _rng(seed: int = 0) -> random.Random:
    return random.Random(seed)


# ----------------------------------------------------------------------------------------------- Schnorr


@settings(max_examples=40, deadline=None)
@given(x=scalars, ctx=contexts, seed=seeds)
def test_schnorr_complete(x: Scalar, ctx: list, seed: int) -> None:
    X = x * G
    proof = prove_schnorr(x, X, context=ctx, rng=_rng(seed))
    verify_schnorr(X, proof, context=ctx)
    # the compact form is the classic one: R = v·G + c·X is the commitment that was hashed
    R = proof.response * G + proof.challenge * X
    assert proof.challenge == challenge("schnorr-pok", G, X, R, len(ctx), *ctx)


@settings(max_examples=25, deadline=None)
@given(x=scalars, seed=seeds, delta=st.integers(1, L - 1))
def test_schnorr_sound_against_tampering(x: Scalar, seed: int, delta: int) -> None:
    X = x * G
    proof = prove_schnorr(x, X, context=CTX, rng=_rng(seed))
    bad = [
        (X, SchnorrProof(proof.challenge + delta, proof.response), CTX),
        (X, SchnorrProof(proof.challenge, proof.response + delta), CTX),
        (X + G, proof, CTX),  # another statement
        (X, proof, ("test", BASE, 4)),  # other context
        (X, proof, ("test", bytes(32), 3)),  # other base hash
        (X, proof, ("test", BASE)),  # shorter context
        (X, proof, ("other", BASE, 3)),  # other label
    ]
    for statement, p, ctx in bad:
        with pytest.raises(ProofError) as ei:
            verify_schnorr(statement, p, context=ctx)
        assert ei.value.check == "schnorr-pok"


def test_schnorr_proof_not_reusable_for_other_statement() -> None:
    x, y = Scalar(1234567), Scalar(7654321)
    px = prove_schnorr(x, x * G, context=CTX, rng=_rng())
    with pytest.raises(ProofError):
        verify_schnorr(y * G, px, context=CTX)
    with pytest.raises(ProofError):
        verify_schnorr(-(x * G), px, context=CTX)


def test_schnorr_identity_statement_is_well_defined() -> None:
    # x = 0: the statement is the identity; the proof is still well defined and binds the identity.
    proof = prove_schnorr(Scalar(0), IDENTITY, context=CTX, rng=_rng())
    verify_schnorr(IDENTITY, proof, context=CTX)
    with pytest.raises(ProofError):
        verify_schnorr(G, proof, context=CTX)


def test_schnorr_prover_refuses_wrong_statement() -> None:
    with pytest.raises(ValueError):
        prove_schnorr(Scalar(2), G, context=CTX)


def test_schnorr_nonce_is_fresh_without_rng() -> None:
    x = Scalar(99)
    p1 = prove_schnorr(x, x * G, context=CTX)
    p2 = prove_schnorr(x, x * G, context=CTX)
    assert p1 != p2
    verify_schnorr(x * G, p1, context=CTX)
    verify_schnorr(x * G, p2, context=CTX)


def test_context_must_be_a_sequence_of_items() -> None:
    x = Scalar(5)
    with pytest.raises(TypeError):
        prove_schnorr(x, x * G, context="abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        prove_schnorr(x, x * G, context=[1.5])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        prove_schnorr(x, x * G, context=[-1])


# ----------------------------------------------------------------------------------------- Chaum–Pedersen


@settings(max_examples=30, deadline=None)
@given(s=scalars, a=scalars, ctx=contexts, seed=seeds)
def test_chaum_pedersen_complete(s: Scalar, a: Scalar, ctx: list, seed: int) -> None:
    A = a * G
    X, Y = s * G, s * A
    proof = prove_chaum_pedersen(s, X, A, Y, context=ctx, rng=_rng(seed))
    verify_chaum_pedersen(X, A, Y, proof, context=ctx)
    c, v = proof.challenge, proof.response
    R1, R2 = v * G + c * X, v * A + c * Y
    assert c == challenge("chaum-pedersen", G, A, X, Y, R1, R2, len(ctx), *ctx)


@settings(max_examples=20, deadline=None)
@given(s=scalars, a=scalars, seed=seeds, delta=st.integers(1, L - 1))
def test_chaum_pedersen_sound_against_tampering(s: Scalar, a: Scalar, seed: int, delta: int) -> None:
    A = a * G
    X, Y = s * G, s * A
    proof = prove_chaum_pedersen(s, X, A, Y, context=CTX, rng=_rng(seed))
    bad = [
        (X, A, Y, ChaumPedersenProof(proof.challenge + delta, proof.response), CTX),
        (X, A, Y, ChaumPedersenProof(proof.challenge, proof.response + delta), CTX),
        (X, A, Y + G, proof, CTX),  # wrong decryption share
        (X + G, A, Y, proof, CTX),  # wrong public share
        (X, A + G, Y, proof, CTX),  # other ciphertext
        (Y, A, X, proof, CTX) if X != Y else (X, A, Y + A, proof, CTX),  # swapped statement
        (X, A, Y, proof, ("test", bytes(32), 3)),  # other base hash
        (X, A, Y, proof, ("test", BASE, 4)),  # other trustee index
    ]
    for X_, A_, Y_, p, ctx in bad:
        with pytest.raises(ProofError) as ei:
            verify_chaum_pedersen(X_, A_, Y_, p, context=ctx)
        # A + G is the identity when a = L - 1: then the statement itself is impossible (§T2.2 rule 1)
        want = "chaum-pedersen-identity" if A_.is_identity and not Y_.is_identity else "chaum-pedersen"
        assert ei.value.check == want


def test_chaum_pedersen_unequal_logs_cannot_be_proved_or_forged() -> None:
    s, a = Scalar(11), Scalar(13)
    A = a * G
    with pytest.raises(ValueError):
        prove_chaum_pedersen(s, s * G, A, (s + 1) * A, context=CTX)
    # a proof for (X, Y) does not transfer to (X, Y') with log_A(Y') != log_G(X)
    proof = prove_chaum_pedersen(s, s * G, A, s * A, context=CTX, rng=_rng())
    with pytest.raises(ProofError):
        verify_chaum_pedersen(s * G, A, (s + 1) * A, proof, context=CTX)


def test_chaum_pedersen_identity_base() -> None:
    # A = identity (the aggregate of an empty tally): Y = s·A is the identity, the proof is well defined.
    s = Scalar(424242)
    X = s * G
    proof = prove_chaum_pedersen(s, X, IDENTITY, IDENTITY, context=CTX, rng=_rng(3))
    verify_chaum_pedersen(X, IDENTITY, IDENTITY, proof, context=CTX)
    with pytest.raises(ProofError) as ei:
        verify_chaum_pedersen(X, IDENTITY, G, proof, context=CTX)
    assert ei.value.check == "chaum-pedersen-identity"
    with pytest.raises(ProofError) as ei:
        verify_chaum_pedersen(X + G, IDENTITY, IDENTITY, proof, context=CTX)
    assert ei.value.check == "chaum-pedersen"


def test_chaum_pedersen_identity_share_for_nonidentity_base_is_rejected() -> None:
    # A cheating trustee publishing D = identity for a real ciphertext cannot make a proof stick.
    s = Scalar(77)
    A = Scalar(5) * G
    proof = prove_chaum_pedersen(s, s * G, A, s * A, context=CTX, rng=_rng())
    with pytest.raises(ProofError):
        verify_chaum_pedersen(s * G, A, IDENTITY, proof, context=CTX)


def test_schnorr_and_chaum_pedersen_are_domain_separated() -> None:
    # A Schnorr proof's scalars never verify as a Chaum–Pedersen proof for the same X (different purpose).
    s = Scalar(31337)
    X = s * G
    sp = prove_schnorr(s, X, context=CTX, rng=_rng())
    with pytest.raises(ProofError):
        verify_chaum_pedersen(X, G, X, ChaumPedersenProof(sp.challenge, sp.response), context=CTX)


# ----------------------------------------------------------------------------------------- encodings


@settings(max_examples=25, deadline=None)
@given(c=st.integers(0, L - 1), v=st.integers(0, L - 1))
def test_proof_dict_round_trip(c: int, v: int) -> None:
    for cls in (SchnorrProof, ChaumPedersenProof):
        p = cls(Scalar(c), Scalar(v))
        d = p.to_dict()
        assert d == {"challenge": Scalar(c).hex(), "response": Scalar(v).hex()}
        assert cls.from_dict(d) == p


@pytest.mark.parametrize("cls", [SchnorrProof, ChaumPedersenProof])
def test_proof_strict_decoding(cls: type[SchnorrProof] | type[ChaumPedersenProof]) -> None:
    good = cls(Scalar(0xABCDEF), Scalar(2)).to_dict()
    non_canonical = (L).to_bytes(32, "little").hex()
    bad = [
        None,
        [],
        {"challenge": good["challenge"]},
        {**good, "extra": "00"},
        {**good, "challenge": good["challenge"].upper()},
        {**good, "challenge": good["challenge"][:-2]},
        {**good, "challenge": good["challenge"] + "00"},
        {**good, "response": non_canonical},
        {**good, "response": "zz" * 32},
        {**good, "response": 5},
        {**good, "response": bytes(32)},
    ]
    for d in bad:
        with pytest.raises(InvalidEncoding):
            cls.from_dict(d)


def test_proof_types_refuse_non_scalars() -> None:
    with pytest.raises(TypeError):
        SchnorrProof(1, Scalar(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ChaumPedersenProof(Scalar(1), G)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify_schnorr(Scalar(1), SchnorrProof(Scalar(1), Scalar(2)), context=())  # type: ignore[arg-type]


def test_random_scalar_uses_64_bytes_reduced() -> None:
    class Fixed:
        def randbytes(self, n: int) -> bytes:
            return b"\xff" * n

    assert random_scalar(Fixed()) == Scalar(int.from_bytes(b"\xff" * 64, "little"))

    class Short:
        def randbytes(self, n: int) -> bytes:
            return b"\x01" * (n - 1)

    with pytest.raises(ValueError):
        random_scalar(Short())
    assert isinstance(random_scalar(), Scalar)
    assert Point.from_bytes(G.to_bytes()) == G


# ------------------------------------------------------------------------------ known-answer vectors

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "proofs.json"


def _generator():  # type: ignore[no-untyped-def]
    return load_tool("gen_threshold_vectors")


class FixedNonce:
    """Feeds a published nonce back into the prover (64 bytes whose little-endian value is the nonce)."""

    def __init__(self, k_hex: str) -> None:
        self.k = Scalar.from_hex(k_hex)

    def randbytes(self, n: int) -> bytes:
        assert n == 64
        return self.k.to_bytes() + bytes(32)


def _ctx(items: list) -> tuple:
    return tuple(load_tool("_vectors_common").item_from_json(x) for x in items)


def _sha512_mod_l(data: bytes) -> Scalar:
    return Scalar(int.from_bytes(hashlib.sha512(data).digest(), "little") % L)


def test_proof_vectors_are_reproduced_byte_for_byte() -> None:
    gen = _generator()
    text = VECTORS.read_text(encoding="utf-8")
    assert gen.build()[gen.PROOFS] == text
    data = json.loads(text)
    assert "tools/gen_threshold_vectors.py" in data["source"] and "seed" in data["source"]


def test_schnorr_known_answers() -> None:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["schnorr"]
    assert len(cases) >= 4
    for v in cases:
        x, k = Scalar.from_hex(v["secret"]), Scalar.from_hex(v["nonce"])
        X, R = Point.from_hex(v["statement"]), Point.from_hex(v["commitment"])
        ctx = _ctx(v["context"])
        proof = SchnorrProof.from_dict(v["proof"])
        assert X == x * G and R == k * G
        transcript = bytes.fromhex(v["transcript"])
        assert transcript == encode_transcript("schnorr-pok", (G, X, R, len(ctx), *ctx))
        assert transcript[:4] == (len(b"tvote/1/schnorr-pok")).to_bytes(4, "big")
        assert proof.challenge == _sha512_mod_l(transcript)
        assert proof.response == k - proof.challenge * x
        verify_schnorr(X, proof, context=ctx)
        assert prove_schnorr(x, X, context=ctx, rng=FixedNonce(v["nonce"])) == proof


def test_chaum_pedersen_known_answers() -> None:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["chaum_pedersen"]
    assert any(Point.from_hex(v["base"]).is_identity for v in cases)
    for v in cases:
        s, k = Scalar.from_hex(v["secret"]), Scalar.from_hex(v["nonce"])
        A = Point.from_hex(v["base"])
        X, Y = Point.from_hex(v["statement"]["X"]), Point.from_hex(v["statement"]["Y"])
        R1, R2 = Point.from_hex(v["commitments"]["R1"]), Point.from_hex(v["commitments"]["R2"])
        ctx = _ctx(v["context"])
        proof = ChaumPedersenProof.from_dict(v["proof"])
        assert (X, Y, R1, R2) == (s * G, s * A, k * G, k * A)
        transcript = bytes.fromhex(v["transcript"])
        assert transcript == encode_transcript("chaum-pedersen", (G, A, X, Y, R1, R2, len(ctx), *ctx))
        assert proof.challenge == _sha512_mod_l(transcript)
        assert proof.response == k - proof.challenge * s
        verify_chaum_pedersen(X, A, Y, proof, context=ctx)
        assert prove_chaum_pedersen(s, X, A, Y, context=ctx, rng=FixedNonce(v["nonce"])) == proof


def test_negative_vectors_fail_with_the_named_check() -> None:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["negative"]
    assert {v["kind"] for v in cases} == {"schnorr", "chaum-pedersen"}
    for v in cases:
        ctx = _ctx(v["context"])
        with pytest.raises(ProofError) as ei:
            if v["kind"] == "schnorr":
                verify_schnorr(
                    Point.from_hex(v["statement"]), SchnorrProof.from_dict(v["proof"]), context=ctx
                )
            else:
                verify_chaum_pedersen(
                    Point.from_hex(v["statement"]["X"]),
                    Point.from_hex(v["base"]),
                    Point.from_hex(v["statement"]["Y"]),
                    ChaumPedersenProof.from_dict(v["proof"]),
                    context=ctx,
                )
        assert ei.value.check == v["check"], v["why"]
