"""The kiosk's printouts: the voter's receipt slip, the zero report and the closing report, as PDF
(reportlab), sized for an 80 mm receipt printer.

Japanese text uses IPAex Gothic, subset-embedded, the font the result declaration embeds
(``voting.result_pdf.JAPANESE_FONT_FILE``, package data), so it prints on a kiosk without a Japanese system
font; every label is also in English (Helvetica), and the tracking code is in Courier. The QR code
(``qrcode``'s module matrix) is drawn as vector squares, so it prints sharp at any resolution. The pages
are written uncompressed (a slip is a few kilobytes) so the printed text can be read back from the file.

Every PDF is kept on disk (``receipts/``, ``reports/`` of the state directory); with a printer it is also
sent to CUPS with ``lp -d PRINTER FILE`` and ``lp``'s exit status is checked. Nothing personal is printed:
no name, no card number, no certificate: the tracking code, the ledger index, times and the kiosk's own
identity only.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import qrcode  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

from ledger.files import write_atomic
from voting.result_pdf import JAPANESE_FONT_FILE

__all__ = [
    "PrintError",
    "Printed",
    "Printer",
    "check_url",
    "closing_report_pdf",
    "qr_matrix",
    "receipt_pdf",
    "zero_report_pdf",
]

JA_FONT: Final[str] = "IPAexGothic"
WIDTH: Final[float] = 80 * mm
MARGIN: Final[float] = 5 * mm
JST: Final[ZoneInfo] = ZoneInfo("Asia/Tokyo")


class PrintError(Exception):
    """``lp`` failed (or is missing); the PDF is on disk all the same."""


@dataclass(frozen=True, slots=True)
class Printed:
    """Where a printout went: always ``path``; ``printer`` when sent to CUPS; ``error`` when that failed."""

    path: Path
    printer: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "printer": self.printer, "error": self.error}


def check_url(public_url: str, tracking_code: str) -> str:
    """What the receipt's QR code holds: the booth's Check my ballot page with ``?code=`` (the parameter
    ``web/src/booth/check.js`` reads), the tracking code in its shown form."""
    return f"{public_url.rstrip('/')}/check?code={tracking_code}"


def qr_matrix(text: str) -> list[list[bool]]:
    """The QR code's modules (``True`` = dark), quiet zone excluded: what the slip draws."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(text)
    qr.make(fit=True)
    return [list(map(bool, row)) for row in qr.get_matrix()]


