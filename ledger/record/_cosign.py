"""Witness cosignatures: BLS (IETF proof-of-possession scheme, py_ecc ``G2ProofOfPossession``).

Every witness signs the same 32-byte message for a checkpoint::

    m = tagged_sha256("ledger/witness-cosign", checkpoint_body_utf8)

(``crypto._hash.tagged_sha256``: SHA-256 of the length-prefixed transcript with domain
``tvote/2/ledger/witness-cosign``), so cosignatures aggregate with ``Aggregate`` and verify with one
``FastAggregateVerify``. A witness key is a 48-byte BLS12-381 G1 public key published with a 96-byte
proof of possession (``PopProve``), checked with ``KeyValidate`` and ``PopVerify`` before use; this is
what makes ``FastAggregateVerify`` safe against rogue-key attacks. A cosignature bundle names its
signers (sorted witness names) and carries the 96-byte aggregate signature.

Importing ``py_ecc`` raises the interpreter's recursion limit to 100,000 (``py_ecc/__init__.py``), which
would let Python's C JSON decoder, and any other recursive code, overflow the C stack and kill the
process instead of raising ``RecursionError``. :func:`_import_bls` restores the limit right after the
import, and nothing in tvote raises it: BLS works at the default limit (its deepest call, the recursive
``multiply`` behind ``clear_cofactor_G2``, is about 650 frames; ``tests/ledger/test_json_bounds.py`` runs
sign, verify, aggregate and proof of possession 300 frames deep under the default limit of 1000).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, cast

from crypto import tagged_sha256

from .._errors import InvalidEncoding, SignatureError, UnknownWitness
from ._entry import from_hex as from_hex  # re-exported: the one strict hex decoder of ledger/

__all__ = [
    "CosignatureBundle",
    "WitnessKey",
    "WitnessPolicy",
    "WitnessSigner",
    "aggregate_cosignatures",
    "cosign_message",
    "verify_cosignature",
]

if TYPE_CHECKING:
    from eth_typing import BLSPubkey, BLSSignature
    from py_ecc.bls.ciphersuites import G2ProofOfPossession

#: The order of BLS12-381's G1 and G2 (py_ecc's ``curve_order``; checked equal when py_ecc is imported).
curve_order: Final[int] = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
_bls_lock = threading.Lock()
_bls_suite: list[type[G2ProofOfPossession]] = []


def _import_bls() -> tuple[type[G2ProofOfPossession], int]:
    """Import py_ecc's BLS ciphersuite and the curve order, keeping the recursion limit as it was."""
    limit = sys.getrecursionlimit()
    try:
        from py_ecc.bls.ciphersuites import G2ProofOfPossession
        from py_ecc.optimized_bls12_381.optimized_curve import curve_order as order
    finally:
        sys.setrecursionlimit(limit)
    return G2ProofOfPossession, int(order)


def _pk(b: bytes) -> BLSPubkey:
    return cast("BLSPubkey", b)  # eth_typing's NewType, for the type checker only


def _sig(b: bytes) -> BLSSignature:
    return cast("BLSSignature", b)


def _Bls() -> type[G2ProofOfPossession]:
    """py_ecc's BLS ciphersuite, imported on first use: importing py_ecc costs about a second of CPU
    (field and curve constants), which every process that reads a record but checks no cosignature (the
    verifier's ballot workers, its main process) would otherwise pay. Imported under a lock, so that no
    thread takes another thread's raised recursion limit for the one to restore."""
    if not _bls_suite:
        with _bls_lock:
            if not _bls_suite:
                suite, order = _import_bls()
                if order != curve_order:  # pragma: no cover - a py_ecc that is not BLS12-381
                    raise ImportError("py_ecc's curve order is not BLS12-381's")
                _bls_suite.append(suite)
    return _bls_suite[0]


_PK_BYTES: Final[int] = 48
_SIG_BYTES: Final[int] = 96
_WITNESS_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


def cosign_message(checkpoint_body: str) -> bytes:
    """The message every witness signs for a checkpoint body."""
    return tagged_sha256("ledger/witness-cosign", checkpoint_body.encode("utf-8"))


