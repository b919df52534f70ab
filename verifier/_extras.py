"""V24 ``--since OLD_RECORD`` (append-only extension) and V25 ``--receipt RECEIPT`` (a voter's receipt).

V24 since.extends: "The new record's first n entries are byte-identical to the old record's n entries,
both are signed by the same log key, and the old final checkpoint is consistent with the new one." Like
Belenios' ``verify-diff``, this is what an observer runs between two downloads: nothing that was published
may change or disappear.

V25 receipt.inclusion: "The receipt's checkpoint is signed by the record's log key and is a prefix of the
record, its inclusion proof verifies, and the entry at its leaf index is the ballot with the receipt's
tracking code and ballot hash."

Both stream the record's entry lines once and fold the leaf hashes into a Merkle compact range
(:class:`ledger.merkle.CompactRange`, O(log n) hashes), taking the root at the size they need as the stream
passes it: memory does not grow with the record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ledger import LedgerError
from ledger.events import EventType
from ledger.merkle import CompactRange, fold, leaf_hash, verify_inclusion
from ledger.record import SignedCheckpoint, check_record, read_record

from ._errors import ReceiptUnreadable
from ._lang import text
from ._report import Report
from ._source import load_json, open_record

__all__ = ["RECEIPT_KEYS", "check_receipt", "check_since", "load_receipt"]

#: a receipt is a few kilobytes (its inclusion proof holds at most 64 hashes)
_MAX_RECEIPT_BYTES: Final[int] = 64 * 1024


def check_since(old_path: str | Path, new_dir: Path, report: Report) -> None:
    def bad(msg: str, entry: int | None = None) -> None:
        report.fail("since.extends", msg, entry=entry)

    with open_record(old_path) as old_src:
        try:
            old = read_record(old_src.directory)
            old_summary = check_record(old_src.directory)
        except LedgerError as e:
            bad(f"the old record is not itself valid: {e}")
            return
        try:
            new = read_record(new_dir)
        except LedgerError as e:
            bad(f"the new record cannot be read: {e}")
            return
        if old.header.log_key != new.header.log_key:
            bad("the two records are signed by different log keys")
            return
        n = old_summary.size
        tree = CompactRange()
        prefix_root = fold([]) if n == 0 else None
        old_lines = old.entry_lines()
        for i, line in enumerate(new.entry_lines()):
            if i >= n:
                break  # the new entries themselves are checked by V1-V6 like any record's
            if next(old_lines, None) != line:
                bad("entry differs from the old record's entry at the same index", entry=i)
                return
            tree.append(leaf_hash(line.removesuffix(b"\n")))
            if tree.size == n:
                prefix_root = tree.root()
    if tree.size < n or prefix_root is None:
        bad(f"the new record has {tree.size} entries, fewer than the old record's {n}", entry=tree.size)
        return
    # The old final checkpoint is consistent with the new tree iff its root is the root of the new tree's
    # first n leaves (RFC 9162 §2.1.4: a consistency proof attests exactly this). Having streamed those
    # leaves, the verifier recomputes the prefix root itself instead of checking a proof of it; the new
    # tree's root is checked against its own signed checkpoints by V3/V6.
    if prefix_root != old_summary.root:
        bad("the old final checkpoint's root is not the root of the new record's prefix")
        return
    report.passed("since.extends")


#: the keys every receipt has (``docs/record.md``; the booth's "Save my receipt")
RECEIPT_KEYS: Final[frozenset[str]] = frozenset(
    {"tracking_code", "leaf_index", "inclusion_proof", "checkpoint", "entry_hash", "ballot_hash"}
)


def load_receipt(receipt_path: str | Path) -> dict[str, Any]:
    """Read a voter's receipt file: a JSON object with :data:`RECEIPT_KEYS` and a non-negative integer
    ``leaf_index``. Anything else raises :class:`ReceiptUnreadable` (exit 2): the receipt cannot be read, so
    nothing can be said about whether it matches the record."""
    try:
        with Path(receipt_path).open("rb") as f:
            raw = f.read(_MAX_RECEIPT_BYTES + 1)
    except OSError as e:
        raise ReceiptUnreadable(
            f"the file cannot be opened ({e.strerror or e})", path=str(receipt_path)
        ) from None
    try:
        rc = load_json(raw, max_bytes=_MAX_RECEIPT_BYTES)
    except ValueError as e:  # not UTF-8 or JSON, too large or too deep
        raise ReceiptUnreadable(f"the file is not a receipt (JSON): {e}", path=str(receipt_path)) from None
    if not isinstance(rc, dict) or not RECEIPT_KEYS <= set(rc):
        raise ReceiptUnreadable(
            f"the file is not a receipt: a receipt is a JSON object with {sorted(RECEIPT_KEYS)}",
            path=str(receipt_path),
        )
    idx = rc["leaf_index"]
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        raise ReceiptUnreadable(
            "the receipt's leaf_index is not a non-negative integer", path=str(receipt_path)
        )
    return rc


def check_receipt(rc: dict[str, Any], record_dir: Path, report: Report) -> None:
    """V25 for a receipt read by :func:`load_receipt`. A receipt that does not match fails V25 only: the
    report's receipt verdict, not the record's."""

    def bad(msg: str, entry: int | None = None) -> None:
        report.fail("receipt.inclusion", msg, entry=entry)

    idx = rc["leaf_index"]
    try:
        rec = read_record(record_dir)
    except LedgerError as e:
        bad(f"the record cannot be read: {e}")
        return
    if rc["checkpoint"] is None and rc["inclusion_proof"] is None:
        # a pending receipt (checkpoints on a schedule): no checkpoint of the server's to hold it to; the
        # entry at leaf_index of this record (whose checkpoints the other checks verify) must be its ballot
        line = next((ln for i, ln in enumerate(rec.entry_lines()) if i == idx), None)
        if line is None:
            bad(f"leaf_index {idx} is outside the record (a pending receipt: no checkpoint to check it by)")
        elif leaf_hash(line.removesuffix(b"\n")).hex() != str(rc["entry_hash"]).lower():
            bad("the entry at leaf_index is not the receipt's entry (a pending receipt)", entry=idx)
        elif _is_receipts_ballot(rc, idx, line.removesuffix(b"\n"), bad):
            report.passed("receipt.inclusion")
            report.notes.append(text("note.receipt-pending"))
        return
    try:
        signed = SignedCheckpoint.verify(rc["checkpoint"], rec.header.log_key)
    except (LedgerError, TypeError, ValueError) as e:
        bad(f"the receipt's checkpoint is not signed by the record's log key: {e}")
        return
    size, cp_root = signed.checkpoint.size, signed.checkpoint.root
    tree = CompactRange()
    prefix_root = fold([]) if size == 0 else None
    entry_line: bytes | None = None
    for i, line in enumerate(rec.entry_lines()):
        if i >= size:
            break  # nothing after the receipt's checkpoint matters
        if i == idx:
            entry_line = line.removesuffix(b"\n")
        tree.append(leaf_hash(line.removesuffix(b"\n")))
        if tree.size == size:
            prefix_root = tree.root()
    if prefix_root is None:
        bad(f"the receipt's checkpoint (size {size}) is larger than the record ({tree.size} entries)")
        return
    if prefix_root != cp_root:
        bad("the receipt's checkpoint is not a prefix of this record (split view or rewritten history)")
        return
    if entry_line is None or idx >= size:
        bad(f"leaf_index {idx} is outside the receipt's checkpoint (size {size})", entry=None)
        return
    try:
        proof = [bytes.fromhex(p) for p in rc["inclusion_proof"]]
        entry_hash = bytes.fromhex(rc["entry_hash"])
        verify_inclusion(entry_hash, idx, size, proof, cp_root)
    except (LedgerError, ValueError, TypeError) as e:
        bad(f"the inclusion proof does not verify: {e}", entry=idx)
        return
    if leaf_hash(entry_line) != entry_hash:
        bad("the entry at leaf_index is not the receipt's entry", entry=idx)
        return
    if _is_receipts_ballot(rc, idx, entry_line, bad):
        report.passed("receipt.inclusion")


def _is_receipts_ballot(rc: dict[str, Any], idx: int, entry_line: bytes, bad: Callable[..., None]) -> bool:
    """The entry is the ``ballot.cast``/``ballot.spoiled`` of the receipt's tracking code and ballot hash."""
    try:
        entry = load_json(entry_line)
    except ValueError as e:
        bad(f"the entry at leaf_index is not JSON within the entry limits: {e}", entry=idx)
        return False
    p = entry.get("payload", {}) if isinstance(entry, dict) else None
    if not isinstance(p, dict):
        bad("the entry at leaf_index is not a ballot entry", entry=idx)
        return False
    if (
        entry.get("type") not in (EventType.BALLOT_CAST, EventType.BALLOT_SPOILED)
        or p.get("tracking_code") != rc["tracking_code"]
        or p.get("ballot_hash") != rc["ballot_hash"]
    ):
        bad("the entry at leaf_index is not the ballot with the receipt's tracking code", entry=idx)
        return False
    return True
