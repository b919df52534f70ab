"""The running log's value types: an append's acknowledgement, proofs, a stored checkpoint, the config."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..merkle import verify_inclusion
from ..record._cosign import CosignatureBundle, WitnessPolicy
from ..record._note import LogKey, LogSigner, SignedCheckpoint

__all__ = ["Appended", "ConsistencyProof", "InclusionProof", "LedgerConfig", "StoredCheckpoint"]


@dataclass(frozen=True, slots=True)
class Appended:
    """Durable acknowledgement of an append: the entry's index and hash (its Merkle leaf hash)."""

    index: int
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]

    def verify(self, root: bytes) -> None:
        verify_inclusion(self.leaf_hash, self.index, self.tree_size, self.proof, root)


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint as stored, with the cosignatures received so far."""

    signed: SignedCheckpoint
    cosignatures: CosignatureBundle | None
    witnessed: bool

    @property
    def issued_at(self) -> int:
        """Unix seconds when the log issued it (signed: the note's ``time`` line)."""
        return self.signed.checkpoint.time

    @property
    def size(self) -> int:
        return self.signed.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.signed.checkpoint.root


def _wall_clock() -> int:
    return int(time.time())


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """What a ledger needs besides storage: the log key, witness policy, batch limit and the clock."""

    signer: LogSigner
    policy: WitnessPolicy = field(default_factory=lambda: WitnessPolicy((), 0))
    max_batch: int = 2000
    clock: Callable[[], int] = _wall_clock

    @property
    def log_key(self) -> LogKey:
        return self.signer.public
