"""Stage 2, the roll: store the electoral roll and its Merkle tree, publish its commitment
(``roll.commitment``), and answer the per-voter lookups the intake needs (the alias of a match key, an
alias's inclusion proof).

The roll's format, keyed aliases and tree are :mod:`voting._roll`'s; this module stores and publishes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from ledger import InvalidEncoding as LedgerInvalidEncoding
from ledger import ProofError as LedgerProofError
from ledger.events import EventType
from ledger.merkle import fold, subtree_nodes

from .._db import ElectionRow, RollEntryRow, RollNodeRow
from .._errors import Conflict, Forbidden, ServiceUnavailable
from .._roll import (
    ALIAS_SCHEME,
    Roll,
    RollProof,
    parse_roll_csv,
    roll_proof_from_nodes,
    roll_proof_plan,
    roll_root,
    roll_tree,
)
from ._core import Replay, ServiceCore, replays

__all__ = ["RollStage"]


#: rows per bulk INSERT when a roll is stored (each statement an executemany of this many parameter sets)
_INSERT_CHUNK = 20_000

#: (election id, size, root) of the committed roll
_CommittedRoll = tuple[str, int, str]

# The per-cast roll reads, built once and bound by name at each execution (building a statement costs
# SQLAlchemy more CPU than executing a compiled one)
_ALIAS_OF = select(RollEntryRow.alias, RollEntryRow.leaf_index).where(
    col(RollEntryRow.election_id) == bindparam("eid"), col(RollEntryRow.match_key) == bindparam("key")
)
_LEAF_INDEX = select(RollEntryRow.leaf_index).where(
    col(RollEntryRow.election_id) == bindparam("eid"), col(RollEntryRow.alias) == bindparam("alias")
)


@functools.cache
def _roll_nodes_query(n: int) -> Select[int, int, bytes]:
    """The SELECT of ``n`` stored roll-tree nodes, bound as ``eid``, ``l0``, ``i0``, ... (one per count; a
    proof asks for O(log n) nodes, so there are few). Every disjunct names the whole primary key, so SQLite
    (MULTI-INDEX OR) and PostgreSQL (BitmapOr) do one index lookup per node; ``election_id = ? AND (a OR b
    ...)`` made SQLite scan the election."""
    eq = col(RollNodeRow.election_id) == bindparam("eid")
    return select(RollNodeRow.level, RollNodeRow.idx, RollNodeRow.hash).where(
        or_(
            *(
                and_(
                    eq,
                    col(RollNodeRow.level) == bindparam(f"l{i}"),
                    col(RollNodeRow.idx) == bindparam(f"i{i}"),
                )
                for i in range(n)
            )
        )
    )


class RollStage(ServiceCore):
    """Load, store and commit the roll; look voters up in it."""

    def load_roll(self, data: bytes | str) -> Roll:
        """Validate and store the roll (replacing an unpublished one). Returns the (unpublished) roll."""
        with self.appending(), self._session() as s:
            row = self._row(s)
            if row.phase != "setup":
                raise Conflict("election.phase", "the roll can only be loaded during setup")
            if row.roll_committed:
                raise Conflict("roll.committed", "the roll commitment is already published")
            eid = row.election_id
            roll = parse_roll_csv(data, roll_key=bytes.fromhex(row.roll_key_hex), election_id=eid)
            # The roll tree's every complete subtree (about 2n rows) is stored with the roll, in the same
            # transaction, so each cast's roll inclusion proof reads O(log n) rows (see roll_proof).
            tree_root, nodes = roll_tree(e.alias for e in roll.entries)
            s.execute(delete(RollEntryRow).where(RollEntryRow.election_id == eid))  # type: ignore[arg-type]
            s.execute(delete(RollNodeRow).where(RollNodeRow.election_id == eid))  # type: ignore[arg-type]
            # bulk INSERTs (executemany), not one ORM object per row
            for lo in range(0, roll.size, _INSERT_CHUNK):
                s.execute(
                    insert(RollEntryRow),
                    [
                        {
                            "election_id": eid,
                            "alias": e.alias.hex(),
                            "match_key": e.match_key.hex(),
                            "leaf_index": i,
                        }
                        for i, e in enumerate(roll.entries[lo : lo + _INSERT_CHUNK], start=lo)
                    ],
                )
            for lo in range(0, len(nodes), _INSERT_CHUNK):
                s.execute(
                    insert(RollNodeRow),
                    [
                        {"election_id": eid, "level": lv, "idx": ix, "hash": h}
                        for lv, ix, h in nodes[lo : lo + _INSERT_CHUNK]
                    ],
                )
            row.roll_size = roll.size
            row.roll_root = tree_root.hex()
            s.add(row)
            s.commit()
        return roll

    def publish_roll(self) -> int:
        """Append ``roll.commitment`` (size and Merkle root of the aliases) from the stored roll."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup":
                raise Conflict("election.phase", "the roll commitment is published during setup")
            if row.roll_committed:
                raise Conflict("roll.committed", "the roll commitment is already published")
            aliases = [
                bytes.fromhex(a)
                for a in s.exec(select(RollEntryRow.alias).where(RollEntryRow.election_id == row.election_id))
            ]
            if not aliases:
                raise Conflict("roll.missing", "load a roll before publishing its commitment")
            root = roll_root(aliases)
            if (
                root.hex() != row.roll_root
                or len(aliases) != row.roll_size
                or self._stored_roll_tree_root(s, row) != root
            ):  # pragma: no cover - integrity
                raise Conflict("roll.integrity", "the stored roll does not match its summary")
            row.roll_committed = True
            s.add(row)
            index = self._append(
                EventType.ROLL_COMMITMENT,
                self._payload(size=len(aliases), root=root.hex(), alias_scheme=ALIAS_SCHEME),
                row,
            )
            s.commit()
        return index

    # ------------------------------------------------------------------------------------ key ceremony
    def _committed_roll(self, s: Session) -> _CommittedRoll | None:
        """The committed roll's (election id, size, root), or ``None`` before the commitment. Immutable once
        committed, so kept after the first read that finds it (each cast asks twice)."""
        roll: _CommittedRoll | None = self._cache.get("roll")
        if roll is None:
            row = self._row(s)
            if not row.roll_committed or row.roll_size is None or row.roll_root is None:
                return None
            roll = self._cache["roll"] = (row.election_id, row.roll_size, row.roll_root)
        return roll

    def lookup_alias(self, match_key: bytes, s: Session | None = None) -> bytes | None:
        """The voter alias for a roll match key, or ``None`` if the resident is not on the roll. Read in
        ``s`` (a caller's open session), or a session of its own."""
        found = self.lookup_voter(match_key, s)
        return None if found is None else found[0]

    def lookup_voter(self, match_key: bytes, s: Session | None = None) -> tuple[bytes, int] | None:
        """:meth:`lookup_alias` with the alias's leaf index in the committed roll tree (one read: what
        :meth:`roll_proof` needs, so a cast's roll proof reads only the tree's nodes)."""
        if s is None:
            with self._read_session() as own:
                return self.lookup_voter(match_key, own)
        roll = self._committed_roll(s)
        if roll is None:
            return None
        found = s.connection().execute(_ALIAS_OF, {"eid": roll[0], "key": match_key.hex()}).first()
        return None if found is None else (bytes.fromhex(found.alias), int(found.leaf_index))

    @staticmethod
    def _roll_nodes(s: Session, eid: str, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored roll-tree nodes ``(level, idx)`` asked for: one SELECT of primary-key equalities."""
        want = sorted(set(keys))
        if not want:
            return {}
        params: dict[str, Any] = {"eid": eid}
        for i, (lv, ix) in enumerate(want):
            params[f"l{i}"] = lv
            params[f"i{i}"] = ix
        rows = s.connection().execute(_roll_nodes_query(len(want)), params)
        return {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}

    def _stored_roll_tree_root(self, s: Session, row: ElectionRow) -> bytes | None:
        """The roll tree's root as the stored nodes give it (O(log n) rows), or ``None`` if one is missing."""
        keys = subtree_nodes(0, row.roll_size or 0)
        nodes = self._roll_nodes(s, row.election_id, keys)
        if len(nodes) != len(keys):
            return None
        return fold([nodes[k] for k in keys])

    def roll_proof(
        self, alias: bytes, s: Session | None = None, *, leaf_index: int | None = None
    ) -> RollProof:
        """The RFC 9162 inclusion proof of ``alias`` in the committed roll tree (the ``roll_proof`` of its
        ``ballot.cast``): two indexed reads (the alias's leaf index, unless the caller gives it from
        :meth:`lookup_voter`, then O(log n) stored nodes), checked
        against the published root before it is returned, so a damaged node table is never published.

        Raises ``Forbidden`` (``voter.not_on_roll``) for an alias not on the roll, ``Conflict``
        (``roll.not_committed``) before the commitment, ``ServiceUnavailable`` (``roll.integrity``) if the
        stored tree does not prove the alias against the committed root. Read in ``s`` (a caller's open
        session), or a read-only session of its own."""
        if s is None:
            with self._read_session() as own:
                return self.roll_proof(alias, own, leaf_index=leaf_index)
        roll = self._committed_roll(s)
        if roll is None:
            raise Conflict("roll.not_committed", "the roll commitment is not published yet")
        eid, size, root = roll
        index = leaf_index
        if index is None:
            index = s.connection().execute(_LEAF_INDEX, {"eid": eid, "alias": alias.hex()}).scalar()
        if index is None:
            raise Forbidden("voter.not_on_roll", "the voter alias is not on this election's roll")
        nodes = self._roll_nodes(s, eid, (k for part in roll_proof_plan(index, size) for k in part))
        try:
            proof = roll_proof_from_nodes(index, size, nodes)
            proof.verify(alias, bytes.fromhex(root))
        except (KeyError, ValueError, LedgerProofError, LedgerInvalidEncoding) as e:
            raise ServiceUnavailable(
                "roll.integrity", "the stored roll tree does not prove this voter against the roll commitment"
            ) from e
        return proof

    @replays(EventType.ROLL_COMMITMENT)
    def _replay_roll_commitment(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, row = r.s, r.row
        # the stored roll tree answers every cast's roll_proof: it must give the published root too
        if (
            p["root"] != row.roll_root
            or p["size"] != row.roll_size
            or self._stored_roll_tree_root(s, row) != bytes.fromhex(p["root"])
        ):
            raise ServiceUnavailable(
                "reconcile.roll", "the stored roll differs from the published roll commitment"
            )
        if row.roll_committed:
            return False
        row.roll_committed = True
        return True
