"""C2SP signed notes with Ed25519, and tlog-checkpoint bodies.

A signed note (https://c2sp.org/signed-note) is::

    <body: one or more lines, each ending in "\\n">
    "\\n"
    "— <key name> <base64(key id || signature)>\\n"     (one line per signature; "—" is U+2014)

The key id is the first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)`` (0x01 = Ed25519)
and the signature is Ed25519 over the body bytes. Verifier keys are written
``<name>+<8 hex key id>+<base64(0x01 || public key)>`` and signer keys
``PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>``.

A checkpoint body (https://c2sp.org/tlog-checkpoint) is ``<origin>\\n<size>\\n<base64 root>\\n``
followed by tvote's one extension line ``time <unix seconds>\\n`` (the issue time, so that it is
covered by the log's signature and the witnesses' cosignatures). In tvote the log's key name equals
the origin; a checkpoint without the time line, or with any other extension line, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Final

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from .._errors import InvalidEncoding, SignatureError
from ..merkle import HASH_SIZE

__all__ = ["Checkpoint", "LogKey", "LogSigner", "SignedCheckpoint", "parse_signed_note"]

_ALG_ED25519: Final[bytes] = b"\x01"
_EM_DASH: Final[str] = "\u2014"
_MAX_NOTE_BYTES: Final[int] = 64 * 1024
_MAX_SIGNATURES: Final[int] = 100
_NAME_RE: Final = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces
_SIZE_RE: Final = re.compile(r"0|[1-9][0-9]{0,18}")
_TIME_PREFIX: Final[str] = "time "


def _b64decode(s: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidEncoding(f"{what} is not standard base64") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise InvalidEncoding(f"{what} is not canonical base64")
    return raw


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or "+" in name or len(name) > 255:
        raise InvalidEncoding(f"key name {name!r} must be printable ASCII without spaces or '+'")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class LogKey:
    """A log's Ed25519 verifier key (name, 32-byte public key)."""

    name: str
    public_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise InvalidEncoding("Ed25519 public key must be 32 bytes")
        try:
            VerifyKey(self.public_key)
        except (CryptoError, ValueError, TypeError):
            raise InvalidEncoding("invalid Ed25519 public key") from None

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(_ALG_ED25519 + self.public_key).decode()}"

    @classmethod
    def from_vkey(cls, text: str) -> LogKey:
        if not isinstance(text, str):
            raise InvalidEncoding("verifier key must be text")
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise InvalidEncoding("verifier key must be <name>+<hex id>+<base64 key>")
        name, kid, b64 = parts
        raw = _b64decode(b64, "verifier key")
        if len(raw) != 33 or raw[:1] != _ALG_ED25519:
            raise InvalidEncoding("verifier key is not an Ed25519 key")
        key = cls(_check_name(name), raw[1:])
        if kid != key.key_id.hex():
            raise InvalidEncoding("verifier key id does not match the key")
        return key

    def verify(self, body: bytes, signature: bytes) -> None:
        try:
            VerifyKey(self.public_key).verify(body, signature)
        except (BadSignatureError, CryptoError, ValueError, TypeError):
            raise SignatureError("note-signature", f"signature by {self.name!r} does not verify") from None


