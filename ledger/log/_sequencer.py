"""The :class:`Ledger`: sequencer with group commit, checkpoints, proofs, cosignatures, export.

Sequencing: every append goes through one queue drained by one sequencer thread. The thread takes every
waiting request (up to ``max_batch`` entries), assigns consecutive indices, chains and hashes them,
extends the Merkle tree's right border (new complete-subtree nodes), writes everything in ONE
transaction and only after the commit returns wakes the waiting appenders with their index and hash
(group commit). If the transaction fails, every appender in the batch gets :class:`StorageError` and the
in-memory state is reloaded from storage, so an acknowledged entry is exactly a committed one.

Several processes (PostgreSQL only): each process has its own sequencer, and each batch's transaction takes
the ledger's transaction-level advisory lock and reads the stored tail first (``_store``); if another
process appended since, the in-memory size, last hash and compact range are reloaded from the stored nodes
(on the locked connection) before indices are assigned. Reads that depend on "the current size"
(:attr:`Ledger.size`, a proof for a size beyond the one this process knows, :meth:`Ledger.checkpoint`)
refresh from storage, so they see the other processes' appends; :attr:`Ledger.known_size` does not (a lower
bound, free). Checkpoints are signed with the one log
key (every process reads it from the same place) and inserted under the same lock, so all processes'
checkpoints are of one tree with growing sizes and times. On SQLite one process appends (the sequencer
lock), as before.

Length: a little over 500 lines because the sequencer, its checkpoints and its proofs share one in-memory
state (size, last hash, compact range) and one lock; splitting them would expose that state between modules.
"""

from __future__ import annotations

import hmac
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import CosignatureConflict, InvalidEncoding, InvalidEntry, NotFound, RecordError, StorageError
from ..merkle import CompactRange, consistency_ranges, fold, inclusion_ranges, subtree_nodes
from ..record import (
    ZERO_HASH,
    Checkpoint,
    CheckpointRecord,
    CosignatureBundle,
    Entry,
    LogKey,
    RecordHeader,
    RecordSummary,
    RecordWriter,
    SignedCheckpoint,
    aggregate_cosignatures,
    archive_record,
    check_sequence,
    parse_json,
    verify_cosignature,
)
from ..record._entry import canonical_json_checked, check_event_type, check_payload, payload_size_ok
from ._store import Store
from ._types import Appended, ConsistencyProof, InclusionProof, LedgerConfig, StoredCheckpoint

__all__ = ["Ledger"]


@dataclass(slots=True)
class _Job:
    #: (event type, the payload's canonical bytes), checked by ``_prepare``
    items: list[tuple[str, bytes]]
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Appended] | None = None
    error: BaseException | None = None