def _local_time(when: dt.datetime) -> str:
    return when.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST")


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """``text`` in lines no wider than ``width``: at spaces where a line has them, else between characters
    (Japanese has no spaces)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if pdfmetrics.stringWidth(candidate, font, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:
            if line and pdfmetrics.stringWidth(line + ch, font, size) > width:
                lines.append(line)
                line = ""
            line += ch
    return [*lines, line] if line or not lines else lines


class _Slip:
    """A top-down writer on one page as long as its content (a receipt roll has no fixed page length): the
    calls are recorded with their depth below the top, and :meth:`done` draws them on a page that fits."""

    def __init__(self) -> None:
        pdfmetrics.registerFont(TTFont(JA_FONT, str(JAPANESE_FONT_FILE)))  # subset-embedded
        self.depth = 0.0  # points below the top margin
        self.ops: list[Callable[[Canvas, float], None]] = []  # each draws itself, given the page's top

    def text(self, text: str, size: float, font: str) -> None:
        if not text.isascii() and font != JA_FONT:
            font = JA_FONT  # Helvetica and Courier have no Japanese glyphs
        for line in _wrap(text, font, size, WIDTH - 2 * MARGIN):
            self.depth += size * 1.35
            y = self.depth

            def draw(c: Canvas, top: float, line: str = line, y: float = y) -> None:
                c.setFont(font, size)
                c.drawString(MARGIN, top - y, line)

            self.ops.append(draw)

    def ja(self, text: str, size: float = 9) -> None:
        self.text(text, size, JA_FONT)

    def en(self, text: str, size: float = 7.5, font: str = "Helvetica") -> None:
        self.text(text, size, font)

    def gap(self, points: float) -> None:
        self.depth += points

    def pair(self, ja: str, en: str, value: str, *, mono: bool = False) -> None:
        self.ja(ja, 8)
        self.en(en, 6.5)
        self.en(value, 9, "Courier-Bold" if mono else "Helvetica-Bold")
        self.gap(1.5 * mm)

    def rule(self) -> None:
        self.gap(2 * mm)
        y = self.depth

        def draw(c: Canvas, top: float) -> None:
            c.setLineWidth(0.5)
            c.line(MARGIN, top - y, WIDTH - MARGIN, top - y)

        self.ops.append(draw)
        self.gap(1 * mm)

    def qr(self, text: str, size: float) -> None:
        matrix = qr_matrix(text)
        cell = size / len(matrix)
        x0 = (WIDTH - size) / 2
        y0 = self.depth + 3 * mm

        def draw(c: Canvas, top: float) -> None:
            c.setFillGray(0)
            for r, row in enumerate(matrix):
                for col, dark in enumerate(row):
                    if dark:
                        c.rect(x0 + col * cell, top - y0 - (r + 1) * cell, cell, cell, stroke=0, fill=1)

        self.ops.append(draw)
        self.depth = y0 + size + 2 * mm

    def done(self) -> bytes:
        height = self.depth + 2 * MARGIN
        buf = io.BytesIO()
        c = Canvas(buf, pagesize=(WIDTH, height), pageCompression=0, invariant=1)
        for op in self.ops:
            op(c, height - MARGIN)
        c.showPage()
        c.save()
        return buf.getvalue()


def receipt_pdf(
    *,
    election_name: tuple[str, str],
    tracking_code: str,
    ledger_index: int,
    cast_at: dt.datetime,
    kiosk_id: str,
    public_url: str,
) -> bytes:
    """The voter's receipt slip: the tracking code (grouped as the booth shows it), the ballot's ledger
    index, the time, the kiosk and a QR code of :func:`check_url`."""
    s = _Slip()
    s.ja("投票受付票", 13)
    s.en("Ballot receipt", 9, "Helvetica-Bold")
    s.ja(election_name[0], 8)
    s.en(election_name[1], 7)
    s.rule()
    s.pair("追跡コード", "Tracking code", tracking_code, mono=True)
    s.pair("台帳の番号", "Ledger index", str(ledger_index))
    s.pair("受付日時", "Cast at", _local_time(cast_at))
    s.pair("投票端末", "Kiosk", kiosk_id)
    s.rule()
    url = check_url(public_url, tracking_code)
    s.qr(url, 40 * mm)
    s.ja("投票の確認: QRコードを読み取るか、次のページで追跡コードを入力してください。", 6.5)
    s.en("Check my ballot: scan the QR code, or enter the tracking code at", 6.5)
    s.en(f"{public_url.rstrip('/')}/check", 7, "Courier")
    s.ja("この票には投票内容は記載されていません。", 6.5)
    s.en("This slip does not show how you voted.", 6.5)
    return s.done()


def _report(
    title: tuple[str, str],
    rows: Sequence[tuple[str, str, str]],
    notes: Sequence[tuple[str, str]] = (),
) -> bytes:
    s = _Slip()
    s.ja(title[0], 12)
    s.en(title[1], 9, "Helvetica-Bold")
    s.rule()
    for ja, en, value in rows:
        if len(value) == 64 and value.isalnum():  # an entry hash: two lines of Courier
            s.pair(ja, en, value[:32], mono=True)
            s.gap(-1.5 * mm)
            s.en(value[32:], 9, "Courier-Bold")
            s.gap(1.5 * mm)
        else:
            s.pair(ja, en, value, mono=value.isascii() and not value.isdigit())
    for ja, en in notes:
        s.ja(ja, 7)
        s.en(en, 6.5)
    return s.done()


def _report_rows(
    kiosk_id: str, polling_place: str, session: int, when: dt.datetime, ledger_index: int, entry_hash: str
) -> list[tuple[str, str, str]]:
    return [
        ("投票端末", "Kiosk", kiosk_id),
        ("投票所", "Polling place", polling_place),
        ("回", "Session", str(session)),
        ("日時", "Time", _local_time(when)),
        ("台帳の番号", "Ledger index", str(ledger_index)),
        ("台帳記録のハッシュ", "Entry hash", entry_hash),
    ]


def zero_report_pdf(
    *,
    kiosk_id: str,
    polling_place: str,
    session: int,
    opened_at: dt.datetime,
    ledger_index: int,
    entry_hash: str,
) -> bytes:
    """The zero report printed when polls open: no ballot cast at this kiosk in this session."""
    rows = _report_rows(kiosk_id, polling_place, session, opened_at, ledger_index, entry_hash)
    rows.insert(4, ("投票数", "Ballots cast", "0"))
    notes = [
        (
            "この回の投票はまだありません (kiosk.opened)。",
            "No ballot has been cast in this session (kiosk.opened).",
        )
    ]
    return _report(("投票開始報告 (ゼロ報告)", "Zero report: polls opened"), rows, notes)


def closing_report_pdf(
    *,
    kiosk_id: str,
    polling_place: str,
    session: int,
    closed_at: dt.datetime,
    kiosk_count: int,
    server_count: int,
    ledger_index: int,
    entry_hash: str,
) -> bytes:
    """The closing report: the kiosk's own count and the server's count of this session's ballots."""
    rows = _report_rows(kiosk_id, polling_place, session, closed_at, ledger_index, entry_hash)
    rows[4:4] = [
        ("投票数 (端末の集計)", "Ballots cast (kiosk's count)", str(kiosk_count)),
        ("投票数 (台帳の集計)", "Ballots cast (server's count)", str(server_count)),
    ]
    notes = []
    if kiosk_count != server_count:
        notes.append(
            (
                "端末と台帳の投票数が異なります。通信障害で受付確認が届かなかった投票がある可能性があります。",
                "The counts differ: an acknowledgement may have been lost on the network (docs/kiosk.md).",
            )
        )
    return _report(("投票締切報告", "Closing report: polls closed"), rows, notes)


