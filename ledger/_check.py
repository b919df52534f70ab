"""The election record: directory/archive reader, writer helpers and ``check_record``.

See ``docs/record.md`` for the normative format. This module never imports the storage layer.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from ._cosign import CosignatureBundle, WitnessKey, WitnessPolicy
from ._entry import ZERO_HASH, Entry, canonical_json, from_hex, parse_json
from ._errors import InvalidEncoding, InvalidEntry, LedgerError, ProofError, RecordError
from ._note import LogKey, SignedCheckpoint
from .merkle import CompactRange, fold, verify_consistency

__all__ = [
    "ARCHIVE_PREFIX",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "CheckpointRecord",
    "RecordHeader",
    "RecordSummary",
    "check_record",
    "check_sequence",
    "read_record",
]

RECORD_FORMAT: Final[str] = "tvote-election-record"
RECORD_VERSION: Final[int] = 3  # 2: issued_at is the note's signed time line; 3: protocol v2 (ristretto255)
ARCHIVE_PREFIX: Final[str] = "tvote-record"
RECORD_FILE: Final[str] = "record.json"
ENTRIES_FILE: Final[str] = "entries.jsonl"
CHECKPOINTS_FILE: Final[str] = "checkpoints.jsonl"
_MAX_HEADER_BYTES: Final[int] = 1 << 20
_MAX_CHECKPOINT_LINE: Final[int] = 1 << 20


def _strict_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        obj = parse_json(raw)
    except InvalidEntry as e:
        raise InvalidEncoding(f"{what}: {e}") from None
    if not isinstance(obj, dict):
        raise InvalidEncoding(f"{what} must be a JSON object")
    return obj


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise InvalidEncoding(f"{what} must be a non-negative integer")
    return v


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """``record.json``: what is needed to check everything else."""

    log_key: LogKey
    policy: WitnessPolicy
    entry_count: int
    checkpoint_count: int

    @property
    def origin(self) -> str:
        return self.log_key.name

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint_count": self.checkpoint_count,
            "entry_count": self.entry_count,
            "entry_version": 1,
            "format": RECORD_FORMAT,
            "hash": "sha256",
            "log_key": self.log_key.vkey,
            "origin": self.origin,
            "quorum": self.policy.quorum,
            "version": RECORD_VERSION,
            "witnesses": [w.to_json() for w in self.policy.witnesses],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RecordHeader:
        want = {
            "checkpoint_count",
            "entry_count",
            "entry_version",
            "format",
            "hash",
            "log_key",
            "origin",
            "quorum",
            "version",
            "witnesses",
        }
        if obj.get("format") != RECORD_FORMAT:
            raise InvalidEncoding("not a tvote election record")
        if obj.get("version") != RECORD_VERSION:
            raise InvalidEncoding(f"unsupported record version {obj.get('version')!r}")
        if set(obj) != want or obj["hash"] != "sha256" or obj["entry_version"] != 1:
            raise InvalidEncoding("record.json has missing, unknown or unsupported fields")
        key = LogKey.from_vkey(obj["log_key"])
        if obj["origin"] != key.name:
            raise InvalidEncoding("record origin does not match the log key name")
        if not isinstance(obj["witnesses"], list):
            raise InvalidEncoding("witnesses must be a list")
        policy = WitnessPolicy(tuple(WitnessKey.from_json(w) for w in obj["witnesses"]), obj["quorum"])
        return cls(
            key,
            policy,
            _int(obj["entry_count"], "entry_count"),
            _int(obj["checkpoint_count"], "checkpoint_count"),
        )


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One line of ``checkpoints.jsonl`` (parsed, not yet verified)."""

    size: int
    root: bytes
    note: str
    issued_at: int
    consistency_from: int | None = None
    consistency_proof: tuple[bytes, ...] = field(default=(), repr=False)
    cosignatures: CosignatureBundle | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "consistency": None
            if self.consistency_from is None
            else {
                "from_size": self.consistency_from,
                "proof": [p.hex() for p in self.consistency_proof],
            },
            "cosignatures": None if self.cosignatures is None else self.cosignatures.to_json(),
            "issued_at": self.issued_at,
            "note": self.note,
            "root": self.root.hex(),
            "size": self.size,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CheckpointRecord:
        if set(obj) != {"consistency", "cosignatures", "issued_at", "note", "root", "size"}:
            raise InvalidEncoding("checkpoint line has missing or unknown fields")
        cons = obj["consistency"]
        cfrom: int | None = None
        proof: tuple[bytes, ...] = ()
        if cons is not None:
            if not isinstance(cons, dict) or set(cons) != {"from_size", "proof"}:
                raise InvalidEncoding("consistency must have exactly from_size and proof")
            if not isinstance(cons["proof"], list) or len(cons["proof"]) > 128:
                raise InvalidEncoding("consistency proof must be a list of at most 128 hashes")
            cfrom = _int(cons["from_size"], "from_size")
            proof = tuple(from_hex(p, 32, "consistency proof hash") for p in cons["proof"])
        if not isinstance(obj["note"], str):
            raise InvalidEncoding("note must be text")
        bundle = None if obj["cosignatures"] is None else CosignatureBundle.from_json(obj["cosignatures"])
        return cls(
            _int(obj["size"], "size"),
            from_hex(obj["root"], 32, "root"),
            obj["note"],
            _int(obj["issued_at"], "issued_at"),
            cfrom,
            proof,
            bundle,
        )

    def line(self) -> bytes:
        return canonical_json(self.to_json()) + b"\n"


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """What a successful check established."""

    origin: str
    size: int
    root: bytes
    checkpoints: int
    witnessed_size: int
    signers: tuple[str, ...]


