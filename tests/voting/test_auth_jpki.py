"""JPKI ballot-signature verification against a generated JPKI-shaped test CA (and the real J-LIS roots)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voting.auth as auth
from voting.auth import (
    CrlFileChecker,
    JpkiError,
    JpkiEvidence,
    JpkiSubmission,
    JpkiVerifier,
    RevocationError,
    RollKey,
    load_trust_anchors,
    roll_match_key,
    signed_message,
)
from voting.testing import JpkiTestCa, TestResident, encode_jpki_birth_date, new_rsa_key

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
BASE = hashlib.sha256(b"election base").digest()
BALLOT = hashlib.sha256(b"ballot 1").digest()
OTHER_BALLOT = hashlib.sha256(b"ballot 2").digest()
CHALLENGE = bytes(range(32))
ROLL_KEY = RollKey(b"\x42" * 32)
ALICE = TestResident("筑波 花子", dt.date(1990, 4, 1), "茨城県つくば市研究学園一丁目1番地1", sex="2")
# the public J-LIS roots (tests/data/jlis-roots: public certificates, copied into the repository)
REAL_ANCHORS = Path(__file__).resolve().parents[1] / "data" / "jlis-roots"
TEST_POLICY = (auth.JPKI_TEST_SIGN_POLICY_OID,)


@pytest.fixture(scope="module")
def ca() -> JpkiTestCa:
    return JpkiTestCa.generate(NOW - dt.timedelta(days=30))


@pytest.fixture(scope="module")
def card_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture(scope="module")
def card(ca: JpkiTestCa, card_key: rsa.RSAPrivateKey):
    return ca.issue_card(ALICE, NOW - dt.timedelta(days=10), key=card_key)


def fresh_crl(ca: JpkiTestCa, revoked: list[int] = []) -> CrlFileChecker:
    return CrlFileChecker([ca.build_crl(revoked, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=1))])


def verifier(ca: JpkiTestCa, revoked: list[int] = [], anchors=None, policies=TEST_POLICY) -> JpkiVerifier:
    return JpkiVerifier(
        anchors or [ca.certificate], fresh_crl(ca, revoked), ROLL_KEY, accepted_policies=policies
    )


def check(
    v: JpkiVerifier,
    sub: JpkiSubmission,
    *,
    ballot: bytes = BALLOT,
    challenge: bytes = CHALLENGE,
    now: dt.datetime = NOW,
):
    return v.verify(sub, election_base_hash=BASE, ballot_hash=ballot, challenge=challenge, now=now)


def expect(code: str, v: JpkiVerifier, sub: JpkiSubmission, **kw) -> JpkiError:
    with pytest.raises(JpkiError) as ei:
        check(v, sub, **kw)
    assert ei.value.code == code, ei.value
    for secret in (ALICE.name, ALICE.address, "1990"):
        assert secret not in str(ei.value) and secret not in ei.value.operator_message
    return ei.value


def test_signed_message_layout() -> None:
    m = signed_message(BASE, BALLOT, CHALLENGE)
    assert m == b"tvote/2/jpki-ballot\n" + BASE + BALLOT + CHALLENGE and len(m) == 116
    with pytest.raises(JpkiError) as ei:
        signed_message(BASE, BALLOT[:31], CHALLENGE)
    assert ei.value.code == "jpki.message"


def test_valid_card_accepted_and_matches_roll(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    ident = check(verifier(ca), sub)
    # the roll, built from the resident registry with different spacing/width, yields the same key
    roll_entry = roll_match_key(
        ROLL_KEY, "筑波\u3000花子", dt.date(1990, 4, 1), "茨城県つくば市研究学園一丁目１番地１"
    )
    assert ident.match_key == roll_entry
    other_key = RollKey(b"\x43" * 32)
    assert ident.match_key != roll_match_key(other_key, ALICE.name, ALICE.birth_date, ALICE.address)
    expected = JpkiEvidence(BASE, BALLOT, CHALLENGE, sub.signature, sub.certificate_der)
    assert ident.evidence_hash == expected.digest == hashlib.sha256(expected.to_bytes()).digest()
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ident.trust_anchor_key_id == ski.hex()
    for secret in (ALICE.name, ALICE.address, "19900401"):
        assert secret not in repr(ident)


def test_evidence_hash_depends_on_challenge(ca, card) -> None:
    v = verifier(ca)
    c2 = bytes(32)
    a = check(v, card.sign_ballot(BASE, BALLOT, CHALLENGE))
    b = check(v, card.sign_ballot(BASE, BALLOT, c2), challenge=c2)
    assert a.match_key == b.match_key and a.evidence_hash != b.evidence_hash


def test_birth_date_era_encoding() -> None:
    assert encode_jpki_birth_date(dt.date(1990, 4, 1)) == "419900401"
    assert encode_jpki_birth_date(dt.date(1989, 1, 7)) == "319890107"
    assert encode_jpki_birth_date(dt.date(2019, 5, 1)) == "520190501"


def test_expired(ca, card_key) -> None:
    c = ca.issue_card(
        ALICE,
        NOW,
        key=card_key,
        not_before=NOW - dt.timedelta(days=400),
        not_after=NOW - dt.timedelta(seconds=1),
    )
    expect("jpki.expired", verifier(ca), c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_not_yet_valid(ca, card_key) -> None:
    c = ca.issue_card(ALICE, NOW, key=card_key, not_before=NOW + dt.timedelta(minutes=5))
    expect("jpki.not_yet_valid", verifier(ca), c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_valid_card_rejected_after_it_expires(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    expect("jpki.expired", verifier(ca), sub, now=card.certificate.not_valid_after_utc)


@pytest.mark.parametrize(
    "ku",
    [
        x509.KeyUsage(True, False, False, False, False, False, False, False, False),  # no nonRepudiation
        x509.KeyUsage(False, True, False, False, False, False, False, False, False),  # no digitalSignature
        x509.KeyUsage(True, True, False, False, False, True, False, False, False),  # keyCertSign too
    ],
)
def test_wrong_key_usage(ca, card_key, ku) -> None:
    c = ca.issue_card(ALICE, NOW, key=card_key, key_usage=ku)
    expect("jpki.key_usage", verifier(ca), c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_wrong_policy(ca, card_key) -> None:
    c = ca.issue_card(ALICE, NOW, key=card_key, policy_oid="1.2.392.200149.8.5.1.3.30")  # user-auth policy
    expect("jpki.policy", verifier(ca), c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_production_policy_is_the_default(ca, card) -> None:
    v = JpkiVerifier([ca.certificate], fresh_crl(ca), ROLL_KEY)
    expect("jpki.policy", v, card.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_small_rsa_key_rejected(ca) -> None:
    weak = rsa.generate_private_key(65537, 1024)
    c = ca.issue_card(ALICE, NOW, key=weak)
    expect("jpki.key", verifier(ca), c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_revoked(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    err = expect("jpki.revoked", verifier(ca, revoked=[card.certificate.serial_number]), sub)
    assert isinstance(err, RevocationError)
    check(verifier(ca, revoked=[card.certificate.serial_number + 1]), sub)  # another serial: fine


def test_revocation_fails_closed(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    stale = ca.build_crl([], NOW - dt.timedelta(days=3), NOW - dt.timedelta(seconds=1))
    future = ca.build_crl([], NOW + dt.timedelta(hours=1), NOW + dt.timedelta(days=2))
    for crls in ([], [stale], [future]):
        v = JpkiVerifier([ca.certificate], CrlFileChecker(crls), ROLL_KEY, accepted_policies=TEST_POLICY)
        expect("jpki.revocation_unavailable", v, sub)


def test_crl_from_same_named_other_root_is_not_trusted(ca, card) -> None:
    impostor = JpkiTestCa.generate(NOW - dt.timedelta(days=30))
    assert impostor.certificate.subject == ca.certificate.subject
    clean_forged = impostor.build_crl([], NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=1))
    v = JpkiVerifier(
        [ca.certificate], CrlFileChecker([clean_forged]), ROLL_KEY, accepted_policies=TEST_POLICY
    )
    expect("jpki.revocation_unavailable", v, card.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_crl_files_pem_and_der(ca, card, tmp_path: Path) -> None:
    serials = [card.certificate.serial_number]
    crl = ca.build_crl(serials, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=1))
    (tmp_path / "a.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    (tmp_path / "b.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    for paths in ([tmp_path / "a.crl"], [tmp_path / "b.pem"], [tmp_path]):
        v = JpkiVerifier(
            [ca.certificate], CrlFileChecker.from_paths(paths), ROLL_KEY, accepted_policies=TEST_POLICY
        )
        expect("jpki.revoked", v, card.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_unknown_issuer(card) -> None:
    other = JpkiTestCa.generate(NOW - dt.timedelta(days=30), organization="SOMEONE-ELSE")
    expect("jpki.chain", verifier(other), card.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_same_named_different_root(ca, card_key) -> None:
    rogue = JpkiTestCa.generate(NOW - dt.timedelta(days=30))
    assert rogue.certificate.subject == ca.certificate.subject
    c = rogue.issue_card(ALICE, NOW, key=card_key)
    expect("jpki.chain", verifier(ca), c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_issuer_selected_by_key_among_same_named_generations(ca, card_key) -> None:
    gen2 = JpkiTestCa.generate(NOW - dt.timedelta(days=5))
    c = gen2.issue_card(ALICE, NOW, key=card_key)
    v = JpkiVerifier(
        [ca.certificate, gen2.certificate], fresh_crl(gen2), ROLL_KEY, accepted_policies=TEST_POLICY
    )
    ident = check(v, c.sign_ballot(BASE, BALLOT, CHALLENGE))
    ski = gen2.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ident.trust_anchor_key_id == ski.hex()
    # a CRL of the other generation (same issuer name) does not count for this card
    v_wrong_crl = JpkiVerifier(
        [ca.certificate, gen2.certificate], fresh_crl(ca), ROLL_KEY, accepted_policies=TEST_POLICY
    )
    expect("jpki.revocation_unavailable", v_wrong_crl, c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_forged_signature(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    forger = new_rsa_key()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    forged = forger.sign(signed_message(BASE, BALLOT, CHALLENGE), padding.PKCS1v15(), hashes.SHA256())
    expect("jpki.signature", verifier(ca), JpkiSubmission(sub.certificate_der, forged))
    flipped = bytes([sub.signature[0] ^ 1]) + sub.signature[1:]
    expect("jpki.signature", verifier(ca), JpkiSubmission(sub.certificate_der, flipped))
    expect("jpki.signature", verifier(ca), JpkiSubmission(sub.certificate_der, sub.signature[:-1]))


def test_signature_over_another_ballot(ca, card) -> None:
    sub = card.sign_ballot(BASE, OTHER_BALLOT, CHALLENGE)
    expect("jpki.signature", verifier(ca), sub)
    check(verifier(ca), sub, ballot=OTHER_BALLOT)


def test_wrong_challenge(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    expect("jpki.signature", verifier(ca), sub, challenge=bytes(32))


def test_other_election(ca, card) -> None:
    sub = card.sign_ballot(hashlib.sha256(b"another election").digest(), BALLOT, CHALLENGE)
    expect("jpki.signature", verifier(ca), sub)


def test_malformed_inputs(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    expect("jpki.malformed", verifier(ca), JpkiSubmission(b"\x30\x03abc", sub.signature))
    expect("jpki.message", verifier(ca), sub, challenge=CHALLENGE[:16])


def test_missing_basic_four_rejected(ca, card_key) -> None:
    no_addr = TestResident(ALICE.name, ALICE.birth_date, "   ")
    c = ca.issue_card(no_addr, NOW, key=card_key)
    expect("jpki.attributes", verifier(ca), c.sign_ballot(BASE, BALLOT, CHALLENGE))


def test_public_surface() -> None:
    assert set(auth.__all__) >= {
        "JpkiVerifier",
        "JpkiSubmission",
        "JpkiIdentity",
        "JpkiEvidence",
        "RevocationChecker",
        "CrlFileChecker",
        "AuthError",
        "JpkiError",
        "RollKey",
        "roll_match_key",
        "signed_message",
    }
    for name in auth.__all__:
        assert hasattr(auth, name), name
    assert isinstance(CrlFileChecker([]), auth.RevocationChecker)


def test_error_codes_are_registered() -> None:
    with pytest.raises(ValueError):
        JpkiError("jpki.nonsense", "x")


def test_revocation_and_pin_codes_are_registered_and_documented() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    voting_md, auth_md = (docs / "voting.md").read_text(), (docs / "authentication.md").read_text()
    for code in ("jpki.revoked", "jpki.revocation_unavailable", "jpki.crl_scope", "jpki.crl_unsupported"):
        assert code in auth.ERROR_CODES and f"`{code}`" in voting_md and f"`{code}`" in auth_md
    assert "jpki.anchor_not_pinned" in auth.ERROR_CODES and "`jpki.anchor_not_pinned`" in auth_md
    assert "`config.jpki_anchor_pins`" in auth_md
    assert "TVOTE_JPKI_ANCHOR_PINS" in (docs / "operator-guide.md").read_text()


def test_real_jlis_roots_load_as_trust_anchors(card) -> None:
    anchors = load_trust_anchors(REAL_ANCHORS)
    assert len(anchors) == 5
    der = load_trust_anchors(REAL_ANCHORS / "sign_ca_2019.der")
    assert len(der) == 1 and der[0] in anchors
    sign_roots = [a for a in anchors if "JPKI for digital signature" in a.subject.rfc4514_string()]
    assert len(sign_roots) == 3 and len({a.subject for a in sign_roots}) == 1  # one name, three generations
    for a in anchors:
        a.verify_directly_issued_by(a)  # self-signed, signature valid
        assert isinstance(a.public_key(), rsa.RSAPublicKey) and a.public_key().key_size == 2048
    v = JpkiVerifier(sign_roots, CrlFileChecker([]), ROLL_KEY)
    expect("jpki.chain", v, card.sign_ballot(BASE, BALLOT, CHALLENGE), now=NOW)


# --------------------------------------------------------------------------- CRL scope (RFC 5280 §6.3.3)

H = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
CITY = ALICE.city  # the card's CRL distribution point is its municipality's partition
Crl = x509.CertificateRevocationList
KC = x509.ReasonFlags.key_compromise
HOLD = x509.ReasonFlags.certificate_hold
REMOVE = x509.ReasonFlags.remove_from_crl


def with_crls(ca: JpkiTestCa, *crls: x509.CertificateRevocationList) -> JpkiVerifier:
    return JpkiVerifier([ca.certificate], CrlFileChecker(crls), ROLL_KEY, accepted_policies=TEST_POLICY)


def idp(
    *,
    names: list[x509.GeneralName] | None = None,
    relative: x509.RelativeDistinguishedName | None = None,
    user: bool = False,
    ca_only: bool = False,
    reasons: frozenset[x509.ReasonFlags] | None = None,
    indirect: bool = False,
    attributes: bool = False,
) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(names, relative, user, ca_only, reasons, indirect, attributes)


def test_card_carries_its_municipality_distribution_point(ca, card) -> None:
    cdp = card.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [dp.full_name for dp in cdp] == [[x509.DirectoryName(ca.distribution_point(CITY))]]
    assert all(isinstance(n, x509.DirectoryName) for dp in cdp for n in dp.full_name or [])


def test_revoked_card_not_rescued_by_fresher_crl_of_another_partition(ca, card) -> None:
    """Incident (issue 10): the checker took the issuer's freshest CRL, whatever its partition."""
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    own = ca.build_crl([card.certificate.serial_number], NOW - 2 * H, NOW + DAY, city=CITY)
    other = ca.build_crl([], NOW - H, NOW + DAY, city="Mito-shi")
    expect("jpki.revoked", with_crls(ca, own, other), sub)
    expect("jpki.revoked", with_crls(ca, other, own), sub)
    # another municipality's CRL alone says nothing about this card: fail closed with its own code
    err = expect("jpki.crl_scope", with_crls(ca, other), sub)
    assert isinstance(err, RevocationError) and CITY not in str(err)
    # its own partition, clean, covers it
    clean_own = ca.build_crl([], NOW - 2 * H, NOW + DAY, city=CITY)
    check(with_crls(ca, clean_own, other), sub)