@dataclass(frozen=True, slots=True)
class LogSigner:
    """A log's Ed25519 signing key. ``skey`` is its secret text form: keep it out of logs."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.seed, bytes) or len(self.seed) != 32:
            raise InvalidEncoding("Ed25519 seed must be 32 bytes")

    @classmethod
    def generate(cls, name: str, seed: bytes | None = None) -> LogSigner:
        """A new key; ``seed`` (32 random bytes) may be injected, else libsodium's RNG is used."""
        return cls(name, seed if seed is not None else bytes(SigningKey.generate()))

    @property
    def public(self) -> LogKey:
        return LogKey(self.name, bytes(SigningKey(self.seed).verify_key))

    @property
    def skey(self) -> str:
        kid = key_id(self.name, self.public.public_key).hex()
        return f"PRIVATE+KEY+{self.name}+{kid}+{base64.b64encode(_ALG_ED25519 + self.seed).decode()}"

    @classmethod
    def from_skey(cls, text: str) -> LogSigner:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise InvalidEncoding("signer key must be PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        raw = _b64decode(parts[4], "signer key")
        if len(raw) != 33 or raw[:1] != _ALG_ED25519:
            raise InvalidEncoding("signer key is not an Ed25519 key")
        signer = cls(_check_name(parts[2]), raw[1:])
        if parts[3] != signer.public.key_id.hex():
            raise InvalidEncoding("signer key id does not match the key")
        return signer

    def sign_note(self, body: str) -> str:
        data = body.encode("utf-8")
        _check_body(body)
        sig = SigningKey(self.seed).sign(data).signature
        line = base64.b64encode(key_id(self.name, self.public.public_key) + sig).decode()
        return f"{body}\n{_EM_DASH} {self.name} {line}\n"


def _check_body(body: str) -> None:
    if not body.endswith("\n") or "\n\n" in body or body.startswith("\n"):
        raise InvalidEncoding("note body must be non-empty lines each ending in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in body):
        raise InvalidEncoding("note body contains control characters")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes = field(repr=False)


def parse_signed_note(text: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its body and signature lines (nothing is verified here)."""
    if not isinstance(text, str) or len(text.encode("utf-8", "surrogatepass")) > _MAX_NOTE_BYTES:
        raise InvalidEncoding("signed note must be text of at most 64 KiB")
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise InvalidEncoding("signed note has no signature block")
    body, sig_block = text[: cut + 1], text[cut + 2 :]
    _check_body(body)
    sigs: list[NoteSignature] = []
    for line in sig_block[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _EM_DASH:
            raise InvalidEncoding("malformed signature line")
        raw = _b64decode(parts[2], "note signature")
        if len(raw) < 5:
            raise InvalidEncoding("note signature too short")
        sigs.append(NoteSignature(_check_name(parts[1]), raw[:4], raw[4:]))
    if not sigs or len(sigs) > _MAX_SIGNATURES:
        raise InvalidEncoding("signed note must have 1 to 100 signatures")
    return body, sigs


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog-checkpoint: origin, tree size, root hash and issue time (Unix seconds), validated.

    ``time`` is signed: it is the body's extension line ``time <decimal seconds>``.
    """

    origin: str
    size: int
    root: bytes
    time: int

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or any(ord(c) < 0x20 for c in self.origin):
            raise InvalidEncoding("checkpoint origin must be a non-empty line")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 0 <= self.size < 2**63:
            raise InvalidEncoding("checkpoint size out of range")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise InvalidEncoding("checkpoint root must be 32 bytes")
        if not isinstance(self.time, int) or isinstance(self.time, bool) or not 0 <= self.time < 2**63:
            raise InvalidEncoding("checkpoint time must be Unix seconds in [0, 2^63)")

    def body(self) -> str:
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\n{_TIME_PREFIX}{self.time}\n"

    @classmethod
    def from_body(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) != 5 or lines[4] != "":
            raise InvalidEncoding("checkpoint body must be exactly origin, size, root and time lines")
        if not _SIZE_RE.fullmatch(lines[1]):
            raise InvalidEncoding("checkpoint size must be a decimal without leading zeros")
        stamp = lines[3].removeprefix(_TIME_PREFIX)
        if not lines[3].startswith(_TIME_PREFIX) or not _SIZE_RE.fullmatch(stamp):
            raise InvalidEncoding("checkpoint extension line must be 'time <decimal seconds>'")
        return cls(lines[0], int(lines[1]), _b64decode(lines[2], "checkpoint root"), int(stamp))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with its signed-note text, whose log signature has been verified."""

    checkpoint: Checkpoint
    note: str

    @classmethod
    def sign(cls, checkpoint: Checkpoint, signer: LogSigner) -> SignedCheckpoint:
        if signer.name != checkpoint.origin:
            raise InvalidEncoding("the log key name must equal the checkpoint origin")
        return cls(checkpoint, signer.sign_note(checkpoint.body()))

    @classmethod
    def verify(cls, note: str, key: LogKey) -> SignedCheckpoint:
        """Parse ``note`` and check the log's signature on it; raise otherwise."""
        body, sigs = parse_signed_note(note)
        cp = Checkpoint.from_body(body)
        if cp.origin != key.name:
            raise SignatureError("checkpoint-origin", f"origin {cp.origin!r} is not the log {key.name!r}")
        mine = [s for s in sigs if s.name == key.name and s.key_id == key.key_id]
        if not mine:
            raise SignatureError("note-signature", f"no signature by the log key {key.name!r}")
        for s in mine:
            key.verify(body.encode("utf-8"), s.signature)
        return cls(cp, note)

    @property
    def body(self) -> str:
        return self.checkpoint.body()