# --- the check ------------------------------------------------------------------------------------


def _fail(check: str, message: str, index: int | None = None) -> RecordError:
    return RecordError(check, message, index=index)


@dataclass(frozen=True, slots=True)
class _Pos:
    """What the first-bad-entry rule needs of one line: its hash, prev and index (None if malformed)."""

    hash: bytes
    prev: bytes
    index: int


class _EntryStream:
    """One pass over the entry lines keeping O(log n) state: a sliding window of four positions for the
    first-bad-entry rule (docs/record.md §6) and the Merkle compact range (right border of complete
    subtrees) from which the root at every checkpoint size is taken as the stream passes it."""

    def __init__(self, want_roots: Iterable[int]) -> None:
        self.want = set(want_roots)
        self.roots: dict[int, bytes] = {}
        self.tree = CompactRange()
        self.window: list[_Pos | None] = []  # positions n-4 .. n-1 (fewer at the start)
        self.n = 0
        self.why = ""
        if 0 in self.want:
            self.roots[0] = fold([])

    def _at(self, i: int) -> _Pos | None:
        return self.window[i - self.n + len(self.window)]

    def _hash_before(self, i: int) -> bytes:  # the hash the entry at i must name as prev
        if i == 0:
            return ZERO_HASH
        before = self._at(i - 1)
        assert before is not None  # position i-1 was judged good before i is judged
        return before.hash

    def _judge(self, i: int) -> None:
        """Raise if position ``i`` is the first bad entry. Needs positions i-2 .. i+1 (i+1 if read)."""
        cur = self._at(i)
        if cur is None:
            raise _fail("entry-format", self.why, i)
        if cur.index != i:
            before = self._at(i - 1) if i >= 1 else None
            if before is not None and before.hash == cur.hash:
                raise _fail("entry-duplicate", "entry repeats the previous entry", i)
            if i >= 1 and cur.index == i - 1 and cur.prev == self._hash_before(i - 1):
                raise _fail("entry-inserted", "the next entry chains to the entry before this one", i - 1)
            raise _fail("entry-index", f"entry at position {i} carries index {cur.index}", i)
        if cur.prev != self._hash_before(i):
            if i == 0:
                raise _fail("entry-chain", "entry 0 must name the all-zero hash as prev", 0)
            nxt = self._at(i + 1) if i + 1 < self.n else None
            if nxt is not None and nxt.index == i + 1 and nxt.prev == cur.hash:
                raise _fail("entry-chain", "entry does not hash to the prev its successor names", i - 1)
            if i + 1 < self.n:
                raise _fail("entry-chain", "entry's prev does not name the previous entry", i)
            raise _fail("entry-chain", "entry does not hash to the prev its successor names", i - 1)

    def push(self, line: bytes) -> None:
        pos: _Pos | None
        try:
            if not line.endswith(b"\n"):
                raise InvalidEncoding("line does not end with a newline")
            e = Entry.from_bytes(line[:-1])
            pos = _Pos(e.hash, e.prev, e.index)
        except LedgerError as err:
            pos, self.why = None, str(err)
        self.window.append(pos)
        if len(self.window) > 4:
            del self.window[0]
        self.n += 1
        if self.n >= 2:
            self._judge(self.n - 2)
        if pos is None:
            self._judge(self.n - 1)  # raises: nothing after a malformed line matters
            return
        self.tree.append(pos.hash)
        if self.n in self.want:
            self.roots[self.n] = self.tree.root()

    def finish(self) -> None:
        if self.n:
            self._judge(self.n - 1)


