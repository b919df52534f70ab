"""The commission's result-declaration signing key (PDF, PAdES), loaded from ``data_dir``.

Files (PEM): ``commission-signer.key`` (RSA private key, mode 0600), ``commission-signer.crt`` (its
certificate) and ``commission-chain.pem`` (the issuing chain up to the commission root, which auditors give
the verifier as the trust root). In production they must exist (issued by the commission's CA). In
``development`` and ``test`` a missing set is generated once from a *test* commission CA
(:class:`voting._testca.CommissionTestCa`, names marked TEST) so the demo works out of the box.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._errors import ConfigurationError
from ._settings import Settings

__all__ = ["KEY_FILE", "load_or_create_commission_signer"]

KEY_FILE = "commission-signer.key"
CERT_FILE = "commission-signer.crt"
CHAIN_FILE = "commission-chain.pem"


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_or_create_commission_signer(settings: Settings) -> Any:
    from ._result_pdf import CommissionSigner

    d = settings.data_dir
    key_p, cert_p, chain_p = d / KEY_FILE, d / CERT_FILE, d / CHAIN_FILE
    if not key_p.exists():
        if settings.environment == "production":
            raise ConfigurationError(
                "config.commission_key",
                f"the commission signing key ({KEY_FILE}, {CERT_FILE}, {CHAIN_FILE}) is missing in the data "
                "directory",
            )
        from ._testca import CommissionTestCa

        ca = CommissionTestCa.generate(dt.datetime.now(dt.UTC))
        d.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        _write(
            key_p,
            ca.signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            0o600,
        )
        _write(cert_p, ca.signer_certificate.public_bytes(pem), 0o644)
        _write(chain_p, ca.root_certificate.public_bytes(pem), 0o644)
    key = serialization.load_pem_private_key(key_p.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("config.commission_key", "the commission signing key must be RSA")
    cert = x509.load_pem_x509_certificate(cert_p.read_bytes())
    chain = tuple(x509.load_pem_x509_certificates(chain_p.read_bytes())) if chain_p.exists() else ()
    return CommissionSigner(cert, key, chain)
