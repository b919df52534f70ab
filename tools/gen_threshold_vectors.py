"""Generate the known-answer vectors tests/vectors/proofs.json and tests/vectors/threshold.json.

Usage::

    .venv/bin/python tools/gen_threshold_vectors.py           # (re)write both files
    .venv/bin/python tools/gen_threshold_vectors.py --check   # exit 1 if the files differ from a fresh run

Everything is deterministic. Randomness comes from named SHAKE-256 streams: the stream ``label`` is the
output of ``SHAKE-256(SEED || "/" || label)``, read front to back (``randbytes(n)`` returns the next ``n``
bytes; docs/protocol.md Appendix A). A reimplementation does not need these streams: every secret and nonce
they produced is written into the vectors, and ``tests/crypto/test_proofs.py`` /
``tests/crypto/test_threshold.py`` re-derive both files byte for byte and check every value with the public
API.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from nacl.public import Box, PublicKey

from crypto import (
    EncryptedShare,
    JointKey,
    PartialDecryption,
    TrusteeKeyGen,
    combine,
    qualify,
    resolve_complaint,
)
from crypto.hazmat import (
    CHAUM_PEDERSEN_PURPOSE,
    IDENTITY,
    SCHNORR_PURPOSE,
    ChaumPedersenProof,
    Ciphertext,
    Equation,
    G,
    Point,
    Scalar,
    SchnorrProof,
    TranscriptItem,
    challenge,
    chaum_pedersen_equations,
    combined_point,
    encode_transcript,
    encrypt,
    failing_items,
    lagrange_coefficient,
    prove_chaum_pedersen,
    prove_schnorr,
    random_scalar,
    schnorr_equations,
    small_multiple,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _vectors_common import Recorder, item_to_json
from _vectors_common import ShakeStream as _Stream

SEED = b"tvote/threshold-vectors/2"
ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "tests" / "vectors" / "proofs.json"
THRESHOLD = ROOT / "tests" / "vectors" / "threshold.json"
SOURCE = f"tools/gen_threshold_vectors.py, seed {SEED.decode()!r}, SHAKE-256 streams per label"


def ShakeStream(label: str) -> _Stream:
    """This file's stream ``label`` (seed :data:`SEED`)."""
    return _Stream(SEED, label)


def encode_context(ctx: tuple[TranscriptItem, ...]) -> list[dict[str, str]]:
    """Typed JSON form of a transcript context (docs/protocol.md Appendix A)."""
    return [item_to_json(x) for x in ctx]


BASE_HASH = hashlib.sha256(b"tvote known-answer vectors: threshold election").digest()
#: Enc(0; 0): both components the identity.
ZERO = Ciphertext(IDENTITY, IDENTITY)


def share_plaintext(sender: int, recipient: int, share: Scalar) -> bytes:
    """The 72-byte plaintext of an encrypted share, written out from docs/protocol.md §T3.2 (to encrypt a
    wrong share, which the public API never does): base_hash || u32be(i) || u32be(j) || σ_ij."""
    return BASE_HASH + sender.to_bytes(4, "big") + recipient.to_bytes(4, "big") + share.to_bytes()


def _schnorr_case(label: str, x: Scalar, ctx: tuple[TranscriptItem, ...]) -> dict[str, Any]:
    rec = Recorder(ShakeStream(label))
    X = x * G
    proof = prove_schnorr(x, X, context=ctx, rng=rec)
    (k,) = rec.scalars
    R = k * G
    items = (G, X, R, len(ctx), *ctx)
    return {
        "label": label,
        "secret": x.hex(),
        "nonce": k.hex(),
        "statement": X.hex(),
        "context": encode_context(ctx),
        "transcript": encode_transcript(SCHNORR_PURPOSE, items).hex(),
        "challenge": challenge(SCHNORR_PURPOSE, *items).hex(),
        "proof": proof.to_dict(),
    }


