"""A witness: checks that the log only grows, then cosigns its checkpoints (BLS).

A witness directory holds::

    witness-key.json     {"name", "secret": 64 hex}             (mode 0600; never leaves the machine)
    witness-public.json  {"name", "public_key", "pop"}          (give this to the election commission)
    witness-state.json   {"log_key", "name", "size", "root", "time"}  (last checkpoint it signed)

``cosign`` fetches the newest checkpoint, verifies the log's signature with the log key fixed at
``init``, and compares it with the state: a smaller size is a rollback (refused), the same size with a
different root or a failing consistency proof is a fork (refused), and a signed time earlier than the
last one it cosigned is a rollback of the log's clock (refused). Only then does it record the new
state durably (write, fsync, rename) and sign, so it can never later sign something inconsistent with
what it signed before, even after a crash. The HTTP client is injected (any ``httpx.Client``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .._errors import ForkError, InvalidEncoding, InvalidEntry, LedgerError, ProofError, RollbackError
from ..files import write_atomic
from ..merkle import verify_consistency
from ..record._cosign import WitnessKey, WitnessSigner, check_witness_name
from ..record._entry import from_hex, parse_json
from ..record._note import LogKey, SignedCheckpoint

__all__ = ["CosignResult", "Witness"]

KEY_FILE = "witness-key.json"
PUBLIC_FILE = "witness-public.json"
STATE_FILE = "witness-state.json"


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class CosignResult:
    size: int
    root: bytes
    signature: bytes
    previous_size: int | None


class Witness:
    """The witness core. Build with :meth:`init` (new directory) or :meth:`load`."""

    def __init__(self, directory: Path, signer: WitnessSigner, log_key: LogKey) -> None:
        self.directory = directory
        self.signer = signer
        self.log_key = log_key

    @classmethod
    def init(
        cls, directory: str | Path, name: str, log_key: LogKey, random: Callable[[int], bytes] = os.urandom
    ) -> WitnessKey:
        """Create a new witness key (and its proof of possession) pinned to one log; return the public key."""
        d = Path(directory)
        check_witness_name(name)
        d.mkdir(parents=True, exist_ok=True)
        if (d / KEY_FILE).exists():
            raise InvalidEncoding(f"{d / KEY_FILE} exists already; refusing to overwrite a witness key")
        signer = WitnessSigner.generate(name, random)
        public = signer.public
        secret = _dump({"name": name, "secret": signer.secret_bytes.hex()})
        write_atomic(d / KEY_FILE, secret, mode=0o600, overwrite=False)
        write_atomic(d / PUBLIC_FILE, _dump(public.to_json()), mode=0o644)
        write_atomic(
            d / STATE_FILE,
            _dump({"log_key": log_key.vkey, "name": name, "root": None, "size": None, "time": None}),
            mode=0o644,
        )
        return public

    @classmethod
    def load(cls, directory: str | Path) -> Witness:
        d = Path(directory)
        try:
            key = json.loads((d / KEY_FILE).read_text())
            state = json.loads((d / STATE_FILE).read_text())
        except (OSError, ValueError) as e:
            raise InvalidEncoding(f"cannot read witness files in {d}: {e}") from None
        signer = WitnessSigner.from_secret_bytes(key["name"], from_hex(key["secret"], 32, "witness secret"))
        return cls(d, signer, LogKey.from_vkey(state["log_key"]))

    def state(self) -> tuple[int, bytes] | None:
        """The last (size, root) this witness signed, if any."""
        obj = json.loads((self.directory / STATE_FILE).read_text())
        if obj["size"] is None:
            return None
        size = obj["size"]
        if not isinstance(size, int) or size < 0:
            raise InvalidEncoding("witness state size is invalid")
        return size, from_hex(obj["root"], 32, "witness state root")

    def last_time(self) -> int:
        """The signed time of the last checkpoint this witness cosigned (0 if none)."""
        t = json.loads((self.directory / STATE_FILE).read_text()).get("time")
        if t is None:
            return 0
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            raise InvalidEncoding("witness state time is invalid")
        return t

    def _save_state(self, size: int, root: bytes, time: int) -> None:
        state = {"log_key": self.log_key.vkey, "name": self.signer.name, "root": root.hex(), "size": size}
        write_atomic(self.directory / STATE_FILE, _dump({**state, "time": time}), mode=0o644)

    def check_and_sign(self, note: str, consistency: Callable[[int, int], list[bytes]]) -> CosignResult:
        """Verify ``note`` and its consistency with the last signed tree; record it; return the cosignature.

        ``consistency(old, new)`` fetches a consistency proof. Raises RollbackError, ForkError,
        SignatureError or InvalidEncoding and signs nothing in those cases.
        """
        cp = SignedCheckpoint.verify(note, self.log_key).checkpoint
        last = self.state()
        if last is not None:
            old_size, old_root = last
            if cp.size < old_size:
                raise RollbackError(
                    "witness-rollback", f"log shows size {cp.size}, but this witness signed size {old_size}"
                )
            if cp.size == old_size and cp.root != old_root:
                raise ForkError("witness-fork", f"two different roots for size {cp.size}")
            if cp.size > old_size:
                try:
                    verify_consistency(old_size, cp.size, old_root, cp.root, consistency(old_size, cp.size))
                except (ProofError, InvalidEncoding) as e:
                    raise ForkError(
                        "witness-fork", f"size {cp.size} is not consistent with signed size {old_size}: {e}"
                    ) from e
            if cp.time < self.last_time():
                raise RollbackError(
                    "witness-time-rollback",
                    f"checkpoint time {cp.time} is earlier than the last cosigned time {self.last_time()}",
                )
        self._save_state(cp.size, cp.root, cp.time)
        return CosignResult(
            cp.size, cp.root, self.signer.cosign(cp.body()), None if last is None else last[0]
        )

    def cosign(self, client: httpx.Client) -> CosignResult:
        """Fetch the newest checkpoint from the server ``client`` points at, check it, cosign, submit."""

        def get(path: str, **params: int) -> Any:
            r = client.get(path, params=params)
            if r.status_code != 200:
                raise LedgerError(f"GET {path} failed with HTTP {r.status_code}")
            try:  # the log server is not trusted: its answer is bounded (size, nesting) before it is decoded
                return parse_json(r.content)
            except InvalidEntry as e:
                raise InvalidEncoding(f"GET {path}: {e}") from None

        newest = get("/ledger/checkpoint")
        if not isinstance(newest, dict) or not isinstance(newest.get("note"), str):
            raise InvalidEncoding("server sent no checkpoint note")

        def consistency(old: int, new: int) -> list[bytes]:
            got = get("/ledger/proof/consistency", old_size=old, new_size=new)
            proof = got.get("proof") if isinstance(got, dict) else None
            if not isinstance(proof, list) or len(proof) > 128:
                raise InvalidEncoding("malformed consistency proof")
            return [from_hex(h, 32, "proof hash") for h in proof]

        result = self.check_and_sign(newest["note"], consistency)
        r = client.post(
            "/ledger/cosignature",
            json={"witness": self.signer.name, "size": result.size, "signature": result.signature.hex()},
        )
        if r.status_code != 200:
            raise LedgerError(f"server refused the cosignature: HTTP {r.status_code} {r.text[:200]}")
        return result
