"""The commission's result declaration: a bilingual PDF/A-3b, PAdES-signed with pyHanko (docs/result-pdf.md).

Layout (A4, one page for ordinary elections): title (選挙結果の告示 / Declaration of election results),
election name in Japanese and English, the date and time of the declaration in Japan time, the commission's
name and the signatory's title; beside them the QR code of ``<record_url>#checkpoint=<checkpoint_hash>``
and the record's address (so both are always on page 1); the ballot figures (eligible voters on the roll,
ballots cast, superseded, overridden, counted, turnout, challenged); one table per contest (候補・選択肢 /
Selection, 得票数 / Votes, then the blank ballots, or for an up-to-k contest the unused choices; a long
ballot runs on to the next page); the cited checkpoint's hash and a note on the signature.

Every glyph is IPAex Gothic (IPA Font License v1.0), shipped in ``_result_pdf_assets/`` and subset-embedded
by reportlab, so the declaration renders the same on a machine without Japanese fonts.

Figures (the one rule the verifier re-derives, ``verifier/_pdf.py``): ``turnout`` = ``counted / roll_size``
as a percentage rounded half up to two decimals (``"45.50%"``); per contest with ``max`` 1 the blank ballots
``counted - Σ counts`` (the contest proof bounds each ballot's selections to 0..1, so this is exact); per
contest with ``max`` k > 1 the unused choices ``k · counted - Σ counts`` (how many ballots were wholly blank
is not derivable from the totals, so it is not printed).

PDF/A-3b (ISO 19005-3): XMP metadata with ``pdfaid:part`` 3 and ``pdfaid:conformance`` B, an sRGB output
intent (``sRGB.icc``), every font embedded, no transparency or encryption, and two embedded files, each
with ``AFRelationship /Data`` and listed in the catalog's ``/AF``:

* ``checkpoint.txt`` (``text/plain``): the signed-note text of the checkpoint the declaration cites (its
  SHA-256 is ``checkpoint_hash``, ``docs/events.md`` ``result.declaration``);
* ``tvote-result.json`` (``application/json``), canonical (RFC 8785) JSON::

    {"format": "tvote-result-pdf/2", "election_id", "checkpoint_hash", "record_url",
     "declared_at": <RFC 3339 UTC>, "commission", "signatory",
     "result": <the tally.result payload, verbatim>,
     "figures": {"roll_size", "counted", "turnout", "contests": {<id>: {"blank": n} | {"unused": n}}}}

reportlab's file is first rewritten by pyHanko (reportlab puts no end-of-line marker before ``endstream``,
which PDF/A forbids); the metadata, output intent and files are then added in the same incremental update
as the signature, so the signature covers them (PAdES B-B, SHA-256, ``/ETSI.CAdES.detached``). veraPDF
1.28.2 reports the signed file PDF/A-3B compliant (``tools/verapdf_check.sh``; not run in CI, no Java).

Inputs: ``manifest`` is the election manifest (``name`` {ja,en}, ``contests`` with ``id``, ``name``, ``max``
and ``selections`` [{``id``, ``name``}]) and ``result`` the ``tally.result`` payload (``results``
{contest: {selection: count}} and the counts ``cast``, ``counted``, ``superseded``, ``overridden``,
``spoiled``), both as in ``docs/events.md``; ``roll_size`` the ``roll.commitment`` size.

Length: over 500 lines because the page layout, the PDF/A-3b conversion and the signature are one pipeline
over one file (the verifier reads back the drawn text, so the figures and the layout stay side by side).
"""

from __future__ import annotations

import concurrent.futures
import copy
import datetime as dt
import functools
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import qrcode  # type: ignore[import-untyped]
import rfc8785
from asn1crypto import keys as asn1_keys  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import embed, generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata import model as xmp
from pyhanko.pdf_utils.metadata import xmp_xml
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]

__all__ = [
    "CHECKPOINT_FILE_NAME",
    "EMBEDDED_RESULT_NAME",
    "FONT_FILE",
    "ICC_PROFILE_FILE",
    "JST",
    "RESULT_PDF_FORMAT",
    "CommissionSigner",
    "ResultPdfInputError",
    "build_result_pdf",
    "declaration_figures",
    "format_jst",
    "render_result_pdf",
    "result_document",
    "sign_declaration",
    "turnout_text",
    "unprintable_names",
]