def test_revoked_card_not_rescued_by_fresher_empty_delta_crl(ca, card) -> None:
    """Incident (issue 10): a fresher, empty delta CRL was read as a complete CRL."""
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    serial = card.certificate.serial_number
    base = ca.build_crl([serial], NOW - 2 * H, NOW + DAY, crl_number=100)
    delta = ca.build_crl([], NOW - H, NOW + DAY, crl_number=101, delta_of=100)
    expect("jpki.revoked", with_crls(ca, base, delta), sub)
    # partitioned, as J-LIS publishes them
    pbase = ca.build_crl([serial], NOW - 2 * H, NOW + DAY, city=CITY, crl_number=200)
    pdelta = ca.build_crl([], NOW - H, NOW + DAY, city=CITY, crl_number=201, delta_of=200)
    expect("jpki.revoked", with_crls(ca, pbase, pdelta), sub)
    # a delta is never a complete CRL: alone, nothing covers the card
    expect("jpki.crl_scope", with_crls(ca, delta), sub)
    expect("jpki.crl_scope", with_crls(ca, pdelta), sub)


def test_delta_crl_is_applied_only_on_its_base(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    serial = card.certificate.serial_number
    held = ca.build_crl([(serial, HOLD)], NOW - 3 * H, NOW + DAY, crl_number=100)
    release = ca.build_crl([(serial, REMOVE)], NOW - H, NOW + DAY, crl_number=101, delta_of=100)
    check(with_crls(ca, held, release), sub)  # the hold was lifted by the delta on top of its base
    # removeFromCRL cannot undo a permanent revocation
    compromised = ca.build_crl([(serial, KC)], NOW - 3 * H, NOW + DAY, crl_number=100)
    expect("jpki.revoked", with_crls(ca, compromised, release), sub)
    # a delta on a later base (BaseCRLNumber > base number) does not apply: the base decides
    later = ca.build_crl([(serial, REMOVE)], NOW - H, NOW + DAY, crl_number=160, delta_of=150)
    expect("jpki.revoked", with_crls(ca, held, later), sub)
    # nor does a delta numbered at or below its base
    stale_number = ca.build_crl([(serial, REMOVE)], NOW - H, NOW + DAY, crl_number=100, delta_of=90)
    expect("jpki.revoked", with_crls(ca, held, stale_number), sub)
    # nor a delta of another scope (the municipality's partition on top of the whole-CA base)
    other_scope = ca.build_crl(
        [(serial, REMOVE)], NOW - H, NOW + DAY, city=CITY, crl_number=101, delta_of=100
    )
    expect("jpki.revoked", with_crls(ca, held, other_scope), sub)
    # a delta that lists the card revokes it, applicable to a base or not
    clean = ca.build_crl([], NOW - 3 * H, NOW + DAY, crl_number=100)
    listing = ca.build_crl([(serial, KC)], NOW - H, NOW + DAY, crl_number=101, delta_of=100)
    expect("jpki.revoked", with_crls(ca, clean, listing), sub)
    orphan = ca.build_crl([serial], NOW - H, NOW + DAY, crl_number=301, delta_of=300)
    expect("jpki.revoked", with_crls(ca, clean, orphan), sub)
    # a stale delta is not applied
    stale = ca.build_crl([(serial, REMOVE)], NOW - 3 * H, NOW - H, crl_number=101, delta_of=100)
    expect("jpki.revoked", with_crls(ca, held, stale), sub)
    # a serial listed twice counts with its firmest entry, whatever the order
    for twice in ([(serial, REMOVE), (serial, KC)], [(serial, KC), (serial, REMOVE)]):
        both = ca.build_crl(twice, NOW - H, NOW + DAY, crl_number=101, delta_of=100)
        expect("jpki.revoked", with_crls(ca, held, both), sub)


def test_freshest_complete_crl_in_scope_decides(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    serial = card.certificate.serial_number
    old_hold = ca.build_crl([(serial, HOLD)], NOW - 5 * H, NOW + DAY, city=CITY)
    newer = ca.build_crl([], NOW - H, NOW + DAY, city=CITY)
    check(with_crls(ca, old_hold, newer), sub)
    expect(
        "jpki.revoked",
        with_crls(
            ca,
            ca.build_crl([], NOW - 5 * H, NOW + DAY, city=CITY),
            ca.build_crl([(serial, HOLD)], NOW - H, NOW + DAY, city=CITY),
        ),
        sub,
    )


def test_crls_scoped_to_some_reasons_must_be_combined(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    serial = card.certificate.serial_number
    dp = [x509.DirectoryName(ca.distribution_point(CITY))]
    rest = auth.ALL_REASONS - {KC}
    kc_only = ca.build_crl([], NOW - H, NOW + DAY, distribution_point=idp(names=dp, reasons=frozenset({KC})))
    expect("jpki.crl_scope", with_crls(ca, kc_only), sub)  # accepted before: only key compromise covered
    others = ca.build_crl([], NOW - 2 * H, NOW + DAY, distribution_point=idp(names=dp, reasons=rest))
    check(with_crls(ca, kc_only, others), sub)
    others_listing = ca.build_crl(
        [(serial, x509.ReasonFlags.superseded)],
        NOW - 2 * H,
        NOW + DAY,
        distribution_point=idp(names=dp, reasons=rest),
    )
    expect("jpki.revoked", with_crls(ca, kc_only, others_listing), sub)


def test_distribution_point_reasons_limit_a_partition(ca, card_key) -> None:
    """A card whose distribution point serves only key compromise needs another CRL for the rest."""
    kc_name = x509.DirectoryName(ca.distribution_point("Tsukuba-shi keyCompromise"))
    rest_name = x509.DirectoryName(ca.distribution_point(CITY))
    c = ca.issue_card(
        ALICE,
        NOW,
        key=card_key,
        crl_distribution_points=[
            x509.DistributionPoint([kc_name], None, frozenset({KC}), None),
            x509.DistributionPoint([rest_name], None, auth.ALL_REASONS - {KC}, None),
        ],
    )
    sub = c.sign_ballot(BASE, BALLOT, CHALLENGE)
    kc_crl = ca.build_crl([], NOW - H, NOW + DAY, distribution_point=idp(names=[kc_name]))
    rest_crl = ca.build_crl([], NOW - H, NOW + DAY, city=CITY)
    expect("jpki.crl_scope", with_crls(ca, kc_crl), sub)
    check(with_crls(ca, kc_crl, rest_crl), sub)
    check(with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY)), sub)  # the whole-CA CRL covers everything


def test_crls_for_other_kinds_of_certificate_do_not_cover_a_card(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    for scope in (idp(ca_only=True), idp(attributes=True)):
        scoped = ca.build_crl([], NOW - H, NOW + DAY, distribution_point=scope)
        expect("jpki.crl_scope", with_crls(ca, scoped), sub)
    user = ca.build_crl(
        [card.certificate.serial_number], NOW - H, NOW + DAY, distribution_point=idp(user=True)
    )
    expect("jpki.revoked", with_crls(ca, user), sub)


def test_indirect_crls_are_refused(ca, card, card_key) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    dp = [x509.DirectoryName(ca.distribution_point(CITY))]
    flagged = ca.build_crl([], NOW - H, NOW + DAY, distribution_point=idp(names=dp, indirect=True))
    expect("jpki.crl_unsupported", with_crls(ca, flagged), sub)
    other_ca = x509.Name.from_rfc4514_string("CN=another issuer,O=JPKI-TEST,C=JP")
    entries = ca.build_crl([1234], NOW - H, NOW + DAY, certificate_issuer=other_ca)
    expect("jpki.crl_unsupported", with_crls(ca, entries), sub)
    # a usable CRL beside them decides
    check(with_crls(ca, flagged, entries, ca.build_crl([], NOW - 2 * H, NOW + DAY, city=CITY)), sub)
    # a card whose only distribution point is served by another CRL issuer
    c = ca.issue_card(
        ALICE,
        NOW,
        key=card_key,
        crl_distribution_points=[x509.DistributionPoint(dp, None, None, [x509.DirectoryName(other_ca)])],
    )
    expect(
        "jpki.crl_unsupported",
        with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY)),
        c.sign_ballot(BASE, BALLOT, CHALLENGE),
    )


