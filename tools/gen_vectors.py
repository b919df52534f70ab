"""Generate the crypto known-answer vectors under tests/vectors/ (group, hash, elgamal, disjunctive, ballots).

Deterministic: every random value comes from a named SHAKE-256 stream (``ShakeStream(SEED, label)``,
docs/protocol.md Appendix A), so running the script twice gives byte-identical files and another
implementation can regenerate every draw, the ballots' included. ``tests/crypto/test_vectors.py`` re-derives
every value from its inputs and checks that this script's output equals the committed files.

Usage::

    .venv/bin/python tools/gen_vectors.py           # (re)write tests/vectors/*.json
    .venv/bin/python tools/gen_vectors.py --check   # exit 1 if the committed files differ

These files are the contract for any other implementation (the browser client uses @noble/curves):
it must reproduce every byte, accept every ``valid`` case and reject every ``invalid`` one.
Point decoding there is RFC 9496's (ristretto255), with the lowercase-hex rule of docs/protocol.md §1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from crypto import (
    BatchError,
    ContestSpec,
    ElectionContext,
    EncryptedBallot,
    EncryptedContest,
    EncryptedSelection,
    VerificationError,
    encrypt_ballot,
    reveal,
    verify_ballots,
)
from crypto.hazmat import (
    IDENTITY,
    Ciphertext,
    Equation,
    G,
    L,
    Point,
    Scalar,
    TranscriptItem,
    allowed_range,
    ballot_equations,
    challenge,
    combined_point,
    encode_transcript,
    encrypt,
    prove_membership,
    small_multiple,
    sum_ciphertexts,
    tagged_sha256,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _vectors_common import Recorder, ShakeStream, item_from_json, item_to_json

__all__ = ["SEED", "ShakeStream", "build", "item_from_json", "item_to_json", "main"]

SEED = b"tvote/vectors/2"
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "vectors"
P = 2**255 - 19


def _source(label: str) -> str:
    return f"tools/gen_vectors.py; randomness: SHAKE-256({SEED.decode()!r} || '/' || label), label {label!r}"


class _Draws:
    """A stream with the helpers the generators need (``randbytes`` is what the crypto code reads)."""

    def __init__(self, label: str) -> None:
        self.stream = ShakeStream(SEED, label)

    def randbytes(self, n: int, /) -> bytes:
        return self.stream.randbytes(n)

    def scalar(self) -> Scalar:
        return Scalar.random(self.stream)

    def nonzero(self) -> Scalar:
        return Scalar.random_nonzero(self.stream)


def _rng(label: str) -> _Draws:
    return _Draws(label)


# --- group ------------------------------------------------------------------------------------------


def group_vectors() -> dict[str, Any]:
    rng = _rng("group")
    scalar_values = [0, 1, 2, L - 1, L - 2, 2**252, *(rng.scalar().value for _ in range(4))]
    valid_scalars = [{"hex": Scalar(v).hex(), "value": str(v)} for v in scalar_values]
    invalid_scalars = [
        {"hex": L.to_bytes(32, "little").hex(), "reason": "not-canonical (= L)"},
        {"hex": (L + 1).to_bytes(32, "little").hex(), "reason": "not-canonical (> L)"},
        {"hex": (2**253).to_bytes(32, "little").hex(), "reason": "not-canonical (> L)"},
        {"hex": (2**256 - 1).to_bytes(32, "little").hex(), "reason": "not-canonical (> L)"},
        {"hex": "00" * 31, "reason": "wrong-length"},
        {"hex": "00" * 33, "reason": "wrong-length"},
        {"hex": "0" * 63, "reason": "odd-length hex"},
        {"hex": "0A" + "00" * 31, "reason": "uppercase hex"},
    ]

    mults = []
    for k in [0, 1, 2, 3, 8, L - 1, *(rng.nonzero().value for _ in range(4))]:
        mults.append({"scalar": Scalar(k).hex(), "point": (Scalar(k) * G).hex()})
    small = [{"k": k, "point": small_multiple(k).hex()} for k in range(0, 16)]
    pts = [rng.nonzero() * G for _ in range(4)]
    arith = []
    for p, q in [(pts[0], pts[1]), (pts[2], pts[2]), (pts[3], IDENTITY), (pts[1], -pts[1])]:
        s = rng.scalar()
        arith.append(
            {
                "p": p.hex(),
                "q": q.hex(),
                "p_plus_q": (p + q).hex(),
                "p_minus_q": (p - q).hex(),
                "scalar": s.hex(),
                "scalar_times_p": (s * p).hex(),
            }
        )

    invalid_points = [{"hex": h, "reason": reason} for reason, hs in RFC9496_BAD_ENCODINGS for h in hs]
    invalid_points.append({"hex": (P + 1).to_bytes(32, "little").hex(), "reason": "non-canonical s = p + 1"})
    for q in (G, pts[0]):  # a valid s with the top bit set: s >= 2^255 (libsodium 1.0.18 accepts these)
        top = bytearray(q.to_bytes())
        top[31] |= 0x80
        invalid_points.append({"hex": bytes(top).hex(), "reason": "top bit set (s >= 2^255 > p)"})
    invalid_points.append({"hex": "5866666666666666666666666666666666666666666666666666666666666666",
                           "reason": "the edwards25519 (RFC 8032) encoding of the base point"})  # fmt: skip
    invalid_points.append({"hex": pts[0].hex()[:-2], "reason": "wrong-length"})
    invalid_points.append({"hex": pts[0].hex() + "00", "reason": "wrong-length"})
    upper = next(p for p in pts if p.hex() != p.hex().upper())
    invalid_points.append({"hex": upper.hex().upper(), "reason": "uppercase hex"})
    # that the slow reference (crypto._reference) rejects each of them too is tests/crypto/test_vectors.py's
    # test_group_invalid_points, on the written file

    return {
        "source": _source("group") + "; points.invalid: RFC 9496 Appendix A.2 (bad encodings) and others",
        "description": (
            "ristretto255 (RFC 9496), a group of prime order L. Scalars: 32-byte little-endian, canonical "
            "(< L). Points: the 32-byte RFC 9496 encoding; decoding accepts exactly what RFC 9496 §4.3.1 "
            "decodes, the identity 00..00 included; small_multiples k = 0..15 are RFC 9496 Appendix A.1. "
            "All hex is lowercase."
        ),
        "L": str(L),
        "base_point": G.hex(),
        "identity": IDENTITY.hex(),
        "scalars": {"valid": valid_scalars, "invalid": invalid_scalars},
        "points": {"valid": _valid_points(pts), "invalid": invalid_points},
        "base_mult": mults,
        "small_multiples": small,
        "arithmetic": arith,
    }


#: RFC 9496 Appendix A.2, by class (each must be rejected by decoding).
RFC9496_BAD_ENCODINGS: list[tuple[str, list[str]]] = [
    ("RFC 9496 A.2: non-canonical field encoding", [
        "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ]),
    ("RFC 9496 A.2: negative field element", [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
        "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
        "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
        "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
        "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
        "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
    ]),
    ("RFC 9496 A.2: non-square x^2", [
        "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
        "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
        "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
        "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
        "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
        "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
        "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
        "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
    ]),
    ("RFC 9496 A.2: negative xy value", [
        "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
        "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
        "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
        "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
        "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
        "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
        "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
        "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
    ]),
    ("RFC 9496 A.2: s = -1, which causes y = 0", [
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ]),
]  # fmt: skip


def _valid_points(pts: list[Point]) -> list[dict[str, str]]:
    """Valid encodings: the identity, G, the multiples 2·G..4·G and random points."""
    out = [{"hex": IDENTITY.hex(), "note": "identity"}, {"hex": G.hex(), "note": "generator"}]
    out.extend({"hex": small_multiple(k).hex(), "note": f"{k}·G"} for k in range(2, 5))
    out.extend({"hex": q.hex(), "note": "random element"} for q in pts)
    return out


# --- hash -------------------------------------------------------------------------------------------


def hash_vectors() -> dict[str, Any]:
    rng = _rng("hash")
    pt = rng.nonzero() * G
    sc = rng.scalar()
    cases: list[tuple[str, list[TranscriptItem]]] = [
        ("empty", []),
        ("demo", [b""]),
        ("demo", ["tvote", 0, 2**64 - 1]),
        ("demo", [G, IDENTITY, pt, sc]),
        ("demo", ["投票", b"\x00\x01\x02", 258]),
        ("demo", ["ab", "c"]),
        ("demo", ["a", "bc"]),
        ("ballot-hash", [b'{"a":1}']),
    ]
    out = []
    for purpose, items in cases:
        out.append(
            {
                "purpose": purpose,
                "items": [item_to_json(x) for x in items],
                "transcript": encode_transcript(purpose, items).hex(),
                "challenge": challenge(purpose, *items).hex(),
                "tagged_sha256": tagged_sha256(purpose, *items).hex(),
            }
        )
    return {
        "source": _source("hash"),
        "description": (
            "Transcript encoding: u32be(len(d)) || d, d = 'tvote/2/' + purpose, then per item u32be(len) || "
            "bytes (point/scalar: 32 bytes; bytes: raw; str: UTF-8; u64: 8 bytes big-endian). "
            "challenge = SHA-512(transcript) read little-endian mod L (32-byte LE hex); "
            "tagged_sha256 = SHA-256(transcript)."
        ),
        "cases": out,
    }


# --- ElGamal ------------------------------------------------------------------------------------------


def elgamal_vectors() -> dict[str, Any]:
    rng = _rng("elgamal")
    secret = rng.nonzero()
    key = secret * G
    cases: list[dict[str, Any]] = []
    cts: list[Ciphertext] = []
    for m in [0, 1, 1, 2, 5, 1000]:
        r = rng.nonzero()
        ct = encrypt(key, m, r)
        cts.append(ct)
        cases.append(
            {"m": m, "r": r.hex(), "ciphertext": ct.to_dict(), "decrypted_point": small_multiple(m).hex()}
        )
    total = sum_ciphertexts(cts)
    return {
        "source": _source("elgamal"),
        "description": (
            "Exponential ElGamal Enc_K(m; r) = (a, b) = (r·G, m·G + r·K); K = secret·G. The sum is "
            "component-wise; decrypting it (b - secret·a) gives (sum of m)·G. A zero sum is the "
            "identity (00..00)."
        ),
        "secret_key": secret.hex(),
        "public_key": key.hex(),
        "cases": cases,
        "sum": {"ciphertext": total.to_dict(), "m": sum(c["m"] for c in cases)},
        "zero_sum": {"ciphertext": sum_ciphertexts([]).to_dict(), "m": 0},
    }


# --- disjunctive proofs -----------------------------------------------------------------------------


def disjunctive_vectors() -> dict[str, Any]:
    rng = _rng("disjunctive")
    secret = rng.nonzero()
    key = secret * G
    base_hash = rng.randbytes(32)
    nonce = rng.randbytes(32)
    cases: list[dict[str, Any]] = []
    specs: list[tuple[tuple[int, ...], int, tuple[TranscriptItem, ...]]] = [
        ((0, 1), 0, ("ballot-selection", base_hash, nonce, "mayor", "a")),
        ((0, 1), 1, ("ballot-selection", base_hash, nonce, "mayor", "b")),
        (allowed_range(0, 1), 1, ("ballot-contest", base_hash, nonce, "mayor")),
        (allowed_range(0, 3), 2, ("ballot-contest", base_hash, nonce, "council")),
        (allowed_range(1, 1), 1, ("ballot-contest", base_hash, nonce, "required")),
        (allowed_range(2, 4), 4, ()),
    ]
    for i, (allowed, m, ctx) in enumerate(specs):
        r = rng.nonzero()
        ct = encrypt(key, m, r)
        label = f"disjunctive/{i}/prover"
        draws = Recorder(ShakeStream(SEED, label))
        proof = prove_membership(key, ct, m, r, allowed, ctx, rng=draws)
        # the prover's draws (§8.4): u, then per simulated branch (ascending) c_j, w_j
        u, rest = draws.scalars[0], draws.scalars[1:]
        fakes = [j for j in allowed if j != m]
        fake = {j: (rest[2 * k], rest[2 * k + 1]) for k, j in enumerate(fakes)}
        assert len(rest) == 2 * len(fakes)
        cases.append(
            {
                "allowed": list(allowed),
                "context": [item_to_json(x) for x in ctx],
                "ciphertext": ct.to_dict(),
                "plaintext": m,
                "randomness": r.hex(),
                "prover_stream": label,
                "nonce_u": u.hex(),
                "fake_branches": [
                    {"value": j, "c": c.hex(), "w": w.hex(), "v": (w + c * r).hex()}
                    for j, (c, w) in sorted(fake.items())
                ],
                "challenge": Scalar(sum(c.value for c in proof.challenges)).hex(),
                "proof": proof.to_dict(),
            }
        )
    # Negative cases: a valid proof checked against a changed statement or a changed proof field.
    good = cases[1]
    gp = good["proof"]
    swapped_pairs = [*gp["commitments"][2:4], *gp["commitments"][0:2]]
    moved_a0 = (Point.from_hex(gp["commitments"][0]) + G).hex()
    invalid = [
        {"case": 1, "change": "challenges[0] + 1", "check": "disjunctive-challenge",
         "proof": _bump(gp, "challenges", 0)},
        {"case": 1, "change": "responses[1] + 1", "check": "disjunctive-equation",
         "proof": _bump(gp, "responses", 1)},
        {"case": 1, "change": "commitments[0] (a_0) + G", "check": "disjunctive-challenge",
         "proof": {**gp, "commitments": [moved_a0, *gp["commitments"][1:]]}},
        {"case": 1, "change": "branches swapped (commitments, challenges, responses)",
         "check": "disjunctive-challenge",
         "proof": {"commitments": swapped_pairs, "challenges": gp["challenges"][::-1],
                   "responses": gp["responses"][::-1]}},
        {"case": 1, "change": "challenges swapped only (their sum is unchanged)",
         "check": "disjunctive-equation", "proof": {**gp, "challenges": gp["challenges"][::-1]}},
        {"case": 1, "change": "proof of case 0 (other selection id, other ciphertext)",
         "check": "disjunctive-challenge", "proof": cases[0]["proof"]},
        {"case": 2, "change": "checked against the allowed set {0, 1, 2}", "check": "disjunctive-shape",
         "allowed": [0, 1, 2], "proof": cases[2]["proof"]},
    ]  # fmt: skip
    invalid_encoding = [
        {"change": "one challenge more than responses",
         "proof": {**gp, "challenges": [*gp["challenges"], gp["challenges"][0]]}},
        {"change": "one response fewer than challenges", "proof": {**gp, "responses": gp["responses"][:1]}},
        {"change": "2n - 1 commitments", "proof": {**gp, "commitments": gp["commitments"][:-1]}},
        {"change": "v1 compact form (no commitments)",
         "proof": {"challenges": gp["challenges"], "responses": gp["responses"]}},
        {"change": "empty lists", "proof": {"commitments": [], "challenges": [], "responses": []}},
        {"change": "a commitment that is not a ristretto255 encoding",
         "proof": {**gp, "commitments": ["01" + "00" * 31, *gp["commitments"][1:]]}},
        {"change": "a response that is not canonical (= L)",
         "proof": {**gp, "responses": [L.to_bytes(32, "little").hex(), gp["responses"][1]]}},
    ]  # fmt: skip
    return {
        "source": _source("disjunctive"),
        "description": (
            "Disjunctive Chaum–Pedersen proof that ciphertext (A, B) under K encrypts a value of the "
            "allowed set S (ascending), in commitment form: per j in S the commitments (a_j, b_j) (listed "
            "flat, a then b, in S's order), a challenge c_j and a response v_j. Valid iff sum(c_j) mod L "
            "== challenge('disjunctive-cp', u64 len(context), context..., K, A, B, u64 |S|, u64 j..., a_j, "
            "b_j ...) and for every j: v_j·G − c_j·A == a_j and v_j·K − c_j·(B − j·G) == b_j. Each proof "
            "was made by the reference prover (§8.4) reading the stream 'prover_stream' (Appendix A): u, "
            "then per simulated branch ascending c_j and w_j; u and each simulated branch's (c_j, w_j, "
            "v_j = w_j + c_j·r) are also given, so the proof is reproducible byte for byte with or without "
            "the stream. Each 'invalid' entry decodes but fails the named check against the statement of "
            "case 'case' (with 'allowed' replaced where given); each 'invalid_encoding' proof must be "
            "refused by the decoder (§8.2)."
        ),
        "public_key": key.hex(),
        "cases": cases,
        "invalid": invalid,
        "invalid_encoding": invalid_encoding,
    }


def _bump(proof: dict[str, list[str]], field: str, i: int) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in proof.items()}
    out[field][i] = (Scalar.from_hex(out[field][i]) + 1).hex()
    return out


# --- ballots ------------------------------------------------------------------------------------------


def ballot_election() -> tuple[ElectionContext, Scalar]:
    rng = _rng("ballots/election")
    secret = rng.nonzero()
    contests = (
        ContestSpec.one_of("mayor", ["a", "b", "c", "d", "e"]),
        ContestSpec.up_to("council", [f"s{i}" for i in range(8)], 3),
        ContestSpec.yes_no("ref-1"),
    )
    return ElectionContext(rng.randbytes(32), secret * G, contests), secret


def _multi_fault(first: dict[str, Any]) -> list[dict[str, Any]]:
    """Ballots with two faults: the one §9.5's order reports first is named (pins the order)."""
    mayor, council, ref1 = first["contests"]
    sels = council["selections"]
    bad_sel = {**sels[0], "proof": sels[1]["proof"]}  # council/s0 carries s1's proof
    council_bad_sel = {**council, "selections": [bad_sel, *sels[1:]]}
    mayor_bad_sum = {**mayor, "proof": ref1["proof"]}
    council_missing = {**council, "selections": sels[:-1]}
    mayor_sels = mayor["selections"]
    mayor_bad_sel = {
        **mayor,
        "selections": [{**mayor_sels[0], "proof": mayor_sels[1]["proof"]}, *mayor_sels[1:]],
    }
    return [
        {
            "check": "contest-proof",
            "subject": "mayor",
            "why": "mayor's sum proof is wrong and so is council/s0's selection proof: contest by contest",
            "ballot": {**first, "contests": [mayor_bad_sum, council_bad_sel, ref1]},
        },
        {
            "check": "missing-selection",
            "subject": f"council/{sels[-1]['selection_id']}",
            "why": "mayor/a's proof is wrong and council misses a selection: structure before any proof",
            "ballot": {**first, "contests": [mayor_bad_sel, council_missing, ref1]},
        },
        {
            "check": "selection-proof",
            "subject": "council/s0",
            "why": "council/s0's proof and council's sum proof are both wrong: selections before the sum",
            "ballot": {**first, "contests": [mayor, {**council_bad_sel, "proof": ref1["proof"]}, ref1]},
        },
    ]