def check_sequence(
    header: RecordHeader,
    lines: Iterable[bytes],
    checkpoints: Sequence[CheckpointRecord],
    *,
    live: bool = False,
) -> RecordSummary:
    """Check entries (one canonical entry + ``\\n`` per item, in order) against signed checkpoints.

    ``lines`` is consumed once, keeping O(log n) hashes (memory does not grow with the number of
    entries): each line is parsed and re-serialised once, chained to the previous one, and folded into
    the Merkle compact range, from which the root at each checkpoint's size is taken as the stream
    passes it. ``live=True`` is the storage check of a running log: entries after the newest checkpoint
    are allowed (they are checked for format and chain only) and the newest checkpoint need not be
    witnessed yet.
    """
    stream = _EntryStream(cp.size for cp in checkpoints)
    for line in lines:
        stream.push(line)
    stream.finish()
    n = stream.n
    if n != header.entry_count:
        raise _fail(
            "entry-count",
            f"record.json announces {header.entry_count} entries, found {n}",
            min(n, header.entry_count),
        )
    if not checkpoints and live:
        return RecordSummary(header.origin, n, b"", 0, 0, ())
    if not checkpoints:
        raise _fail("checkpoint-missing", "the record has no signed checkpoint", 0 if n else None)
    if len(checkpoints) != header.checkpoint_count:
        raise _fail("checkpoint-count", "record.json announces a different number of checkpoints")

    good_size = 0
    prev: CheckpointRecord | None = None
    prev_time = 0
    for j, cp in enumerate(checkpoints):
        where = f"checkpoint #{j} (size {cp.size})"
        try:
            signed = SignedCheckpoint.verify(cp.note, header.log_key)
        except LedgerError as e:
            raise _fail("checkpoint-signature", f"{where}: {e}") from e
        c = signed.checkpoint
        if (c.size, c.root) != (cp.size, cp.root):
            raise _fail("checkpoint-fields", f"{where}: size/root differ from the signed note")
        if c.time != cp.issued_at:
            raise _fail("checkpoint-fields", f"{where}: issued_at differs from the signed time {c.time}")
        if prev is not None and cp.size <= prev.size:
            raise _fail("checkpoint-order", f"{where}: sizes must strictly increase")
        if c.time < prev_time:
            raise _fail("checkpoint-order", f"{where}: signed time {c.time} precedes {prev_time}")
        if cp.size > n:
            raise _fail("entry-missing", f"{where} covers entries missing from the record", n)
        if stream.roots[cp.size] != cp.root:
            culprit = cp.size - 1 if cp.size == n else good_size
            raise _fail("entry-root", f"{where}: entries do not hash to the signed root", culprit)
        if prev is not None:
            if cp.consistency_from != prev.size:
                raise _fail("checkpoint-consistency", f"{where}: no consistency proof from size {prev.size}")
            try:
                verify_consistency(prev.size, cp.size, prev.root, cp.root, cp.consistency_proof)
            except (ProofError, InvalidEncoding) as e:
                raise _fail("checkpoint-consistency", f"{where}: {e}") from e
        elif cp.consistency_from is not None:
            raise _fail("checkpoint-consistency", f"{where}: the first checkpoint has no predecessor")
        if cp.cosignatures is not None:
            try:
                cp.cosignatures.verify(signed.body, header.policy)
            except LedgerError as e:
                raise _fail("checkpoint-cosignature", f"{where}: {e}") from e
        good_size, prev, prev_time = cp.size, cp, c.time
    assert prev is not None
    if live:
        return RecordSummary(
            header.origin,
            prev.size,
            prev.root,
            len(checkpoints),
            0,
            prev.cosignatures.signers if prev.cosignatures else (),
        )
    if prev.size != n:
        raise _fail(
            "entry-unsigned", f"entries from {prev.size} on are not covered by a checkpoint", prev.size
        )
    signers = prev.cosignatures.signers if prev.cosignatures is not None else ()
    if len(signers) < header.policy.quorum:
        raise _fail(
            "checkpoint-witnessed",
            f"the final checkpoint has {len(signers)} of {header.policy.quorum} witness cosignatures",
        )
    witnessed = max(
        (
            c.size
            for c in checkpoints
            if c.cosignatures is not None and len(c.cosignatures.signers) >= header.policy.quorum
        ),
        default=0,
    )
    return RecordSummary(header.origin, n, prev.root, len(checkpoints), witnessed, signers)


