"""The voter roll: CSV loading, voter aliases, and the public roll commitment.

Input: a CSV file exported from the resident register (UTF-8, a BOM allowed; Shift_JIS/cp932 accepted too),
one row per eligible resident, with a header row and these columns:

* ``resident_id`` — the register's internal resident id (never the 12-digit My Number), required;
* either ``match_key`` — 64 hex digits, the roll match key already computed by the register system
  (:func:`voting.auth._roll.roll_match_key` under the election's roll key),
* or ``name``, ``birth_date`` (``YYYY-MM-DD``) and ``address`` — from which the match key is computed here,
  immediately, and then dropped (the plaintext is never stored, logged or returned).

A roll is refused (:class:`~voting._errors.RollFileError`) if it has a column that looks like a My Number
column (``my_number``, ``mynumber``, ``individual_number``, ``kojin_bango``, ``個人番号``,
``マイナンバー``, …) or *any* cell that is a 12-digit number (spaces and hyphens ignored), if a resident
id or a match key repeats, or if any row is malformed. Errors name the line and column, never the value.

What the service keeps per voter is the pair (alias, match key)::

    alias = HMAC-SHA256(roll_key, u32be(len(D)) || D || u32be(len(e)) || e || u32be(len(r)) || r)

with ``D = b"tvote/2/voter-alias"``, ``e`` the election id and ``r`` the resident id (UTF-8), ``roll_key``
the election's 32-byte secret. The public **roll commitment** is ``{"size": n, "root": hex,
"alias_scheme": "hmac-sha256/1"}`` where ``root`` is the RFC 9162 Merkle root whose leaves are the 32-byte
aliases in ascending byte order (leaf hash ``SHA-256(0x00 || alias)``).

Roll inclusion proofs: every ``ballot.cast`` entry carries ``"roll_proof": {"index": i, "path": [hex, ...]}``,
the RFC 9162 inclusion proof (:func:`ledger.merkle.verify_inclusion`) of ``SHA-256(0x00 || alias)`` at leaf
``i`` of the tree of the published commitment, so anyone can check that each voter alias is on the committed
roll. Because the leaves are the aliases in ascending order, ``i`` is the alias's rank among the aliases,
which are keyed hashes: it says nothing about the resident. The service keeps every complete-subtree hash
of the roll tree (:func:`roll_tree`, stored when the roll is loaded), so a proof reads O(log n) rows
(:func:`roll_proof_plan`) and nothing is recomputed per cast.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from crypto import PROTOCOL_VERSION
from ledger.merkle import (
    CompactRange,
    fold,
    inclusion_ranges,
    leaf_hash,
    root,
    subtree_nodes,
    verify_inclusion,
)

from ._errors import RollFileError

__all__ = [
    "ALIAS_SCHEME",
    "Roll",
    "RollEntry",
    "RollProof",
    "load_roll_csv",
    "parse_roll_csv",
    "roll_proof_from_nodes",
    "roll_proof_plan",
    "roll_root",
    "roll_tree",
    "voter_alias",
]

ALIAS_SCHEME: Final[str] = "hmac-sha256/1"
_ALIAS_DOMAIN: Final[bytes] = f"tvote/{PROTOCOL_VERSION}/voter-alias".encode()
MAX_ROLL_SIZE: Final[int] = 2_000_000

_FORBIDDEN_COLUMNS: Final[frozenset[str]] = frozenset(
    {
        "mynumber",
        "my_number",
        "individualnumber",
        "individual_number",
        "kojinbango",
        "kojin_bango",
        "kojin_bangou",
        "個人番号",
        "マイナンバー",
        "まいなんばー",
        "number",
    }
)
_TWELVE_DIGITS = re.compile(r"^\d{12}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def voter_alias(roll_key: bytes, election_id: str, resident_id: str) -> bytes:
    """The per-election voter alias of a resident (32 bytes; see the module docstring)."""
    if not isinstance(roll_key, bytes) or len(roll_key) != 32:
        raise ValueError("the roll key is exactly 32 bytes")
    msg = _lp(_ALIAS_DOMAIN) + _lp(election_id.encode()) + _lp(resident_id.encode())
    return hmac.new(roll_key, msg, hashlib.sha256).digest()


def roll_root(aliases: Iterable[bytes]) -> bytes:
    """RFC 9162 root over the aliases sorted ascending (each leaf is one 32-byte alias)."""
    return root([leaf_hash(a) for a in sorted(aliases)])


def roll_tree(aliases: Iterable[bytes]) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """The root and every complete-subtree hash ``(level, index, hash)`` (leaves at level 0) of the roll
    tree over ``aliases``, which must already be sorted ascending. One streaming pass
    (:class:`ledger.merkle.CompactRange`): what storage keeps so that :func:`roll_proof_plan` reads
    O(log n) nodes per proof."""
    cr = CompactRange()
    nodes: list[tuple[int, int, bytes]] = []
    prev = b""
    for a in aliases:
        if a <= prev:
            raise ValueError("roll aliases must be distinct and sorted ascending")
        prev = a
        nodes.extend(cr.append(leaf_hash(a)))
    return cr.root(), nodes


def roll_proof_plan(index: int, size: int) -> list[list[tuple[int, int]]]:
    """For each hash of PATH(index, D[size]), the stored complete subtrees ``(level, index)`` whose right
    fold (:func:`ledger.merkle.fold`) it is."""
    return [subtree_nodes(b, e) for b, e in inclusion_ranges(index, size)]


@dataclass(frozen=True, slots=True)
class RollProof:
    """An alias's RFC 9162 inclusion proof in the roll tree (the ``roll_proof`` of ``ballot.cast``)."""

    index: int
    size: int
    path: tuple[bytes, ...]

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "path": [p.hex() for p in self.path]}

    def verify(self, alias: bytes, roll_root: bytes) -> None:
        """Raise :class:`ledger.ProofError` / :class:`ledger.InvalidEncoding` unless the proof holds."""
        verify_inclusion(leaf_hash(alias), self.index, self.size, self.path, roll_root)