def _cp_case(label: str, s: Scalar, A: Point, ctx: tuple[TranscriptItem, ...]) -> dict[str, Any]:
    rec = Recorder(ShakeStream(label))
    X, Y = s * G, s * A
    proof = prove_chaum_pedersen(s, X, A, Y, context=ctx, rng=rec)
    (k,) = rec.scalars
    R1, R2 = k * G, k * A
    items = (G, A, X, Y, R1, R2, len(ctx), *ctx)
    return {
        "label": label,
        "secret": s.hex(),
        "nonce": k.hex(),
        "base": A.hex(),
        "statement": {"X": X.hex(), "Y": Y.hex()},
        "context": encode_context(ctx),
        "transcript": encode_transcript(CHAUM_PEDERSEN_PURPOSE, items).hex(),
        "challenge": challenge(CHAUM_PEDERSEN_PURPOSE, *items).hex(),
        "proof": proof.to_dict(),
    }


def build_proofs() -> dict[str, Any]:
    ctx: tuple[TranscriptItem, ...] = ("kat", BASE_HASH, 1)
    schnorr = [
        _schnorr_case("schnorr/1", random_scalar(ShakeStream("schnorr/1/secret")), ctx),
        _schnorr_case("schnorr/2-empty-context", random_scalar(ShakeStream("schnorr/2/secret")), ()),
        _schnorr_case("schnorr/3-secret-one", Scalar(1), ("kat", "unicode: 選挙", 2**64 - 1)),
        _schnorr_case("schnorr/4-identity-statement", Scalar(0), ctx),
    ]
    a = random_scalar(ShakeStream("cp/base"))
    cp = [
        _cp_case("chaum-pedersen/1", random_scalar(ShakeStream("cp/1/secret")), a * G, ctx),
        _cp_case("chaum-pedersen/2-identity-base", random_scalar(ShakeStream("cp/2/secret")), IDENTITY, ctx),
        _cp_case("chaum-pedersen/3-base-is-G", Scalar(7), G, ()),
    ]
    # negative cases: each must fail with the named check
    s0 = schnorr[0]
    c0 = cp[0]
    c1 = cp[1]

    def bump(h: str) -> str:
        return (Scalar.from_hex(h) + 1).hex()

    def plus_g(h: str) -> str:
        return (Point.from_hex(h) + G).hex()

    cp_swapped = {**c0["proof"], "commitments": list(reversed(c0["proof"]["commitments"]))}
    r1, r2 = c0["proof"]["commitments"]
    cp_r2 = {**c0["proof"], "commitments": [r1, plus_g(r2)]}
    negative = [
        {"kind": "schnorr", "why": "commitment changed", "statement": s0["statement"],
         "context": s0["context"], "proof": {**s0["proof"], "commitment": plus_g(s0["proof"]["commitment"])},
         "check": "schnorr-pok"},
        {"kind": "schnorr", "why": "response changed", "statement": s0["statement"],
         "context": s0["context"], "proof": {**s0["proof"], "response": bump(s0["proof"]["response"])},
         "check": "schnorr-pok"},
        {"kind": "schnorr", "why": "proof reused for another statement", "statement": schnorr[1]["statement"],
         "context": s0["context"], "proof": s0["proof"], "check": "schnorr-pok"},
        {"kind": "schnorr", "why": "other base hash in the context", "statement": s0["statement"],
         "context": encode_context(("kat", bytes(32), 1)), "proof": s0["proof"], "check": "schnorr-pok"},
        {"kind": "chaum-pedersen", "why": "wrong Y", "base": c0["base"],
         "statement": {"X": c0["statement"]["X"], "Y": (Point.from_hex(c0["statement"]["Y"]) + G).hex()},
         "context": c0["context"], "proof": c0["proof"], "check": "chaum-pedersen"},
        {"kind": "chaum-pedersen", "why": "X and Y swapped", "base": c0["base"],
         "statement": {"X": c0["statement"]["Y"], "Y": c0["statement"]["X"]},
         "context": c0["context"], "proof": c0["proof"], "check": "chaum-pedersen"},
        {"kind": "chaum-pedersen", "why": "commitments swapped", "base": c0["base"],
         "statement": c0["statement"], "context": c0["context"], "proof": cp_swapped,
         "check": "chaum-pedersen"},
        {"kind": "chaum-pedersen", "why": "second commitment changed", "base": c0["base"],
         "statement": c0["statement"], "context": c0["context"], "proof": cp_r2, "check": "chaum-pedersen"},
        {"kind": "chaum-pedersen", "why": "identity base with a non-identity Y", "base": c1["base"],
         "statement": {"X": c1["statement"]["X"], "Y": G.hex()},
         "context": c1["context"], "proof": c1["proof"], "check": "chaum-pedersen-identity"},
    ]  # fmt: skip
    # proofs that must not even decode (InvalidEncoding, before any check)
    invalid_encoding = [
        {"kind": "schnorr", "why": "v1 compact form (challenge, response)",
         "proof": {"challenge": s0["challenge"], "response": s0["proof"]["response"]}},
        {"kind": "schnorr", "why": "extra key", "proof": {**s0["proof"], "challenge": s0["challenge"]}},
        {"kind": "schnorr", "why": "commitment not a ristretto255 encoding",
         "proof": {**s0["proof"], "commitment": "01" + "00" * 31}},
        {"kind": "chaum-pedersen", "why": "Schnorr proof presented as Chaum-Pedersen", "proof": s0["proof"]},
        {"kind": "chaum-pedersen", "why": "one commitment",
         "proof": {**c0["proof"], "commitments": c0["proof"]["commitments"][:1]}},
        {"kind": "chaum-pedersen", "why": "response not canonical (= L)",
         "proof": {**c0["proof"], "response": L_HEX}},
    ]  # fmt: skip
    # sanity: the cases really are what they say for the proof types (checked again by the tests)
    SchnorrProof.from_dict(s0["proof"])
    ChaumPedersenProof.from_dict(c0["proof"])
    return {
        "source": SOURCE,
        "description": (
            "Schnorr proofs of knowledge and Chaum-Pedersen proofs (docs/protocol.md Part II, T2), in "
            "commitment form. Context items are typed objects (Appendix A): {'type': "
            "'str'|'bytes'|'point'|'scalar'|'u64', 'value': ...}, a u64 as a decimal string. 'transcript' "
            "is the exact input to SHA-512; challenge = SHA-512(transcript) mod L; the proof holds the "
            "commitment(s) (nonce·G, and nonce·A) and response = nonce + challenge * secret mod L. Scalars "
            "are 32-byte little-endian hex, points ristretto255 (RFC 9496) hex. 'negative' proofs decode "
            "but fail the named check; 'invalid_encoding' proofs must be refused by the decoder. 'batch' "
            "is the batch check of §12 over these proofs."
        ),
        "schnorr": schnorr,
        "chaum_pedersen": cp,
        "negative": negative,
        "invalid_encoding": invalid_encoding,
        "batch": _proof_batch(schnorr, cp, negative),
    }


