"""Check the commission's signed result-declaration PDF against the record.

:func:`check_result_pdf` raises :class:`ResultPdfError` (a :class:`~verifier._errors.VerifierError`)
whose ``check`` names the first failed step:

1. ``pdf.malformed``   the bytes do not parse as a PDF;
2. ``pdf.signature``   not exactly one signature, or it is not intact/valid (bytes changed, bad CMS);
3. ``pdf.coverage``    the signature does not cover the entire file (anything appended after signing,
                       even an incremental update a viewer would accept, fails);
4. ``pdf.trust``       the signer does not chain to a configured commission root (or lacks the
                       non-repudiation/digital-signature key usage);
5. ``pdf.embedded``    the signed ``tvote-result.json`` attachment is missing or not the expected format;
6. ``pdf.checkpoint``  its checkpoint hash differs from the record's final checkpoint hash;
7. ``pdf.result``      its result differs from the record's ``tally.result`` payload (compared as
                       canonical JSON, so every number must be equal).

Only pyHanko and cryptography are used: this module never imports the server side.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import rfc8785
from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import SigningError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from ledger.record import check_json_bounds

from ._errors import TrustRootUnusable, VerifierError

__all__ = [
    "EMBEDDED_RESULT_NAME",
    "ResultPdfError",
    "ResultPdfReport",
    "check_result_pdf",
    "load_trust_root",
    "pdf_embedded_certificates",
]

EMBEDDED_RESULT_NAME: Final[str] = "tvote-result.json"
RESULT_PDF_FORMAT: Final[str] = "tvote-result-pdf/1"


class ResultPdfError(VerifierError):
    """The result PDF failed check ``check`` (see the module docstring for the list)."""

    def __init__(self, check: str, message: str) -> None:
        self.check = check
        self.message = message
        super().__init__(f"{check}: {message}")

    @property
    def operator_message(self) -> str:
        return f"result PDF check '{self.check}' failed: {self.message}"


@dataclass(frozen=True, slots=True)
class ResultPdfReport:
    """What a passing check established."""

    signer_subject: str
    signing_time: dt.datetime | None
    election_id: str
    record_url: str


def _embedded_file(reader: PdfFileReader, name: str) -> bytes:
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    except KeyError:
        raise ResultPdfError("pdf.embedded", "the PDF has no embedded files") from None
    found = [names[i + 1] for i in range(0, len(names) - 1, 2) if str(names[i]) == name]
    if len(found) != 1:
        raise ResultPdfError("pdf.embedded", f"expected exactly one embedded {name}")
    try:
        return bytes(found[0]["/EF"]["/F"].data)
    except (KeyError, PdfError):
        raise ResultPdfError("pdf.embedded", f"embedded {name} has no readable data") from None


#: what a trust-root file must hold (said when it holds something else)
TRUST_ROOT_EXPECTED: Final[str] = (
    "--trust-root takes the election commission's root certificate: an X.509 certificate, PEM "
    "(text starting with -----BEGIN CERTIFICATE-----, e.g. commission-chain.pem) or DER (binary); the "
    "commission publishes it out of band"
)
#: a trust-root file is a certificate or a short chain
_MAX_TRUST_ROOT_BYTES: Final[int] = 1024 * 1024


def load_trust_root(path: Path) -> list[x509.Certificate]:
    """The certificates of one ``--trust-root`` file (PEM, one or more; or DER, one). A file that cannot
    be read, or holds anything but certificates, raises :class:`TrustRootUnusable` saying what it should
    be (never the ASN.1 parser's own text)."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_TRUST_ROOT_BYTES + 1)
    except OSError as e:
        raise TrustRootUnusable(f"cannot read the file ({e.strerror or e})", path=str(path)) from None
    if len(data) > _MAX_TRUST_ROOT_BYTES:
        raise TrustRootUnusable(f"larger than a certificate could be; {TRUST_ROOT_EXPECTED}", path=str(path))
    if b"-----BEGIN " in data:
        labels = sorted(
            {m.decode("ascii", "replace") for m in re.findall(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----", data)}
        )
        if "CERTIFICATE" not in labels:
            what = " and ".join(labels) or "PEM without a label"
            raise TrustRootUnusable(
                f"holds a PEM {what}, not a certificate; {TRUST_ROOT_EXPECTED}", path=str(path)
            )
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            raise TrustRootUnusable(
                f"its PEM CERTIFICATE block does not decode to an X.509 certificate; {TRUST_ROOT_EXPECTED}",
                path=str(path),
            ) from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        what = "is empty" if not data.strip() else "is not a certificate"
        raise TrustRootUnusable(f"{what}; {TRUST_ROOT_EXPECTED}", path=str(path)) from None


def pdf_embedded_certificates(pdf_bytes: bytes) -> list[x509.Certificate]:
    """The certificates carried by the PDF's one signature (signer and chain; empty if unreadable). They are
    candidates only: a caller trusts one only by its pinned fingerprint."""
    try:
        sigs = PdfFileReader(io.BytesIO(pdf_bytes), strict=True).embedded_signatures
        if len(sigs) != 1:
            return []
        certs = [sigs[0].signer_cert, *sigs[0].other_embedded_certs]
        return [x509.load_der_x509_certificate(c.dump()) for c in certs]
    except (PdfError, ValueError, KeyError, TypeError):
        return []


def check_result_pdf(
    pdf_bytes: bytes,
    trust_roots: Sequence[x509.Certificate],
    expected_result: Mapping[str, Any],
    expected_checkpoint_hash: str,
    *,
    validation_time: dt.datetime | None = None,
) -> ResultPdfReport:
    """Verify the signed declaration; return a small report or raise :class:`ResultPdfError`.

    ``validation_time`` (default: now) is when the signer's certificate must be valid; an auditor
    checking an old election passes the declaration date.

    Must not be called from inside a running asyncio event loop (pyHanko's validator runs its own).
    """
    if not trust_roots:
        raise ResultPdfError("pdf.trust", "no commission trust roots configured")
    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=True)
        sigs = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError):
        raise ResultPdfError("pdf.malformed", "the bytes are not a readable PDF") from None
    if len(sigs) != 1:
        raise ResultPdfError("pdf.signature", f"expected exactly one signature, found {len(sigs)}")
    sig = sigs[0]

    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in trust_roots]
    vc = ValidationContext(
        trust_roots=roots, allow_fetching=False, moment=validation_time, revocation_mode="soft-fail"
    )
    try:
        status = validate_pdf_signature(sig, vc)
    except (SignatureValidationError, SigningError, PdfError, ValueError) as e:
        raise ResultPdfError("pdf.signature", f"signature could not be validated: {e}") from None
    if not (status.intact and status.valid):
        raise ResultPdfError("pdf.signature", "the signature does not match the signed bytes")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        raise ResultPdfError(
            "pdf.coverage", "content was added after signing (the signature does not cover the whole file)"
        )
    if not status.trusted:
        raise ResultPdfError("pdf.trust", "the signer does not chain to a configured commission root")
    if not status.bottom_line:
        raise ResultPdfError("pdf.signature", "pyHanko's overall judgement of the signature is negative")

    raw = _embedded_file(reader, EMBEDDED_RESULT_NAME)
    try:
        check_json_bounds(raw)  # size and nesting, before the decoder runs
        doc = json.loads(raw)
    except ValueError:  # InvalidEntry, UnicodeDecodeError, JSONDecodeError
        raise ResultPdfError("pdf.embedded", "embedded result is not JSON within the entry limits") from None
    if (
        not isinstance(doc, dict)
        or doc.get("format") != RESULT_PDF_FORMAT
        or not isinstance(doc.get("result"), dict)
    ):
        raise ResultPdfError("pdf.embedded", f"embedded result is not {RESULT_PDF_FORMAT}")
    if doc.get("checkpoint_hash") != expected_checkpoint_hash:
        raise ResultPdfError("pdf.checkpoint", "the PDF cites another checkpoint than the record's final one")
    if rfc8785.dumps(doc["result"]) != rfc8785.dumps(dict(expected_result)):
        raise ResultPdfError("pdf.result", "the PDF's result differs from the record's tally.result")

    cert = status.signing_cert
    return ResultPdfReport(
        signer_subject=cert.subject.human_friendly,
        signing_time=status.signer_reported_dt,
        election_id=str(doc.get("election_id")),
        record_url=str(doc.get("record_url")),
    )