def roll_proof_from_nodes(index: int, size: int, nodes: Mapping[tuple[int, int], bytes]) -> RollProof:
    """Assemble the proof for leaf ``index`` from stored subtree hashes (``KeyError`` if one is missing)."""
    path = tuple(fold([nodes[k] for k in part]) for part in roll_proof_plan(index, size))
    return RollProof(index, size, path)


@dataclass(frozen=True, slots=True)
class RollEntry:
    alias: bytes
    match_key: bytes

    def __post_init__(self) -> None:
        if len(self.alias) != 32 or len(self.match_key) != 32:
            raise ValueError("alias and match key are 32 bytes")


@dataclass(frozen=True, slots=True)
class Roll:
    """A loaded roll: entries sorted by alias; nothing here is personal data in the clear."""

    election_id: str
    entries: tuple[RollEntry, ...]

    @property
    def size(self) -> int:
        return len(self.entries)

    @property
    def root(self) -> bytes:
        return roll_root(e.alias for e in self.entries)

    def commitment(self) -> dict[str, object]:
        """The ``roll.commitment`` payload fields (without election_id/base_hash)."""
        return {"size": self.size, "root": self.root.hex(), "alias_scheme": ALIAS_SCHEME}


def _norm_header(h: str) -> str:
    return unicodedata.normalize("NFKC", h).strip().lower().replace("-", "_").replace(" ", "_")


def _decode(raw: bytes) -> str:
    for enc in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise RollFileError("roll.encoding", "the roll file is neither UTF-8 nor Shift_JIS (cp932) text")


def _looks_like_my_number(value: str) -> bool:
    compact = re.sub(r"[\s\-‐－ー]", "", unicodedata.normalize("NFKC", value))
    return bool(_TWELVE_DIGITS.match(compact))