EMBEDDED_RESULT_NAME: Final[str] = "tvote-result.json"
CHECKPOINT_FILE_NAME: Final[str] = "checkpoint.txt"
RESULT_PDF_FORMAT: Final[str] = "tvote-result-pdf/2"
SIGNATURE_FIELD: Final[str] = "CommissionSignature"
_ASSETS: Final[Path] = Path(__file__).resolve().parent / "_result_pdf_assets"
#: IPAex Gothic (IPA Font License v1.0, ``_result_pdf_assets/IPA_Font_License_Agreement_v1.0.txt``)
FONT_FILE: Final[Path] = _ASSETS / "ipaexg.ttf"
#: the sRGB profile of the PDF/A output intent (zlib licence, ``_result_pdf_assets/sRGB-LICENSE.txt``)
ICC_PROFILE_FILE: Final[Path] = _ASSETS / "sRGB.icc"
_FONT: Final[str] = "IPAexGothic"
JST: Final[dt.timezone] = dt.timezone(dt.timedelta(hours=9), "JST")
_HEX64: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")
_MAX_TEXT: Final[int] = 200
_PDFAID: Final[str] = xmp.NS["pdfaid"]


class ResultPdfInputError(ValueError):
    """The manifest, result, checkpoint, roll size, URL or names handed to the PDF builder are malformed.

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

    def subject_attribute(self, oid: x509.ObjectIdentifier) -> str | None:
        """The first value of ``oid`` in the signing certificate's subject (``None`` when absent)."""
        values = self.certificate.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else None


def _bilingual(obj: Any, what: str) -> tuple[str, str]:
    if not (isinstance(obj, Mapping) and isinstance(obj.get("ja"), str) and isinstance(obj.get("en"), str)):
        raise ResultPdfInputError(f"{what} must be {{'ja': str, 'en': str}}")
    return obj["ja"], obj["en"]


