"""Check the commission's signed result-declaration PDF against the record.

:func:`check_result_pdf` raises :class:`ResultPdfError` (a :class:`~verifier._errors.VerifierError`)
whose ``check`` names the first failed step:

1. ``pdf.malformed``   the bytes do not parse as a PDF;
2. ``pdf.signature``   not exactly one signature, or it is not intact/valid (bytes changed, bad CMS);
3. ``pdf.coverage``    the signature does not cover the entire file (anything appended after signing,
                       even an incremental update a viewer would accept, fails);
4. ``pdf.trust``       the signer does not chain to a configured commission root (or lacks the
                       non-repudiation/digital-signature key usage);
5. ``pdf.embedded``    the signed ``tvote-result.json`` or ``checkpoint.txt`` attachment is missing or not
                       the expected format;
6. ``pdf.checkpoint``  the cited checkpoint hash, or the SHA-256 of the attached checkpoint text, differs
                       from the record's cited checkpoint;
7. ``pdf.result``      the attached result differs from the record's ``tally.result`` payload (compared as
                       canonical JSON, so every number must be equal);
8. ``pdf.figures``     the attached figures (eligible voters, ballots counted, turnout, blank ballots or
                       unused choices per contest) differ from the record's (:func:`expected_figures`);
9. ``pdf.time``        the declaration's printed time is not the signature's signing time (10 minutes apart);
10. ``pdf.text``       the text printed on the pages does not state these figures: the verifier composes the
                       figure tables from the record (:func:`expected_figure_text`) and requires them, with
                       the declaration time, commission, signatory, record address and checkpoint hash,
                       in the pages' text (decoded through each font's ToUnicode map, whitespace ignored).

Only pyHanko and cryptography are used: this module never imports the server side.

Length: a little over 500 lines because V22 is one check whose parts must agree: the signature, the
attachments and the page text are read from the same parsed file; the figures it composes from the record
are in one place with the text it requires.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
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
from pyhanko.pdf_utils import generic
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
    "CHECKPOINT_FILE_NAME",
    "EMBEDDED_RESULT_NAME",
    "ResultPdfError",
    "ResultPdfReport",
    "check_result_pdf",
    "expected_figure_text",
    "expected_figures",
    "load_trust_root",
    "page_text",
    "pdf_embedded_certificates",
]

EMBEDDED_RESULT_NAME: Final[str] = "tvote-result.json"
CHECKPOINT_FILE_NAME: Final[str] = "checkpoint.txt"
RESULT_PDF_FORMAT: Final[str] = "tvote-result-pdf/2"
JST: Final[dt.timezone] = dt.timezone(dt.timedelta(hours=9), "JST")
#: how far the printed declaration time may be from the signature's signing time
MAX_SIGNING_DELAY: Final[dt.timedelta] = dt.timedelta(minutes=10)


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
    declared_at: dt.datetime
    commission: str
    signatory: str


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


# The declaration's printed figure tables (voting/_result_pdf.py draws them; this is the verifier's own copy,
# so that a declaration is checked against what the record implies, not against the producer's code).
_COUNT_LABELS: Final[tuple[tuple[str, str, str], ...]] = (
    ("roll_size", "選挙人名簿登録者数", "Eligible voters (on the roll)"),
    ("cast", "受理された投票", "Ballots cast"),
    ("superseded", "再投票により無効となった投票", "Superseded by a later internet ballot"),
    ("overridden", "投票所投票により無効となった投票", "Overridden by an in-person ballot"),
    ("counted", "集計された投票（投票者数）", "Ballots counted (voters)"),
    ("turnout", "投票率", "Turnout"),
    ("spoiled", "検証のため開示された投票（集計外）", "Challenged (spoiled) ballots, not counted"),
)
#: the text printed right after the last figure table (so that no digit can be appended to its last count)
_AFTER_FIGURES: Final[str] = "選挙記録（公開台帳）の最終チェックポイントのハッシュ"


def _turnout(counted: int, roll_size: int) -> str:
    basis_points = (counted * 20000 + roll_size) // (2 * roll_size)  # rounded half up
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError(v)
    return v


def expected_figures(
    manifest: Mapping[str, Any], result: Mapping[str, Any], roll_size: int
) -> dict[str, Any]:
    """The figures a declaration must state, from the record alone: ``roll_size`` (``roll.commitment``),
    ``counted`` (``tally.result``), ``turnout`` = counted / roll_size as a percentage rounded half up to two
    decimals, and per contest with ``max`` 1 the blank ballots ``counted - Σ counts`` (exact: each ballot
    has 0 or 1 selection there, by its contest proof), with ``max`` k > 1 the unused choices
    ``k · counted - Σ counts``. Raises :class:`ResultPdfError` (``pdf.figures``) on a record they cannot
    come from."""
    try:
        roll, counted = _int(roll_size), _int(result["counted"])
        if roll == 0 or counted > roll:
            raise ValueError(roll)
        contests: dict[str, dict[str, int]] = {}
        for c in manifest["contests"]:
            k = _int(c.get("max", 1))
            left = k * counted - sum(_int(n) for n in result["results"][c["id"]].values())
            contests[c["id"]] = {"blank": _int(left)} if k == 1 else {"unused": _int(left)}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ResultPdfError(
            "pdf.figures", "the record's roll size, counts and contests give no consistent figures"
        ) from None
    return {"roll_size": roll, "counted": counted, "turnout": _turnout(counted, roll), "contests": contests}


def _squash(text: str) -> str:
    return "".join(text.split())


def _number(n: int | str) -> str:
    return f"{n:,}" if isinstance(n, int) else n


def expected_figure_text(
    manifest: Mapping[str, Any], result: Mapping[str, Any], figures: Mapping[str, Any]
) -> str:
    """The figure tables as the declaration prints them, whitespace removed: the ballot figures, then per
    contest its name, every selection's name and count and the blank ballots (or unused choices), then the
    heading that follows them."""
    values = {**{k: v for k, v in result.items() if k != "results"}, **figures}
    parts = ["区分 / Ballots", "数 / Count"]
    parts += [f"{ja} / {en}{_number(values[key])}" for key, ja, en in _COUNT_LABELS]
    for c in manifest["contests"]:
        parts += [f"{c['name']['ja']} / {c['name']['en']}", "候補・選択肢 / Selection", "得票数 / Votes"]
        for sel in c["selections"]:
            parts.append(
                f"{sel['name']['ja']} / {sel['name']['en']}{_number(result['results'][c['id']][sel['id']])}"
            )
        left = figures["contests"][c["id"]]
        if "blank" in left:
            parts.append(f"白票（選択なし） / Blank (no selection){_number(left['blank'])}")
        else:
            k = c.get("max", 1)
            label = f"未使用の選択数（1票につき{k}まで） / Unused choices (up to {k} per ballot)"
            parts.append(f"{label}{_number(left['unused'])}")
    parts.append(_AFTER_FIGURES)
    return _squash("".join(parts))


def format_jst(when: dt.datetime) -> str:
    """A time as the declaration prints it: Japan time, ``2026年12月7日 10時30分``."""
    t = when.astimezone(JST)
    return f"{t.year}年{t.month}月{t.day}日 {t.hour}時{t.minute:02d}分"


def _to_unicode_map(font: Any) -> tuple[int, dict[bytes, str]]:
    """A font's ToUnicode CMap (``bfchar`` and ``bfrange`` entries): code width in bytes and code → text."""
    cmap = font["/ToUnicode"].data.decode("latin-1")
    space = re.search(r"begincodespacerange\s*<([0-9A-Fa-f]+)>", cmap)
    width = len(space.group(1)) // 2 if space else 1
    out: dict[bytes, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]*)>", block):
            out[bytes.fromhex(src)] = bytes.fromhex(dst).decode("utf-16-be", "replace")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first, base = int(lo, 16), int(dst, 16)
            for code in range(first, min(int(hi, 16), first + 255) + 1):
                out[code.to_bytes(len(lo) // 2, "big")] = chr(base + code - first)
    return width, out


_WHITE: Final[bytes] = b"\x00\t\n\x0c\r "
_DELIMS: Final[bytes] = b"()<>[]{}/%"
_ESCAPES: Final[dict[int, bytes]] = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}


def _literal_string(data: bytes, i: int) -> tuple[bytes, int]:
    """The literal string starting after the ``(`` at ``i`` (ISO 32000-1 §7.3.4.2) and the index after it."""
    out, depth = bytearray(), 1
    while True:
        c = data[i]  # IndexError: unterminated
        i += 1
        if c == 0x5C:  # backslash
            e = data[i]
            i += 1
            if e in _ESCAPES:
                out += _ESCAPES[e]
            elif 0x30 <= e <= 0x37:
                digits = bytes([e])
                while len(digits) < 3 and 0x30 <= data[i] <= 0x37:
                    digits += bytes([data[i]])
                    i += 1
                out.append(int(digits, 8) & 0xFF)
            elif e == 0x0D:  # line continuation
                i += data[i] == 0x0A
            elif e != 0x0A:
                out.append(e)
        elif c == 0x28:
            depth += 1
            out.append(c)
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), i
            out.append(c)
        else:
            out.append(c)


