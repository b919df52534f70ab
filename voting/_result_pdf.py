"""The commission's result declaration: a bilingual PDF, PAdES-signed with pyHanko.

Layout (A4, one page for ordinary elections): title (選挙結果の告示 / Declaration of election results),
election name in Japanese and English, ballot counts, one table per contest (候補・選択肢 / Selection,
得票数 / Votes), the record's final checkpoint hash, the record URL and a QR code of
``<record_url>#checkpoint=<checkpoint_hash>``. Japanese text uses reportlab's built-in CID font
``HeiseiKakuGo-W5`` (no font file needed; PDF viewers supply the glyphs).

Embedded file ``tvote-result.json`` (MIME ``application/json``) holds the canonical (RFC 8785) JSON::

    {"format": "tvote-result-pdf/1", "election_id": ..., "checkpoint_hash": <64 hex>,
     "record_url": ..., "result": <the tally.result payload, verbatim>}

so the verifier compares numbers exactly instead of reading rendered text. The embedded file is added in
the same incremental update as the signature, so the signature covers it (PAdES B-B, SHA-256,
``/ETSI.CAdES.detached``).

Inputs: ``manifest`` is the election manifest (``name`` {ja,en}, ``contests`` with ``id``, ``name`` and
``selections`` [{``id``, ``name``}]) and ``result`` the ``tally.result`` payload (``results``
{contest: {selection: count}} and the counts ``cast``, ``counted``, ``superseded``, ``overridden``,
``spoiled``), both as in ``docs/events.md``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import qrcode  # type: ignore[import-untyped]
import rfc8785
from asn1crypto import keys as asn1_keys  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils import embed
from pyhanko.pdf_utils.generic import NameObject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]

__all__ = [
    "EMBEDDED_RESULT_NAME",
    "RESULT_PDF_FORMAT",
    "CommissionSigner",
    "ResultPdfInputError",
    "build_result_pdf",
    "render_result_pdf",
    "result_document",
]

EMBEDDED_RESULT_NAME: Final[str] = "tvote-result.json"
RESULT_PDF_FORMAT: Final[str] = "tvote-result-pdf/1"
SIGNATURE_FIELD: Final[str] = "CommissionSignature"
_FONT: Final[str] = "HeiseiKakuGo-W5"
_HEX64: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")
_COUNT_LABELS: Final[tuple[tuple[str, str, str], ...]] = (
    ("cast", "受理された投票", "Ballots cast"),
    ("counted", "集計された投票", "Ballots counted"),
    ("superseded", "再投票により無効となった投票", "Superseded by a later internet ballot"),
    ("overridden", "投票所投票により無効となった投票", "Overridden by an in-person ballot"),
    ("spoiled", "検証のため開示された投票", "Challenged (spoiled) ballots"),
)


class ResultPdfInputError(ValueError):
    """The manifest, result, checkpoint hash or URL handed to the PDF builder is malformed.

    ``code`` is ``result_pdf.input``; the message names the offending field."""

    code = "result_pdf.input"

    @property
    def operator_message(self) -> str:
        return f"result PDF not built: {self}"


@dataclass(frozen=True, slots=True)
class CommissionSigner:
    """The commission's document-signing key, its certificate and the chain up to its root."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...] = ()

    def _pyhanko_signer(self) -> signers.SimpleSigner:
        def conv(c: x509.Certificate) -> Any:
            return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

        key_der = self.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return signers.SimpleSigner(
            signing_cert=conv(self.certificate),
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [conv(c) for c in self.chain]
            ),
        )


def _bilingual(obj: Any, what: str) -> tuple[str, str]:
    if not (isinstance(obj, Mapping) and isinstance(obj.get("ja"), str) and isinstance(obj.get("en"), str)):
        raise ResultPdfInputError(f"{what} must be {{'ja': str, 'en': str}}")
    return obj["ja"], obj["en"]


