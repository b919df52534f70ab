"""The voter's receipt: an API data shape, shared by the server (``voting.service``), the voter client
(:mod:`voting.clients.voter`) and the kiosk. It imports nothing of the server, so a client does not load
it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Receipt"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the voter keeps: enough to find the ballot in the public record and prove it is there.

    ``checkpoint`` is the signed note (C2SP checkpoint) of a tree that contains the entry;
    ``inclusion_proof`` proves ``entry_hash`` at ``leaf_index`` in that tree. Both are ``None`` in a
    *pending* receipt (checkpoints on a schedule: no checkpoint covers the entry yet); the ballot's receipt
    fetched again after the next checkpoint (``GET /voter/ballots/{tracking_code}``) carries them.
    """

    kind: Literal["cast", "spoiled"]
    election_id: str
    ballot_hash: str
    tracking_code: str
    leaf_index: int
    entry_hash: str
    checkpoint: str | None
    inclusion_proof: tuple[str, ...] | None
    channel: str | None = None
    seq: int | None = None

    @property
    def pending(self) -> bool:
        """No checkpoint covers the entry yet: fetch the receipt again after the next checkpoint."""
        return self.checkpoint is None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "election_id": self.election_id,
            "ballot_hash": self.ballot_hash,
            "tracking_code": self.tracking_code,
            "leaf_index": self.leaf_index,
            "entry_hash": self.entry_hash,
            "checkpoint": self.checkpoint,
            "inclusion_proof": None if self.inclusion_proof is None else list(self.inclusion_proof),
        }
        if self.channel is not None:
            d["channel"] = self.channel
        if self.seq is not None:
            d["seq"] = self.seq
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Receipt:
        """Read a receipt (a server's answer, a file the voter kept), strictly: ``ValueError`` naming what is
        wrong for anything but the documented shape (``docs/voting.md`` §4)."""
        if not isinstance(d, Mapping):
            raise ValueError("a receipt is a JSON object")
        required = ("kind", "election_id", "ballot_hash", "tracking_code", "leaf_index", "entry_hash")
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"the receipt lacks {', '.join(missing)}")
        kind = d["kind"]
        if kind not in ("cast", "spoiled"):
            raise ValueError("receipt kind is 'cast' or 'spoiled'")
        for k in ("election_id", "ballot_hash", "tracking_code", "entry_hash"):
            if not isinstance(d[k], str):
                raise ValueError(f"receipt {k} is not text")
        index = d["leaf_index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError("receipt leaf_index is not a non-negative integer")
        checkpoint, proof = d.get("checkpoint"), d.get("inclusion_proof")
        if (checkpoint is None) != (proof is None):
            raise ValueError("a receipt has both a checkpoint and an inclusion proof, or neither (pending)")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise ValueError("receipt checkpoint is not a signed note (text)")
        if proof is not None and (not isinstance(proof, list) or not all(isinstance(h, str) for h in proof)):
            raise ValueError("receipt inclusion_proof is not a list of hashes (text)")
        channel, seq = d.get("channel"), d.get("seq")
        if channel is not None and not isinstance(channel, str):
            raise ValueError("receipt channel is not text")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
            raise ValueError("receipt seq is not an integer")
        return cls(
            kind=kind,
            election_id=d["election_id"],
            ballot_hash=d["ballot_hash"],
            tracking_code=d["tracking_code"],
            leaf_index=index,
            entry_hash=d["entry_hash"],
            checkpoint=checkpoint,
            inclusion_proof=None if proof is None else tuple(proof),
            channel=channel,
            seq=seq,
        )