def _content_ops(data: bytes) -> list[tuple[str, list[Any]]]:
    """The operators of a content stream with their operands (strings as bytes, arrays as lists, numbers and
    names as text); enough of ISO 32000-1 §7.8.2 for text extraction. Inline images are refused."""
    ops: list[tuple[str, list[Any]]] = []
    stack: list[list[Any]] = [[]]
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c in _WHITE:
            i += 1
        elif c == 0x25:  # % comment
            while i < n and data[i] not in b"\r\n":
                i += 1
        elif c == 0x28:
            text, i = _literal_string(data, i + 1)
            stack[-1].append(text)
        elif data.startswith(b"<<", i) or data.startswith(b">>", i):
            stack[-1].append(data[i : i + 2].decode())
            i += 2
        elif c == 0x3C:
            j = data.index(b">", i)
            digits = bytes(ch for ch in data[i + 1 : j] if ch not in _WHITE)
            stack[-1].append(bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode("ascii")))
            i = j + 1
        elif c == 0x5B:
            stack.append([])
            i += 1
        elif c == 0x5D:
            if len(stack) == 1:
                raise ValueError("unbalanced ] in content stream")
            inner = stack.pop()
            stack[-1].append(inner)
            i += 1
        else:
            j = i + 1
            while j < n and data[j] not in _WHITE and data[j] not in _DELIMS:
                j += 1
            word = data[i:j].decode("latin-1")
            i = j
            if c == 0x2F or word[0] in "+-.0123456789":
                stack[-1].append(word)  # a name or a number
            elif word == "BI":
                raise ValueError("inline image in content stream")
            elif len(stack) == 1:
                ops.append((word, stack[0]))
                stack[0] = []
            else:
                stack[-1].append(word)  # true, false, null inside an array
    return ops