class Printer:
    """Keeps every PDF on disk and, with ``printer`` set, prints it with ``lp -d printer``."""

    def __init__(self, printer: str | None, *, lp: str = "lp", timeout: float = 60.0) -> None:
        self.printer = printer
        self.lp = lp
        self.timeout = timeout

    def _lp(self, path: Path) -> None:
        assert self.printer is not None
        try:
            done = subprocess.run(  # noqa: S603 (fixed program, arguments as a list, no shell)
                [self.lp, "-d", self.printer, str(path)],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise PrintError(f"{self.lp} (CUPS client) is not installed") from None
        except subprocess.TimeoutExpired:
            raise PrintError(f"{self.lp} did not finish within {self.timeout:.0f} s") from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip()[-300:]
            raise PrintError(f"{self.lp} -d {self.printer} failed (exit {done.returncode}): {why}")

    def deliver(self, pdf: bytes, path: Path) -> Printed:
        """Write ``pdf`` to ``path`` (kept either way), then print it when a printer is configured. Never
        raises: a failure is the answer's ``error``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, pdf, mode=0o600)
        except OSError as e:  # what was printed for has happened: say the slip is missing, never undo it
            return Printed(path, self.printer, f"the PDF could not be written: {e.strerror or e}")
        if self.printer is None:
            return Printed(path)
        try:
            self._lp(path)
        except PrintError as e:
            return Printed(path, self.printer, str(e))
        return Printed(path, self.printer)