def ballot_vectors() -> dict[str, Any]:
    ctx, secret = ballot_election()
    votes: list[dict[str, list[str]]] = [
        {"mayor": ["c"], "council": ["s1", "s6"], "ref-1": ["no"]},
        {"mayor": [], "council": [], "ref-1": []},
        {"mayor": ["a"], "council": ["s0", "s3", "s7"], "ref-1": ["yes"]},
    ]
    ballots: list[dict[str, Any]] = []
    for i, choices in enumerate(votes):
        ballot, secrets = encrypt_ballot(ctx, choices, rng=ShakeStream(SEED, f"ballots/{i}"))
        ballots.append(
            {
                "stream": f"ballots/{i}",
                "choices": choices,
                "ballot": ballot.to_dict(),
                "canonical_json": ballot.canonical_bytes().decode("ascii"),
                "ballot_hash": ballot.ballot_hash().hex(),
                "tracking_code": ballot.tracking_code(),
                "secrets": secrets.to_dict(),
                "revealed": reveal(ballot, secrets).to_dict(),
            }
        )
    first = ballots[0]["ballot"]
    invalid = [
        {"check": "election-hash", "ballot": {**first, "election_hash": "00" * 32}},
        {"check": "selection-proof", "subject": "mayor/a", "ballot": {**first, "ballot_nonce": "00" * 32}},
        {
            "check": "missing-contest",
            "subject": "ref-1",
            "ballot": {**first, "contests": first["contests"][:2]},
        },
        {
            "check": "contest-order",
            "ballot": {**first, "contests": [first["contests"][i] for i in (1, 0, 2)]},
        },
        {
            "check": "contest-proof",
            "subject": "ref-1",
            "ballot": {
                **first,
                "contests": [
                    *first["contests"][:2],
                    {**first["contests"][2], "proof": first["contests"][0]["proof"]},
                ],
            },
        },
        {
            "check": "selection-proof",
            "subject": "council/s2",
            "why": "a response changed: the challenges still sum to the hash, a group equation fails",
            "ballot": _bump_response(first, 1, 2),
        },
        {
            "check": "selection-randomness",
            "subject": "mayor/b",
            "why": "mayor/b is encrypted with r = 0 (its pad is the identity) under valid proofs",
            "ballot": _zero_pad_ballot(ctx, votes[0], "mayor", "b").to_dict(),
        },
        *_multi_fault(first),
    ]
    invalid_encoding = [
        {"why": "version 1", "ballot": {**first, "version": 1}},
        {"why": "mayor/a's proof has one response fewer than challenges",
         "ballot": _edit_proof(first, 0, 0, lambda p: {**p, "responses": p["responses"][:1]})},
        {"why": "mayor/a's proof has no commitments (v1 compact form)",
         "ballot": _edit_proof(first, 0, 0, lambda p: {k: v for k, v in p.items() if k != "commitments"})},
        {"why": "mayor/a's pad is the edwards25519 identity encoding 01 00..00 (not ristretto255)",
         "ballot": _edit_selection(first, 0, 0, lambda sel: {**sel, "ciphertext": {
             **sel["ciphertext"], "a": "01" + "00" * 31}})},
    ]  # fmt: skip
    canonical = ballots[0]["canonical_json"]
    lexical = [
        {"why": "version written 2.0", "json_text": canonical.replace('"version":2', '"version":2.0')},
        {"why": "version written 2e0", "json_text": canonical.replace('"version":2', '"version":2E0')},
        {"why": "version written as the string \"2\"",
         "json_text": canonical.replace('"version":2', '"version":"2"')},
        {"why": "version written true", "json_text": canonical.replace('"version":2', '"version":true')},
    ]  # fmt: skip
    for case in lexical:
        assert case["json_text"] != canonical
    uniqueness = _uniqueness_vectors(ctx, ballots)
    return {
        "source": _source("ballots/election") + "; ballot i is encrypted reading the stream 'ballots/i'",
        "description": (
            "Whole encrypted ballots for the election below: the dict form, its RFC 8785 canonical JSON, "
            "ballot_hash = tagged_sha256('ballot-hash', canonical JSON bytes), the tracking code (Crockford "
            "base32 of the first 10 bytes of the hash, 4 groups of 4), the device's secrets and the "
            "Benaloh-revealed form. Each ballot was encrypted (§9.3) reading the stream named in 'stream' "
            "(Appendix A) in the reference order: the ballot nonce (32 bytes), then per contest, per "
            "selection r (non-zero) and that selection's proof draws (§8.4), then the contest proof's "
            "draws; so the whole "
            "ballot, proofs included, is reproducible byte for byte. Each ballot verifies; each 'invalid' "
            "ballot fails the named check (and, where given, names the subject). Contest 'min'/'max' are "
            "§9.1's bounds on the number of selections chosen."
        ),
        "election": {
            "base_hash": ctx.base_hash.hex(),
            "public_key": ctx.public_key.hex(),
            "secret_key": secret.hex(),
            "contests": [
                {
                    "contest_id": c.contest_id,
                    "selection_ids": list(c.selection_ids),
                    "min": c.min_selections,
                    "max": c.max_selections,
                }
                for c in ctx.contests
            ],
        },
        "ballots": ballots,
        "invalid": invalid,
        "invalid_encoding": invalid_encoding,
        "invalid_lexical": lexical,
        "uniqueness": uniqueness,
    }


