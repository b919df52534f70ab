"""The voter's receipt: an API data shape, shared by the server (``voting._intake``), the voter client
(:mod:`voting.client`) and the kiosk. It imports nothing of the server, so a client does not load it."""

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
    def from_dict(cls, d: Mapping[str, Any]) -> Receipt:
        return cls(
            kind=d["kind"],
            election_id=d["election_id"],
            ballot_hash=d["ballot_hash"],
            tracking_code=d["tracking_code"],
            leaf_index=int(d["leaf_index"]),
            entry_hash=d["entry_hash"],
            checkpoint=d.get("checkpoint"),
            inclusion_proof=None if d.get("inclusion_proof") is None else tuple(d["inclusion_proof"]),
            channel=d.get("channel"),
            seq=d.get("seq"),
        )
