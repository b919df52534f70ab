"""The numbered verification checks (the normative list is ``docs/verifier.md``).

Each check has a stable number ``V<step>``, a stable id and the spec text quoted in the docs. Code that
implements a check quotes its step, e.g. ``# V13 ballot.proofs: "every selection proves ..."``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NoReturn

from ._errors import CheckFailed

__all__ = ["CHECKS", "Check", "by_id", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    step: int
    id: str
    title: str
    spec: str


CHECKS: Final[tuple[Check, ...]] = (
    Check(
        1,
        "record.format",
        "Record format and version",
        "The record is a directory (or archive) in the documented layout, its format id and version are "
        "supported, and every entry is canonical JSON of the documented shape.",
    ),
    Check(
        2,
        "ledger.chain",
        "Hash chain",
        "Entry i names the hash of entry i-1 (entry 0 names the zero hash); indices are 0, 1, 2, ... "
        "with no gap, duplicate or reordering.",
    ),
    Check(
        3,
        "ledger.tree",
        "Merkle root against every checkpoint",
        "For every checkpoint of size n, the RFC 9162 Merkle root over the first n entries equals the "
        "root the checkpoint states; the final checkpoint covers the whole record.",
    ),
    Check(
        4,
        "ledger.checkpoint-signature",
        "Checkpoint signatures",
        "Every checkpoint carries a valid Ed25519 signed-note signature by the log key named in the record.",
    ),
    Check(
        5,
        "ledger.cosignatures",
        "Witness cosignatures and quorum",
        "Every checkpoint is cosigned (BLS, aggregated) by at least the quorum of witnesses listed in "
        "the manifest, each witness key carrying a valid proof of possession.",
    ),
    Check(
        6,
        "ledger.consistency",
        "Consistency between successive checkpoints",
        "Every checkpoint is an append-only extension of the previous one (RFC 9162 consistency proof; "
        "sizes never decrease).",
    ),
    Check(
        7,
        "election.manifest",
        "Manifest and base hash",
        "Entry 0 is the manifest; it is well formed (every label obeys the manifest text rule, "
        "ledger.record.check_display_text; voting_period is two UTC times, closes after opens); "
        "base_hash = tagged_sha256('election-base-hash', "
        "rfc8785(manifest)); every later payload names this election_id and base_hash.",
    ),
    Check(
        8,
        "ledger.phases",
        "Lifecycle order",
        "Every event has a known type and appears in its phase (setup, key ceremony, voting, tally, "
        "publish), in the order of docs/events.md.",
    ),
    Check(
        9,
        "trustee.commitments",
        "Trustee commitments and proofs",
        "Every registered trustee publishes t Feldman commitments, each with a valid Schnorr proof of "
        "knowledge bound to the election and the trustee index.",
    ),
    Check(
        10,
        "trustee.complaints",
        "Complaints, answers and disqualifications",
        "Every complaint is either answered with a share that satisfies the dealer's commitments, or the "
        "dealer is disqualified; no dealer is disqualified without cause.",
    ),
    Check(
        11,
        "election.joint-key",
        "Joint election key",
        "The qualified set is exactly the registered, non-disqualified dealers; the joint key is the "
        "product of their constant-term commitments; every public share is derived from the commitments; "
        "the threshold matches the manifest.",
    ),
    Check(
        12,
        "roll.commitment",
        "Voter roll commitment",
        "The roll commitment is published before voting opens and is well formed; every cast ballot "
        "carries roll_proof {index, path}, a well-formed RFC 9162 inclusion proof of its voter alias in "
        "the roll commitment's tree (root and size as published); and no more distinct voter aliases "
        "cast ballots than the roll's size.",
    ),
    Check(
        13,
        "ballot.proofs",
        "Ballot well-formedness and proofs",
        "Every cast and spoiled ballot has exactly the manifest's contests and selections, valid group "
        "elements, no selection encrypted with zero randomness (a pad that is the identity), a valid 0/1 "
        "proof per selection and a valid [min, max] proof per contest (docs/protocol.md §9.5).",
    ),
    Check(
        14,
        "ballot.binding",
        "Ballot binding",
        "Every ballot is bound to this election's base hash; ballot_hash and tracking code recompute from "
        "the encrypted ballot; every cast ballot names a voter alias, an allowed channel and "
        "authentication method, and its own authentication-evidence hash.",
    ),
    Check(
        15,
        "ballot.unique",
        "No duplicate ballots, nonces or ciphertexts",
        "A ballot_hash, a ballot nonce and every selection's ciphertext pad (its first component, r·G) "
        "each appear at most once among all cast and spoiled ballots, within a ballot too (no replay, no "
        "contest copied with its nonce, no copied or mauled ciphertext), and no two ballots share an "
        "authentication-evidence hash.",
    ),
    Check(
        16,
        "ballot.spoiled",
        "Spoiled ballots",
        "Every spoiled ballot's revealed plaintexts and randomness re-encrypt exactly to the published "
        "ciphertexts, and the plaintexts are a valid choice.",
    ),
    Check(
        17,
        "tally.counting-rule",
        "Counting rule",
        "The counted set re-derived from the ledger by the manifest's revote rule "
        "(last internet ballot counts, first kiosk ballot overrides) equals tally.encrypted's counted "
        "list, and the published counts (cast, counted, superseded, overridden, spoiled) agree.",
    ),
    Check(
        18,
        "tally.aggregate",
        "Encrypted tally",
        "For every selection, the published encrypted tally equals the product (sum) of the counted "
        "ballots' ciphertexts.",
    ),
    Check(
        19,
        "tally.partial-decryption",
        "Partial decryptions",
        "Every partial decryption share carries a valid Chaum-Pedersen proof against the trustee's public "
        "share; every excluded trustee's share indeed fails.",
    ),
    Check(
        20,
        "tally.combination",
        "Lagrange combination",
        "The trustees used are at least the threshold, qualified and with valid shares; their shares "
        "combine by Lagrange interpolation at 0 to the plaintext point of every selection.",
    ),
    Check(
        21,
        "tally.result",
        "Published result",
        "Every published count m satisfies m*G = the combined plaintext point, with 0 <= m <= counted; "
        "the result names exactly the manifest's contests and selections.",
    ),
    Check(
        22,
        "result.pdf",
        "Result declaration PDF",
        "result.pdf hashes to the declaration's pdf_sha256, its PAdES signature verifies against the "
        "commission's trust root, and its numbers and checkpoint hash agree with the record.",
    ),
    Check(
        23,
        "record.privacy",
        "No personal data",
        "No payload key names a personal-data field and no value looks like a name field, address, birth "
        "date, 12-digit number or IP address.",
    ),
    Check(
        24,
        "since.extends",
        "Append-only extension (--since)",
        "The new record's first n entries are byte-identical to the old record's n entries and the old "
        "final checkpoint is consistent with the new one.",
    ),
    Check(
        25,
        "receipt.inclusion",
        "Receipt (--receipt)",
        "The receipt's checkpoint is one of the record's (or consistent with its final checkpoint), its "
        "inclusion proof verifies, and the entry at its leaf index is the ballot with its tracking code.",
    ),
    Check(
        26,
        "voting.period",
        "Voting period and its overrides",
        "voting.opened is not before the manifest's voting_period.opens and voting.closed not before the "
        "end of voting in force (voting_period.closes, or the last voting.extended's closes) unless the "
        "entry carries override.reason; voting.closed is never after that end; each voting.extended "
        "moves the end later and carries a reason; an override appears only where the period is "
        "departed from. Every cast and spoiled ballot lies between voting.opened and voting.closed (V8).",
    ),
    Check(
        27,
        "record.pins",
        "Official pins (--pins)",
        "The pins file obtained out of band names this election; the manifest's base hash, pins and "
        "witnesses equal the file's; the log key named in the record (which signs every checkpoint, V4) "
        "and the result PDF's signing root (V22) are the pinned ones. Without --pins the record is "
        "checked against itself only: not an official verification.",
    ),
    Check(
        28,
        "trustee.enrolment",
        "Trustee enrolment",
        "When the manifest pins the trustees' enrolment keys, every trustee.registered entry carries the "
        "enrolment key pinned for its index and a valid Ed25519 signature by it over the registration "
        "(docs/protocol.md T3.0), so only the enrolled trustees took part.",
    ),
)

_BY_ID: Final[dict[str, Check]] = {c.id: c for c in CHECKS}
assert len(_BY_ID) == len(CHECKS) and [c.step for c in CHECKS] == list(range(1, len(CHECKS) + 1))


def by_id(check_id: str) -> Check:
    return _BY_ID[check_id]


def fail(check_id: str, message: str, *, entry: int | None = None, detail: str | None = None) -> NoReturn:
    """Raise :class:`CheckFailed` for the check ``check_id``."""
    c = _BY_ID[check_id]
    raise CheckFailed(c.step, c.id, message, entry=entry, detail=detail)
