"""SoftHSM2 test tokens that stand in for a My Number card (tests, tools and the demo only).

:class:`SoftHsm2` owns one SoftHSM2 configuration (``softhsm2.conf`` and a token directory under a
directory of its own); :meth:`SoftHsm2.add_card` initialises a token (``softhsm2-util --init-token``; the
PKCS#11 library has no C_InitToken call) and imports an RSA key and its signing certificate as PKCS#11
objects through ``python-pkcs11``. SoftHSM2 reads ``SOFTHSM2_CONF`` when the module is initialised, so a
process that uses the token sets it to :attr:`SoftHsm2.conf` (:meth:`SoftHsm2.environ`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pkcs11 import Attribute
from pkcs11.util.rsa import decode_rsa_private_key
from pkcs11.util.x509 import decode_x509_certificate

__all__ = ["SOFTHSM2_LIBRARY_CANDIDATES", "SoftHsm2", "find_softhsm2_library"]

#: where Debian/Ubuntu (and a few other distributions) install SoftHSM2's PKCS#11 module
SOFTHSM2_LIBRARY_CANDIDATES: Final[tuple[str, ...]] = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
)
_SO_PIN: Final[str] = "12345678"


def find_softhsm2_library() -> Path | None:
    """SoftHSM2's PKCS#11 module (``$SOFTHSM2_MODULE`` first), or ``None`` when it is not installed."""
    env = os.environ.get("SOFTHSM2_MODULE")
    for c in (env, *SOFTHSM2_LIBRARY_CANDIDATES) if env else SOFTHSM2_LIBRARY_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    return None


class SoftHsm2:
    """One SoftHSM2 configuration under ``root`` (created if missing)."""

    def __init__(self, root: str | Path, library: str | Path | None = None) -> None:
        lib = Path(library) if library is not None else find_softhsm2_library()
        if lib is None:
            raise FileNotFoundError("SoftHSM2 (libsofthsm2.so) is not installed")
        util = shutil.which("softhsm2-util")
        if util is None:
            raise FileNotFoundError("softhsm2-util is not installed")
        self.library = lib
        self._util = util
        self.root = Path(root)
        self.tokens = self.root / "tokens"
        self.tokens.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
            encoding="utf-8",
        )

    def environ(self) -> dict[str, str]:
        """The environment variable that points SoftHSM2 at this configuration."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Point this process's ``SOFTHSM2_CONF`` at this configuration for the ``with`` block."""
        old = os.environ.get("SOFTHSM2_CONF")
        os.environ["SOFTHSM2_CONF"] = str(self.conf)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("SOFTHSM2_CONF", None)
            else:
                os.environ["SOFTHSM2_CONF"] = old

    def add_card(
        self,
        pin: str,
        private_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        *,
        label: str = "JPKI",
        extra_certificates: tuple[x509.Certificate, ...] = (),
        private_certificate: bool = False,
    ) -> None:
        """A new token ``label`` with user PIN ``pin`` holding ``private_key`` (private, sensitive, sign
        only) and ``certificate`` (public), both with CKA_ID 0x01; ``extra_certificates`` are stored as
        further public certificates (a user-authentication certificate, say). ``private_certificate`` makes
        the signing certificate a private object, visible only after the PIN, as OpenSC shows a JPKI card."""
        subprocess.run(  # noqa: S603 (softhsm2-util found on PATH; arguments are a list)
            [self._util, "--init-token", "--free", "--label", label, "--so-pin", _SO_PIN, "--pin", pin],
            check=True,
            capture_output=True,
            env={**os.environ, **self.environ()},
        )
        key_der = private_key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
        with self.active():
            lib = pkcs11.lib(str(self.library))
            try:
                token = lib.get_token(token_label=label)
                with token.open(rw=True, user_pin=pin) as session:
                    key_attrs = decode_rsa_private_key(key_der)
                    key_attrs.update(
                        {
                            Attribute.TOKEN: True,
                            Attribute.PRIVATE: True,
                            Attribute.SENSITIVE: True,
                            Attribute.EXTRACTABLE: False,
                            Attribute.SIGN: True,
                            Attribute.DECRYPT: False,
                            Attribute.UNWRAP: False,
                            Attribute.ID: b"\x01",
                            Attribute.LABEL: "Digital Signature Key",
                        }
                    )
                    session.create_object(key_attrs)
                    for i, cert in enumerate((certificate, *extra_certificates)):
                        attrs = decode_x509_certificate(cert.public_bytes(Encoding.DER))
                        attrs.update(
                            {
                                Attribute.TOKEN: True,
                                Attribute.PRIVATE: private_certificate and i == 0,
                                Attribute.ID: bytes([i + 1]),
                                Attribute.LABEL: "Digital Signature Certificate"
                                if i == 0
                                else f"Certificate {i}",
                            }
                        )
                        session.create_object(attrs)
            finally:
                lib.finalize()

    def remove_tokens(self) -> None:
        """Delete every token of this configuration (a card pulled out of the reader)."""
        shutil.rmtree(self.tokens)
        self.tokens.mkdir()