def check_witness_name(name: object) -> str:
    if not isinstance(name, str) or not _WITNESS_NAME_RE.fullmatch(name):
        raise InvalidEncoding(f"witness name {name!r} must match [a-z0-9][a-z0-9.-]{{0,63}}")
    return name


@lru_cache(maxsize=256)
def _key_ok(public_key: bytes, pop: bytes) -> bool:
    return bool(_Bls().KeyValidate(_pk(public_key))) and bool(_Bls().PopVerify(_pk(public_key), _sig(pop)))


def _check_sig_bytes(sig: object) -> bytes:
    if not isinstance(sig, bytes) or len(sig) != _SIG_BYTES:
        raise InvalidEncoding(f"BLS signature must be {_SIG_BYTES} bytes")
    return sig


@dataclass(frozen=True, slots=True)
class WitnessKey:
    """A witness's published BLS public key with its proof of possession (validated on construction)."""

    name: str
    public_key: bytes = field(repr=False)
    pop: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_witness_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _PK_BYTES:
            raise InvalidEncoding(f"BLS public key must be {_PK_BYTES} bytes")
        _check_sig_bytes(self.pop)
        try:
            ok = _key_ok(self.public_key, self.pop)
        except Exception:  # py_ecc raises assorted errors on malformed points
            ok = False
        if not ok:
            raise InvalidEncoding(f"witness {self.name!r}: invalid BLS public key or proof of possession")

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "pop": self.pop.hex(), "public_key": self.public_key.hex()}

    @classmethod
    def from_json(cls, obj: Any) -> WitnessKey:
        if not isinstance(obj, Mapping) or set(obj) != {"name", "pop", "public_key"}:
            raise InvalidEncoding("witness key must have exactly name, public_key, pop")
        return cls(
            check_witness_name(obj["name"]),
            from_hex(obj["public_key"], _PK_BYTES, "BLS public key"),
            from_hex(obj["pop"], _SIG_BYTES, "BLS proof of possession"),
        )


@dataclass(frozen=True, slots=True)
class WitnessSigner:
    """A witness's BLS secret key. Keep ``secret_bytes`` out of logs."""

    name: str
    secret: int = field(repr=False)

    def __post_init__(self) -> None:
        check_witness_name(self.name)
        if not isinstance(self.secret, int) or not 0 < self.secret < curve_order:
            raise InvalidEncoding("BLS secret key out of range")

    @classmethod
    def generate(cls, name: str, random: Callable[[int], bytes] = os.urandom) -> WitnessSigner:
        """IETF KeyGen from 32 bytes of injected randomness (``os.urandom`` by default)."""
        return cls(name, _Bls().KeyGen(random(32)))

    @property
    def secret_bytes(self) -> bytes:
        return self.secret.to_bytes(32, "big")

    @classmethod
    def from_secret_bytes(cls, name: str, raw: bytes) -> WitnessSigner:
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise InvalidEncoding("BLS secret key must be 32 bytes")
        return cls(name, int.from_bytes(raw, "big"))

    @property
    def public(self) -> WitnessKey:
        return WitnessKey(self.name, _Bls().SkToPk(self.secret), _Bls().PopProve(self.secret))

    def cosign(self, checkpoint_body: str) -> bytes:
        return bytes(_Bls().Sign(self.secret, cosign_message(checkpoint_body)))


def verify_cosignature(
    key: WitnessKey, checkpoint_body: str, signature: bytes, *, executor: Executor | None = None
) -> None:
    """Raise unless ``signature`` is ``key``'s cosignature on the checkpoint body.

    ``executor``: where the BLS verification runs (py_ecc, about half a second of CPU holding the GIL), e.g.
    a :class:`concurrent.futures.ProcessPoolExecutor`, so that a server's other requests keep its GIL
    meanwhile; the caller waits for its answer, and the refusal is the same."""
    sig = _check_sig_bytes(signature)
    if executor is None:
        ok = _cosignature_verifies(key, checkpoint_body, sig)
    else:
        ok = bool(executor.submit(_cosignature_verifies, key, checkpoint_body, sig).result())
    if not ok:
        raise SignatureError("witness-cosignature", f"cosignature by witness {key.name!r} does not verify")


