"""Threshold trustees: DKG, encrypted shares, complaints, partial decryption and combination."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from _tools import load_tool, read_json
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox

from crypto._complaints import Complaint, ComplaintAnswer, ComplaintOutcome, resolve_complaint
from crypto._decryption import (
    PartialDecryption,
    TrusteeKey,
    combine,
    combine_tally,
    lagrange_coefficient,
    lagrange_combine,
    partial_decryption_context,
    verify_partial,
)
from crypto._dkg import (
    ENCRYPTED_SHARE_LEN,
    EncryptedShare,
    TrusteeCommitments,
    coefficient_context,
    share_plaintext,
    verify_share,
)
from crypto._dlog import discrete_log
from crypto._elgamal import ZERO, Ciphertext, encrypt, sum_ciphertexts
from crypto._errors import InvalidEncoding, ProofError, ThresholdError
from crypto._group import IDENTITY, G, L, Point, Scalar, small_multiple
from crypto._hash import challenge
from crypto._joint_key import JointKey, joint_public_key, public_share, public_share_reference, qualify
from crypto._proofs import ChaumPedersenProof, SchnorrProof
from crypto._trustee import TrusteeKeyGen

BASE = bytes.fromhex("a1" * 32)


@dataclass
class Ceremony:
    t: int
    n: int
    gens: dict[int, TrusteeKeyGen]
    pub: dict[int, TrusteeCommitments]
    enc: dict[tuple[int, int], EncryptedShare]
    joint: JointKey
    keys: dict[int, TrusteeKey]


def keygens(t: int, n: int, rng: random.Random, base: bytes = BASE) -> dict[int, TrusteeKeyGen]:
    return {
        i: TrusteeKeyGen.generate(i, threshold=t, trustees=n, base_hash=base, rng=rng)
        for i in range(1, n + 1)
    }


def run_ceremony(t: int, n: int, seed: int = 0) -> Ceremony:
    rng = random.Random(seed)
    gens = keygens(t, n, rng)
    pub = {i: g.commitments for i, g in gens.items()}
    enc = {(i, j): gens[i].encrypt_share(pub[j], rng=rng) for i in gens for j in gens if i != j}
    q = qualify(pub.values(), base_hash=BASE, threshold=t, trustees=n)
    assert q.qualified == tuple(range(1, n + 1)) and not q.disqualified
    joint = JointKey.from_commitments(pub.values(), q, base_hash=BASE)
    keys = {}
    for j, g in gens.items():
        received = {i: g.decrypt_share(enc[(i, j)], pub[i]) for i in q.qualified if i != j}
        keys[j] = g.finalize(received, [pub[i] for i in q.qualified])
    return Ceremony(t, n, gens, pub, enc, joint, keys)


@pytest.fixture(scope="module")
def c35() -> Ceremony:
    return run_ceremony(3, 5, seed=35)


def bad_share(
    dealer: TrusteeKeyGen, recipient: TrusteeCommitments, share: Scalar, base: bytes = BASE
) -> EncryptedShare:
    """What a cheating dealer sends: a well-formed ciphertext of a share that fails the commitments."""
    box = Box(dealer.x25519_private_key, PublicKey(recipient.x25519_public_key))
    msg = share_plaintext(base, dealer.trustee, recipient.trustee, share)
    return EncryptedShare(dealer.trustee, recipient.trustee, bytes(box.encrypt(msg, bytes(24))))


# ------------------------------------------------------------------------------------------ end to end


@settings(max_examples=25, deadline=None)
@given(
    tn=st.integers(1, 5).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
    m=st.integers(0, 50),
    seed=st.integers(0, 2**32),
)
def test_dkg_every_t_subset_decrypts(tn: tuple[int, int], m: int, seed: int) -> None:
    t, n = tn
    c = run_ceremony(t, n, seed)
    # the joint key is the sum of the constant terms, and the secret shares interpolate to its discrete log
    secret = sum(g.coefficients[0].value for g in c.gens.values()) % L
    assert c.joint.public_key == Scalar(secret) * G
    for j in range(1, n + 1):
        assert c.keys[j].public_share == c.joint.public_share(j)
    ct = encrypt(c.joint.public_key, m, Scalar(seed + 1))
    partials = {j: k.partial_decrypt(ct, rng=random.Random(j)) for j, k in c.keys.items()}
    for subset in itertools.combinations(range(1, n + 1), t):
        res = combine(ct, [partials[j] for j in subset], c.joint)
        assert res.point == small_multiple(m)
        assert res.used == subset and res.excluded == ()
    if t > 1:
        for subset in itertools.combinations(range(1, n + 1), t - 1):
            with pytest.raises(ThresholdError) as ei:
                combine(ct, [partials[j] for j in subset], c.joint)
            assert ei.value.check == "too-few-partials"


@settings(max_examples=4, deadline=None)
@given(
    tn=st.integers(6, 7).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))), seed=st.integers(0, 99)
)
def test_dkg_up_to_seven_trustees(tn: tuple[int, int], seed: int) -> None:
    t, n = tn
    c = run_ceremony(t, n, seed)
    ct = encrypt(c.joint.public_key, 3, Scalar(seed + 7))
    rnd = random.Random(seed)
    subset = sorted(rnd.sample(range(1, n + 1), t))
    res = combine(ct, [c.keys[j].partial_decrypt(ct) for j in subset], c.joint)
    assert res.point == small_multiple(3)


def test_shares_lie_on_a_degree_t_minus_one_polynomial(c35: Ceremony) -> None:
    # t shares interpolate to the joint secret; t-1 shares do not (the dealt polynomials have degree t-1).
    secret = sum(g.coefficients[0].value for g in c35.gens.values()) % L
    idx = (1, 2)
    guess = sum(lagrange_coefficient(j, idx).value * c35.keys[j].secret_share.value for j in idx) % L
    assert guess != secret
    idx3 = (1, 2, 4)
    full = sum(lagrange_coefficient(j, idx3).value * c35.keys[j].secret_share.value for j in idx3) % L
    assert full == secret


def test_zero_tally_identity_ciphertext_decrypts(c35: Ceremony) -> None:
    assert ZERO == Ciphertext(IDENTITY, IDENTITY) == sum_ciphertexts([])
    partials = [c35.keys[j].partial_decrypt(ZERO) for j in (2, 3, 5)]
    assert all(p.decryption_share == IDENTITY for p in partials)
    for p in partials:
        verify_partial(p, ZERO, c35.joint)
    res = combine(ZERO, partials, c35.joint)
    assert res.point == IDENTITY == small_multiple(0)
    # a cheater cannot claim a non-identity share of the identity pad
    forged = replace(partials[0], decryption_share=G)
    with pytest.raises(ThresholdError) as ei:
        verify_partial(forged, ZERO, c35.joint)
    assert isinstance(ei.value.__cause__, ProofError)
    assert ei.value.__cause__.check == "chaum-pedersen-identity"


def test_homomorphic_tally_decrypts(c35: Ceremony) -> None:
    votes = [1, 0, 1, 1, 0, 1]
    cts = [encrypt(c35.joint.public_key, v, Scalar(100 + k)) for k, v in enumerate(votes)]
    total = sum_ciphertexts(cts)
    res = combine(total, [c35.keys[j].partial_decrypt(total) for j in (1, 4, 5)], c35.joint)
    assert res.point == small_multiple(sum(votes))
    assert discrete_log(res.point, len(votes)) == 4


# ---------------------------------------------------------------------------------- bad partials


def test_wrong_partial_is_identified_excluded_and_rest_combine(c35: Ceremony) -> None:
    ct = encrypt(c35.joint.public_key, 5, Scalar(999))
    other = encrypt(c35.joint.public_key, 6, Scalar(1000))
    good = {j: c35.keys[j].partial_decrypt(ct) for j in range(1, 6)}
    wrong_share = replace(good[2], decryption_share=good[2].decryption_share + G)
    wrong_ct = c35.keys[3].partial_decrypt(other)  # proof for another ciphertext
    res = combine(ct, [good[1], wrong_share, wrong_ct, good[5], good[4]], c35.joint)
    assert res.point == small_multiple(5)
    assert res.used == (1, 4, 5)
    assert [(e.trustee, e.check) for e in res.excluded] == [(2, "partial-proof"), (3, "partial-proof")]
    assert "trustee 2" in res.excluded[0].reason


def test_duplicate_and_relabelled_partials_are_excluded(c35: Ceremony) -> None:
    ct = encrypt(c35.joint.public_key, 2, Scalar(77))
    good = {j: c35.keys[j].partial_decrypt(ct) for j in range(1, 6)}
    relabelled = replace(good[4], trustee=1)  # trustee 4's partial claimed as trustee 1's: proof fails
    res = combine(ct, [relabelled, good[2], good[3], good[5]], c35.joint)
    assert res.used == (2, 3, 5) and [(e.trustee, e.check) for e in res.excluded] == [(1, "partial-proof")]
    # trustee 1 sends two different partials: both copies are left out (it equivocated)
    res = combine(ct, [good[1], relabelled, good[2], good[3], good[5]], c35.joint)
    assert res.used == (2, 3, 5) and [(e.trustee, e.check) for e in res.excluded] == [
        (1, "partial-duplicate")
    ]
    assert res.point == small_multiple(2)
    with pytest.raises(ThresholdError) as ei:
        combine(ct, [good[1], relabelled, good[2], good[3]], c35.joint)
    assert ei.value.check == "too-few-partials"


def test_verify_partial_names_the_trustee(c35: Ceremony) -> None:
    ct = encrypt(c35.joint.public_key, 1, Scalar(5))
    p = c35.keys[3].partial_decrypt(ct)
    verify_partial(p, ct, c35.joint)
    bad = replace(p, proof=ChaumPedersenProof(p.proof.commitments, p.proof.response + 1))
    with pytest.raises(ThresholdError) as ei:
        verify_partial(bad, ct, c35.joint)
    assert ei.value.check == "partial-proof" and ei.value.subject == "trustee 3"
    assert "trustee 3" in ei.value.operator_message
    with pytest.raises(ThresholdError) as ei:
        verify_partial(replace(p, trustee=6), ct, c35.joint)
    assert ei.value.check == "partial-trustee"
    # the proof is bound to the election base hash
    other_joint = replace(c35.joint, base_hash=bytes(32))
    with pytest.raises(ThresholdError):
        verify_partial(p, ct, other_joint)


def test_lagrange_coefficients() -> None:
    # interpolating any polynomial of degree < |S| at 0 from its values on S gives P(0)
    rnd = random.Random(4)
    for size in range(1, 6):
        coeffs = [rnd.randrange(L) for _ in range(size)]
        S = sorted(rnd.sample(range(1, 50), size))
        values = {x: sum(a * x**k for k, a in enumerate(coeffs)) % L for x in S}
        assert sum(lagrange_coefficient(x, S).value * values[x] for x in S) % L == coeffs[0]
    with pytest.raises(ValueError):
        lagrange_coefficient(3, [1, 2])
    with pytest.raises(ValueError):
        lagrange_coefficient(0, [0, 1])


def test_lagrange_combine_interpolates_in_the_exponent() -> None:
    # shares s_j·P of a polynomial's values combine to P(0)·P, for any subset of size > degree
    rnd = random.Random(5)
    base = Scalar(rnd.randrange(1, L)) * G
    for size in range(1, 5):
        coeffs = [rnd.randrange(L) for _ in range(size)]
        S = sorted(rnd.sample(range(1, 20), size))
        shares = {x: Scalar(sum(a * x**k for k, a in enumerate(coeffs)) % L) * base for x in S}
        assert lagrange_combine(shares) == Scalar(coeffs[0]) * base
        if size > 1:  # one share too few: another point
            fewer = {x: shares[x] for x in S[1:]}
            assert lagrange_combine(fewer) != Scalar(coeffs[0]) * base
    assert lagrange_combine({}) == IDENTITY


# ------------------------------------------------------------------------------- shares and complaints


def test_share_decryption_errors(c35: Ceremony) -> None:
    g1, g2 = c35.gens[1], c35.gens[2]
    enc = c35.enc[(1, 2)]
    assert g2.decrypt_share(enc, c35.pub[1]) == g1.share_for(2)
    flipped = enc.ciphertext[:30] + bytes([enc.ciphertext[30] ^ 1]) + enc.ciphertext[31:]
    with pytest.raises(ThresholdError) as ei:
        g2.decrypt_share(replace(enc, ciphertext=flipped), c35.pub[1])
    assert ei.value.check == "share-decryption" and ei.value.subject == "dealer 1 -> trustee 2"
    wrong_election = bad_share(g1, c35.pub[2], g1.share_for(2), base=bytes(32))
    with pytest.raises(ThresholdError) as ei:
        g2.decrypt_share(wrong_election, c35.pub[1])
    assert ei.value.check == "share-header"
    for_other = bad_share(g1, c35.pub[2], g1.share_for(3))  # the share of trustee 3, sent to 2
    with pytest.raises(ThresholdError) as ei:
        g2.decrypt_share(for_other, c35.pub[1])
    assert ei.value.check == "share-commitment"
    with pytest.raises(ValueError):
        c35.gens[3].decrypt_share(enc, c35.pub[1])  # not addressed to trustee 3


def test_complaint_key_is_the_box_key_of_the_pair(c35: Ceremony) -> None:
    complaint = c35.gens[2].complain(c35.pub[1])
    dealer_side = Box(c35.gens[1].x25519_private_key, PublicKey(c35.pub[2].x25519_public_key)).shared_key()
    assert complaint.shared_key == dealer_side
    assert (
        SecretBox(complaint.shared_key).decrypt(c35.enc[(1, 2)].ciphertext)[40:]
        == c35.gens[1].share_for(2).to_bytes()
    )


def test_bad_share_complaint_disqualifies_silent_dealer() -> None:
    t, n = 2, 4
    rng = random.Random(77)
    gens = keygens(t, n, rng)
    pub = {i: g.commitments for i, g in gens.items()}
    enc = {(i, j): gens[i].encrypt_share(pub[j], rng=rng) for i in gens for j in gens if i != j}
    enc[(3, 1)] = bad_share(gens[3], pub[1], gens[3].share_for(1) + 1)  # dealer 3 cheats trustee 1
    with pytest.raises(ThresholdError) as ei:
        gens[1].decrypt_share(enc[(3, 1)], pub[3])
    assert ei.value.check == "share-commitment"
    complaint = gens[1].complain(pub[3])
    # dealer 3 does not answer: disqualified, and the evidence shows it sent a bad share
    r = resolve_complaint(complaint, dealer=pub[3], encrypted_share=enc[(3, 1)], answer=None, base_hash=BASE)
    assert r.outcome is ComplaintOutcome.DEALER_DISQUALIFIED and r.dealer_disqualified
    assert r.at_fault == "dealer" and r.share is None and (r.dealer, r.complainant) == (3, 1)
    # dealer 3 answers with a share that fails its commitments: disqualified too
    lie = ComplaintAnswer(3, 1, gens[3].share_for(1) + 2)
    r2 = resolve_complaint(complaint, dealer=pub[3], encrypted_share=enc[(3, 1)], answer=lie, base_hash=BASE)
    assert r2.dealer_disqualified and r2.at_fault == "dealer"
    # the rest of the ceremony goes on without dealer 3; trustee 3 still holds a share of the joint key
    q = qualify(pub.values(), base_hash=BASE, threshold=t, trustees=n, resolutions=[r])
    assert q.qualified == (1, 2, 4) and set(q.disqualified) == {3}
    joint = JointKey.from_commitments(pub.values(), q, base_hash=BASE)
    assert joint.public_key == joint_public_key([pub[1], pub[2], pub[4]])
    keys = {
        j: gens[j].finalize(
            {i: gens[j].decrypt_share(enc[(i, j)], pub[i]) for i in q.qualified if i != j},
            [pub[i] for i in q.qualified],
        )
        for j in range(1, n + 1)
    }
    ct = encrypt(joint.public_key, 4, Scalar(31))
    for pair in itertools.combinations(range(1, n + 1), t):
        assert combine(ct, [keys[j].partial_decrypt(ct) for j in pair], joint).point == small_multiple(4)


def test_bad_share_answered_publicly_keeps_dealer() -> None:
    t, n = 2, 3
    rng = random.Random(5)
    gens = keygens(t, n, rng)
    pub = {i: g.commitments for i, g in gens.items()}
    bad = bad_share(gens[2], pub[1], Scalar(12345))
    complaint = gens[1].complain(pub[2])
    answer = gens[2].answer(complaint)
    r = resolve_complaint(complaint, dealer=pub[2], encrypted_share=bad, answer=answer, base_hash=BASE)
    assert r.outcome is ComplaintOutcome.SHARE_REVEALED and not r.dealer_disqualified
    assert r.at_fault == "dealer"  # provably sent a bad ciphertext, but repaired it in public
    assert r.share == gens[2].share_for(1)
    verify_share(pub[2], 1, r.share)


def test_false_complaint_is_rejected() -> None:
    t, n = 2, 3
    rng = random.Random(6)
    gens = keygens(t, n, rng)
    pub = {i: g.commitments for i, g in gens.items()}
    enc = gens[2].encrypt_share(pub[1], rng=rng)  # an honest share
    # (a) the complainant reveals its true key: the ciphertext opens to a valid share, complaint rejected
    honest_key = gens[1].complain(pub[2])
    r = resolve_complaint(honest_key, dealer=pub[2], encrypted_share=enc, answer=None, base_hash=BASE)
    assert r.outcome is ComplaintOutcome.COMPLAINT_REJECTED and r.at_fault == "complainant"
    assert not r.dealer_disqualified and r.share == gens[2].share_for(1)
    # (b) it reveals a wrong key: undecidable from the ciphertext, the dealer's answer resolves it
    lying = Complaint(2, 1, bytes(32))
    answer = gens[2].answer(lying)
    r = resolve_complaint(lying, dealer=pub[2], encrypted_share=enc, answer=answer, base_hash=BASE)
    assert r.outcome is ComplaintOutcome.SHARE_REVEALED and r.at_fault is None and not r.dealer_disqualified
    q = qualify(pub.values(), base_hash=BASE, threshold=t, trustees=n, resolutions=[r])
    assert q.qualified == (1, 2, 3)
    # ... but a dealer who does not answer a complaint it cannot refute with the ciphertext is out
    r = resolve_complaint(lying, dealer=pub[2], encrypted_share=enc, answer=None, base_hash=BASE)
    assert r.dealer_disqualified


def test_missing_share_and_mismatched_complaint_pieces(c35: Ceremony) -> None:
    complaint = c35.gens[2].complain(c35.pub[1])
    r = resolve_complaint(complaint, dealer=c35.pub[1], encrypted_share=None, answer=None, base_hash=BASE)
    assert r.dealer_disqualified and r.reason == "no valid share was published"
    ans = c35.gens[1].answer(complaint)
    r = resolve_complaint(complaint, dealer=c35.pub[1], encrypted_share=None, answer=ans, base_hash=BASE)
    assert r.outcome is ComplaintOutcome.SHARE_REVEALED
    for kwargs in (
        {"dealer": c35.pub[3], "encrypted_share": None, "answer": None},
        {"dealer": c35.pub[1], "encrypted_share": c35.enc[(1, 3)], "answer": None},
        {"dealer": c35.pub[1], "encrypted_share": None, "answer": ComplaintAnswer(1, 4, ans.share)},
    ):
        with pytest.raises(ThresholdError) as ei:
            resolve_complaint(complaint, base_hash=BASE, **kwargs)  # type: ignore[arg-type]
        assert ei.value.check == "complaint-mismatch"
    with pytest.raises(ValueError):
        c35.gens[2].answer(complaint)  # not the dealer
    with pytest.raises(ValueError):
        c35.gens[2].complain(c35.pub[2])


# --------------------------------------------------------------------------------------- qualification


def test_commitment_verification_and_qualification(c35: Ceremony) -> None:
    pub = dict(c35.pub)
    for c in pub.values():
        c.verify(base_hash=BASE, threshold=3, trustees=5)
    c1 = pub[1]
    with pytest.raises(ThresholdError) as ei:
        c1.verify(base_hash=bytes(32), threshold=3, trustees=5)  # proofs are bound to the base hash
    assert ei.value.check == "coefficient-proof" and ei.value.subject == "trustee 1"
    with pytest.raises(ThresholdError) as ei:
        c1.verify(base_hash=BASE, threshold=3, trustees=6)  # ... and to n
    assert ei.value.check == "coefficient-proof"
    with pytest.raises(ThresholdError) as ei:
        c1.verify(base_hash=BASE, threshold=2, trustees=5)
    assert ei.value.check == "commitment-count"
    with pytest.raises(ThresholdError) as ei:
        replace(c1, trustee=2).verify(base_hash=BASE, threshold=3, trustees=5)  # another dealer's proofs
    assert ei.value.check == "coefficient-proof"
    swapped_key = replace(c1, x25519_public_key=pub[2].x25519_public_key)  # Box key is bound by the proofs
    with pytest.raises(ThresholdError):
        swapped_key.verify(base_hash=BASE, threshold=3, trustees=5)
    reordered = replace(c1, commitments=c1.commitments[::-1], proofs=c1.proofs[::-1])
    with pytest.raises(ThresholdError):
        reordered.verify(base_hash=BASE, threshold=3, trustees=5)
    ident = replace(c1, commitments=(IDENTITY, *c1.commitments[1:]))
    with pytest.raises(ThresholdError) as ei:
        ident.verify(base_hash=BASE, threshold=3, trustees=5)
    assert ei.value.check == "commitment-identity"
    with pytest.raises(ThresholdError) as ei:
        replace(c1, trustee=6).verify(base_hash=BASE, threshold=3, trustees=5)
    assert ei.value.check == "trustee-index"

    # dealer 2 publishes broken commitments, dealer 4 twice, dealer 5 nothing: only 1 and 3 remain (< t)
    broken = replace(pub[2], proofs=(SchnorrProof(G, Scalar(2)), *pub[2].proofs[1:]))
    entries = [pub[1], broken, pub[3], pub[4], pub[4]]
    with pytest.raises(ThresholdError) as ei:
        qualify(entries, base_hash=BASE, threshold=3, trustees=5)
    assert ei.value.check == "too-few-qualified"
    q = qualify([*entries, pub[5]], base_hash=BASE, threshold=3, trustees=5)
    assert q.qualified == (1, 3, 5)
    assert q.disqualified == {
        2: "invalid commitments (coefficient-proof)",
        4: "published commitments more than once",
    }
    q = qualify([pub[5], pub[3], pub[1]], base_hash=BASE, threshold=3, trustees=5)
    assert q.qualified == (1, 3, 5) and q.disqualified == {
        2: "published no commitments",
        4: "published no commitments",
    }
    with pytest.raises(ThresholdError) as ei:
        qualify([*pub.values(), replace(pub[1], trustee=6)], base_hash=BASE, threshold=3, trustees=5)
    assert ei.value.check == "trustee-index"


def test_public_share_matches_reference_and_secret(c35: Ceremony) -> None:
    q = list(c35.pub.values())
    for j in range(1, 6):
        assert public_share(q, j) == public_share_reference(q, j) == c35.keys[j].public_share
        assert c35.keys[j].secret_share.value == sum(g.share_for(j).value for g in c35.gens.values()) % L


@settings(max_examples=30, deadline=None)
@given(
    t=st.integers(1, 4),
    dealers=st.integers(1, 4),
    j=st.integers(1, 255),
    seed=st.integers(0, 2**32),
)
def test_public_share_fast_path_equals_reference(t: int, dealers: int, j: int, seed: int) -> None:
    rnd = random.Random(seed)
    fake = [
        TrusteeCommitments(
            i,
            tuple(Scalar(rnd.randrange(1, L)) * G for _ in range(t)),
            tuple(SchnorrProof(IDENTITY, Scalar(0)) for _ in range(t)),
            bytes(PrivateKey(rnd.randbytes(32)).public_key),
        )
        for i in range(1, dealers + 1)
    ]
    assert public_share(fake, j) == public_share_reference(fake, j)
    assert fake[0].evaluate(j) == public_share_reference(fake[:1], j)


def test_finalize_checks_received_shares(c35: Ceremony) -> None:
    g = c35.gens[2]
    qualified = list(c35.pub.values())
    received = {i: c35.gens[i].share_for(2) for i in (1, 3, 4, 5)}
    assert g.finalize(received, qualified) == c35.keys[2]
    with pytest.raises(ThresholdError) as ei:
        g.finalize({**received, 4: received[4] + 1}, qualified)
    assert ei.value.check == "share-commitment"
    with pytest.raises(ValueError):
        g.finalize({i: received[i] for i in (1, 3, 4)}, qualified)  # a share is missing
    with pytest.raises(ValueError):
        g.finalize(received, qualified[:2])  # fewer than t dealers


# ------------------------------------------------------------------------------------------ encodings


def _json_round_trip(obj: object) -> object:
    return json.loads(json.dumps(obj))


def test_public_values_round_trip(c35: Ceremony) -> None:
    ct = encrypt(c35.joint.public_key, 2, Scalar(3))
    p = c35.keys[1].partial_decrypt(ct)
    complaint = c35.gens[2].complain(c35.pub[1])
    values = [
        c35.pub[1],
        c35.enc[(1, 2)],
        complaint,
        c35.gens[1].answer(complaint),
        p,
        c35.joint,
    ]
    for v in values:
        d = _json_round_trip(v.to_dict())  # type: ignore[attr-defined]
        assert type(v).from_dict(d) == v  # type: ignore[attr-defined]
    d = c35.pub[1].to_dict()
    assert d["commitments"][0] == c35.pub[1].commitments[0].hex() and d["trustee"] == 1
    assert set(complaint.to_dict()) == {"complainant", "dealer", "evidence"}
    assert c35.joint.to_dict()["public_shares"]["5"] == c35.joint.public_share(5).hex()


def test_secrets_round_trip_and_hide_in_repr(c35: Ceremony) -> None:
    g = c35.gens[3]
    d = _json_round_trip(g.to_dict())
    assert TrusteeKeyGen.from_dict(d).to_dict() == g.to_dict()
    k = c35.keys[3]
    assert TrusteeKey.from_dict(_json_round_trip(k.to_dict())) == k
    for secret in (g.coefficients[0].hex(), k.secret_share.hex(), bytes(g.x25519_private_key).hex()):
        assert secret not in repr(g) + repr(k)
    tampered = dict(k.to_dict(), public_share=c35.keys[4].public_share.hex())
    with pytest.raises(InvalidEncoding):
        TrusteeKey.from_dict(tampered)
    wrong_coeff = dict(d, coefficients=[c35.gens[4].coefficients[0].hex(), *d["coefficients"][1:]])  # type: ignore[index]
    with pytest.raises(InvalidEncoding):
        TrusteeKeyGen.from_dict(wrong_coeff)
    wrong_x25519 = dict(d, x25519_private_key=bytes(c35.gens[4].x25519_private_key).hex())  # type: ignore[arg-type]
    with pytest.raises(InvalidEncoding):
        TrusteeKeyGen.from_dict(wrong_x25519)
    with pytest.raises(InvalidEncoding):
        TrusteeKeyGen.from_dict(dict(d, format="tvote-trustee-keygen/1"))  # type: ignore[arg-type]


SMALL_ORDER_X25519 = [bytes(32), (1).to_bytes(32, "little")]


def test_strict_decoding_rejects_malformed_input(c35: Ceremony) -> None:
    pub = c35.pub[1].to_dict()
    enc = c35.enc[(1, 2)].to_dict()
    ct = encrypt(c35.joint.public_key, 2, Scalar(3))
    part = c35.keys[1].partial_decrypt(ct).to_dict()
    joint = c35.joint.to_dict()
    comp = c35.gens[2].complain(c35.pub[1]).to_dict()
    ans = {"complainant": 2, "dealer": 1, "share": Scalar(9).hex()}
    cases: list[tuple[type, object]] = [
        (TrusteeCommitments, {**pub, "extra": 1}),
        (TrusteeCommitments, {**pub, "trustee": True}),
        (TrusteeCommitments, {**pub, "trustee": 0}),
        (TrusteeCommitments, {**pub, "trustee": 256}),
        (TrusteeCommitments, {**pub, "trustee": "1"}),
        (TrusteeCommitments, {**pub, "commitments": pub["commitments"][:2]}),
        (TrusteeCommitments, {**pub, "commitments": []}),
        (TrusteeCommitments, {**pub, "proofs": [], "commitments": []}),
        (TrusteeCommitments, {**pub, "commitments": tuple(pub["commitments"])}),
        (
            TrusteeCommitments,
            {**pub, "commitments": [pub["commitments"][0].upper(), *pub["commitments"][1:]]},
        ),
        # the edwards25519 identity encoding is not a ristretto255 element
        (TrusteeCommitments, {**pub, "commitments": ["01" + "00" * 31, *pub["commitments"][1:]]}),
        (TrusteeCommitments, {**pub, "x25519_public_key": pub["x25519_public_key"][:-2]}),
        *[(TrusteeCommitments, {**pub, "x25519_public_key": k.hex()}) for k in SMALL_ORDER_X25519],
        (EncryptedShare, {**enc, "ciphertext": enc["ciphertext"][:-2]}),
        (EncryptedShare, {**enc, "recipient": 1}),
        (EncryptedShare, {**enc, "sender": None}),
        (EncryptedShare, {k: v for k, v in enc.items() if k != "sender"}),
        (PartialDecryption, {**part, "decryption_share": "ff" * 32}),
        (
            PartialDecryption,
            {**part, "proof": {**part["proof"], "response": (L).to_bytes(32, "little").hex()}},
        ),
        (PartialDecryption, {**part, "trustee": 1.0}),
        (Complaint, {**comp, "evidence": comp["evidence"] + "00"}),
        (Complaint, {**comp, "dealer": 2}),
        (Complaint, {**comp, "shared_key": comp["evidence"]}),
        (ComplaintAnswer, {**ans, "share": "ff" * 32}),
        (ComplaintAnswer, [1, 2, 3]),
        (JointKey, {**joint, "threshold": 6}),
        (JointKey, {**joint, "threshold": 0}),
        (JointKey, {**joint, "threshold": True}),
        (JointKey, {**joint, "qualified": [1, 2]}),
        (JointKey, {**joint, "qualified": [2, 1, 3, 4, 5]}),
        (JointKey, {**joint, "qualified": [1, 1, 2, 3]}),
        (JointKey, {**joint, "qualified": [1, 2, 3, 6]}),
        (JointKey, {**joint, "joint_key": IDENTITY.hex()}),
        (JointKey, {**joint, "public_shares": {**joint["public_shares"], "7": G.hex()}}),
        (
            JointKey,
            {**joint, "public_shares": {str(j): v for j, v in joint["public_shares"].items() if j != "2"}},
        ),
        (JointKey, {**joint, "base_hash": "A1" * 32}),
    ]
    for cls, d in cases:
        with pytest.raises(InvalidEncoding):
            cls.from_dict(d)
    # the honest encodings decode
    assert TrusteeCommitments.from_dict(pub) == c35.pub[1]
    assert EncryptedShare.from_dict(enc).ciphertext.__len__() == ENCRYPTED_SHARE_LEN


def test_generation_validates_parameters() -> None:
    for t, n, i in [(0, 3, 1), (4, 3, 1), (2, 3, 0), (2, 3, 4), (1, 256, 1), (True, 3, 1)]:
        with pytest.raises(InvalidEncoding):
            TrusteeKeyGen.generate(i, threshold=t, trustees=n, base_hash=BASE)
    with pytest.raises(InvalidEncoding):
        TrusteeKeyGen.generate(1, threshold=1, trustees=1, base_hash=BASE[:31])
    g = TrusteeKeyGen.generate(1, threshold=1, trustees=1, base_hash=BASE)
    with pytest.raises(ValueError):
        g.encrypt_share(g.commitments)  # a dealer keeps its own share
    with pytest.raises(TypeError):
        TrusteeKey(1, 1, 1, BASE, 5)  # type: ignore[arg-type]
    assert isinstance(Point.from_hex(g.commitments.commitments[0].hex()), Point)


def test_single_trustee_election() -> None:
    c = run_ceremony(1, 1, seed=1)
    ct = encrypt(c.joint.public_key, 9, Scalar(2))
    assert combine(ct, [c.keys[1].partial_decrypt(ct)], c.joint).point == small_multiple(9)
    assert c.keys[1].secret_share == c.gens[1].coefficients[0]


# ------------------------------------------------------------------------------ known-answer vectors

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "threshold.json"


def _generator():  # type: ignore[no-untyped-def]
    return load_tool("gen_threshold_vectors")


@pytest.fixture(scope="module")
def vec() -> dict:
    return read_json(VECTORS)  # type: ignore[no-any-return]


def test_threshold_vectors_are_reproduced_byte_for_byte() -> None:
    gen = _generator()
    text = VECTORS.read_text(encoding="utf-8")
    assert gen.build()[gen.THRESHOLD] == text
    assert "tools/gen_threshold_vectors.py" in read_json(VECTORS)["source"]


def _coefficient_ctx(g: TrusteeKeyGen, k: int) -> tuple:
    c = g.commitments
    ctx = coefficient_context(g.base_hash, g.threshold, g.trustees, c.trustee, k, c.x25519_public_key)
    return (len(ctx), *ctx)


def test_threshold_vectors_key_ceremony(vec: dict) -> None:
    t, n, base = vec["threshold"], vec["trustees"], bytes.fromhex(vec["base_hash"])
    assert (t, n) == (3, 5)
    gens = {g["trustee"]: TrusteeKeyGen.from_dict(g) for g in vec["trustee_secrets"]}
    pub = {i: g.commitments for i, g in gens.items()}
    for i, g in gens.items():
        # shares[i][j] = P_i(j), evaluated here with plain integers
        coeffs = [a.value for a in g.coefficients]
        for j in range(1, n + 1):
            assert vec["shares"][str(i)][str(j)] == Scalar(sum(a * j**k for k, a in enumerate(coeffs))).hex()
        # the published Schnorr nonces reproduce the commitment proofs
        for k, (a, proof) in enumerate(zip(g.coefficients, g.commitments.proofs, strict=True)):
            nonce = Scalar.from_hex(vec["coefficient_proof_nonces"][str(i)][k])
            assert proof.commitment == nonce * G
            c = challenge("schnorr-pok", G, a * G, proof.commitment, *_coefficient_ctx(g, k))
            assert proof.response == nonce + c * a
    assert len(vec["encrypted_shares"]) == n * (n - 1)
    for d in vec["encrypted_shares"]:
        e = EncryptedShare.from_dict(d)
        assert (
            gens[e.recipient].decrypt_share(e, pub[e.sender]).hex()
            == vec["shares"][str(e.sender)][str(e.recipient)]
        )
    q = qualify(pub.values(), base_hash=base, threshold=t, trustees=n)
    joint = JointKey.from_commitments(pub.values(), q, base_hash=base)
    assert joint == JointKey.from_dict(vec["joint_key"])
    assert joint.public_key == Scalar(sum(g.coefficients[0].value for g in gens.values())) * G
    for d in vec["trustee_keys"]:
        key = TrusteeKey.from_dict(d)
        j = key.trustee
        assert key.secret_share == Scalar(
            sum(int.from_bytes(bytes.fromhex(vec["shares"][str(i)][str(j)]), "little") for i in gens)
        )
        assert key.public_share == joint.public_share(j)


def test_threshold_vectors_decryption(vec: dict) -> None:
    joint = JointKey.from_dict(vec["joint_key"])
    keys = {d["trustee"]: TrusteeKey.from_dict(d) for d in vec["trustee_keys"]}
    m, r = vec["ciphertext"]["m"], Scalar.from_hex(vec["ciphertext"]["r"])
    ct = Ciphertext.from_dict(vec["ciphertext"]["ct"])
    assert ct == encrypt(joint.public_key, m, r)
    parts = {d["trustee"]: PartialDecryption.from_dict(d) for d in vec["partials"]}
    for j, p in parts.items():
        verify_partial(p, ct, joint)
        assert p.decryption_share == keys[j].secret_share * ct.a
        k = Scalar.from_hex(vec["partial_nonces"][str(j)])
        assert p.proof.commitments == (k * G, k * ct.a)
        X, Y = keys[j].public_share, p.decryption_share
        ctx = partial_decryption_context(joint.base_hash, j, ct)
        c = challenge("chaum-pedersen", G, ct.a, X, Y, *p.proof.commitments, len(ctx), *ctx)
        assert p.proof.response == k + c * keys[j].secret_share
    for combo in vec["combinations"]:
        S = combo["trustees"]
        for j in S:  # λ_j = Π m/(m-j), recomputed with Python integers
            num = den = 1
            for mm in S:
                if mm != j:
                    num, den = num * mm, den * (mm - j)
            assert combo["lagrange"][str(j)] == Scalar(num * pow(den % L, -1, L)).hex()
        res = combine(ct, [parts[j] for j in S], joint)
        assert res.point.hex() == combo["result"] and res.point == small_multiple(m)
    zero = vec["zero_tally"]
    zct = Ciphertext.from_dict(zero["ct"])
    assert zct == ZERO
    res = combine(zct, [PartialDecryption.from_dict(d) for d in zero["partials"]], joint)
    assert res.point.hex() == zero["result"] == IDENTITY.hex()


def test_threshold_vectors_complaints(vec: dict) -> None:
    base = bytes.fromhex(vec["base_hash"])
    pub = {g["trustee"]: TrusteeCommitments.from_dict(g["commitments"]) for g in vec["trustee_secrets"]}
    outcomes = []
    for case in vec["complaints"]:
        c = Complaint.from_dict(case["complaint"])
        r = resolve_complaint(
            c,
            dealer=pub[c.dealer],
            encrypted_share=EncryptedShare.from_dict(case["encrypted_share"]),
            answer=None if case["answer"] is None else ComplaintAnswer.from_dict(case["answer"]),
            base_hash=base,
        )
        assert (r.outcome.value, r.at_fault) == (case["outcome"], case["at_fault"])
        outcomes.append(r.outcome)
    assert outcomes == [ComplaintOutcome.DEALER_DISQUALIFIED, ComplaintOutcome.COMPLAINT_REJECTED]


def test_combine_tally_excludes_whole_trustees(c35: Ceremony) -> None:
    K = c35.joint.public_key
    votes = [3, 0, 1]
    cts = [encrypt(K, v, Scalar(50 + k)) for k, v in enumerate(votes)] + [ZERO]
    subs = {j: [c35.keys[j].partial_decrypt(ct) for ct in cts] for j in range(1, 6)}
    subs[2][2] = replace(subs[2][2], decryption_share=subs[2][2].decryption_share + G)  # one bad partial
    subs[4] = subs[4][:3]  # short submission
    res = combine_tally(cts, subs, c35.joint)
    assert res.points == (*(small_multiple(v) for v in votes), IDENTITY)
    assert res.used == (1, 3, 5)
    assert [(e.trustee, e.check) for e in res.excluded] == [(2, "partial-proof"), (4, "partial-count")]
    assert "ciphertext 2" in res.excluded[0].reason
    relabelled = {**subs, 5: [replace(p, trustee=1) for p in subs[5]]}
    with pytest.raises(ThresholdError) as ei:
        combine_tally(cts, relabelled, c35.joint)
    assert ei.value.check == "too-few-partials"
    # the same points as ciphertext-by-ciphertext combination with any other valid trustee set
    other = combine_tally(cts, {j: subs[j] for j in (1, 3, 5)}, c35.joint)
    assert other.points == res.points and other.excluded == ()
    for ct, pt in zip(cts, res.points, strict=True):
        assert combine(ct, [c35.keys[j].partial_decrypt(ct) for j in (2, 4, 5)], c35.joint).point == pt
    with pytest.raises(TypeError):
        combine_tally(cts, {"1": subs[1]}, c35.joint)  # type: ignore[dict-item]