# --- reading a record directory or archive ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ArchivedEntries:
    """``entries.jsonl`` inside a record archive, streamed from the archive whenever it is read."""

    archive: Path


@dataclass(frozen=True, slots=True)
class _Files:
    header: bytes
    checkpoints: bytes
    entries: Path | _ArchivedEntries | bytes


def _read_files(path: Path) -> _Files:
    if path.is_dir():
        names = {RECORD_FILE, ENTRIES_FILE, CHECKPOINTS_FILE}
        missing = [nm for nm in sorted(names) if not (path / nm).is_file()]
        if missing:
            raise InvalidEncoding(f"record directory lacks {', '.join(missing)}")
        return _Files(
            (path / RECORD_FILE).read_bytes(), (path / CHECKPOINTS_FILE).read_bytes(), path / ENTRIES_FILE
        )
    if path.is_file():
        found: dict[str, bytes] = {}
        try:
            with tarfile.open(path, "r:gz") as tar:
                for m in tar:
                    if m.isdir() and m.name == ARCHIVE_PREFIX:
                        continue
                    name = m.name.removeprefix(ARCHIVE_PREFIX + "/")
                    if (
                        not m.isreg()
                        or name not in {RECORD_FILE, ENTRIES_FILE, CHECKPOINTS_FILE}
                        or m.name != f"{ARCHIVE_PREFIX}/{name}"
                        or name in found
                    ):
                        raise InvalidEncoding(f"unexpected archive member {m.name!r}")
                    if name == ENTRIES_FILE:  # streamed later, never held in memory
                        found[name] = b""
                        continue
                    f = tar.extractfile(m)
                    assert f is not None
                    found[name] = f.read(_MAX_HEADER_BYTES + 1 if name == RECORD_FILE else -1)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise InvalidEncoding(f"not a readable record archive: {e}") from None
        if len(found) != 3:
            raise InvalidEncoding("record archive lacks a file")
        return _Files(found[RECORD_FILE], found[CHECKPOINTS_FILE], _ArchivedEntries(path))
    raise InvalidEncoding(f"no record at {path}")


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed record: header, checkpoints, and the entry lines (read lazily)."""

    header: RecordHeader
    checkpoints: tuple[CheckpointRecord, ...]
    _entries: Path | _ArchivedEntries | bytes = field(repr=False)

    def entry_lines(self) -> Iterator[bytes]:
        """Each entry's canonical bytes followed by ``\\n``, in order (streamed: one line at a time)."""
        src: IO[bytes]
        if isinstance(self._entries, Path):
            with self._entries.open("rb") as src:
                yield from _lines(src)
        elif isinstance(self._entries, _ArchivedEntries):
            yield from _archived_lines(self._entries.archive)
        else:
            yield from _lines(io.BytesIO(self._entries))

    def entries(self) -> Iterator[Entry]:
        for i, line in enumerate(self.entry_lines()):
            try:
                yield Entry.from_bytes(line.removesuffix(b"\n"))
            except InvalidEncoding as e:
                raise RecordError("entry-format", str(e), index=i) from e