def test_a_failing_pluggable_checker_fails_closed(ca, card) -> None:
    class Unreachable:  # e.g. an OCSP client whose platform operator is down
        def check(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
            raise ConnectionError("responder unreachable")

    assert isinstance(Unreachable(), auth.RevocationChecker)
    v = JpkiVerifier([ca.certificate], Unreachable(), ROLL_KEY, accepted_policies=TEST_POLICY)
    err = expect("jpki.revocation_unavailable", v, card.sign_ballot(BASE, BALLOT, CHALLENGE))
    assert isinstance(err, RevocationError)


def test_crl_with_unknown_critical_extension_is_not_used(ca, card) -> None:
    sub = card.sign_ballot(BASE, BALLOT, CHALLENGE)
    ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    critical = ca.build_crl([], NOW - H, NOW + DAY, extra_extensions=[(ext, True)])
    expect("jpki.crl_unsupported", with_crls(ca, critical), sub)
    check(with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY, extra_extensions=[(ext, False)])), sub)


def test_relative_distribution_point_names(ca, card_key) -> None:
    rdn = x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Tsukuba-shi CRLDP")])
    c = ca.issue_card(
        ALICE, NOW, key=card_key, crl_distribution_points=[x509.DistributionPoint(None, rdn, None, None)]
    )
    sub = c.sign_ballot(BASE, BALLOT, CHALLENGE)
    full = x509.DirectoryName(x509.Name([*ca.certificate.subject.rdns, rdn]))
    for scope in (idp(relative=rdn), idp(names=[full])):
        check(with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY, distribution_point=scope)), sub)
        expect(
            "jpki.revoked",
            with_crls(
                ca, ca.build_crl([c.certificate.serial_number], NOW - H, NOW + DAY, distribution_point=scope)
            ),
            sub,
        )
    expect("jpki.crl_scope", with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY, city=CITY)), sub)