def _cosignature_verifies(key: WitnessKey, checkpoint_body: str, signature: bytes) -> bool:
    """Whether ``signature`` (96 bytes) is ``key``'s cosignature on the checkpoint body: the BLS ``Verify``,
    answering rather than raising (what a worker process sends back)."""
    try:
        return bool(_Bls().Verify(_pk(key.public_key), cosign_message(checkpoint_body), _sig(signature)))
    except Exception:
        return False


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """The configured witnesses (distinct names and keys) and the quorum that makes a checkpoint witnessed."""

    witnesses: tuple[WitnessKey, ...]
    quorum: int

    def __post_init__(self) -> None:
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names) or len({w.public_key for w in self.witnesses}) != len(names):
            raise InvalidEncoding("witness names and keys must be distinct")
        if not isinstance(self.quorum, int) or isinstance(self.quorum, bool):
            raise InvalidEncoding("quorum must be an integer")
        if not (1 <= self.quorum <= len(names) or (self.quorum == 0 and not names)):
            raise InvalidEncoding("quorum must be between 1 and the number of witnesses (0 if none)")

    def key(self, name: str) -> WitnessKey:
        for w in self.witnesses:
            if w.name == name:
                return w
        raise UnknownWitness("witness-unknown", f"{name!r} is not a configured witness")

    def to_json(self) -> dict[str, Any]:
        return {"quorum": self.quorum, "witnesses": [w.to_json() for w in self.witnesses]}


@dataclass(frozen=True, slots=True)
class CosignatureBundle:
    """Which witnesses cosigned a checkpoint (sorted names) and their aggregate BLS signature."""

    signers: tuple[str, ...]
    aggregate: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for n in self.signers:
            check_witness_name(n)
        if list(self.signers) != sorted(set(self.signers)) or not self.signers:
            raise InvalidEncoding("cosignature signers must be a non-empty sorted list of distinct names")
        _check_sig_bytes(self.aggregate)

    def verify(self, checkpoint_body: str, policy: WitnessPolicy) -> None:
        """Raise unless every named signer is a configured witness and the aggregate verifies."""
        keys = [_pk(policy.key(n).public_key) for n in self.signers]
        try:
            ok = bool(_Bls().FastAggregateVerify(keys, cosign_message(checkpoint_body), _sig(self.aggregate)))
        except Exception:
            ok = False
        if not ok:
            raise SignatureError("witness-cosignature", "aggregate witness cosignature does not verify")

    def witnessed(self, policy: WitnessPolicy) -> bool:
        """True when the (verified) signers reach the quorum, and the quorum is at least 1: with no witnesses
        configured (quorum 0) nothing is ever *witnessed*, however many signers a bundle names."""
        return policy.quorum >= 1 and len(self.signers) >= policy.quorum

    def to_json(self) -> dict[str, Any]:
        return {"aggregate": self.aggregate.hex(), "signers": list(self.signers)}

    @classmethod
    def from_json(cls, obj: Any) -> CosignatureBundle:
        if not isinstance(obj, Mapping) or set(obj) != {"aggregate", "signers"}:
            raise InvalidEncoding("cosignature bundle must have exactly signers and aggregate")
        signers = obj["signers"]
        if not isinstance(signers, list) or len(signers) > 1000:
            raise InvalidEncoding("signers must be a list")
        return cls(tuple(signers), from_hex(obj["aggregate"], _SIG_BYTES, "aggregate signature"))


def aggregate_cosignatures(
    signatures: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
) -> CosignatureBundle:
    """Aggregate already-verified individual cosignatures into one bundle."""
    items: Sequence[tuple[str, bytes]] = sorted(
        signatures.items() if isinstance(signatures, Mapping) else list(signatures)
    )
    if not items:
        raise InvalidEncoding("nothing to aggregate")
    agg = _Bls().Aggregate([_sig(_check_sig_bytes(s)) for _, s in items])
    return CosignatureBundle(tuple(n for n, _ in items), bytes(agg))