def _count(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ResultPdfInputError(f"{what} must be a non-negative integer")
    return v


def result_document(
    manifest: Mapping[str, Any], result: Mapping[str, Any], *, checkpoint_hash: str, record_url: str
) -> dict[str, Any]:
    """The JSON embedded in the PDF (validated; see the module docstring)."""
    if not isinstance(checkpoint_hash, str) or not _HEX64.fullmatch(checkpoint_hash):
        raise ResultPdfInputError("checkpoint_hash must be 64 lowercase hex digits")
    if not isinstance(record_url, str) or not record_url.startswith(("https://", "http://")):
        raise ResultPdfInputError("record_url must be an http(s) URL")
    election_id = manifest.get("election_id")
    if not isinstance(election_id, str) or not election_id:
        raise ResultPdfInputError("manifest.election_id must be a non-empty string")
    _layout(manifest, result)  # validates shape and labels
    return {
        "format": RESULT_PDF_FORMAT,
        "election_id": election_id,
        "checkpoint_hash": checkpoint_hash,
        "record_url": record_url,
        "result": dict(result),
    }


def _layout(
    manifest: Mapping[str, Any], result: Mapping[str, Any]
) -> tuple[
    tuple[str, str], list[tuple[str, str, str, int]], list[tuple[tuple[str, str], list[tuple[str, str, int]]]]
]:
    name = _bilingual(manifest.get("name"), "manifest.name")
    counts = [(key, ja, en, _count(result.get(key), f"result.{key}")) for key, ja, en in _COUNT_LABELS]
    results = result.get("results")
    contests = manifest.get("contests")
    if not isinstance(results, Mapping) or not isinstance(contests, Sequence):
        raise ResultPdfInputError("result.results must be a mapping and manifest.contests a list")
    tables = []
    for c in contests:
        cid = c.get("id") if isinstance(c, Mapping) else None
        if not isinstance(cid, str) or not isinstance(results.get(cid), Mapping):
            raise ResultPdfInputError(f"no result for contest {cid!r}")
        per = results[cid]
        sels = c.get("selections")
        if not isinstance(sels, Sequence) or {s.get("id") for s in sels} != set(per):
            raise ResultPdfInputError(f"contest {cid!r}: result selections differ from the manifest")
        rows = [
            (
                *_bilingual(s.get("name"), f"selection {s.get('id')!r} name"),
                _count(per[s["id"]], f"count of {cid}/{s['id']}"),
            )
            for s in sels
        ]
        tables.append((_bilingual(c.get("name"), f"contest {cid!r} name"), rows))
    if set(results) != {c["id"] for c in contests}:
        raise ResultPdfInputError("result.results names a contest that is not in the manifest")
    return name, counts, tables


def _qr_image(payload: str) -> Image:
    buf = io.BytesIO()
    qrcode.make(payload, border=2).save(buf, format="PNG")
    buf.seek(0)
    return Image(buf, width=38 * mm, height=38 * mm)


def render_result_pdf(
    manifest: Mapping[str, Any], result: Mapping[str, Any], *, checkpoint_hash: str, record_url: str
) -> bytes:
    """The unsigned, rendered declaration (deterministic bytes for equal inputs)."""
    result_document(manifest, result, checkpoint_hash=checkpoint_hash, record_url=record_url)
    (name_ja, name_en), counts, tables = _layout(manifest, result)
    pdfmetrics.registerFont(UnicodeCIDFont(_FONT))
    h1 = ParagraphStyle("h1", fontName=_FONT, fontSize=17, leading=23, spaceAfter=2 * mm)
    h2 = ParagraphStyle(
        "h2", fontName=_FONT, fontSize=12.5, leading=17, spaceBefore=4 * mm, spaceAfter=1 * mm
    )
    body = ParagraphStyle("body", fontName=_FONT, fontSize=9.5, leading=13)
    right = ParagraphStyle("right", parent=body, alignment=2)
    mono = ParagraphStyle("mono", fontName="Courier", fontSize=8.5, leading=11)
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.95)),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )

    def bi(ja: str, en: str, style: ParagraphStyle = body, sep: str = " / ") -> Paragraph:
        # Japanese in the CID font, English in Helvetica (the CID font's Latin metrics look poor)
        return Paragraph(f"{_esc(ja)}{sep}<font name='Helvetica'>{_esc(en)}</font>", style)

    def num(n: int) -> Paragraph:
        return Paragraph(f"<font name='Helvetica'>{n:,}</font>", right)

    story: list[Any] = [
        bi("選挙結果の告示", "Declaration of election results", h1),
        bi(name_ja, name_en, h2, sep="<br/>"),
        Table(
            [[bi("区分", "Ballots"), bi("票数", "Count")]]
            + [[bi(ja, en), num(n)] for _, ja, en, n in counts],
            colWidths=[125 * mm, 40 * mm],
            style=grid,
        ),
    ]
    for (c_ja, c_en), rows in tables:
        story.append(bi(c_ja, c_en, h2))
        story.append(
            Table(
                [[bi("候補・選択肢", "Selection"), bi("得票数", "Votes")]]
                + [[bi(ja, en), num(n)] for ja, en, n in rows],
                colWidths=[125 * mm, 40 * mm],
                style=grid,
            )
        )
    qr_payload = f"{record_url}#checkpoint={checkpoint_hash}"
    story += [
        Spacer(1, 5 * mm),
        bi(
            "選挙記録（公開台帳）の最終チェックポイントのハッシュ",
            "Final checkpoint hash of the public election record:",
            body,
            sep="<br/>",
        ),
        Paragraph(checkpoint_hash, mono),
        bi("選挙記録", f"Election record: {record_url}", body),
        Spacer(1, 2 * mm),
        Table(
            [
                [
                    _qr_image(qr_payload),
                    bi(
                        "この文書は選挙管理委員会の電子署名（PAdES）付きです。"
                        "数値は添付の tvote-result.json と同一で、"
                        "検証ツール tvote-verify で公開記録と照合できます。",
                        "This document carries the election commission's PAdES signature. "
                        "Its numbers equal the attached tvote-result.json and can be checked "
                        "against the public record with tvote-verify.",
                        body,
                        sep="<br/>",
                    ),
                ]
            ],
            colWidths=[45 * mm, 120 * mm],
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
        ),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{name_en} — result declaration",
        author="tvote",
        invariant=1,
    )
    doc.build(story)
    return out.getvalue()


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_result_pdf(
    manifest: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    checkpoint_hash: str,
    record_url: str,
    signer: CommissionSigner,
) -> bytes:
    """Render, embed ``tvote-result.json`` and sign (PAdES B-B) with the commission's key."""
    doc = result_document(manifest, result, checkpoint_hash=checkpoint_hash, record_url=record_url)
    pdf = render_result_pdf(manifest, result, checkpoint_hash=checkpoint_hash, record_url=record_url)
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    data = embed.EmbeddedFileObject.from_file_data(w, data=rfc8785.dumps(doc), mime_type="application/json")
    embed.embed_file(
        w,
        embed.FileSpec(
            file_spec_string=EMBEDDED_RESULT_NAME,
            file_name=EMBEDDED_RESULT_NAME,
            embedded_data=data,
            description="Machine-readable election result (RFC 8785 JSON)",
            af_relationship=NameObject("/Data"),
        ),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="選挙結果の告示 / Declaration of election results",
        location="Tsukuba, JP",
    )
    out = io.BytesIO()
    signers.sign_pdf(w, meta, signer=signer._pyhanko_signer(), output=out)
    return out.getvalue()
