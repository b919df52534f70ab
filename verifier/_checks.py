"""The numbered verification checks: the one list, from which ``docs/verifier.md``'s table is generated.

Each check has a stable number ``V<step>``, a stable id and its spec text (the table's "what is checked").
Code that implements a check quotes its step, e.g. ``# V13 ballot.proofs: "every selection proves ..."``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NoReturn

from ._errors import CheckFailed

__all__ = ["CHECKS", "Check", "by_id", "fail", "failure", "markdown_table"]


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
        "supported, and every entry is canonical JSON of the documented shape. Every line is bounded "
        "before it is parsed (at most 1 MiB, read no further; nesting at most 65, "
        "`ledger.record.check_json_bounds`): a longer or deeper line fails V1 at its entry and the rest "
        "of the record is still checked. `record.json` must be byte-identical to its canonical rendering "
        "(it is not hashed, so not even whitespace may change). Ballot payloads and `tally.encrypted` "
        "have exactly the documented keys.",
    ),
    Check(
        2,
        "ledger.chain",
        "Hash chain",
        "Entry i names the hash of entry i-1 (entry 0 names the zero hash); indices are 0, 1, 2, ... with "
        "no gap, duplicate or reordering.",
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
        "Every checkpoint carries a valid Ed25519 signed-note signature by the log key named in the "
        "record (and pinned with `--log-key`, if given); when the manifest has `pins`, that key is "
        "`pins.log_key`.",
    ),
    Check(
        5,
        "ledger.cosignatures",
        "Witness cosignatures and quorum",
        "Every checkpoint is cosigned (BLS, aggregated) by at least the quorum of witnesses listed in the "
        "manifest, each witness key carrying a valid proof of possession. `record.json`'s witness list "
        "and quorum must equal the manifest's. A manifest with no witnesses (quorum 0) fails V5 as "
        "*unwitnessed* (see below).",
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
        "Entry 0 is the manifest; it is well formed (every label obeys the manifest text rule of "
        "`docs/events.md`, `ledger.record.check_display_text`, the server's own rule: no control, format "
        "or invisible characters, not blank, at most 200 code points; a failure names the field, e.g. "
        "`contests[1].selections[0].name.ja`; `voting_period` is two UTC times, `closes` after `opens`); "
        '`base_hash = tagged_sha256("election-base-hash", rfc8785(manifest))`; every later payload names '
        "this `election_id` and `base_hash`.",
    ),
    Check(
        8,
        "ledger.phases",
        "Lifecycle order",
        "Every event has a known type and appears in its phase (setup, key ceremony, voting, tally, "
        "publish), in the order of `docs/events.md`; one-time events appear once; the record reaches "
        "`result.declaration` (unless `--partial`). The kiosk events do not advance the phase: "
        "`kiosk.enrolled` comes after the manifest and before `voting.closed`, `kiosk.revoked` after the "
        "manifest, `kiosk.opened` between `voting.opened` and `voting.closed`, `kiosk.closed` after "
        "`voting.opened` (also after `voting.closed`).",
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
        "dealer is disqualified; no dealer is disqualified without cause "
        "(`crypto.resolve_complaint`, from public data only).",
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
        "The roll commitment is published before voting opens and is well formed (exactly `size`, `root` "
        'as 64 lowercase hex, `alias_scheme` `"hmac-sha256/1"`); every `ballot.cast` entry carries '
        '`roll_proof` = `{"index", "path"}`, exactly those keys, `index` an integer in [0, size), `path` '
        "exactly as many 64-lowercase-hex hashes as RFC 9162 gives PATH(index, D[size]), and it verifies "
        "(`ledger.merkle.verify_inclusion`) the leaf `SHA-256(0x00 ‖ voter alias)` against the "
        "commitment's root and size, so no ballot names an alias that is not on the committed roll; and "
        "no more distinct voter aliases cast ballots than the roll's size. A failure names the cast "
        "entry.",
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
        "Every ballot is bound to this election's base hash; `ballot_hash` and tracking code recompute "
        "from the encrypted ballot; every cast ballot names a voter alias, an allowed channel and "
        "authentication method (oidc+face with a positive decision), a positive `seq`, and its own "
        'authentication-evidence hash; a kiosk ballot (`channel` `"kiosk"`) names its kiosk in `kiosk`, '
        "exactly `{kiosk_id, session, signature}` (a kiosk id, an integer >= 1, 128 lowercase hex), and an "
        "internet ballot has no `kiosk`.",
    ),
    Check(
        15,
        "ballot.unique",
        "No duplicate ballots, nonces or ciphertexts",
        "A `ballot_hash`, a ballot nonce and every selection's ciphertext pad (its first component, `a` = "
        "r·G) each appear at most once among all cast and spoiled ballots, within a ballot too (no "
        "replay; no contest copied into another ballot with its nonce; no copied or mauled ciphertext), "
        "and no two ballots share an authentication-evidence hash. The rules are "
        "`ledger.record.ballot_unique_values` (the server's intake applies the same, `docs/voting.md`); a "
        "failure names the earlier entry that published the value. A replayed ballot (same hash) is not "
        "counted again; a ballot that repeats a nonce or a pad is reported and still goes through the "
        "counting rule.",
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
        "The counted set re-derived from the ledger by the manifest's revote rule (last internet ballot "
        "counts, first kiosk ballot overrides; a second kiosk ballot is an error; each voter's `seq` "
        "counts 1, 2, ...) is the set that `tally.encrypted`'s `counted_root` commits to (the RFC 9162 "
        'Merkle root over the counted ballot hashes in ledger order, see "The counted set" below), and '
        "the published counts (cast, counted, superseded, overridden, spoiled) agree. A `tally.encrypted` "
        "without a well-formed `counted_root` (including the retired `counted` list form) fails here.",
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
        "Every published count m satisfies m·G = the combined plaintext point, with 0 <= m <= counted; "
        "the result names exactly the manifest's contests and selections.",
    ),
    Check(
        22,
        "result.pdf",
        "Result declaration PDF",
        "`result.pdf` hashes to the declaration's `pdf_sha256`; the declaration cites a checkpoint of the "
        "record (by SHA-256 of its signed note); the PDF's PAdES signature verifies against the "
        "commission's trust root and covers the whole file, its embedded result and checkpoint (hash and "
        "attached signed note) agree with the record, and every figure it prints (each count, the blank "
        "ballots per contest, the eligible voters, ballots counted and turnout) is the one the record gives, "
        "read from the page's text (`verifier._pdf.check_result_pdf`). When the commission root is pinned "
        "(`--pins`, else the manifest's `pins`), the trust root is the certificate with the pinned "
        "SHA-256 fingerprint (from `--trust-root` or the PDF signature's certificates), and no other.",
    ),
    Check(
        23,
        "record.privacy",
        "No personal data",
        "No payload key names a personal-data field and no value looks like a name field, address, birth "
        "date, 12-digit number or IP address. (`name` is allowed only in the manifest and "
        "`trustee.registered`, where it is a public role name; hex blobs and recomputed tracking codes "
        "are skipped.)",
    ),
    Check(
        24,
        "since.extends",
        "Append-only extension (--since)",
        "(`--since`) The new record's first n entries are byte-identical to the old record's n entries, "
        "both are signed by the same log key, and the old final checkpoint's root is the root of the new "
        "record's first n entries, recomputed from the streamed entries (what an RFC 9162 consistency "
        "proof attests; the new record's own checkpoints and consistency proofs are V3/V6). Like "
        "Belenios' `verify-diff`.",
    ),
    Check(
        25,
        "receipt.inclusion",
        "Receipt (--receipt)",
        "(`--receipt`) The receipt's checkpoint is signed by the record's log key and is a prefix of the "
        "record, its inclusion proof verifies, and the entry at its leaf index is the ballot with the "
        "receipt's tracking code and ballot hash.",
    ),
    Check(
        26,
        "voting.period",
        "Voting period and its overrides",
        "`voting.opened` is not before the manifest's `voting_period.opens` (and before its `closes`), "
        "and `voting.closed` not before the end of voting in force (`voting_period.closes`, or the last "
        "`voting.extended`'s `closes`), unless the entry carries `override.reason`; `voting.closed` is "
        "never after that end (a late close is a `voting.extended` entry, published before the end); each "
        "`voting.extended` moves the end later and carries a reason; an override appears only where the "
        "period is departed from; reasons obey the manifest text rule (at most 500 code points). Every "
        "cast and spoiled ballot lies between `voting.opened` and `voting.closed` (V8). A record without "
        "`voting.opened` (`--partial`) reports V26 n/a.",
    ),
    Check(
        27,
        "record.pins",
        "Official pins (--pins)",
        "(`--pins`, official mode) The pins file names this election; the manifest's base hash, each of "
        "its `pins` and its witnesses equal the file's; the log key named in `record.json` is the pinned "
        'one. Without `--pins` it is "not run" and the report notes that the verification is not '
        "official.",
    ),
    Check(
        28,
        "trustee.enrolment",
        "Trustee enrolment",
        "When the manifest has `pins`, every `trustee.registered` carries `enrolment` with the key pinned "
        "for its index (`pins.trustee_enrolment_keys[i − 1]`) and a valid Ed25519 signature by it over "
        '`tagged_sha256("trustee-enrolment", base_hash, u64(i), name, JCS(commitments))` '
        "(`docs/protocol.md` T3.0); otherwise n/a (an `enrolment` without pins fails).",
    ),
    Check(
        29,
        "booth.published",
        "The residents' booth",
        "A record that opens voting has one `booth.published` entry before `voting.opened`; it is exactly "
        "`{assets, digest}`, every asset exactly `{path, sha256, bytes}` (`path` an address such as `/`, "
        "`/vote` or `/static/…`, no segment empty or starting with a dot; `sha256` 64 lowercase hex; "
        "`bytes` an integer >= 0), the paths in strictly increasing order, and "
        '`digest = tagged_sha256("booth-assets", JCS(assets))`. The report states the digest, to compare '
        "with what the server serves (`GET /api/v1/election/booth`). A record that has not opened voting "
        "and has no booth yet reports V29 n/a.",
    ),
    Check(
        30,
        "kiosk.enrolment",
        "Kiosk enrolment and sessions",
        "Every `kiosk.enrolled` is exactly `{kiosk_id, public_key, polling_place}` (`kiosk_id` matching "
        "`^[a-z0-9][a-z0-9-]{0,62}$`, `public_key` 64 lowercase hex of a valid Ed25519 point, "
        "`polling_place` the manifest text rule, at most 200 code points), each `kiosk_id` and each "
        "`public_key` enrolled once; every `kiosk.revoked` is exactly `{kiosk_id, reason}` (the text "
        "rule, at most 500) and names a kiosk enrolled at an earlier entry, once. Each kiosk's "
        "`kiosk.opened` and `kiosk.closed` alternate, sessions 1, 2, ... in ledger order, each by a kiosk "
        "enrolled earlier and not revoked at that entry (a session may stay open at the end of the record); "
        "`kiosk_signature` verifies under the enrolled key (Ed25519, RFC 8032) over "
        '`tagged_sha256("kiosk-opened", base_hash, kiosk_id, u64(session), opened_at)`, resp. '
        '`tagged_sha256("kiosk-closed", base_hash, kiosk_id, u64(session), closed_at, u64(kiosk_count))`; '
        "`kiosk.closed.ballots_cast` is the number of kiosk ballots of that kiosk and session before it. "
        "A `kiosk_count` (the kiosk's own count) other than `ballots_cast` is reported as a note, not a "
        'failure (`docs/kiosk.md`, "Network trouble"). A record without any kiosk entry or kiosk ballot '
        "reports V30 n/a.",
    ),
    Check(
        31,
        "kiosk.ballots",
        "Kiosk ballots",
        "Every kiosk ballot names in `kiosk` a kiosk enrolled at an earlier entry and not revoked at its "
        "own, whose session `session` is open at that entry (after its `kiosk.opened`, before its "
        "`kiosk.closed`), and `kiosk.signature` verifies under that kiosk's enrolled key over "
        '`tagged_sha256("kiosk-ballot", base_hash, kiosk_id, u64(session), ballot_hash)` (the ballot '
        "hash that V14 recomputes). A failure names the ballot's entry. (The form of `kiosk` is V14's.) A "
        "record without any kiosk entry or kiosk ballot reports V31 n/a.",
    ),
)

_BY_ID: Final[dict[str, Check]] = {c.id: c for c in CHECKS}
assert len(_BY_ID) == len(CHECKS) and [c.step for c in CHECKS] == list(range(1, len(CHECKS) + 1))


def markdown_table() -> str:
    """The check table of ``docs/verifier.md``, generated from :data:`CHECKS` (``tools/gen_check_table.py``
    writes it there; a test keeps the two equal)."""
    rows = ["| # | id | what is checked |", "|---|---|---|"]
    rows += [f"| V{c.step} | `{c.id}` | {c.spec} |" for c in CHECKS]
    return "\n".join(rows) + "\n"


def by_id(check_id: str) -> Check:
    return _BY_ID[check_id]


def failure(
    check_id: str, message: str, *, entry: int | None = None, detail: str | None = None
) -> CheckFailed:
    """The failure of the check ``check_id``, its step derived from the id: the one way a check failure is
    made (recorded with :meth:`verifier._report.Report.fail`, or raised with :func:`fail` where a check
    cannot go on)."""
    c = _BY_ID[check_id]
    return CheckFailed(c.step, c.id, message, entry=entry, detail=detail)


def fail(check_id: str, message: str, *, entry: int | None = None, detail: str | None = None) -> NoReturn:
    """Raise the failure of the check ``check_id`` (caught and recorded by the engine)."""
    raise failure(check_id, message, entry=entry, detail=detail)