def test_card_without_distribution_points_needs_its_issuers_crl(ca, card_key) -> None:
    c = ca.issue_card(ALICE, NOW, key=card_key, crl_distribution_points=())
    sub = c.sign_ballot(BASE, BALLOT, CHALLENGE)
    expect("jpki.crl_scope", with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY, city=CITY)), sub)
    issuer_named = idp(names=[x509.DirectoryName(ca.certificate.subject)])
    check(with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY, distribution_point=issuer_named)), sub)
    check(with_crls(ca, ca.build_crl([], NOW - H, NOW + DAY)), sub)


def test_partitioned_crl_directory_like_jlis(ca, card, card_key, tmp_path: Path) -> None:
    """Several municipalities' CRLs and deltas in one directory, as an operator mirrors them."""
    bob = TestResident("水戸 太郎", dt.date(1980, 1, 2), "茨城県水戸市笠原町978番6", city="Mito-shi")
    bob_card = ca.issue_card(bob, NOW, key=card_key)
    crls = {
        "tsukuba.crl": ca.build_crl([], NOW - 5 * H, NOW + DAY, city=CITY, crl_number=10),
        "tsukuba-delta.crl": ca.build_crl(
            [(card.certificate.serial_number, KC)], NOW - H, NOW + DAY, city=CITY, crl_number=11, delta_of=10
        ),
        "mito.crl": ca.build_crl([], NOW - 5 * H, NOW + DAY, city="Mito-shi", crl_number=20),
        "mito-delta.crl": ca.build_crl([], NOW - H, NOW + DAY, city="Mito-shi", crl_number=21, delta_of=20),
    }
    for name, crl in crls.items():
        (tmp_path / name).write_bytes(crl.public_bytes(serialization.Encoding.DER))
    v = JpkiVerifier(
        [ca.certificate], CrlFileChecker.from_paths([tmp_path]), ROLL_KEY, accepted_policies=TEST_POLICY
    )
    expect("jpki.revoked", v, card.sign_ballot(BASE, BALLOT, CHALLENGE))
    check(v, bob_card.sign_ballot(BASE, BALLOT, CHALLENGE))


