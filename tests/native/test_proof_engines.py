"""The trustees' proofs (Schnorr, Chaum–Pedersen, docs/protocol.md §T2) through both engines.

``proofs.json`` (valid, negative, the batch section) and Hypothesis batches of random statements, some
tampered (a mauled response, swapped commitments, another context, another statement, the identity as the
base ``A`` with ``Y`` not the identity), anywhere in the batch: the native engine names exactly the proofs
the reference names, with the same check. Skipped without the extension, except under
``TVOTE_REQUIRE_ALL=1`` (CI)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._native import NativeEngine, PythonEngine
from crypto.hazmat import (
    IDENTITY,
    ChaumPedersenProof,
    ChaumPedersenStatement,
    G,
    Point,
    ProofStatement,
    Scalar,
    SchnorrProof,
    SchnorrStatement,
    prove_chaum_pedersen,
    prove_schnorr,
)

VEC = Path(__file__).resolve().parents[2] / "tests" / "vectors"
REFERENCE = PythonEngine()


def _item(d: dict[str, str]) -> Any:
    t, v = d["type"], d["value"]
    if t == "u64":
        return int(v)
    if t == "str":
        return v
    if t == "point":
        return Point.from_hex(v)
    if t == "scalar":
        return Scalar.from_hex(v)
    return bytes.fromhex(v)


def _statement(kind: str, case: dict[str, Any]) -> ProofStatement:
    ctx = tuple(_item(i) for i in case["context"])
    p = case["proof"]
    if kind == "schnorr":
        proof = SchnorrProof(Point.from_hex(p["commitment"]), Scalar.from_hex(p["response"]))
        return SchnorrStatement(Point.from_hex(case["statement"]), proof, ctx)
    cp = ChaumPedersenProof(
        (Point.from_hex(p["commitments"][0]), Point.from_hex(p["commitments"][1])),
        Scalar.from_hex(p["response"]),
    )
    s = case["statement"]
    return ChaumPedersenStatement(
        Point.from_hex(s["X"]), Point.from_hex(case["base"]), Point.from_hex(s["Y"]), cp, ctx
    )


def test_proof_vectors_both_engines(native: NativeEngine) -> None:
    data = json.loads((VEC / "proofs.json").read_text(encoding="utf-8"))
    valid = [_statement("schnorr", c) for c in data["schnorr"]]
    valid += [_statement("chaum-pedersen", c) for c in data["chaum_pedersen"]]
    negative = [_statement(c["kind"], c) for c in data["negative"]]
    want = [None] * len(valid) + [c["check"] for c in data["negative"]]
    for engine in (REFERENCE, native):
        assert engine.verify_proofs(valid + negative) == want, engine.name
    for name in ("valid", "one_bad"):
        b = data["batch"][name]
        items = [_statement(c["kind"], c) for c in b["items"]]
        got = native.verify_proofs(items)
        assert [i for i, v in enumerate(got) if v is not None] == b["failing"]
        assert got == REFERENCE.verify_proofs(items)


def _random_statement(r: random.Random) -> ProofStatement:
    s = Scalar(r.randrange(1, 2**252))
    ctx: tuple[Any, ...] = ("feldman-coefficient", r.randbytes(32), r.randrange(2**64), "選挙")
    if r.random() < 0.5:
        X = s * G
        return SchnorrStatement(X, prove_schnorr(s, X, context=ctx), ctx)
    A = Scalar(r.randrange(0, 2**252)) * G  # the identity when the draw is 0 (an empty tally's pad)
    X, Y = s * G, s * A
    return ChaumPedersenStatement(X, A, Y, prove_chaum_pedersen(s, X, A, Y, context=ctx), ctx)


def _tamper(st_: ProofStatement, how: str, r: random.Random) -> ProofStatement:
    bump = Scalar(r.randrange(1, 2**64))
    if isinstance(st_, SchnorrStatement):
        p = st_.proof
        if how == "response":
            return SchnorrStatement(st_.X, SchnorrProof(p.commitment, p.response + bump), st_.context)
        if how == "commitment":
            return SchnorrStatement(st_.X, SchnorrProof(p.commitment + G, p.response), st_.context)
        if how == "context":
            return SchnorrStatement(st_.X, p, (*st_.context, 1))
        return SchnorrStatement(st_.X + G, p, st_.context)  # another statement
    q = st_.proof
    r1, r2 = q.commitments
    if how == "response":
        return ChaumPedersenStatement(
            st_.X, st_.A, st_.Y, ChaumPedersenProof(q.commitments, q.response + bump), st_.context
        )
    if how == "commitment":
        return ChaumPedersenStatement(
            st_.X, st_.A, st_.Y, ChaumPedersenProof((r2, r1), q.response), st_.context
        )
    if how == "context":
        return ChaumPedersenStatement(st_.X, st_.A, st_.Y, q, st_.context[:-1])
    if how == "identity-base":
        return ChaumPedersenStatement(st_.X, IDENTITY, st_.Y if not st_.Y.is_identity else G, q, st_.context)
    return ChaumPedersenStatement(st_.X, st_.A, st_.Y + G, q, st_.context)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(1, 9),
    st.lists(
        st.tuples(
            st.integers(0, 8),
            st.sampled_from(("response", "commitment", "context", "statement", "identity-base")),
        ),
        max_size=3,
    ),
)
def test_same_verdicts_on_random_and_tampered_proofs(
    native: NativeEngine, seed: int, n: int, tampers: list[tuple[int, str]]
) -> None:
    r = random.Random(seed)
    statements = [_random_statement(r) for _ in range(n)]
    for i, how in tampers:
        statements[i % n] = _tamper(statements[i % n], how, r)
    want = REFERENCE.verify_proofs(statements)
    assert native.verify_proofs(statements) == want
    if not tampers:
        assert want == [None] * n


def test_context_items_are_typed(native: NativeEngine) -> None:
    s = Scalar(7)
    X = s * G
    for bad in (True, -1, 2**64, 1.0):
        ctx: tuple[Any, ...] = (bad,)
        with pytest.raises(TypeError):
            native.verify_proofs([SchnorrStatement(X, prove_schnorr(s, X, context=()), ctx)])