def _uniqueness_vectors(ctx: ElectionContext, ballots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """§9.6 over sequences of published ballots: every value that repeats an earlier one, with its rule."""
    from ledger.record import ballot_unique_values

    b0, b1, b2 = (b["ballot"] for b in ballots)
    # Cortier–Smyth: the mayor contest (ciphertexts, proofs) of ballot 0 with ballot 0's nonce; the other
    # contests encrypted afresh under that nonce (every proof verifies).
    fresh, _ = encrypt_ballot(
        ctx, {"mayor": [], "council": ["s2"], "ref-1": ["yes"]},
        ballot_nonce=bytes.fromhex(b0["ballot_nonce"]), rng=ShakeStream(SEED, "ballots/copy"),
    )  # fmt: skip
    copied = {**fresh.to_dict(), "contests": [b0["contests"][0], *fresh.to_dict()["contests"][1:]]}
    EncryptedBallot.from_dict(copied)  # decodes; verify_ballot passes too (checked by the tests)
    s0_ct = b2["contests"][1]["selections"][0]["ciphertext"]
    within = _edit_selection(b2, 1, 1, lambda sel: {**sel, "ciphertext": s0_ct})
    sequences = [
        ("a ballot published twice (replay)", [("cast", b0), ("cast", b1), ("cast", b0)]),
        ("a challenged ballot cast afterwards", [("spoiled", b1), ("cast", b1)]),
        ("ballot copying: a contest moved with its ballot's nonce", [("cast", b0), ("cast", copied)]),
        ("a pad repeated within one ballot", [("cast", b1), ("cast", within)]),
    ]
    out = []
    for why, seq in sequences:
        seen: dict[tuple[str, str], int] = {}  # (rule, value) -> the ballot that published it first
        breaks = []
        for i, (_, b) in enumerate(seq):
            h = EncryptedBallot.from_dict(b).ballot_hash().hex()
            for v in ballot_unique_values(h, b):
                if (v.kind, v.value) in seen:  # an earlier ballot, or an earlier selection of this one
                    first = seen[v.kind, v.value]
                    breaks.append({"ballot": i, "rule": v.kind, "where": v.where, "first": first})
                else:
                    seen[v.kind, v.value] = i
        out.append({"why": why, "ballots": [{"kind": k, "ballot": b} for k, b in seq], "breaks": breaks})
    return out


def _edit_selection(ballot: dict[str, Any], ci: int, si: int, f: Any) -> dict[str, Any]:
    contests = [dict(c) for c in ballot["contests"]]
    sels = list(contests[ci]["selections"])
    sels[si] = f(sels[si])
    contests[ci] = {**contests[ci], "selections": sels}
    return {**ballot, "contests": contests}


def _edit_proof(ballot: dict[str, Any], ci: int, si: int, f: Any) -> dict[str, Any]:
    return _edit_selection(ballot, ci, si, lambda sel: {**sel, "proof": f(sel["proof"])})


def _bump_response(ballot: dict[str, Any], ci: int, si: int) -> dict[str, Any]:
    return _edit_proof(ballot, ci, si, lambda p: _bump(p, "responses", 0))


def _zero_pad_ballot(
    ctx: ElectionContext, choices: dict[str, list[str]], contest: str, selection: str
) -> EncryptedBallot:
    """A ballot whose one selection is encrypted with r = 0 (every proof valid): only §9.5's
    ``selection-randomness`` refuses it. Randomness from the stream 'ballots/zero-pad'. The proofs' contexts
    are written out from docs/protocol.md §9.3 (the recipe never encrypts with r = 0)."""
    rng = ShakeStream(SEED, "ballots/zero-pad")
    nonce = rng.randbytes(32)
    k, h = ctx.public_key, ctx.base_hash
    contests = []
    for spec in ctx.contests:
        sels, total = [], Scalar(0)
        chosen = choices[spec.contest_id]
        for sid in spec.selection_ids:
            m = 1 if sid in chosen else 0
            r = Scalar(0) if (spec.contest_id, sid) == (contest, selection) else Scalar.random_nonzero(rng)
            ct = encrypt(k, m, r)
            proof = prove_membership(
                k, ct, m, r, (0, 1), ("ballot-selection", h, nonce, spec.contest_id, sid), rng=rng
            )
            sels.append(EncryptedSelection(sid, ct, proof))
            total = total + r
        cproof = prove_membership(
            k, sum_ciphertexts(x.ciphertext for x in sels), len(chosen), total, spec.allowed_sums,
            ("ballot-contest", h, nonce, spec.contest_id), rng=rng,
        )  # fmt: skip
        contests.append(EncryptedContest(spec.contest_id, tuple(sels), cproof))
    return EncryptedBallot(h, nonce, tuple(contests))


# --- batch verification -------------------------------------------------------------------------------


def batch_vectors(ballot_file: dict[str, Any]) -> dict[str, Any]:
    """§12 over ballots: a valid batch, one with a bad group equation in the middle, one with a ballot
    that already fails before the equations."""
    ctx, _ = ballot_election()
    votes = [
        {"mayor": ["a"], "council": [], "ref-1": ["yes"]},
        {"mayor": ["b"], "council": ["s0"], "ref-1": ["no"]},
        {"mayor": [], "council": ["s1", "s2", "s3"], "ref-1": []},
        {"mayor": ["e"], "council": ["s7"], "ref-1": ["yes"]},
        {"mayor": ["d"], "council": ["s4", "s5"], "ref-1": ["no"]},
    ]
    good = [encrypt_ballot(ctx, v, rng=ShakeStream(SEED, f"batch/ballot/{i}"))[0].to_dict()
            for i, v in enumerate(votes)]  # fmt: skip
    bad_eq = [*good[:2], _bump_response(good[2], 1, 2), *good[3:]]
    bad_hash = [*good[:3], _edit_proof(good[3], 0, 1, lambda p: _bump(p, "challenges", 0)), good[4]]
    batches: list[dict[str, Any]] = []
    for name, dicts in (("valid", good), ("bad-equation-in-the-middle", bad_eq), ("bad-challenge", bad_hash)):
        label = f"batch/weights/{name}"
        ballots = [EncryptedBallot.from_dict(d) for d in dicts]
        n_eqs: list[int | None] = []
        for b in ballots:
            try:
                n_eqs.append(len(ballot_equations(ctx, b)))
            except Exception:
                n_eqs.append(None)
        eqs: list[Equation] = []
        for b in ballots:
            try:
                eqs.extend(ballot_equations(ctx, b))
            except Exception:
                continue
        weights = ShakeStream(SEED, label)
        w = [str(int.from_bytes(weights.randbytes(16), "little")) for _ in eqs]
        failures: list[dict[str, Any]] = []
        try:
            verify_ballots(ctx, ballots, rng=ShakeStream(SEED, label + "/bisect"))
        except BatchError as e:
            for i, err in e.failures:
                assert isinstance(err, VerificationError)  # no ballot here fails to decode (InvalidEncoding)
                failures.append({"index": i, "check": err.check, "subject": err.subject})
        batches.append(
            {
                "name": name,
                "ballots": dicts,
                "equations_per_ballot": n_eqs,
                "weights_stream": label,
                "weights": w,
                "combined": combined_point(eqs, ShakeStream(SEED, label)).hex(),
                "failures": failures,
            }
        )
    assert batches[0]["failures"] == [] and batches[0]["combined"] == IDENTITY.hex()
    assert [f["index"] for f in batches[1]["failures"]] == [2] and batches[1]["combined"] != IDENTITY.hex()
    assert [f["index"] for f in batches[2]["failures"]] == [3]
    return {
        "source": _source("batch/...") + "; the election is ballots.json's",
        "description": (
            "Batch verification (§12) of ballots for ballots.json's election. Ballot i of a batch was "
            "encrypted reading the stream 'batch/ballot/i' (the bad ones are edited copies). For each "
            "batch: the group equations of every ballot that passes the checks before them (structure, "
            "pads, each proof's shape, key and challenge split), in ballot order and within a ballot in "
            "§12's order (contest by contest: each selection's proof, then the contest's; per proof, per "
            "branch ascending, the a-equation then the b-equation), are weighted by 'weights' (16-byte "
            "little-endian reads of 'weights_stream', one per equation, in that order), and 'combined' is "
            "sum_e z_e·(sum_i s_ei·P_ei − R_e): the identity iff every equation holds. 'failures' are the "
            "ballots the batch refuses, each with the check and subject that verifying it alone reports. "
            "'equations_per_ballot' is null for a ballot refused before its equations."
        ),
        "batches": batches,
    }


def build() -> dict[str, str]:
    files = {
        "group.json": group_vectors(),
        "hash.json": hash_vectors(),
        "elgamal.json": elgamal_vectors(),
        "disjunctive.json": disjunctive_vectors(),
        "ballots.json": ballot_vectors(),
    }
    files["batch.json"] = batch_vectors(files["ballots.json"])
    return {name: json.dumps(obj, indent=1, ensure_ascii=False) + "\n" for name, obj in files.items()}


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        bad = [
            n for n, text in files.items() if not (OUT / n).exists() or (OUT / n).read_text("utf-8") != text
        ]
        for n in bad:
            print(f"tests/vectors/{n} differs from tools/gen_vectors.py output", file=sys.stderr)
        return 1 if bad else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (OUT / n).write_text(text, encoding="utf-8")
        print(f"wrote tests/vectors/{n} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