class Ledger:
    """An append-only, hash-chained, Merkle-tree ledger on SQLite or PostgreSQL.

    ``Ledger(url, config)``: ``url`` is an SQLAlchemy URL (``sqlite:///path.db`` or
    ``postgresql+psycopg://...``). SQLite: one appending Ledger per database file (a second one gets
    :class:`StorageError`: the sequencer lock). PostgreSQL: any number of Ledgers, in any number of
    processes, append to one database; their batches are serialised by the database (module docstring).
    """

    def __init__(self, url: str, config: LedgerConfig) -> None:
        self.config = config
        self._store = Store(url)
        self._state_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._size = 0
        self._tree = CompactRange()
        self._last_hash = ZERO_HASH
        self._broken: StorageError | None = None
        #: ``_stored``'s last answer, with the row and the cosignatures it was made of
        self._stored_memo: tuple[Any, StoredCheckpoint] | None = None
        #: the size of the newest checkpoint this process has signed or read (0: none)
        self._checkpoint_size = 0
        try:
            self._load_state()
        except StorageError as e:  # keep the ledger open for check(), refuse appends
            self._broken = e
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
        self._thread.start()

    # -- state ----------------------------------------------------------------------------------------

    def _load_state(self) -> None:
        count, top, nodes, beyond, last = self._store.stored_state()
        if count != top + 1:
            raise StorageError(f"storage holds {count} entries but the highest index is {top}")
        keys = subtree_nodes(0, count)
        if len(nodes) != len(keys) or beyond:
            raise StorageError("stored tree nodes do not match the stored entries")
        with self._state_lock:
            self._size = count
            self._tree = CompactRange(count, [(lv, nodes[(lv, i)]) for lv, i in keys])
            self._last_hash = last if last is not None else ZERO_HASH

    @staticmethod
    def _state_at(
        size: int, last: bytes | None, read_nodes: Callable[[Sequence[tuple[int, int]]], dict[Any, bytes]]
    ) -> tuple[int, CompactRange, bytes]:
        """The sequencer state of a stored tail (another process's appends): its compact range from the
        stored nodes of ``[0, size)``."""
        keys = subtree_nodes(0, size)
        nodes = read_nodes(keys)
        if len(nodes) != len(keys) or (size > 0) != (last is not None):
            raise StorageError("stored tree nodes do not match the stored entries")
        return size, CompactRange(size, [(lv, nodes[(lv, i)]) for lv, i in keys]), last or ZERO_HASH

    def _refresh(self, at_least: int | None = None) -> None:
        """PostgreSQL: catch up with appends committed by other processes (one indexed read of the stored
        tail; the nodes only if it moved). ``at_least``: skip the read when this process already knows
        that many entries (sizes only grow). SQLite: nothing (this process is the only appender)."""
        if not self._store.shared:
            return
        with self._state_lock:
            known = self._size
        if at_least is not None and at_least <= known:
            return
        size, last = self._store.tail()
        if size <= known:
            return
        state = self._state_at(size, last, self._store.nodes)
        with self._state_lock:
            if state[0] > self._size:  # the sequencer thread may have moved on meanwhile
                self._size, self._tree, self._last_hash = state

    @property
    def size(self) -> int:
        """Number of committed entries (on PostgreSQL read from storage: other processes' appends count)."""
        self._refresh()
        with self._state_lock:
            return self._size

    @property
    def known_size(self) -> int:
        """The committed entries this process knows of (its own appends and those of other processes it has
        seen), without a storage read: a lower bound of :attr:`size` now and of the index of any entry
        appended after this call (sizes only grow). On SQLite, where one process appends, it is the size."""
        with self._state_lock:
            return self._size

    @property
    def known_checkpoint_size(self) -> int:
        """The size of the newest checkpoint this process has signed or read (0 if none), without a storage
        read: a lower bound of the newest stored checkpoint's size (sizes only grow; other processes may have
        signed newer ones). No checkpoint covers an entry appended after the moment this was read: one that
        does is signed after that entry is committed."""
        with self._state_lock:
            return self._checkpoint_size

    @property
    def log_key(self) -> LogKey:
        return self.config.log_key

    def _committed(self) -> tuple[int, bytes]:
        with self._state_lock:
            return self._size, self._tree.root()

    # -- appends --------------------------------------------------------------------------------------

    def _prepare(self, event_type: str, payload: Any) -> tuple[str, bytes]:
        """The event type checked and the payload's canonical bytes (checked, and its size): the sequencer
        builds the entry around them, without serialising the payload again."""
        check_event_type(event_type)
        payload_json = canonical_json_checked(check_payload(payload))
        payload_size_ok(payload_json, event_type)
        return event_type, payload_json

    def append(self, event_type: str, payload: Mapping[str, Any]) -> Appended:
        """Append one entry; return once it is durably committed. Bad input raises InvalidEntry."""
        return self._submit([self._prepare(event_type, payload)])[0]

    def append_json(self, event_type: str, payload_json: bytes | str) -> Appended:
        """Append with the payload given as untrusted JSON text (strictly parsed)."""
        return self.append(event_type, parse_json(payload_json))

    def append_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Appended]:
        """Append several entries atomically (consecutive indices, one transaction)."""
        prepared = [self._prepare(t, p) for t, p in items]
        return self._submit(prepared) if prepared else []

    def _submit(self, items: list[tuple[str, bytes]]) -> list[Appended]:
        if self._closed:
            raise StorageError("ledger is closed")
        if self._broken is not None:
            raise StorageError(f"storage is inconsistent; run check(): {self._broken}")
        if len(items) > self.config.max_batch:
            raise InvalidEntry(f"at most {self.config.max_batch} entries per batch")
        job = _Job(items)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, count = [job], len(job.items)
            stop = False
            while count < self.config.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if count + len(nxt.items) > self.config.max_batch:
                    self._process(batch)
                    batch, count = [], 0
                batch.append(nxt)
                count += len(nxt.items)
            if batch:
                self._process(batch)
            if stop:
                return

    def _process(self, batch: list[_Job]) -> None:
        staged: list[Any] = []

        def build(
            tail: tuple[int, bytes | None] | None,
            read_nodes: Callable[[Sequence[tuple[int, int]]], dict[Any, bytes]],
        ) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, int, bytes]]]:
            with self._state_lock:
                size, tree, prev = self._size, self._tree.copy(), self._last_hash
            if tail is not None and (tail[0], tail[1] or ZERO_HASH) != (size, prev):
                if tail[0] < size:  # pragma: no cover - storage lost committed entries
                    raise StorageError(f"storage holds {tail[0]} entries but {size} were committed")
                size, tree, prev = self._state_at(tail[0], tail[1], read_nodes)  # another process appended
                with self._state_lock:
                    self._size, self._tree, self._last_hash = size, tree.copy(), prev
            rows: list[tuple[int, bytes, bytes]] = []
            nodes: list[tuple[int, int, bytes]] = []
            results: list[list[Appended]] = []
            for job in batch:
                out = []
                for event_type, payload_json in job.items:
                    e = Entry._of_canonical_payload(size, prev, event_type, payload_json)  # _prepare's
                    rows.append((size, e.hash, e.canonical))
                    nodes.extend(tree.append(e.hash))
                    out.append(Appended(size, e.hash))
                    prev, size = e.hash, size + 1
                results.append(out)
            staged[:] = [size, tree, prev, results]
            return rows, nodes

        try:
            self._store.write_batch(build)
        except BaseException as exc:  # nothing in this batch is acknowledged
            err = (
                exc if isinstance(exc, StorageError | InvalidEntry) else StorageError(f"append failed: {exc}")
            )
            try:
                self._load_state()
            except StorageError as e:
                self._broken = e
            for job in batch:
                job.error = err
                job.done.set()
            return
        size, tree, prev, results = staged
        with self._state_lock:
            self._size, self._tree, self._last_hash = size, tree, prev
        for job, out in zip(batch, results, strict=True):
            job.result = out
            job.done.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
            self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads and proofs ----------------------------------------------------------------------------

    def entries(self, start: int, stop: int) -> list[Entry]:
        """Committed entries with start <= index < stop (clipped to the committed size)."""
        self._refresh(at_least=stop)
        with self._state_lock:
            stop = min(stop, self._size)
        if start < 0 or start > stop:
            raise NotFound(f"no entries in [{start}, {stop})")
        return [Entry.from_bytes(body) for _, _, body in self._store.entries(start, stop)]

    def payloads(self, start: int, stop: int) -> list[tuple[int, str, dict[str, Any]]]:
        """``(index, type, payload)`` of the committed entries with start <= index < stop (clipped to the
        committed size), each checked as :meth:`entries` checks it and parsed once (fresh payload objects)."""
        self._refresh(at_least=stop)
        with self._state_lock:
            stop = min(stop, self._size)
        if start < 0 or start > stop:
            raise NotFound(f"no entries in [{start}, {stop})")
        out: list[tuple[int, str, dict[str, Any]]] = []
        for _, _, body in self._store.entries(start, stop):
            e, obj = Entry.parse(body)
            out.append((e.index, e.type, obj["payload"]))
        return out

    def entry(self, index: int) -> Entry:
        got = self.entries(index, index + 1)
        if not got:
            raise NotFound(f"no entry {index}")
        return got[0]

    def _range_hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        plan = [subtree_nodes(b, e) for b, e in ranges]
        nodes = self._store.nodes([k for p in plan for k in p])
        try:
            return [fold([nodes[k] for k in p]) for p in plan]
        except KeyError:
            raise StorageError("a tree node is missing from storage") from None

    def root(self, tree_size: int) -> bytes:
        self._check_size(tree_size)
        return self._range_hashes([(0, tree_size)])[0]

    def _check_size(self, tree_size: int) -> None:
        if isinstance(tree_size, int):
            self._refresh(at_least=tree_size)
        with self._state_lock:
            size = self._size
        if not isinstance(tree_size, int) or not 0 <= tree_size <= size:
            raise NotFound(f"tree size {tree_size!r} is not in [0, {size}]")

    def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``tree_size`` (reads O(log n) node rows)."""
        self._check_size(tree_size)
        if not isinstance(index, int) or not 0 <= index < tree_size:
            raise NotFound(f"index {index!r} is not below tree size {tree_size}")
        ranges = [(index, index + 1), *inclusion_ranges(index, tree_size)]
        leaf, *proof = self._range_hashes(ranges)
        return InclusionProof(index, tree_size, leaf, tuple(proof))

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        self._check_size(new_size)
        if not isinstance(old_size, int) or not 0 <= old_size <= new_size:
            raise NotFound(f"old size {old_size!r} is not in [0, {new_size}]")
        return ConsistencyProof(
            old_size, new_size, tuple(self._range_hashes(consistency_ranges(old_size, new_size)))
        )

    # -- checkpoints and cosignatures -------------------------------------------------------------------

    def checkpoint(self) -> StoredCheckpoint:
        """Sign (and store) a checkpoint for the committed size, unless the newest one already covers it.

        On PostgreSQL the committed size includes other processes' appends, and the row is written under the
        ledger's lock after re-reading the newest stored checkpoint (``Store.insert_checkpoint_after``): a
        checkpoint another process stored meanwhile for this size or a larger one is kept, not an error."""
        with self._checkpoint_lock:
            self._refresh()
            size, root = self._committed()

            def make(latest: tuple[int, bytes, str, int] | None) -> tuple[int, bytes, str, int] | None:
                if latest is not None and latest[0] >= size:
                    return None
                # checkpoint times never decrease along the log (docs/record.md §5), even if the clock does
                now = int(self.config.clock())
                if latest is not None:
                    now = max(now, latest[3])
                signed = SignedCheckpoint.sign(
                    Checkpoint(self.config.signer.name, size, root, now), self.config.signer
                )
                return size, root, signed.note, now

            self._store.insert_checkpoint_after(make)
            return self.latest_checkpoint()

    def uncovered(self) -> int:
        """How many committed entries no checkpoint covers yet (what a checkpoint schedule watches)."""
        self._refresh()
        size, _ = self._committed()
        latest = self._store.checkpoint()
        return size - (latest[0] if latest is not None else 0)

    def latest_checkpoint(self) -> StoredCheckpoint:
        row = self._store.checkpoint()
        if row is None:
            raise NotFound("no checkpoint has been issued")
        return self._stored(row)

    def latest_witnessed_checkpoint(self) -> StoredCheckpoint:
        """The newest checkpoint the witness quorum has cosigned (what a trustee or an auditor relies on
        while the witnesses have not yet cosigned the newest one); :class:`NotFound` if none is."""
        policy = self.config.policy
        size = self._store.witnessed_size([w.name for w in policy.witnesses], policy.quorum)
        if size is None:
            raise NotFound("no checkpoint has been cosigned by the witness quorum")
        return self.checkpoint_at(size)

    def checkpoint_at(self, size: int) -> StoredCheckpoint:
        row = self._store.checkpoint(size)
        if row is None:
            raise NotFound(f"no checkpoint of size {size}")
        return self._stored(row)

    def _stored(self, row: tuple[int, bytes, str, int]) -> StoredCheckpoint:
        """The checkpoint of a stored row: its note verified, with the aggregate of its stored cosignatures.

        The last answer is kept with the row and the cosignatures it was made of, and given again while both
        are unchanged (read every time): every cast's receipt asks for the newest checkpoint, and verifying
        its note and aggregating its BLS cosignatures (py_ecc, about 6 ms per cosignature) would otherwise
        be done again for each."""
        sigs = self._known_cosignatures(row[0])
        key = (row, tuple(sorted(sigs.items())))
        memo = self._stored_memo
        if memo is not None and memo[0] == key:
            return self._seen(memo[1])
        signed = SignedCheckpoint.verify(row[2], self.log_key)
        c = signed.checkpoint
        if (c.size, c.root, c.time) != (row[0], row[1], row[3]):
            raise StorageError("stored checkpoint row disagrees with its note")
        bundle = aggregate_cosignatures(sigs) if sigs else None
        # witnessed: a quorum of at least 1 reached by stored (verified on receipt) cosignatures of configured
        # witnesses; with quorum 0 (no witnesses) no checkpoint is ever witnessed
        quorum = self.config.policy.quorum
        witnessed = quorum >= 1 and len(bundle.signers if bundle else ()) >= quorum
        stored = StoredCheckpoint(signed, bundle, witnessed)
        self._stored_memo = (key, stored)
        return self._seen(stored)

    def _seen(self, stored: StoredCheckpoint) -> StoredCheckpoint:
        """A verified stored checkpoint this process now knows of (:attr:`known_checkpoint_size`)."""
        with self._state_lock:
            self._checkpoint_size = max(self._checkpoint_size, int(stored.size))
        return stored

    def add_cosignature(
        self,
        witness: str,
        size: int,
        signature: bytes,
        *,
        admit: Callable[[], None] | None = None,
        executor: Executor | None = None,
    ) -> StoredCheckpoint:
        """Verify a witness's cosignature of the checkpoint of ``size`` and store it.

        The cheap checks come first, so that a caller who is not a witness cannot make the ledger run
        the BLS verification (about half a second of CPU in py_ecc): the witness is configured
        (:class:`UnknownWitness`), the signature is 96 bytes (:class:`InvalidEncoding`), the checkpoint
        exists (:class:`NotFound`), and this witness's cosignature of it is not stored yet: the same
        bytes again return the checkpoint unchanged, other bytes raise :class:`CosignatureConflict`
        (BLS signatures are unique per key and message, and the stored one was verified). Then
        ``admit()`` is called (the HTTP route's rate limiter: it raises to refuse), and only then the
        BLS ``Verify`` runs: in ``executor`` when given (a process pool: the server's other requests keep
        its GIL meanwhile), with the same refusal (:func:`ledger.record.verify_cosignature`).
        """
        key = self.config.policy.key(witness)
        if not isinstance(signature, bytes) or len(signature) != 96:
            raise InvalidEncoding("BLS signature must be 96 bytes")
        row = self._store.checkpoint(size)
        if row is None:
            raise NotFound(f"no checkpoint of size {size}")
        stored = self._store.cosignatures(size).get(witness)
        if stored is not None:
            if hmac.compare_digest(stored, signature):
                return self._stored(row)
            raise CosignatureConflict(
                "cosignature-conflict",
                f"a different cosignature by witness {witness!r} of the checkpoint of size {size} is stored",
            )
        if admit is not None:
            admit()
        body = SignedCheckpoint.verify(row[2], self.log_key).body
        verify_cosignature(key, body, signature, executor=executor)
        self._store.add_cosignature(size, witness, signature, int(self.config.clock()))
        return self._stored(row)

    def cosignatures(self, size: int) -> CosignatureBundle | None:
        sigs = self._known_cosignatures(size)
        return aggregate_cosignatures(sigs) if sigs else None

    def _known_cosignatures(self, size: int) -> dict[str, bytes]:
        """The stored cosignatures of the checkpoint of ``size`` by the configured witnesses."""
        known = {w.name for w in self.config.policy.witnesses}
        return {k: v for k, v in self._store.cosignatures(size).items() if k in known}

    # -- export and storage check ---------------------------------------------------------------------

    def _checkpoint_records(self, max_size: int, check: bool = True) -> list[CheckpointRecord]:
        out: list[CheckpointRecord] = []
        prev: int | None = None
        for size, root, note, issued in self._store.checkpoints(max_size):
            proof: tuple[bytes, ...] = ()
            if prev is not None:
                try:
                    proof = tuple(self._range_hashes(consistency_ranges(prev, size)))
                except StorageError:
                    if check:
                        raise
                    proof = ()
            out.append(CheckpointRecord(size, root, note, issued, prev, proof, self.cosignatures(size)))
            prev = size
        return out

    def _header(self, entry_count: int, checkpoint_count: int) -> RecordHeader:
        return RecordHeader(self.log_key, self.config.policy, entry_count, checkpoint_count)

    def export(self, directory: str | Path, files: Mapping[str, bytes] | None = None) -> Path:
        """Write the election record (docs/record.md) for the newest checkpoint into a new directory,
        with ``files`` (``result.pdf``) beside the ledger's own, through the record's one writer.

        Entries appended after that checkpoint are not exported; call :meth:`checkpoint` (and collect
        cosignatures) first to include them.
        """
        latest = self.latest_checkpoint()
        cps = self._checkpoint_records(latest.size)
        try:
            writer = RecordWriter(directory)
        except FileExistsError as e:
            raise StorageError(f"export directory {directory} is not empty") from e
        with writer:
            for _, _, body in self._store.iter_entries(latest.size):
                writer.add_entry(body)
            for name, data in (files or {}).items():
                writer.add_file(name, data)
            return writer.seal(self._header(latest.size, len(cps)), cps)

    def export_archive(self, path: str | Path) -> Path:
        """Write the record as one deterministic ``.tar.gz`` (members under ``tvote-record/``)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            archive_record(self.export(Path(tmp) / "record"), path)
        return Path(path)

    def check(self) -> RecordSummary:
        """fsck of storage: chain, stored hashes and tree nodes, every checkpoint (the tail may be unsigned).

        Works on a damaged store too. Raises :class:`RecordError` with the index of the first bad entry.
        """
        _, top = self._store.entry_count_and_max()
        size = top + 1
        cps = self._checkpoint_records(2**62, check=False)

        def lines() -> Iterator[bytes]:
            for pos, (idx, _, body) in enumerate(self._store.iter_entries(size)):
                if idx != pos:
                    yield b"\n"  # a gap in storage: nothing valid at this position
                    return
                yield body + b"\n"

        summary = check_sequence(self._header(size, len(cps)), lines(), cps, live=True)
        # the stored hashes and leaf nodes must be what the bodies hash to, and the nodes must give the
        # signed roots (proofs are served from them)
        leaves = self._store.iter_nodes(0, size)
        for idx, stored_hash, body in self._store.iter_entries(size):
            h = Entry.from_bytes(body).hash
            node = next(leaves, None)
            if h != stored_hash or node is None or node != (idx, h):
                raise RecordError(
                    "storage-hash", "stored hash or leaf node does not match the entry", index=idx
                )
        for cp in cps:
            try:
                ok = self._range_hashes([(0, cp.size)])[0] == cp.root
            except StorageError:
                ok = False
            if not ok:
                raise RecordError(
                    "storage-nodes", f"stored tree nodes do not give the root of size {cp.size}"
                )
        if self._broken is not None:
            raise RecordError("storage-state", str(self._broken), index=size)
        return summary
