"""The key ceremony and the roll: V9 trustee.commitments, V10 trustee.complaints, V11 election.joint-key,
V12 roll.commitment and V28 trustee.enrolment."""

from __future__ import annotations

from typing import Any, Final

from crypto import (
    BallotEngine,
    Complaint,
    ComplaintAnswer,
    CryptoError,
    EncryptedShare,
    InvalidEncoding,
    JointKey,
    TrusteeCommitments,
    TrusteeEnrolment,
    qualify,
    resolve_complaint,
    select_engine,
)
from ledger.events import BOUND_KEYS, EventType

from ._checks import fail
from ._counting import BallotIndex
from ._manifest import ElectionInfo
from ._report import Report
from ._state import HEX64, Event, State, strip_binding

__all__ = ["EVENTS", "finish_key_ceremony", "proof_engine", "roll_size_check"]


def proof_engine(report: Report) -> BallotEngine | None:
    """The engine that batch-checks the trustees' proofs (V9, V19): the native engine's ``verify_proofs``
    when the run uses it, the reference (one proof at a time, ``None``) for ``--engine python``. Either way a
    proof it refuses is checked again by the reference, which words the failure."""
    return select_engine("native") if report.engine == "native" else None


def registered(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V9 trustee.commitments: "Every registered trustee publishes t Feldman commitments, each with a
    # valid Schnorr proof of knowledge bound to the election and the trustee index."
    info = st.info
    assert info is not None
    c = TrusteeCommitments.from_dict(p.get("commitments"))
    if p.get("trustee") != c.trustee or c.trustee in st.commitments:
        fail("trustee.commitments", "trustee index mismatch or registered twice", entry=i)
    engine = proof_engine(report)
    c.verify(base_hash=info.base_hash, threshold=info.threshold, trustees=info.trustees, engine=engine)
    st.commitments[c.trustee] = c
    st.registered_entry[c.trustee] = i
    report.passed("trustee.commitments")
    _enrolment(report, info, i, c, p)


def _enrolment(report: Report, info: ElectionInfo, i: int, c: TrusteeCommitments, p: dict[str, Any]) -> None:
    """V28 trustee.enrolment: "When the manifest pins the trustees' enrolment keys, every trustee.registered
    entry carries the enrolment key pinned for its index and a valid Ed25519 signature by it over the
    registration.\""""
    if info.pins is None:
        if "enrolment" in p:
            report.fail("trustee.enrolment", "an enrolment no manifest pin names", entry=i)
        return
    try:
        e = TrusteeEnrolment.from_dict(p.get("enrolment"))
        name = p.get("name")
        if not isinstance(name, str):
            raise InvalidEncoding("the registration has no name")
        pinned = bytes.fromhex(info.pins["trustee_enrolment_keys"][c.trustee - 1])
        e.verify(pinned_key=pinned, base_hash=info.base_hash, trustee=c.trustee, name=name, commitments=c)
    except (CryptoError, IndexError) as err:
        msg = getattr(err, "operator_message", str(err))
        report.fail("trustee.enrolment", f"trustee {c.trustee}: {msg}", entry=i)
        return
    report.passed("trustee.enrolment")


def shares(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    sender = p.get("sender")
    for s in p.get("shares", []):
        es = EncryptedShare.from_dict({"sender": sender, **s})
        st.shares[(es.sender, es.recipient)] = es


def complaint(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    st.complaints.append((i, Complaint.from_dict(strip_binding(p))))


def answer(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    a = ComplaintAnswer.from_dict(strip_binding(p))
    st.answers[(a.dealer, a.complainant)] = a


def disqualified(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    st.disqualified[int(p["dealer"])] = i


def roll_commitment(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V12 roll.commitment: "The roll commitment ... is well formed"
    size, root = p.get("size"), p.get("root")
    if (
        set(p) != BOUND_KEYS | {"size", "root", "alias_scheme"}
        or not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
        or not isinstance(root, str)
        or not HEX64.fullmatch(root)
        or p.get("alias_scheme") != "hmac-sha256/1"
    ):
        fail(
            "roll.commitment",
            "roll commitment is not exactly {size, root (64 lowercase hex), alias_scheme}",
            entry=i,
        )
    st.roll_size, st.roll_root, st.roll_entry = size, bytes.fromhex(root), i


def check_joint_key(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V10 trustee.complaints: "Every complaint is either answered with a share that satisfies the dealer's
    # commitments, or the dealer is disqualified; no dealer is disqualified without cause."
    info = st.info
    assert info is not None
    resolutions = []
    for ci, c in st.complaints:
        dealer = st.commitments.get(c.dealer)
        if dealer is None:
            report.fail("trustee.complaints", "complaint about an unregistered dealer", entry=ci)
            continue
        try:
            r = resolve_complaint(
                c,
                dealer=dealer,
                encrypted_share=st.shares.get((c.dealer, c.complainant)),
                answer=st.answers.get((c.dealer, c.complainant)),
                base_hash=info.base_hash,
            )
        except CryptoError as e:
            report.fail("trustee.complaints", e.operator_message, entry=ci)
            continue
        resolutions.append(r)
        if r.dealer_disqualified and r.dealer not in st.disqualified:
            report.fail(
                "trustee.complaints",
                f"dealer {r.dealer} lost complaint but was not disqualified",
                entry=ci,
            )
    with_cause = {r.dealer for r in resolutions if r.dealer_disqualified}
    for d, di in st.disqualified.items():
        if d not in with_cause and d in st.commitments:
            report.fail("trustee.complaints", f"dealer {d} disqualified without cause", entry=di)
    report.passed("trustee.complaints")
    # V11 election.joint-key: "The qualified set is exactly the registered, non-disqualified dealers;
    # the joint key is the product of their constant-term commitments; every public share is derived
    # from the commitments; the threshold matches the manifest."
    try:
        q = qualify(
            st.commitments.values(),
            base_hash=info.base_hash,
            threshold=info.threshold,
            trustees=info.trustees,
            resolutions=resolutions,
        )
        derived = JointKey.from_commitments(st.commitments.values(), q, base_hash=info.base_hash)
    except (CryptoError, ValueError) as e:
        fail("election.joint-key", getattr(e, "operator_message", str(e)), entry=i)
    published = JointKey.from_dict(
        {
            "base_hash": info.base_hash.hex(),
            "threshold": p.get("threshold"),
            "qualified": p.get("qualified"),
            "joint_key": p.get("joint_key"),
            "public_shares": p.get("public_shares"),
        }
    )
    if published.threshold != info.threshold:
        fail("election.joint-key", "threshold differs from the manifest", entry=i)
    if published.qualified != derived.qualified:
        fail(
            "election.joint-key",
            f"qualified {list(published.qualified)} but the ceremony qualifies {list(derived.qualified)}",
            entry=i,
        )
    if published.public_key != derived.public_key:
        fail(
            "election.joint-key",
            "joint key is not the sum of the qualified constant-term commitments",
            entry=i,
        )
    if published.public_shares != derived.public_shares:
        fail("election.joint-key", "a public share does not derive from the commitments", entry=i)
    st.joint_key = derived
    report.passed("election.joint-key")


def finish_key_ceremony(report: Report, st: State) -> None:
    if st.joint_key is None and not any(f.step == 11 for f in report.failures):
        report.fail("election.joint-key", "the record has no valid election.joint-key entry")


def roll_size_check(report: Report, st: State, index: BallotIndex) -> None:
    # V12 roll.commitment: "... no more distinct voter aliases cast ballots than the roll's size." (Each cast
    # ballot's roll inclusion proof is checked per ballot, in the batches: verifier._ballots.)
    if st.roll_size is None:
        if not any(f.step == 12 for f in report.failures):
            report.fail("roll.commitment", "the record has no roll commitment")
        return
    voters = index.distinct_voters()
    if voters > st.roll_size:
        report.fail(
            "roll.commitment",
            f"{voters} distinct voters cast ballots, the roll has {st.roll_size}",
            entry=st.roll_entry,
        )
    report.passed("roll.commitment")


EVENTS: Final[dict[str, Event]] = {
    EventType.TRUSTEE_REGISTERED: Event("trustee.commitments", registered),
    EventType.TRUSTEE_SHARES: Event("trustee.complaints", shares),
    EventType.TRUSTEE_COMPLAINT: Event("trustee.complaints", complaint),
    EventType.TRUSTEE_ANSWER: Event("trustee.complaints", answer),
    EventType.TRUSTEE_DISQUALIFIED: Event("trustee.complaints", disqualified),
    EventType.JOINT_KEY: Event("election.joint-key", check_joint_key),
    EventType.ROLL_COMMITMENT: Event("roll.commitment", roll_commitment),
}
