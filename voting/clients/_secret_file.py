"""The trustee's secret files: passphrase-protected (Argon2id, XSalsa20-Poly1305), written atomically.

Secret file format (``tvote-trustee-secret/1``), a JSON object::

    {"format": "tvote-trustee-secret/1",
     "kdf": {"name": "argon2id13", "opslimit": <int>, "memlimit": <int>, "salt": "<32 hex>"},
     "cipher": "xsalsa20poly1305",
     "ciphertext": "<hex: 24-byte nonce || SecretBox ciphertext>"}

The key is ``nacl.pwhash.argon2id.kdf(32, passphrase_utf8, salt, opslimit, memlimit)``. Reading refuses KDF
limits below libsodium's interactive minimum, a wrong passphrase, or any tampering (``TrusteeFileError``).
The trustee's state (:mod:`voting.clients.trustee`), its enrolment key (here) and the observers' oversight
key (:mod:`voting._oversight`) are kept in such files.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.exceptions
import nacl.pwhash
from nacl.secret import SecretBox

from ledger.files import write_atomic

__all__ = [
    "ENROLMENT_FILE_FORMAT",
    "SECRET_FILE_FORMAT",
    "KdfLimits",
    "TrusteeFileError",
    "create_enrolment_key",
    "enrolment_public_key",
    "read_enrolment_key",
    "read_secret_file",
    "secret_file_limits",
    "write_secret_file",
]

SECRET_FILE_FORMAT: Final[str] = "tvote-trustee-secret/1"  # noqa: S105 - a format name
#: the plaintext of an enrolment key file (a secret file like the trustee's): ``{"format", "seed": hex}``
ENROLMENT_FILE_FORMAT: Final[str] = "tvote-trustee-enrolment/1"


class TrusteeFileError(Exception):
    """The secret file cannot be read: missing, malformed, wrong passphrase or tampered."""


# ------------------------------------------------------------------------------------------- secret file


@dataclass(frozen=True, slots=True)
class KdfLimits:
    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_MODERATE

    @classmethod
    def interactive(cls) -> KdfLimits:
        return cls(nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)


_MIN_OPS: Final[int] = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MIN_MEM: Final[int] = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def _derive(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
    if not passphrase:
        raise TrusteeFileError("the passphrase must not be empty")
    return nacl.pwhash.argon2id.kdf(
        SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        salt,
        opslimit=limits.opslimit,
        memlimit=limits.memlimit,
    )


def write_secret_file(
    path: str | Path, state: Mapping[str, Any], passphrase: str, limits: KdfLimits | None = None
) -> None:
    """Encrypt ``state`` under ``passphrase`` and write it atomically (mode 0600)."""
    limits = limits or KdfLimits()
    salt = secrets.token_bytes(nacl.pwhash.argon2id.SALTBYTES)
    box = SecretBox(_derive(passphrase, salt, limits))
    ct = bytes(box.encrypt(json.dumps(dict(state), sort_keys=True).encode("utf-8")))
    doc = {
        "format": SECRET_FILE_FORMAT,
        "kdf": {
            "name": "argon2id13",
            "opslimit": limits.opslimit,
            "memlimit": limits.memlimit,
            "salt": salt.hex(),
        },
        "cipher": "xsalsa20poly1305",
        "ciphertext": ct.hex(),
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(p, json.dumps(doc, indent=1), mode=0o600)


def secret_file_limits(path: str | Path) -> KdfLimits:
    """The key-derivation limits recorded in a secret file."""
    try:
        kdf = json.loads(Path(path).read_text(encoding="utf-8"))["kdf"]
        return KdfLimits(int(kdf["opslimit"]), int(kdf["memlimit"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TrusteeFileError("the secret file is malformed") from e


def read_secret_file(path: str | Path, passphrase: str) -> dict[str, Any]:
    """Decrypt a secret file; raise :class:`TrusteeFileError` on any problem."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TrusteeFileError(f"cannot read the secret file: {e}") from e
    try:
        if doc["format"] != SECRET_FILE_FORMAT or doc["cipher"] != "xsalsa20poly1305":
            raise TrusteeFileError("not a tvote trustee secret file (unknown format)")
        kdf = doc["kdf"]
        if kdf["name"] != "argon2id13":
            raise TrusteeFileError("unknown key-derivation function")
        limits = KdfLimits(int(kdf["opslimit"]), int(kdf["memlimit"]))
        salt = bytes.fromhex(kdf["salt"])
        ct = bytes.fromhex(doc["ciphertext"])
    except (KeyError, TypeError, ValueError) as e:
        raise TrusteeFileError("the secret file is malformed") from e
    if limits.opslimit < _MIN_OPS or limits.memlimit < _MIN_MEM:
        raise TrusteeFileError("the secret file's key-derivation limits are below the minimum")
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
        raise TrusteeFileError("the secret file is malformed (salt)")
    try:
        plain = SecretBox(_derive(passphrase, salt, limits)).decrypt(ct)
    except nacl.exceptions.CryptoError as e:
        raise TrusteeFileError("wrong passphrase, or the secret file was modified") from e
    state: dict[str, Any] = json.loads(plain.decode("utf-8"))
    return state


# -------------------------------------------------------------------------------------- enrolment key


def enrolment_public_key(seed: bytes) -> str:
    """The enrolment key's Ed25519 public key (64 hex), which the manifest pins."""
    from nacl.signing import SigningKey

    return bytes(SigningKey(seed).verify_key).hex()


def create_enrolment_key(path: str | Path, passphrase: str, limits: KdfLimits | None = None) -> str:
    """Draw a trustee's Ed25519 enrolment key into a new passphrase-protected file (refuses to overwrite);
    return its public key (64 hex) to be read out at the ceremony and pinned in the manifest."""
    if Path(path).exists():
        raise TrusteeFileError(f"{path} exists; refusing to overwrite an enrolment key")
    seed = secrets.token_bytes(32)
    write_secret_file(path, {"format": ENROLMENT_FILE_FORMAT, "seed": seed.hex()}, passphrase, limits)
    return enrolment_public_key(seed)


def read_enrolment_key(path: str | Path, passphrase: str) -> bytes:
    """The enrolment key's 32-byte seed from its file (:class:`TrusteeFileError` on any problem)."""
    state = read_secret_file(path, passphrase)
    try:
        if state["format"] != ENROLMENT_FILE_FORMAT:
            raise TrusteeFileError("not a tvote trustee enrolment key file")
        seed = bytes.fromhex(state["seed"])
    except (KeyError, TypeError, ValueError) as e:
        raise TrusteeFileError("the enrolment key file is malformed") from e
    if len(seed) != 32:
        raise TrusteeFileError("the enrolment key file is malformed")
    return seed