def _archived_lines(archive: Path) -> Iterator[bytes]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                if m.name == f"{ARCHIVE_PREFIX}/{ENTRIES_FILE}" and m.isreg():
                    src = tar.extractfile(m)
                    assert src is not None
                    yield from _lines(src)
                    return
    except (tarfile.TarError, OSError, EOFError) as e:
        raise RecordError("record-format", f"record archive became unreadable: {e}") from None
    raise RecordError("record-format", "record archive lacks entries.jsonl")


def _lines(src: IO[bytes]) -> Iterator[bytes]:
    while True:
        line = src.readline(2 * (1 << 20))
        if not line:
            return
        yield line


def read_record(path: str | Path) -> Record:
    """Open a record directory or ``.tar.gz`` archive; parse record.json and checkpoints.jsonl."""
    files = _read_files(Path(path))
    if len(files.header) > _MAX_HEADER_BYTES:
        raise InvalidEncoding("record.json too large")
    header = RecordHeader.from_json(_strict_object(files.header, "record.json"))
    cps: list[CheckpointRecord] = []
    for k, line in enumerate(files.checkpoints.split(b"\n")[:-1] if files.checkpoints else []):
        if len(line) > _MAX_CHECKPOINT_LINE:
            raise InvalidEncoding(f"checkpoints.jsonl line {k} too large")
        obj = _strict_object(line, f"checkpoints.jsonl line {k}")
        cp = CheckpointRecord.from_json(obj)
        if cp.line() != line + b"\n":
            raise InvalidEncoding(f"checkpoints.jsonl line {k} is not canonical JSON")
        cps.append(cp)
    if files.checkpoints and not files.checkpoints.endswith(b"\n"):
        raise InvalidEncoding("checkpoints.jsonl must end with a newline")
    return Record(header, tuple(cps), files.entries)


def check_record(path: str | Path) -> RecordSummary:
    """Re-check a whole record; raise RecordError (with ``index`` of the first bad entry) or return a summary.

    Checks: every entry's format and canonical form, index and hash chain; the Merkle root of every
    checkpoint recomputed from the entries; every checkpoint's Ed25519 note signature; consistency proofs
    between successive checkpoints; every cosignature bundle against the witness keys; the last
    checkpoint covers every entry and reaches the witness quorum.
    """
    try:
        rec = read_record(path)
    except InvalidEncoding as e:
        raise RecordError("record-format", str(e)) from e
    return check_sequence(rec.header, rec.entry_lines(), rec.checkpoints)


def dumps_header(header: RecordHeader) -> bytes:
    return json.dumps(header.to_json(), indent=2, sort_keys=True, ensure_ascii=True).encode() + b"\n"