#: the most pages a declaration may have (one for an ordinary election; a long ballot may need a second)
MAX_PAGES: Final[int] = 20


def _pages(reader: PdfFileReader) -> list[Any]:
    """The page dictionaries in order (at most :data:`MAX_PAGES`; a page-tree cycle raises ValueError)."""
    out: list[Any] = []
    todo = [reader.root["/Pages"]]
    seen = 0
    while todo:
        node = todo.pop()
        seen += 1
        if seen > 4 * MAX_PAGES:
            raise ValueError("page tree too large")
        if node.get("/Type") == "/Page":
            out.append(node)
        else:
            kids = node["/Kids"]
            todo.extend(kids[i] for i in reversed(range(len(kids))))
    if len(out) > MAX_PAGES:
        raise ValueError("too many pages")
    return out


def page_text(reader: PdfFileReader) -> str:
    """The text drawn by the pages' content streams, in order, decoded through each font's ToUnicode map (a
    code without one is U+FFFD). Text inside form XObjects is not read: the declaration draws its text on
    the page."""
    return "".join(_one_page_text(page) for page in _pages(reader))


def _one_page_text(node: Any) -> str:
    contents = node["/Contents"]
    parts = contents if isinstance(contents, generic.ArrayObject) else [contents]
    data = b"\n".join(part.get_object().data for part in parts)
    resources = node["/Resources"]
    fonts: Any = resources["/Font"] if "/Font" in resources else {}
    maps: dict[str, tuple[int, dict[bytes, str]]] = {}
    font: tuple[int, dict[bytes, str]] = (1, {})
    chunks: list[str] = []

    def show(raw: Any) -> None:
        if isinstance(raw, bytes):
            width, table = font
            chunks.append("".join(table.get(raw[i : i + width], "\ufffd") for i in range(0, len(raw), width)))

    for op, args in _content_ops(data):
        if op == "Tf" and args:
            name = str(args[0])
            if name not in maps:
                maps[name] = _to_unicode_map(fonts[name]) if "/ToUnicode" in fonts[name] else (1, {})
            font = maps[name]
        elif op in ("Tj", "'", '"') and args:
            show(args[-1])
        elif op == "TJ" and args and isinstance(args[0], list):
            for part in args[0]:
                show(part)
    return "".join(chunks)