@pytest.fixture(scope="module")
def crl_pool(ca, card) -> tuple[dict[str, Crl], dict[str, Crl]]:
    """CRLs that bear on ``card`` (its partition, the whole CA, deltas) and CRLs that must not."""
    serial = card.certificate.serial_number
    impostor = JpkiTestCa.generate(NOW - dt.timedelta(days=30))
    relevant = {
        "own clean old": ca.build_crl([], NOW - 6 * H, NOW + DAY, city=CITY, crl_number=10),
        "own listing": ca.build_crl([(serial, KC)], NOW - 4 * H, NOW + DAY, city=CITY, crl_number=12),
        "own hold": ca.build_crl([(serial, HOLD)], NOW - 5 * H, NOW + DAY, city=CITY, crl_number=11),
        "own delta release": ca.build_crl(
            [(serial, REMOVE)], NOW - H, NOW + DAY, city=CITY, crl_number=13, delta_of=11
        ),
        "own delta empty": ca.build_crl([], NOW - H, NOW + DAY, city=CITY, crl_number=14, delta_of=12),
        "whole clean": ca.build_crl([], NOW - 3 * H, NOW + DAY, crl_number=20),
        "whole listing": ca.build_crl([serial], NOW - 2 * H, NOW + DAY, crl_number=21),
        "user only": ca.build_crl([], NOW - 2 * H, NOW + DAY, distribution_point=idp(user=True)),
    }
    irrelevant = {
        "other partition clean": ca.build_crl([], NOW - H / 2, NOW + DAY, city="Mito-shi", crl_number=30),
        "other partition listing": ca.build_crl([serial], NOW - H, NOW + DAY, city="Mito-shi", crl_number=31),
        "other partition delta": ca.build_crl(
            [], NOW - H / 4, NOW + DAY, city="Mito-shi", crl_number=32, delta_of=30
        ),
        "CA certificates only": ca.build_crl(
            [], NOW - H / 2, NOW + DAY, distribution_point=idp(ca_only=True)
        ),
        "attribute certificates only": ca.build_crl(
            [], NOW - H / 2, NOW + DAY, distribution_point=idp(attributes=True)
        ),
        "own stale": ca.build_crl([], NOW - 2 * DAY, NOW - H, city=CITY, crl_number=5),
        "own future": ca.build_crl([], NOW + H, NOW + DAY, city=CITY, crl_number=99),
        "impostor": impostor.build_crl([], NOW - H / 2, NOW + DAY, city=CITY, crl_number=100),
        "indirect": ca.build_crl(
            [],
            NOW - H / 2,
            NOW + DAY,
            distribution_point=idp(names=[x509.DirectoryName(ca.distribution_point(CITY))], indirect=True),
        ),
    }
    return relevant, irrelevant