def parse_roll_csv(data: bytes | str, *, roll_key: bytes, election_id: str) -> Roll:
    """Validate a roll CSV and turn it into (alias, match key) entries. Plaintext is dropped at once."""
    from voting.auth._errors import RollError
    from voting.auth._roll import RollKey, roll_match_key

    text = _decode(data) if isinstance(data, bytes) else data
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise RollFileError("roll.empty", "the roll file is empty") from None
    except csv.Error as e:
        raise RollFileError("roll.syntax", f"line 1: not valid CSV ({e})") from e
    cols = [_norm_header(h) for h in header]
    for c in cols:
        if c in _FORBIDDEN_COLUMNS or "my_number" in c or "mynumber" in c or "個人番号" in c:
            raise RollFileError(
                "roll.my_number",
                f"the roll has a column {c!r} that looks like the 12-digit My Number; "
                "the My Number must never be loaded",
            )
    if len(set(cols)) != len(cols):
        raise RollFileError("roll.columns", "the roll header repeats a column")
    if "resident_id" not in cols:
        raise RollFileError("roll.columns", "the roll needs a 'resident_id' column")
    has_key = "match_key" in cols
    has_data = {"name", "birth_date", "address"} <= set(cols)
    if has_key == has_data:
        raise RollFileError(
            "roll.columns",
            "the roll needs either a 'match_key' column or the columns 'name', 'birth_date' and 'address' "
            "(not both)",
        )
    allowed = {"resident_id", "match_key"} if has_key else {"resident_id", "name", "birth_date", "address"}
    extra = [c for c in cols if c not in allowed]
    if extra:
        raise RollFileError("roll.columns", f"unexpected roll column(s): {', '.join(sorted(extra))}")
    pos = {c: i for i, c in enumerate(cols)}
    key = RollKey(roll_key)

    seen_ids: set[str] = set()
    seen_keys: set[bytes] = set()
    entries: list[RollEntry] = []
    line = 1
    try:
        for row in reader:
            line += 1
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(cols):
                raise RollFileError("roll.row", f"line {line}: expected {len(cols)} fields, found {len(row)}")
            for i, cell in enumerate(row):
                if _looks_like_my_number(cell):
                    raise RollFileError(
                        "roll.my_number",
                        f"line {line}, column {cols[i]!r}: a 12-digit number (a My Number?) is refused",
                    )
            rid = row[pos["resident_id"]].strip()
            if not rid or len(rid) > 64:
                raise RollFileError("roll.resident_id", f"line {line}: resident_id is empty or too long")
            if rid in seen_ids:
                raise RollFileError("roll.duplicate", f"line {line}: resident_id repeats an earlier row")
            seen_ids.add(rid)
            if has_key:
                mk_hex = row[pos["match_key"]].strip()
                if not _HEX64.match(mk_hex):
                    raise RollFileError("roll.match_key", f"line {line}: match_key is not 64 hex digits")
                mk = bytes.fromhex(mk_hex)
            else:
                try:
                    bd = dt.date.fromisoformat(row[pos["birth_date"]].strip())
                except ValueError:
                    raise RollFileError(
                        "roll.birth_date", f"line {line}: birth_date is not a YYYY-MM-DD date"
                    ) from None
                try:
                    mk = roll_match_key(key, row[pos["name"]], bd, row[pos["address"]]).digest
                except RollError:
                    raise RollFileError("roll.row", f"line {line}: name or address is empty") from None
            if mk in seen_keys:
                raise RollFileError(
                    "roll.duplicate",
                    f"line {line}: the matching data repeats an earlier row (ambiguous match)",
                )
            seen_keys.add(mk)
            entries.append(RollEntry(voter_alias(roll_key, election_id, rid), mk))
            if len(entries) > MAX_ROLL_SIZE:
                raise RollFileError("roll.size", f"the roll has more than {MAX_ROLL_SIZE} rows")
    except csv.Error as e:
        raise RollFileError("roll.syntax", f"line {line}: not valid CSV ({e})") from e
    if not entries:
        raise RollFileError("roll.empty", "the roll has no voters")
    entries.sort(key=lambda e: e.alias)
    return Roll(election_id, tuple(entries))


def load_roll_csv(path: str | Path, *, roll_key: bytes, election_id: str) -> Roll:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise RollFileError("roll.unreadable", f"cannot read roll file {p.name}: {e.strerror}") from e
    return parse_roll_csv(raw, roll_key=roll_key, election_id=election_id)