def _count(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ResultPdfInputError(f"{what} must be a non-negative integer")
    return v


def _text(v: Any, what: str) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > _MAX_TEXT or not v.isprintable():
        raise ResultPdfInputError(f"{what} must be printable text of 1 to {_MAX_TEXT} characters")
    return v


def unprintable_names(manifest: Mapping[str, Any]) -> list[str]:
    """The manifest's names (election, contests, selections) the declaration's font cannot print, each as
    ``"<where>: U+XXXX …"``; empty when the declaration can be produced for this manifest."""
    found: list[str] = []
    labelled = [("name", manifest.get("name"))]
    for c in manifest.get("contests") or ():
        labelled.append((f"contests[{c.get('id')}].name", c.get("name")))
        for sel in c.get("selections") or ():
            labelled.append((f"contests[{c.get('id')}].selections[{sel.get('id')}].name", sel.get("name")))
    for where, text in labelled:
        for lang in ("ja", "en"):
            value = text.get(lang) if isinstance(text, Mapping) else None
            if isinstance(value, str):
                try:
                    _printable_in_font(value, f"{where}.{lang}")
                except ResultPdfInputError as e:
                    found.append(str(e))
    return found


def _font_text(v: Any, what: str) -> str:
    _printable_in_font(_text(v, what), what)
    return str(v)


def turnout_text(counted: int, roll_size: int) -> str:
    """``counted / roll_size`` as a percentage, rounded half up to two decimals (``"45.50%"``)."""
    basis_points = (counted * 20000 + roll_size) // (2 * roll_size)
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


def format_jst(when: dt.datetime) -> str:
    """The declaration's date and time as printed: Japan time, ``2026年12月7日 10時30分``."""
    t = when.astimezone(JST)
    return f"{t.year}年{t.month}月{t.day}日 {t.hour}時{t.minute:02d}分"


def declaration_figures(
    manifest: Mapping[str, Any], result: Mapping[str, Any], roll_size: int
) -> dict[str, Any]:
    """The figures printed beside the result (see the module docstring for the rule)."""
    roll = _count(roll_size, "roll_size")
    counted = _count(result.get("counted"), "result.counted")
    if roll == 0 or counted > roll:
        raise ResultPdfInputError(f"roll_size {roll} must be positive and at least result.counted {counted}")
    _, _, tables = _layout(manifest, result)
    contests: dict[str, dict[str, int]] = {}
    for c, (_, rows) in zip(manifest["contests"], tables, strict=True):
        k = _count(c.get("max", 1), f"contest {c['id']!r} max")
        if k == 0:
            raise ResultPdfInputError(f"contest {c['id']!r} max must be at least 1")
        left = k * counted - sum(n for _, _, n in rows)
        if left < 0:
            raise ResultPdfInputError(f"contest {c['id']!r}: more votes than {k} per counted ballot")
        contests[c["id"]] = {"blank": left} if k == 1 else {"unused": left}
    return {
        "roll_size": roll,
        "counted": counted,
        "turnout": turnout_text(counted, roll),
        "contests": contests,
    }


def _utc_seconds(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ResultPdfInputError("declared_at must carry a time zone")
    return when.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def result_document(
    manifest: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    checkpoint_hash: str,
    record_url: str,
    roll_size: int,
    declared_at: dt.datetime,
    commission: str,
    signatory: str,
) -> dict[str, Any]:
    """The JSON embedded in the PDF (validated; see the module docstring)."""
    if not isinstance(checkpoint_hash, str) or not _HEX64.fullmatch(checkpoint_hash):
        raise ResultPdfInputError("checkpoint_hash must be 64 lowercase hex digits")
    if not isinstance(record_url, str) or not record_url.startswith(("https://", "http://")):
        raise ResultPdfInputError("record_url must be an http(s) URL")
    _font_text(record_url, "record_url")
    election_id = manifest.get("election_id")
    if not isinstance(election_id, str) or not election_id:
        raise ResultPdfInputError("manifest.election_id must be a non-empty string")
    return {
        "format": RESULT_PDF_FORMAT,
        "election_id": election_id,
        "checkpoint_hash": checkpoint_hash,
        "record_url": record_url,
        "declared_at": _utc_seconds(declared_at),
        "commission": _font_text(commission, "commission"),
        "signatory": _font_text(signatory, "signatory"),
        "result": copy.deepcopy(dict(result)),  # the document never aliases the caller's payload
        "figures": declaration_figures(manifest, result, roll_size),
    }


_COUNT_LABELS: Final[tuple[tuple[str, str, str], ...]] = (
    ("roll_size", "選挙人名簿登録者数", "Eligible voters (on the roll)"),
    ("cast", "受理された投票", "Ballots cast"),
    ("superseded", "再投票により無効となった投票", "Superseded by a later internet ballot"),
    ("overridden", "投票所投票により無効となった投票", "Overridden by an in-person ballot"),
    ("counted", "集計された投票（投票者数）", "Ballots counted (voters)"),
    ("turnout", "投票率", "Turnout"),
    ("spoiled", "検証のため開示された投票（集計外）", "Challenged (spoiled) ballots, not counted"),
)


def _layout(
    manifest: Mapping[str, Any], result: Mapping[str, Any]
) -> tuple[tuple[str, str], list[tuple[str, int]], list[tuple[tuple[str, str], list[tuple[str, str, int]]]]]:
    name = _bilingual(manifest.get("name"), "manifest.name")
    _printable_in_font(" ".join(name), "manifest.name")
    counts = [
        (key, _count(result.get(key), f"result.{key}"))
        for key in ("cast", "counted", "superseded", "overridden", "spoiled")
    ]
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
        for ja, en, _ in rows:
            _printable_in_font(f"{ja} {en}", f"a selection name of contest {cid!r}")
        _printable_in_font(" ".join(tables[-1][0]), f"contest {cid!r} name")
    if set(results) != {c["id"] for c in contests}:
        raise ResultPdfInputError("result.results names a contest that is not in the manifest")
    return name, counts, tables


def _qr_image(payload: str) -> Image:
    buf = io.BytesIO()
    # mode "1" (black and white): no alpha channel, so no transparency (PDF/A)
    qrcode.make(payload, border=2).get_image().convert("1").save(buf, format="PNG")
    buf.seek(0)
    return Image(buf, width=34 * mm, height=34 * mm)


@functools.cache
def _register_font() -> frozenset[int]:
    """Register IPAex Gothic with reportlab; the code points it has glyphs for."""
    font = TTFont(_FONT, str(FONT_FILE))
    pdfmetrics.registerFont(font)
    return frozenset(font.face.charToGlyph)


def _printable_in_font(text: str, what: str) -> None:
    """Refuse text the font has no glyph for: it would print as an empty box (or nothing), and the page would
    not state what the record says (the verifier reads the printed text back)."""
    glyphs = _register_font()
    missing = sorted({ch for ch in text if not ch.isspace() and ord(ch) not in glyphs})
    if missing:
        codes = ", ".join(f"U+{ord(ch):04X} {ch}" for ch in missing[:5])
        raise ResultPdfInputError(
            f"{what} has characters the declaration's font (IPAex Gothic) cannot print: {codes}"
        )


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_result_pdf(document: Mapping[str, Any], manifest: Mapping[str, Any]) -> bytes:
    """The unsigned, rendered declaration of a :func:`result_document` (equal inputs, equal bytes)."""
    result, figures = document["result"], document["figures"]
    (name_ja, name_en), _, tables = _layout(manifest, result)
    values: dict[str, int | str] = {**{k: result[k] for k in result if k != "results"}, **figures}
    _register_font()
    h1 = ParagraphStyle("h1", fontName=_FONT, fontSize=16, leading=21, spaceAfter=1.5 * mm)
    h2 = ParagraphStyle(
        "h2", fontName=_FONT, fontSize=11.5, leading=15, spaceBefore=3 * mm, spaceAfter=1 * mm
    )
    body = ParagraphStyle("body", fontName=_FONT, fontSize=9, leading=11.5)
    right = ParagraphStyle("right", parent=body, alignment=2)
    small = ParagraphStyle("small", fontName=_FONT, fontSize=7.5, leading=9.5)
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.95)),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("FONT", (0, 0), (-1, -1), _FONT),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ]
    )

    def bi(ja: str, en: str, style: ParagraphStyle = body, sep: str = " / ") -> Paragraph:
        return Paragraph(f"{_esc(ja)}{sep}{_esc(en)}", style)

    def num(n: int | str) -> Paragraph:
        return Paragraph(f"{n:,}" if isinstance(n, int) else _esc(n), right)

    def table(header: tuple[Paragraph, Paragraph], rows: list[list[Any]]) -> Table:
        return Table([list(header), *rows], colWidths=[135 * mm, 35 * mm], style=grid)

    declared = dt.datetime.fromisoformat(document["declared_at"])
    record_url, checkpoint_hash = document["record_url"], document["checkpoint_hash"]
    plain = TableStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("FONT", (0, 0), (-1, -1), _FONT),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ]
    )
    heading = [
        bi("選挙結果の告示", "Declaration of election results", h1),
        bi(name_ja, name_en, h2, sep="<br/>"),
        Table(
            [
                [bi("告示日時", "Declared"), Paragraph(f"{format_jst(declared)}（日本時間 / JST）", body)],
                [bi("選挙管理委員会", "Election commission"), Paragraph(_esc(document["commission"]), body)],
                [bi("署名者", "Signed by"), Paragraph(_esc(document["signatory"]), body)],
            ],
            colWidths=[42 * mm, 88 * mm],
            style=plain,
        ),
    ]
    # the QR code and the record's address sit beside the heading: always on page 1
    qr = [
        _qr_image(f"{record_url}#checkpoint={checkpoint_hash}"),
        bi("選挙記録", f"Election record: {record_url}", small, sep="<br/>"),
    ]
    story: list[Any] = [
        Table([[heading, qr]], colWidths=[132 * mm, 38 * mm], style=plain),
        Spacer(1, 2 * mm),
        table(
            (bi("区分", "Ballots"), bi("数", "Count")),
            [[bi(ja, en), num(values[key])] for key, ja, en in _COUNT_LABELS],
        ),
    ]
    for c, ((c_ja, c_en), rows) in zip(manifest["contests"], tables, strict=True):
        left = figures["contests"][c["id"]]
        if "blank" in left:
            extra = [bi("白票（選択なし）", "Blank (no selection)"), num(left["blank"])]
        else:
            k = c.get("max", 1)
            extra = [
                bi(f"未使用の選択数（1票につき{k}まで）", f"Unused choices (up to {k} per ballot)"),
                num(left["unused"]),
            ]
        story.append(bi(c_ja, c_en, h2))
        story.append(
            table(
                (bi("候補・選択肢", "Selection"), bi("得票数", "Votes")),
                [[bi(ja, en), num(n)] for ja, en, n in rows] + [extra],
            )
        )
    story += [
        Spacer(1, 3 * mm),
        bi(
            "選挙記録（公開台帳）の最終チェックポイントのハッシュ",
            "Final checkpoint hash of the public election record:",
            small,
        ),
        Paragraph(checkpoint_hash, small),
        Spacer(1, 1.5 * mm),
        bi(
            "この文書は選挙管理委員会の電子署名（PAdES）付きです。"
            "添付の tvote-result.json と checkpoint.txt は署名の対象で、"
            "検証ツール tvote-verify で公開記録と照合できます。",
            "This document carries the election commission's PAdES signature. "
            "The attached tvote-result.json and checkpoint.txt are signed with it; "
            "tvote-verify checks every figure printed here against the public record.",
            small,
            sep="<br/>",
        ),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=_title(name_en),
        author=document["commission"],
        subject=_SUBJECT,
        creator="tvote",
        lang="ja",
        invariant=1,
        # the canvas's initial font is IPAex Gothic too: reportlab's default (Helvetica) would be a font
        # resource that is not embedded (PDF/A; pdffonts)
        initialFontName=_FONT,
    )
    doc.build(story)
    return out.getvalue()