L_HEX = (2**252 + 27742317777372353535851937790883648493).to_bytes(32, "little").hex()


def _equations_of(case: dict[str, Any]) -> tuple[Equation, ...]:
    from _vectors_common import item_from_json

    ctx = [item_from_json(x) for x in case["context"]]
    if "base" in case:
        return chaum_pedersen_equations(
            Point.from_hex(case["statement"]["X"]),
            Point.from_hex(case["base"]),
            Point.from_hex(case["statement"]["Y"]),
            ChaumPedersenProof.from_dict(case["proof"]),
            context=ctx,
        )
    return schnorr_equations(
        Point.from_hex(case["statement"]), SchnorrProof.from_dict(case["proof"]), context=ctx
    )


def _proof_batch(
    schnorr: list[dict[str, Any]], cp: list[dict[str, Any]], negative: list[dict[str, Any]]
) -> dict[str, Any]:
    """§12 over proofs: all valid proofs, then the same with a bad one (negative[1]) in the middle."""
    valid = [*schnorr, *cp]
    bad = [*schnorr[:2], negative[1], *schnorr[2:], *cp]
    out: dict[str, Any] = {}
    for name, items in (("valid", valid), ("one_bad", bad)):
        label = f"batch/proofs/{name}"
        eqs = [eq for c in items for eq in _equations_of(c)]
        weights_stream = ShakeStream(label)
        weights = [weights_stream.randbytes(16) for _ in eqs]
        point = combined_point(eqs, ShakeStream(label))
        out[name] = {
            "items": [
                {
                    "kind": "chaum-pedersen" if "base" in c else "schnorr",
                    **{k: c[k] for k in ("base", "statement", "context", "proof") if k in c},
                }
                for c in items
            ],
            "weights_stream": label,
            "equations": len(eqs),
            "weights": [int.from_bytes(w, "little").__str__() for w in weights],
            "combined": point.hex(),
            "failing": failing_items(items, _equations_of, rng=ShakeStream(label + "/bisect")),
        }
    assert out["valid"]["failing"] == [] and out["one_bad"]["failing"] == [2]
    return out