def _outcome(ca: JpkiTestCa, card, crls: list[x509.CertificateRevocationList]) -> str:
    try:
        CrlFileChecker(crls).check(card.certificate, ca.certificate, NOW)
    except RevocationError as e:
        return "revoked" if e.code == "jpki.revoked" else "unknown"
    return "good"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_crls_out_of_scope_never_change_the_decision(ca, card, crl_pool, data) -> None:
    """Property: adding any CRL that is not in the card's scope (another partition, another kind of
    certificate, stale, future, another CA, indirect) never changes good / revoked / unknown."""
    relevant, irrelevant = crl_pool
    chosen = data.draw(st.lists(st.sampled_from(sorted(relevant)), unique=True), label="in scope")
    extra = data.draw(st.lists(st.sampled_from(sorted(irrelevant)), min_size=1, unique=True), label="added")
    before = _outcome(ca, card, [relevant[k] for k in chosen])
    after = _outcome(ca, card, [relevant[k] for k in chosen] + [irrelevant[k] for k in extra])
    assert before == after, (chosen, extra)
    if chosen == ["own listing"] or chosen == ["whole listing"]:
        assert before == "revoked"


# ------------------------------------------------------------------ production trust: pins and policy


def test_pinned_fingerprints_are_the_published_jlis_roots() -> None:
    anchors = load_trust_anchors(REAL_ANCHORS)
    kinds = {auth.certificate_fingerprint(a): a.subject.rfc4514_string() for a in anchors}
    signing = {fp for fp, s in kinds.items() if "OU=JPKI for digital signature" in s}
    login = {fp for fp, s in kinds.items() if "OU=JPKI for user authentication" in s}
    assert set(auth.JLIS_SIGNING_ROOT_SHA256) == signing and len(signing) == 3
    assert set(auth.JLIS_AUTHENTICATION_ROOT_SHA256) == login and len(login) == 2
    auth.check_anchor_pins([a for a in anchors if auth.certificate_fingerprint(a) in signing])
    for a in anchors:
        if auth.certificate_fingerprint(a) in login:  # never a signing anchor, even when pinned
            with pytest.raises(JpkiError) as ei:
                auth.check_anchor_pins([a], [auth.certificate_fingerprint(a)])
            assert ei.value.code == "jpki.anchor_not_pinned"


