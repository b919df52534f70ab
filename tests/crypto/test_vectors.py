"""Known-answer vectors (tests/vectors/{group,hash,elgamal,disjunctive,ballots,batch}.json).

Every value is re-derived from the vector's own inputs with the library and compared byte for byte;
every invalid case must be rejected. The last test checks that tools/gen_vectors.py still produces
exactly the committed files.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _tools import load_tool, read_json

from crypto import _reference as ref
from crypto._ballot import ContestSpec, ElectionContext, EncryptedBallot, RevealedBallot
from crypto._ballot_encrypt import encrypt_ballot
from crypto._ballot_verify import verify_ballot, verify_revealed
from crypto._disjunctive import DisjunctiveProof, prove_membership, prove_with_nonces, verify_membership
from crypto._dlog import discrete_log
from crypto._elgamal import Ciphertext, encrypt, sum_ciphertexts
from crypto._errors import BallotError, InvalidEncoding, ProofError, VerificationError
from crypto._group import IDENTITY, G, L, Point, Scalar, small_multiple
from crypto._hash import challenge, encode_transcript, tagged_sha256

ROOT = Path(__file__).resolve().parents[2]
VEC = ROOT / "tests" / "vectors"


def gen() -> ModuleType:
    return load_tool("gen_vectors")


@cache
def load(name: str) -> dict[str, Any]:
    data = read_json(VEC / name)
    assert data["source"].startswith("tools/gen_vectors.py")
    assert data["description"]
    return data  # type: ignore[no-any-return]


def _item(d: dict[str, str]) -> Any:
    """A typed transcript item of the vector files (docs/protocol.md Appendix A)."""
    return gen().item_from_json(d)


# --- group --------------------------------------------------------------------------------------------


def test_group_constants() -> None:
    g = load("group.json")
    assert int(g["L"]) == L
    assert g["base_point"] == G.hex() == ref.encode(ref.BASE).hex()
    assert g["identity"] == IDENTITY.hex()


def test_group_scalars() -> None:
    g = load("group.json")
    for case in g["scalars"]["valid"]:
        s = Scalar.from_hex(case["hex"])
        assert s.value == int(case["value"])
        assert s.hex() == case["hex"]
    for case in g["scalars"]["invalid"]:
        with pytest.raises(InvalidEncoding):
            Scalar.from_hex(case["hex"])


def test_group_invalid_points() -> None:
    g = load("group.json")
    reasons = {c["reason"] for c in g["points"]["invalid"]}
    assert {
        "RFC 9496 A.2: non-canonical field encoding",
        "RFC 9496 A.2: negative field element",
        "RFC 9496 A.2: non-square x^2",
        "RFC 9496 A.2: negative xy value",
        "RFC 9496 A.2: s = -1, which causes y = 0",
        "top bit set (s >= 2^255 > p)",
    } <= reasons
    assert sum(c["reason"].startswith("RFC 9496 A.2") for c in g["points"]["invalid"]) == 29
    for case in g["points"]["invalid"]:
        with pytest.raises(InvalidEncoding):
            Point.from_hex(case["hex"])
        if len(case["hex"]) == 64 and case["hex"] == case["hex"].lower():
            with pytest.raises(ref.RefRejected):
                ref.validate(bytes.fromhex(case["hex"]))


def test_group_valid_points() -> None:
    g = load("group.json")
    cases = g["points"]["valid"]
    assert {c["hex"] for c in cases} >= {IDENTITY.hex(), G.hex()}
    assert IDENTITY.hex() == "00" * 32
    for case in cases:
        p = Point.from_hex(case["hex"])
        assert p.hex() == case["hex"]
        assert ref.encode(ref.decode(bytes.fromhex(case["hex"]))).hex() == case["hex"]


def test_group_base_mult_and_arithmetic() -> None:
    g = load("group.json")
    for case in g["base_mult"]:
        s = Scalar.from_hex(case["scalar"])
        assert (s * G).hex() == case["point"]
        assert ref.encode(ref.mul(s.value, ref.BASE)).hex() == case["point"]
    assert [c["k"] for c in g["small_multiples"]] == list(range(16))  # RFC 9496 Appendix A.1
    assert g["small_multiples"][2]["point"].startswith("6a493210f7499cd17fecb510ae0cea23")
    for case in g["small_multiples"]:
        assert small_multiple(case["k"]).hex() == case["point"]
    for case in g["arithmetic"]:
        p, q = Point.from_hex(case["p"]), Point.from_hex(case["q"])
        assert (p + q).hex() == case["p_plus_q"]
        assert (p - q).hex() == case["p_minus_q"]
        assert (Scalar.from_hex(case["scalar"]) * p).hex() == case["scalar_times_p"]
        rp, rq = ref.decode(p.to_bytes()), ref.decode(q.to_bytes())
        assert ref.encode(ref.add(rp, rq)).hex() == case["p_plus_q"]


# --- hash -----------------------------------------------------------------------------------------------


def test_hash_cases() -> None:
    cases = load("hash.json")["cases"]
    assert len({c["transcript"] for c in cases}) == len(cases)
    for case in cases:
        items = [_item(i) for i in case["items"]]
        raw = encode_transcript(case["purpose"], items)
        assert raw.hex() == case["transcript"]
        assert challenge(case["purpose"], *items).hex() == case["challenge"]
        assert tagged_sha256(case["purpose"], *items).hex() == case["tagged_sha256"]
        reduced = int.from_bytes(hashlib.sha512(raw).digest(), "little") % L
        assert reduced.to_bytes(32, "little").hex() == case["challenge"]


# --- ElGamal --------------------------------------------------------------------------------------------


def test_elgamal_cases() -> None:
    e = load("elgamal.json")
    secret, key = Scalar.from_hex(e["secret_key"]), Point.from_hex(e["public_key"])
    assert secret * G == key
    cts = []
    for case in e["cases"]:
        ct = encrypt(key, case["m"], Scalar.from_hex(case["r"]))
        assert ct.to_dict() == case["ciphertext"]
        assert ct.decrypt_point(secret).hex() == case["decrypted_point"]
        cts.append(ct)
    total = sum_ciphertexts(cts)
    assert total.to_dict() == e["sum"]["ciphertext"]
    assert discrete_log(total.decrypt_point(secret), 10_000) == e["sum"]["m"]
    zero = Ciphertext.from_dict(e["zero_sum"]["ciphertext"])
    assert zero.decrypt_point(secret) == IDENTITY
    assert discrete_log(zero.decrypt_point(secret), 0) == 0


# --- disjunctive ----------------------------------------------------------------------------------------


def test_disjunctive_cases() -> None:
    d = load("disjunctive.json")
    key = Point.from_hex(d["public_key"])
    for case in d["cases"]:
        allowed = tuple(case["allowed"])
        ctx = [_item(i) for i in case["context"]]
        ct = Ciphertext.from_dict(case["ciphertext"])
        r = Scalar.from_hex(case["randomness"])
        assert encrypt(key, case["plaintext"], r) == ct
        fake = {f["value"]: (Scalar.from_hex(f["c"]), Scalar.from_hex(f["v"])) for f in case["fake_branches"]}
        for f in case["fake_branches"]:  # v_j = w_j + c_j·r (§8.4)
            assert Scalar.from_hex(f["w"]) + Scalar.from_hex(f["c"]) * r == Scalar.from_hex(f["v"])
        proof = prove_with_nonces(
            key, ct, case["plaintext"], r, allowed, ctx, Scalar.from_hex(case["nonce_u"]), fake
        )
        assert proof.to_dict() == case["proof"]
        # and the reference prover reading the named stream (Appendix A) draws exactly those nonces
        streamed = prove_membership(
            key,
            ct,
            case["plaintext"],
            r,
            allowed,
            ctx,
            rng=gen().ShakeStream(gen().SEED, case["prover_stream"]),
        )
        assert streamed.to_dict() == case["proof"]
        parsed = DisjunctiveProof.from_dict(case["proof"])
        verify_membership(key, ct, parsed, allowed, ctx)
        commitments = []
        for j, (a, b), c_j, v_j in zip(
            allowed, parsed.commitments, parsed.challenges, parsed.responses, strict=True
        ):
            assert v_j * G == a + c_j * ct.a  # §8.3 step 4, written as the spec writes it
            assert v_j * key == b + c_j * (ct.b - small_multiple(j))
            commitments += [a, b]
        h = challenge("disjunctive-cp", len(ctx), *ctx, key, ct.a, ct.b, len(allowed), *allowed, *commitments)
        assert h.hex() == case["challenge"] == Scalar(sum(c.value for c in parsed.challenges)).hex()


def test_disjunctive_invalid() -> None:
    d = load("disjunctive.json")
    key = Point.from_hex(d["public_key"])
    assert d["invalid"]
    for bad in d["invalid"]:
        case = d["cases"][bad["case"]]
        with pytest.raises(ProofError) as info:
            verify_membership(
                key,
                Ciphertext.from_dict(case["ciphertext"]),
                DisjunctiveProof.from_dict(bad["proof"]),
                bad.get("allowed", case["allowed"]),
                [_item(i) for i in case["context"]],
            )
        assert info.value.check == bad["check"], bad["change"]
    assert {b["check"] for b in d["invalid"]} == {
        "disjunctive-challenge",
        "disjunctive-equation",
        "disjunctive-shape",
    }
    for bad in d["invalid_encoding"]:
        with pytest.raises(InvalidEncoding):
            DisjunctiveProof.from_dict(bad["proof"])


# --- ballots ------------------------------------------------------------------------------------------


def _ctx(b: dict[str, Any]) -> tuple[ElectionContext, Scalar]:
    e = b["election"]
    contests = tuple(
        ContestSpec(c["contest_id"], tuple(c["selection_ids"]), c["min"], c["max"]) for c in e["contests"]
    )
    ctx = ElectionContext(bytes.fromhex(e["base_hash"]), Point.from_hex(e["public_key"]), contests)
    secret = Scalar.from_hex(e["secret_key"])
    assert secret * G == ctx.public_key
    return ctx, secret


def test_ballot_cases() -> None:
    b = load("ballots.json")
    ctx, secret = _ctx(b)
    for i, case in enumerate(b["ballots"]):
        ballot = EncryptedBallot.from_dict(case["ballot"])
        verify_ballot(ctx, ballot)
        assert ballot.to_dict() == case["ballot"]
        assert ballot.canonical_bytes().decode("ascii") == case["canonical_json"]
        assert ballot.ballot_hash().hex() == case["ballot_hash"]
        assert ballot.tracking_code() == case["tracking_code"]
        expected = {
            c.contest_id: [s for s in c.selection_ids if s in case["choices"][c.contest_id]]
            for c in ctx.contests
        }
        decrypted = {
            c.contest_id: [
                s.selection_id for s in c.selections if discrete_log(s.ciphertext.decrypt_point(secret), 1)
            ]
            for c in ballot.contests
        }
        assert decrypted == expected
        revealed = RevealedBallot.from_dict(case["revealed"])
        assert verify_revealed(ctx, ballot, revealed) == expected
        stream = gen().ShakeStream(gen().SEED, case["stream"])
        again, secrets = encrypt_ballot(ctx, case["choices"], rng=stream)
        assert again.to_dict() == case["ballot"]
        assert secrets.to_dict() == case["secrets"]


def test_ballot_invalid() -> None:
    b = load("ballots.json")
    ctx, _ = _ctx(b)
    assert b["invalid"]
    for bad in b["invalid"]:
        ballot = EncryptedBallot.from_dict(bad["ballot"])
        with pytest.raises((BallotError, ProofError)) as info:
            verify_ballot(ctx, ballot)
        assert isinstance(info.value, VerificationError)
        assert info.value.check == bad["check"]
        if "subject" in bad:
            assert info.value.subject == bad["subject"]
    assert "selection-randomness" in {bad["check"] for bad in b["invalid"]}


def test_ballot_invalid_encoding() -> None:
    b = load("ballots.json")
    for bad in b["invalid_encoding"]:
        with pytest.raises(InvalidEncoding):
            EncryptedBallot.from_dict(bad["ballot"])


def test_ballot_invalid_lexical() -> None:
    """§1: a number token is an integer literal; 2.0, 2E0, "2" and true are not the version 2. Python's
    parser gives a float, a str or a bool for them, which strict decoding refuses."""
    b = load("ballots.json")
    from ledger import InvalidEntry
    from ledger.record import parse_json

    assert len(b["invalid_lexical"]) >= 4
    for bad in b["invalid_lexical"]:
        try:  # the record's and the server's parser refuse a fraction or an exponent outright
            value = parse_json(bad["json_text"])
        except InvalidEntry:
            continue
        with pytest.raises(InvalidEncoding):  # "2" and true parse, and strict decoding refuses them
            EncryptedBallot.from_dict(value)


# --- batch ----------------------------------------------------------------------------------------


def test_batch_vectors() -> None:
    """§12: the weights read from the named stream give the published combined point (the identity iff
    every equation holds), and the batch names the bad ballot, with the check single verification names."""
    from crypto._ballot_verify import ballot_equations, verify_ballots
    from crypto._batch import combined_point
    from crypto._errors import BatchError, CryptoError

    ctx, _ = _ctx(load("ballots.json"))
    data = load("batch.json")
    names = [x["name"] for x in data["batches"]]
    assert names == ["valid", "bad-equation-in-the-middle", "bad-challenge"]
    for batch in data["batches"]:
        ballots = [EncryptedBallot.from_dict(d) for d in batch["ballots"]]
        eqs = []
        for ballot, n in zip(ballots, batch["equations_per_ballot"], strict=True):
            try:
                mine = ballot_equations(ctx, ballot)
            except CryptoError:
                assert n is None
                continue
            assert len(mine) == n
            eqs.extend(mine)
        weights = gen().ShakeStream(gen().SEED, batch["weights_stream"])
        assert [str(int.from_bytes(weights.randbytes(16), "little")) for _ in eqs] == batch["weights"]
        point = combined_point(eqs, gen().ShakeStream(gen().SEED, batch["weights_stream"]))
        assert point.hex() == batch["combined"]
        assert point.is_identity == (batch["name"] != "bad-equation-in-the-middle")
        if not batch["failures"]:
            verify_ballots(ctx, ballots)
            continue
        with pytest.raises(BatchError) as info:
            verify_ballots(ctx, ballots)
        got = [{"index": i, "check": e.check, "subject": e.subject} for i, e in info.value.failures]
        assert got == batch["failures"]
    middle = data["batches"][1]
    assert middle["failures"] == [{"index": 2, "check": "selection-proof", "subject": "council/s2"}]


# --- provenance ---------------------------------------------------------------------------------------


def test_generator_reproduces_committed_files() -> None:
    files = gen().build()
    assert set(files) == {
        "group.json",
        "hash.json",
        "elgamal.json",
        "disjunctive.json",
        "ballots.json",
        "batch.json",
    }
    for name, text in files.items():
        assert (VEC / name).read_text("utf-8") == text, f"{name} differs: rerun tools/gen_vectors.py"


def test_uniqueness_vectors() -> None:
    """§9.6: every value that repeats an earlier one (another ballot's, or an earlier selection of the same
    ballot) breaks its rule, named as the document names it; the copied contest passes §9.5 and only the
    nonce and pad rules refuse it."""
    from ledger.record import ballot_unique_values

    b = load("ballots.json")
    ctx, _ = _ctx(b)
    cases = b["uniqueness"]
    assert {c["why"].split(":")[0] for c in cases} >= {"ballot copying"}
    for case in cases:
        seen: dict[tuple[str, str], int] = {}
        got = []
        for i, item in enumerate(case["ballots"]):
            ballot = EncryptedBallot.from_dict(item["ballot"])
            h = ballot.ballot_hash().hex()
            for v in ballot_unique_values(h, item["ballot"]):
                if (v.kind, v.value) in seen:
                    first = seen[v.kind, v.value]
                    got.append({"ballot": i, "rule": v.kind, "where": v.where, "first": first})
                else:
                    seen[v.kind, v.value] = i
        assert got == case["breaks"], case["why"]
    copying = next(c for c in cases if c["why"].startswith("ballot copying"))
    for item in copying["ballots"]:
        verify_ballot(ctx, EncryptedBallot.from_dict(item["ballot"]))  # §9.5 cannot see the copy
    assert {x["rule"] for x in copying["breaks"]} == {"ballot_nonce", "pad"}