def build_threshold() -> dict[str, Any]:
    t, n = 3, 5
    streams = {i: Recorder(ShakeStream(f"trustee/{i}")) for i in range(1, n + 1)}
    gens = {
        i: TrusteeKeyGen.generate(i, threshold=t, trustees=n, base_hash=BASE_HASH, rng=streams[i])
        for i in range(1, n + 1)
    }
    assert all(len(streams[i].scalars) == 2 * t for i in gens)  # t coefficients, t proof nonces
    pub = {i: g.commitments for i, g in gens.items()}
    encrypted = [
        gens[i].encrypt_share(pub[j], rng=streams[i])
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if i != j
    ]
    enc = {(e.sender, e.recipient): e for e in encrypted}
    q = qualify(pub.values(), base_hash=BASE_HASH, threshold=t, trustees=n)
    joint = JointKey.from_commitments(pub.values(), q, base_hash=BASE_HASH)
    keys = {
        j: g.finalize(
            {i: g.decrypt_share(enc[(i, j)], pub[i]) for i in q.qualified if i != j}, list(pub.values())
        )
        for j, g in gens.items()
    }

    m = 7
    r = random_scalar(ShakeStream("ciphertext/r"))
    ct = encrypt(joint.public_key, m, r)

    def partials_for(c: Ciphertext, tag: str) -> tuple[dict[int, PartialDecryption], dict[str, str]]:
        parts, nonces = {}, {}
        for j in range(1, n + 1):
            rec = Recorder(ShakeStream(f"{tag}/{j}"))
            parts[j] = keys[j].partial_decrypt(c, rng=rec)
            (k,) = rec.scalars
            nonces[str(j)] = k.hex()
        return parts, nonces

    parts, part_nonces = partials_for(ct, "partial")
    combos = []
    for subset in [(1, 3, 5), (2, 3, 4), (1, 2, 3)]:
        res = combine(ct, [parts[j] for j in subset], joint)
        assert res.point == small_multiple(m)
        combos.append(
            {
                "trustees": list(subset),
                "lagrange": {str(j): lagrange_coefficient(j, subset).hex() for j in subset},
                "result": res.point.hex(),
            }
        )
    zero_parts, zero_nonces = partials_for(ZERO, "zero")
    zero_res = combine(ZERO, [zero_parts[j] for j in (2, 4, 5)], joint)
    assert zero_res.point == IDENTITY

    # complaints: dealer 2 encrypts a wrong share for trustee 4 (and does not answer); trustee 5 complains
    # falsely about dealer 1's honest share (revealing its true Box key)
    bad_nonce = ShakeStream("complaint/bad-nonce").randbytes(24)
    wrong = gens[2].share_for(4) + 1
    bad_ct = Box(gens[2].x25519_private_key, PublicKey(pub[4].x25519_public_key)).encrypt(
        share_plaintext(2, 4, wrong), bad_nonce
    )
    bad = EncryptedShare(2, 4, bytes(bad_ct))
    complaint_bad = gens[4].complain(pub[2])
    res_bad = resolve_complaint(
        complaint_bad, dealer=pub[2], encrypted_share=bad, answer=None, base_hash=BASE_HASH
    )
    complaint_false = gens[5].complain(pub[1])
    res_false = resolve_complaint(
        complaint_false, dealer=pub[1], encrypted_share=enc[(1, 5)], answer=None, base_hash=BASE_HASH
    )
    complaints = [
        {
            "why": "dealer 2 sent trustee 4 a share that fails its commitments and did not answer",
            "encrypted_share": bad.to_dict(),
            "complaint": complaint_bad.to_dict(),
            "answer": None,
            "outcome": res_bad.outcome.value,
            "at_fault": res_bad.at_fault,
        },
        {
            "why": "trustee 5 complains about dealer 1's valid share; its own key opens the ciphertext",
            "encrypted_share": enc[(1, 5)].to_dict(),
            "complaint": complaint_false.to_dict(),
            "answer": None,
            "outcome": res_false.outcome.value,
            "at_fault": res_false.at_fault,
        },
    ]

    return {
        "source": SOURCE,
        "description": (
            "Deterministic 3-of-5 key ceremony and threshold decryption (docs/protocol.md Part II, T3-T4). "
            "trustee_secrets are TrusteeKeyGen dicts (polynomial coefficients a_0..a_t-1, X25519 "
            "private key, public commitments); shares[i][j] = P_i(j); encrypted_shares are the Box "
            "ciphertexts (nonce || tag || ciphertext); partials are PartialDecryption dicts whose "
            "Chaum-Pedersen nonces are listed in partial_nonces; coefficient_proof_nonces are the "
            "Schnorr nonces of the commitment proofs, k = 0..t-1. The complaints are two hypothetical "
            "scenarios beside the honest ceremony (the joint key is the honest one, all five qualified): "
            "each gives the encrypted share complained about (for dealer 2 a separate, wrong one, not "
            "encrypted_shares 2->4), the complaint, and the outcome; the dealer's commitments are "
            "trustee_secrets[dealer-1].commitments."
        ),
        "base_hash": BASE_HASH.hex(),
        "threshold": t,
        "trustees": n,
        "trustee_secrets": [gens[i].to_dict() for i in range(1, n + 1)],
        "coefficient_proof_nonces": {str(i): [k.hex() for k in streams[i].scalars[t:]] for i in gens},
        "shares": {str(i): {str(j): gens[i].share_for(j).hex() for j in range(1, n + 1)} for i in gens},
        "encrypted_shares": [e.to_dict() for e in encrypted],
        "joint_key": joint.to_dict(),
        "trustee_keys": [keys[j].to_dict() for j in range(1, n + 1)],
        "ciphertext": {"m": m, "r": r.hex(), "ct": ct.to_dict()},
        "partials": [parts[j].to_dict() for j in range(1, n + 1)],
        "partial_nonces": part_nonces,
        "combinations": combos,
        "zero_tally": {
            "ct": ZERO.to_dict(),
            "partials": [zero_parts[j].to_dict() for j in (2, 4, 5)],
            "partial_nonces": {str(j): zero_nonces[str(j)] for j in (2, 4, 5)},
            "result": zero_res.point.hex(),
        },
        "complaints": complaints,
    }


def render(obj: dict[str, Any]) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build() -> dict[Path, str]:
    return {PROOFS: render(build_proofs()), THRESHOLD: render(build_threshold())}


def main(argv: list[str]) -> int:
    out = build()
    if "--check" in argv:
        stale = [p for p, text in out.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for p in stale:
            print(f"stale: {p.relative_to(ROOT)}")
        return 1 if stale else 0
    for p, text in out.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