_SUBJECT: Final[str] = "選挙結果の告示 / Declaration of election results"


def _title(name_en: str) -> str:
    return f"{name_en} — result declaration"


def _icc_output_intent(w: IncrementalPdfFileWriter) -> generic.IndirectObject:
    n3 = generic.NumberObject(3)  # type: ignore[no-untyped-call]
    header = generic.DictionaryObject({generic.NameObject("/N"): n3})  # type: ignore[no-untyped-call]
    profile = generic.StreamObject(header, stream_data=ICC_PROFILE_FILE.read_bytes())
    profile.compress()  # type: ignore[no-untyped-call]
    return w.add_object(
        generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {
                generic.NameObject("/Type"): generic.NameObject("/OutputIntent"),
                generic.NameObject("/S"): generic.NameObject("/GTS_PDFA1"),
                generic.NameObject("/OutputConditionIdentifier"): generic.TextStringObject(
                    "sRGB IEC61966-2.1"
                ),
                generic.NameObject("/RegistryName"): generic.TextStringObject("http://www.color.org"),
                generic.NameObject("/Info"): generic.TextStringObject("sRGB IEC61966-2.1"),
                generic.NameObject("/DestOutputProfile"): w.add_object(profile),
            }
        )
    )


def _attach(
    w: IncrementalPdfFileWriter, name: str, data: bytes, mime: str, desc: str, when: dt.datetime
) -> None:
    stream = embed.EmbeddedFileObject.from_file_data(
        w, data=data, mime_type=mime, params=embed.EmbeddedFileParams(modification_date=when)
    )
    embed.embed_file(
        w,
        embed.FileSpec(
            file_spec_string=name,
            file_name=name,
            embedded_data=stream,
            description=desc,
            af_relationship=generic.NameObject("/Data"),
        ),
    )