def check_result_pdf(
    pdf_bytes: bytes,
    trust_roots: Sequence[x509.Certificate],
    expected_result: Mapping[str, Any],
    expected_checkpoint_hash: str,
    *,
    manifest: Mapping[str, Any],
    roll_size: int,
    validation_time: dt.datetime | None = None,
) -> ResultPdfReport:
    """Verify the signed declaration; return a small report or raise :class:`ResultPdfError`.

    ``expected_result`` is the record's ``tally.result`` payload (binding keys removed),
    ``expected_checkpoint_hash`` the checkpoint the record's ``result.declaration`` cites, ``manifest`` the
    record's manifest and ``roll_size`` its ``roll.commitment`` size. ``validation_time`` (default: now) is
    when the signer's certificate must be valid; an auditor checking an old election passes the declaration
    date.

    May be called from inside a running asyncio event loop: pyHanko's validator, which runs a loop of its
    own, runs on a thread of its own.
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
        # pyHanko's synchronous API runs asyncio.run, which refuses inside a running event loop (an async
        # caller): on a thread of its own none runs
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tvote-pdf") as pool:
            status = pool.submit(validate_pdf_signature, sig, vc).result()
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
        or not isinstance(doc.get("figures"), dict)
        or not all(isinstance(doc.get(k), str) for k in _DOC_TEXTS)
    ):
        raise ResultPdfError("pdf.embedded", f"embedded result is not {RESULT_PDF_FORMAT}")
    try:
        declared = dt.datetime.strptime(doc["declared_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ResultPdfError("pdf.embedded", "declared_at is not an RFC 3339 UTC time") from None
    note = _embedded_file(reader, CHECKPOINT_FILE_NAME)
    if doc.get("checkpoint_hash") != expected_checkpoint_hash:
        raise ResultPdfError("pdf.checkpoint", "the PDF cites another checkpoint than the record's final one")
    if hashlib.sha256(note).hexdigest() != expected_checkpoint_hash:
        raise ResultPdfError(
            "pdf.checkpoint", f"the attached {CHECKPOINT_FILE_NAME} is not the cited checkpoint"
        )
    if rfc8785.dumps(doc["result"]) != rfc8785.dumps(dict(expected_result)):
        raise ResultPdfError("pdf.result", "the PDF's result differs from the record's tally.result")
    figures = expected_figures(manifest, expected_result, roll_size)
    if rfc8785.dumps(doc["figures"]) != rfc8785.dumps(figures):
        named = [k for k in ("roll_size", "counted", "turnout") if doc["figures"].get(k) != figures[k]]
        named += [
            f"contest {cid}"
            for cid in figures["contests"]
            if doc["figures"].get("contests", {}).get(cid) != figures["contests"][cid]
        ]
        raise ResultPdfError(
            "pdf.figures", f"the PDF's figures differ from the record's: {', '.join(named) or 'extra fields'}"
        )
    signed_at = status.signer_reported_dt
    if signed_at is None or abs(signed_at - declared) > MAX_SIGNING_DELAY:
        raise ResultPdfError("pdf.time", "the printed declaration time is not the signature's signing time")
    try:
        text = _squash(page_text(reader))
    except (PdfError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise ResultPdfError("pdf.text", "the pages' text cannot be read") from None
    try:
        block = expected_figure_text(manifest, expected_result, figures)
    except (KeyError, TypeError, AttributeError):
        raise ResultPdfError(
            "pdf.figures", "the record's manifest does not name every contest and selection"
        ) from None
    if text.count(block) != 1:
        raise ResultPdfError(
            "pdf.text", "the page does not print the record's figures (counts, blanks, roll size, turnout)"
        )
    for what, printed in (
        ("declaration time", format_jst(declared)),
        ("commission", doc["commission"]),
        ("signatory", doc["signatory"]),
        ("record address", doc["record_url"]),
        ("checkpoint hash", expected_checkpoint_hash),
    ):
        if _squash(printed) not in text:
            raise ResultPdfError(
                "pdf.text", f"the page does not print the {what} of the attached declaration"
            )

    cert = status.signing_cert
    return ResultPdfReport(
        signer_subject=cert.subject.human_friendly,
        signing_time=signed_at,
        election_id=str(doc.get("election_id")),
        record_url=doc["record_url"],
        declared_at=declared,
        commission=doc["commission"],
        signatory=doc["signatory"],
    )


_DOC_TEXTS: Final[tuple[str, ...]] = ("record_url", "declared_at", "commission", "signatory")
