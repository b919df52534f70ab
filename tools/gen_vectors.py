"""Generate the crypto known-answer vectors under tests/vectors/ (group, hash, elgamal, disjunctive, ballots).

Deterministic: every random value comes from a named SHAKE-256 stream (``ShakeStream(SEED, label)``,
docs/protocol.md Appendix A), so running the script twice gives byte-identical files and another
implementation can regenerate every draw, the ballots' included. ``tests/test_vectors.py`` re-derives
every value from its inputs and checks that this script's output equals the committed files.

Usage::

    .venv/bin/python tools/gen_vectors.py           # (re)write tests/vectors/*.json
    .venv/bin/python tools/gen_vectors.py --check   # exit 1 if the committed files differ

These files are the contract for any other implementation (the browser client uses @noble/curves):
it must reproduce every byte, accept every ``valid`` case and reject every ``invalid`` one.
Point decoding there must be the strict RFC 8032 form plus the subgroup checks of docs/protocol.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from crypto import _reference as ref
from crypto._ballot import ContestSpec, ElectionContext, encrypt_ballot, reveal
from crypto._disjunctive import allowed_range, prove_membership
from crypto._elgamal import Ciphertext, encrypt, sum_ciphertexts
from crypto._group import IDENTITY, G, L, Point, Scalar, small_multiple
from crypto._hash import TranscriptItem, challenge, encode_transcript, tagged_sha256

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _vectors_common import Recorder, ShakeStream, item_from_json, item_to_json

__all__ = ["SEED", "ShakeStream", "build", "item_from_json", "item_to_json", "main"]

SEED = b"tvote/vectors/1"
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
    small = [{"k": k, "point": small_multiple(k).hex()} for k in range(0, 11)]
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

    torsion = [ref.encode(t) for t in ref.torsion_points()]
    invalid_points = [{"hex": t.hex(), "reason": "small-order"} for t in torsion if t != IDENTITY.to_bytes()]
    invalid_points.append({"hex": (b"\x01" + bytes(30) + b"\x80").hex(), "reason": "identity with sign bit"})
    for k in range(19):
        for sign in (0, 1):
            enc = ((P + k) | (sign << 255)).to_bytes(32, "little")
            invalid_points.append({"hex": enc.hex(), "reason": "non-canonical y >= p"})
    for t in torsion[1:4]:
        mixed = ref.encode(ref.add(ref.decode(pts[0].to_bytes()), ref.decode(t)))
        invalid_points.append({"hex": mixed.hex(), "reason": "mixed-order (not in the prime-order subgroup)"})
    y = 2
    while True:  # the first y with no x on the curve
        try:
            ref.decode(y.to_bytes(32, "little"))
        except ref.RefRejected:
            break
        y += 1
    invalid_points.append({"hex": y.to_bytes(32, "little").hex(), "reason": "not on the curve"})
    invalid_points.append({"hex": pts[0].hex()[:-2], "reason": "wrong-length"})
    invalid_points.append({"hex": pts[0].hex() + "00", "reason": "wrong-length"})
    upper = next(p for p in pts if p.hex() != p.hex().upper())
    invalid_points.append({"hex": upper.hex().upper(), "reason": "uppercase hex"})

    return {
        "source": _source("group"),
        "description": (
            "edwards25519 prime-order subgroup. Scalars: 32-byte little-endian, canonical (< L). "
            "Points: 32-byte RFC 8032 encoding of an element of the order-L subgroup; the identity "
            "0100..00 is valid; every other small-order point, mixed-order point, non-canonical "
            "encoding and off-curve value is invalid. All hex is lowercase."
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


def _valid_points(pts: list[Point]) -> list[dict[str, str]]:
    """Valid encodings: the identity, G, and subgroup points with the sign bit (x odd) clear and set."""
    out = [{"hex": IDENTITY.hex(), "note": "identity"}, {"hex": G.hex(), "note": "base point"}]
    k = 2
    found = {0: 0, 1: 0}
    while min(found.values()) < 3:
        q = small_multiple(k)
        sign = q.to_bytes()[31] >> 7
        if found[sign] < 3:
            found[sign] += 1
            out.append({"hex": q.hex(), "note": f"{k}·G, sign bit {sign}"})
        k += 1
    out.extend(
        {"hex": q.hex(), "note": f"random subgroup point, sign bit {q.to_bytes()[31] >> 7}"} for q in pts
    )
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
            "Transcript encoding: u32be(len(d)) || d, d = 'tvote/1/' + purpose, then per item u32be(len) || "
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
    cases = []
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
            "identity (0100..00)."
        ),
        "secret_key": secret.hex(),
        "public_key": key.hex(),
        "cases": cases,
        "sum": {"ciphertext": total.to_dict(), "m": sum(c["m"] for c in cases)},  # type: ignore[misc]
        "zero_sum": {"ciphertext": sum_ciphertexts([]).to_dict(), "m": 0},
    }


# --- disjunctive proofs -----------------------------------------------------------------------------


def disjunctive_vectors() -> dict[str, Any]:
    rng = _rng("disjunctive")
    secret = rng.nonzero()
    key = secret * G
    base_hash = rng.randbytes(32)
    nonce = rng.randbytes(32)
    cases = []
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
        commitments = []
        for j, c_j, v_j in zip(allowed, proof.challenges, proof.responses, strict=True):
            commitments.append(
                {"a": (v_j * G - c_j * ct.a).hex(), "b": (v_j * key - c_j * (ct.b - small_multiple(j))).hex()}
            )
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
                "commitments": commitments,
                "challenge": Scalar(sum(c.value for c in proof.challenges)).hex(),
                "proof": proof.to_dict(),
            }
        )
    # Negative cases: a valid proof checked against a changed statement or a changed proof field.
    good = cases[1]
    invalid = [
        {"case": 1, "change": "challenges[0] + 1", "proof": _bump(good["proof"], "challenges", 0)},
        {"case": 1, "change": "responses[1] + 1", "proof": _bump(good["proof"], "responses", 1)},
        {
            "case": 1,
            "change": "branches swapped",
            "proof": {k: list(reversed(v)) for k, v in good["proof"].items()},
        },
        {
            "case": 1,
            "change": "proof of case 0 (other selection id, other ciphertext)",
            "proof": cases[0]["proof"],
        },
    ]
    return {
        "source": _source("disjunctive"),
        "description": (
            "Disjunctive Chaum–Pedersen proof that ciphertext (A, B) under K encrypts a value of the "
            "allowed set S (ascending). Per j in S: a_j = v_j·G − c_j·A, b_j = v_j·K − c_j·(B − j·G); "
            "valid iff sum(c_j) mod L == challenge('disjunctive-cp', u64 len(context), context..., K, A, "
            "B, u64 |S|, u64 j..., a_j, b_j ...). Each proof was made by the reference prover (§8.4) reading "
            "the stream 'prover_stream' (Appendix A): u, then per simulated branch ascending c_j and w_j; "
            "u and each simulated branch's (c_j, w_j, v_j = w_j + c_j·r) are also given, so the proof is "
            "reproducible byte for byte with or without the stream. Each 'invalid' "
            "entry must fail verification against the statement of case 'case'."
        ),
        "public_key": key.hex(),
        "cases": cases,
        "invalid": invalid,
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
    votes = [
        {"mayor": ["c"], "council": ["s1", "s6"], "ref-1": ["no"]},
        {"mayor": [], "council": [], "ref-1": []},
        {"mayor": ["a"], "council": ["s0", "s3", "s7"], "ref-1": ["yes"]},
    ]
    ballots = []
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
        *_multi_fault(first),
    ]
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
    }


def build() -> dict[str, str]:
    files = {
        "group.json": group_vectors(),
        "hash.json": hash_vectors(),
        "elgamal.json": elgamal_vectors(),
        "disjunctive.json": disjunctive_vectors(),
        "ballots.json": ballot_vectors(),
    }
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