def test_unpinned_anchor_is_refused(ca) -> None:
    with pytest.raises(JpkiError) as ei:
        auth.check_anchor_pins([ca.certificate])  # default pins: the J-LIS signing roots
    assert ei.value.code == "jpki.anchor_not_pinned"
    assert auth.certificate_fingerprint(ca.certificate) in str(ei.value)
    fp = auth.certificate_fingerprint(ca.certificate).upper()
    auth.check_anchor_pins([ca.certificate], [":".join(fp[i : i + 2] for i in range(0, 64, 2))])


def test_card_carrying_the_test_policy_is_refused_unless_it_is_accepted(ca, card_key) -> None:
    both = ca.issue_card(
        ALICE, NOW, key=card_key, policy_oid=[auth.JPKI_SIGN_POLICY_OID, auth.JPKI_TEST_SIGN_POLICY_OID]
    )
    sub = both.sign_ballot(BASE, BALLOT, CHALLENGE)
    expect("jpki.policy", verifier(ca, policies=(auth.JPKI_SIGN_POLICY_OID,)), sub)
    check(verifier(ca, policies=(auth.JPKI_SIGN_POLICY_OID, auth.JPKI_TEST_SIGN_POLICY_OID)), sub)


def _jpki_dirs(tmp_path: Path, ca: JpkiTestCa, *extra_anchor_dirs: Path) -> tuple[Path, Path]:
    anchors, crls = tmp_path / "anchors", tmp_path / "crls"
    anchors.mkdir()
    crls.mkdir()
    (anchors / "test-ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    for d in extra_anchor_dirs:
        for f in d.iterdir():
            (anchors / f.name).write_bytes(f.read_bytes())
    crl = ca.build_crl([], NOW - H, NOW + DAY)
    (crls / "test-ca.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    return anchors, crls


def _production(tmp_path: Path, anchors: Path, crls: Path, **kw: object):
    from voting._settings import Settings

    return Settings(
        environment="production",
        data_dir=tmp_path / "data",
        admin_token="a" * 40,
        jpki_trust_anchors=anchors,
        jpki_crl_dir=crls,
        **kw,
    )  # type: ignore[arg-type]


def test_production_refuses_a_test_ca_card_with_the_production_policy_at_startup(
    ca, card_key, tmp_path: Path
) -> None:
    """Incident (issue 10): a test-CA card carrying the production policy was accepted in production."""
    from voting._errors import ConfigurationError
    from voting._intake_config import IntakeConfig
    from voting._startup import StartupCheckFailed, run_checks
    from voting.app import create_app

    forged = ca.issue_card(ALICE, NOW, key=card_key, policy_oid=auth.JPKI_SIGN_POLICY_OID)
    sub = forged.sign_ballot(BASE, BALLOT, CHALLENGE)
    check(verifier(ca, policies=(auth.JPKI_SIGN_POLICY_OID,)), sub)  # only the anchor pin can stop it
    anchors, crls = _jpki_dirs(tmp_path, ca)
    settings = _production(tmp_path, anchors, crls)
    fingerprint = auth.certificate_fingerprint(ca.certificate)
    # the named start-up check, which tvote serve runs before it listens (exit 2)
    pins = [p for p in run_checks(settings) if p.check == "jpki_anchor_pins"]
    assert len(pins) == 1 and fingerprint in pins[0].message
    with pytest.raises(StartupCheckFailed) as failed:
        create_app(settings)
    assert "jpki_anchor_pins" in [p.check for p in failed.value.problems]
    # and intake, however it is built, refuses the unpinned anchor too
    with pytest.raises(ConfigurationError) as ei:
        IntakeConfig.from_settings(settings)
    assert ei.value.code == "config.jpki_anchor_pins" and fingerprint in ei.value.message
    # development and test environments do not pin (they run on the test CA)
    cfg = IntakeConfig.from_settings(settings.with_(environment="test"))
    assert list(cfg.trust_anchors) == [ca.certificate]
    assert not [p for p in run_checks(settings.with_(environment="test")) if p.check == "jpki_anchor_pins"]
    # an operator who deliberately pins another root replaces the default list
    pinned = settings.with_(jpki_anchor_pins=(fingerprint,))
    assert list(IntakeConfig.from_settings(pinned).trust_anchors) == [ca.certificate]
    assert not [p for p in run_checks(pinned) if p.check == "jpki_anchor_pins"]


def test_production_accepts_only_the_jlis_signing_roots(ca, tmp_path: Path) -> None:
    from voting._errors import ConfigurationError
    from voting._intake_config import IntakeConfig

    signing = tmp_path / "signing"
    signing.mkdir()
    for f in REAL_ANCHORS.glob("sign_*"):
        (signing / f.name).write_bytes(f.read_bytes())
    _, crls = _jpki_dirs(tmp_path, ca)
    cfg = IntakeConfig.from_settings(_production(tmp_path, signing, crls))
    assert len(cfg.trust_anchors) == 3
    for bad in (REAL_ANCHORS, tmp_path / "anchors"):  # + authentication roots; + the test CA
        with pytest.raises(ConfigurationError) as ei:
            IntakeConfig.from_settings(_production(tmp_path, bad, crls))
        assert ei.value.code == "config.jpki_anchor_pins"


def test_startup_needs_a_fresh_complete_crl_not_only_a_delta(ca, tmp_path: Path) -> None:
    from voting._startup import run_checks

    anchors, crls = _jpki_dirs(tmp_path, ca)
    pin = (auth.certificate_fingerprint(ca.certificate),)
    pinned = _production(tmp_path, anchors, crls, jpki_anchor_pins=pin)
    assert not [p for p in run_checks(pinned, now=NOW) if p.check == "crl_source"]
    for f in crls.iterdir():
        f.unlink()
    delta = ca.build_crl([], NOW - H, NOW + DAY, crl_number=11, delta_of=10)
    (crls / "delta.crl").write_bytes(delta.public_bytes(serialization.Encoding.DER))
    problems = [p for p in run_checks(pinned, now=NOW) if p.check == "crl_source"]
    assert len(problems) == 1 and "complete CRL" in problems[0].message


def test_anchor_pin_settings_are_validated() -> None:
    from voting._errors import ConfigurationError
    from voting._settings import Settings

    fp = "AB:" * 31 + "CD"
    s = Settings.from_env({"TVOTE_ENVIRONMENT": "development", "TVOTE_JPKI_ANCHOR_PINS": f"{fp}, {'0' * 64}"})
    assert s.jpki_anchor_pins == ("ab" * 31 + "cd", "0" * 64)
    assert s.effective_jpki_anchor_pins == {"ab" * 31 + "cd", "0" * 64}
    default = Settings(environment="development").effective_jpki_anchor_pins
    assert default == set(auth.JLIS_SIGNING_ROOT_SHA256)
    login_root = next(iter(auth.JLIS_AUTHENTICATION_ROOT_SHA256))
    for bad in ("abc", "g" * 64, login_root):
        with pytest.raises(ConfigurationError) as ei:
            Settings(environment="development", jpki_anchor_pins=(bad,))
        assert ei.value.code == "config.jpki_anchor_pins"