def build_result_pdf(
    manifest: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    checkpoint_note: str,
    record_url: str,
    roll_size: int,
    signer: CommissionSigner,
    commission: str | None = None,
    signatory: str | None = None,
    declared_at: dt.datetime | None = None,
) -> bytes:
    """Render the declaration, make it PDF/A-3b, attach the checkpoint and the JSON, and sign (PAdES B-B).

    ``checkpoint_note`` is the signed-note text of the checkpoint the declaration cites; ``commission`` and
    ``signatory`` default to the signing certificate's organisation and common name; ``declared_at`` (default
    now) is the declaration's time, printed in Japan time and written as the PDF's creation date."""
    if not isinstance(checkpoint_note, str) or not checkpoint_note.endswith("\n"):
        raise ResultPdfInputError("checkpoint_note must be a signed note's text (ending in a newline)")
    note = checkpoint_note.encode("utf-8")
    when = (declared_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    doc = result_document(
        manifest,
        result,
        checkpoint_hash=hashlib.sha256(note).hexdigest(),
        record_url=record_url,
        roll_size=roll_size,
        declared_at=when,
        commission=commission or signer.subject_attribute(NameOID.ORGANIZATION_NAME) or "",
        signatory=signatory or signer.subject_attribute(NameOID.COMMON_NAME) or "",
    )
    return sign_declaration(render_result_pdf(doc, manifest), doc, manifest, note, signer)


def _pdf_syntax_fixed(rendered: bytes) -> io.BytesIO:
    """``rendered`` rewritten object for object by pyHanko, with reportlab's information dictionary left out
    (:func:`sign_declaration` writes its own).

    reportlab writes each stream's data directly followed by ``endstream``, without the end-of-line marker
    ISO 19005-3 §6.1.7.1 requires before it (veraPDF rule 6.1.7.1-2); pyHanko's writer puts one there. The
    pages, fonts, images and catalog are the same objects with the same data."""
    out = io.BytesIO()
    copy_into_new_writer(PdfFileReader(io.BytesIO(rendered)), {"info": None}).write(out)  # type: ignore[no-untyped-call]
    out.seek(0)
    return out


def sign_declaration(
    rendered: bytes,
    document: Mapping[str, Any],
    manifest: Mapping[str, Any],
    checkpoint_note: bytes,
    signer: CommissionSigner,
) -> bytes:
    """Make a rendered declaration PDF/A-3b, attach ``checkpoint_note`` and ``document`` (its
    :func:`result_document`), and sign (PAdES B-B). The second half of :func:`build_result_pdf`; the tests
    use it to sign a declaration whose page and attachment differ."""
    doc = document
    when = dt.datetime.strptime(doc["declared_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    w = IncrementalPdfFileWriter(_pdf_syntax_fixed(rendered))
    # PDF/A: the document information dictionary and the XMP metadata say the same (pyHanko writes both
    # from one DocumentMetadata); the producer is pyHanko's own name, so that it is not appended to
    w.set_info(
        generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {
                generic.NameObject(k): generic.TextStringObject("")
                for k in ("/Title", "/Author", "/Subject", "/Creator", "/CreationDate", "/ModDate")
            }
            | {generic.NameObject("/Producer"): generic.TextStringObject(xmp.VENDOR)}
        )
    )
    meta = w.document_meta
    meta.title = _title(_bilingual(manifest["name"], "manifest.name")[1])
    meta.author = doc["commission"]
    meta.subject = _SUBJECT
    meta.creator = "tvote"
    meta.created = when
    # the PDF/A identification, in the XMP packet that pyHanko then fills from the metadata above (one
    # rdf:Description: pyHanko merges into an existing packet, so the fields are never written twice)
    w.root["/Metadata"] = w.add_object(
        xmp_xml.MetadataStream.from_xmp(
            [
                xmp.XmpStructure.of(
                    (xmp.ExpandedName(ns=_PDFAID, local_name="part"), xmp.XmpValue("3")),
                    (xmp.ExpandedName(ns=_PDFAID, local_name="conformance"), xmp.XmpValue("B")),
                )
            ]
        )
    )
    w.root["/OutputIntents"] = generic.ArrayObject([_icc_output_intent(w)])
    w.update_root()  # type: ignore[no-untyped-call]
    # name-tree order: checkpoint.txt before tvote-result.json
    _attach(
        w,
        CHECKPOINT_FILE_NAME,
        checkpoint_note,
        "text/plain",
        "Signed checkpoint of the public election record",
        when,
    )
    _attach(
        w,
        EMBEDDED_RESULT_NAME,
        rfc8785.dumps(doc),
        "application/json",
        "Machine-readable election result and figures (RFC 8785 JSON)",
        when,
    )
    # associated files are a PDF 2.0 feature that PDF/A-3 (PDF 1.7) adopts: pyHanko's embed_file marks the
    # catalog /Version 2.0 for them; the file stays a PDF 1.7 file
    w.root["/Version"] = generic.NameObject("/1.7")
    w.output_version = (1, 7)
    sig_meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="選挙結果の告示 / Declaration of election results",
        location="Tsukuba, JP",
    )
    out = io.BytesIO()
    # pyHanko's synchronous API runs asyncio.run, which refuses inside a running event loop (an async caller;
    # a test worker after Playwright's synchronous API): on a thread of its own none runs
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tvote-pdf") as pool:
        pool.submit(signers.sign_pdf, w, sig_meta, signer=signer._pyhanko_signer(), output=out).result()
    return out.getvalue()
