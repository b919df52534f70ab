"""``tvote-verify``: re-check a whole election record without trusting the commission or its server.

Exit statuses (docs/verifier.md, "Exit statuses"):

\b
0  VALID: every check that applies ran and holds (and the --receipt, if given, matches the record).
1  INVALID: at least one check of the record failed.
2  nothing was verified: the record, a --trust-root, the --pins or the --receipt file cannot be read
   (or is not what it should be), the command line is wrong, or --engine native is not installed.
3  the verifier itself failed (a bug): no verdict.
4  NOT FULLY VERIFIED: no check failed, but a check that applies could not run for a missing input
   (e.g. V22 without --trust-root or --pins: the result PDF's signature); the report says which and why.
5  RECEIPT DOES NOT MATCH: the --receipt does not match the record (V25), which is not INVALID itself
   (exit 1 takes precedence over 5, and 5 over 4).
"""

from __future__ import annotations

import enum
import importlib.util
import sys
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from crypto import NATIVE_INSTALL_HINT, native_available

from ._checks import CHECKS, by_id
from ._engine import Options, verify_record
from ._errors import ReceiptUnreadable, RecordUnreadable, TrustRootUnusable
from ._lang import Lang, check_title, text, translate
from ._report import (
    INVALID,
    NOT_CHECKED,
    NOT_FULLY_VERIFIED,
    RECEIPT_DOES_NOT_MATCH,
    RECEIPT_MATCHES,
    RECEIPT_STEP,
    VALID,
    Report,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_NOT_FULLY_VERIFIED",
    "EXIT_OK",
    "EXIT_RECEIPT_MISMATCH",
    "EXIT_UNREADABLE",
    "app",
    "exit_status",
    "main",
]

EXIT_OK: Final[int] = 0
EXIT_INVALID: Final[int] = 1
EXIT_UNREADABLE: Final[int] = 2
#: no check failed, but one that applies could not run for a missing input (``Report.not_checked``)
EXIT_NOT_FULLY_VERIFIED: Final[int] = 4
#: the ``--receipt`` does not match the record (V25); the record itself is not INVALID
EXIT_RECEIPT_MISMATCH: Final[int] = 5
#: show a progress bar only for records at least this large (bytes of entries.jsonl)
_PROGRESS_MIN_BYTES: Final[int] = 2_000_000

EXIT_ERROR: Final[int] = 3  # the verifier itself failed (a bug): never reported as "valid" or "invalid"


class Engine(enum.StrEnum):
    """``--engine``: which ballot engine checks the ballots (``crypto.select_engine``)."""

    auto = "auto"
    python = "python"
    native = "native"


app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)


def _load_roots(paths: list[Path]) -> tuple[object, ...]:
    """The ``--trust-root`` certificates; :class:`TrustRootUnusable` says what a file should be instead."""
    from ._pdf import load_trust_root

    roots: list[object] = []
    for p in paths:
        roots.extend(load_trust_root(p))
    return tuple(roots)


def exit_status(report: Report) -> int:
    """The exit status of a finished run (precedence: INVALID, then the receipt, then NOT FULLY VERIFIED)."""
    if report.verdict == INVALID:
        return EXIT_INVALID
    if report.receipt_verdict == RECEIPT_DOES_NOT_MATCH:
        return EXIT_RECEIPT_MISMATCH
    if report.verdict == NOT_FULLY_VERIFIED:
        return EXIT_NOT_FULLY_VERIFIED
    return EXIT_OK


def _steps(steps: list[int]) -> str:
    return ", ".join(f"V{s}" for s in steps)


def print_report(report: Report, console: Console, lang: str = "en") -> None:
    s = report.summary
    if s:
        console.print(
            text(
                "summary",
                lang,
                **{k: s.get(k, 0) for k in ("cast", "counted", "superseded", "overridden", "spoiled")},
            )
        )
    if report.results:
        title = text("result", lang)
        t = Table(title=f"{title}{' — ' + report.election_id if report.election_id else ''}")
        names = report.labels  # from the manifest: shown to help the reader, never checked
        t.add_column(text("col.contest", lang))
        t.add_column(text("col.selection", lang))
        t.add_column(text("col.name", lang))
        t.add_column(text("col.votes", lang), justify="right")
        for cid, sels in report.results.items():
            t.add_row(escape(cid), "", escape(names.get(cid, "")), "", style="bold")
            for sid, m in sels.items():
                t.add_row("", escape(sid), escape(names.get(f"{cid}/{sid}", "")), escape(str(m)))
            t.add_section()
        console.print(t)
    if report.booth_digest is not None:
        console.print(
            text("booth", lang, entry=report.booth_entry, digest=report.booth_digest), highlight=False
        )
    checks = Table(title=text("checks", lang))
    checks.add_column("#", justify="right")
    checks.add_column(text("col.check", lang))
    checks.add_column(text("col.status", lang))
    colour = {"pass": "green", "fail": "bold red", "n/a": "yellow", "pending": "dim", NOT_CHECKED: "magenta"}
    for c in CHECKS:
        st = report.statuses[c.step]
        if c.step in (24, 25, 27) and st == "pending":  # the optional checks (--since, --receipt, --pins)
            continue
        n = report.failure_count(c.step)
        shown = text(f"status.{st}", lang)
        checks.add_row(
            f"V{c.step}", check_title(c, lang), f"[{colour[st]}]{shown}[/]" + (f" ({n})" if n else "")
        )
    console.print(checks)
    for f in report.failures:
        where = "" if f.entry is None else text("failure.entry", lang, entry=f.entry)
        title = check_title(by_id(f.check), lang)
        line = text("failure", lang, step=f.step, check=f.check, title=title, where=where, message=f.message)
        console.print(f"[red]{text('fail', lang)}[/] {escape(line)}", highlight=False)
    for step, n in sorted(report.suppressed.items()):
        console.print(f"[red]{text('fail', lang)}[/] {text('suppressed', lang, step=step, n=n)}")
    for step, reason in sorted(report.not_checked_reasons.items()):
        line = text(
            "not-checked.line",
            lang,
            step=step,
            title=check_title(CHECKS[step - 1], lang),
            reason=translate(reason, lang),
        )
        console.print(f"[magenta]{text('not-checked', lang)}[/] {escape(line)}", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]{text('note', lang)}[/] {escape(translate(note, lang))}", highlight=False)
    console.print(text("engine", lang, engine=report.engine), highlight=False)
    print_properties(report, console, lang)
    verdict = report.verdict
    if verdict == VALID:
        mode = text("official" if report.official else "not-official", lang)
        tail = text("verdict.valid.tail", lang, entries=report.entries, seconds=report.elapsed_seconds)
        console.print(f"[bold green]{text('verdict.valid', lang)}[/] {mode} {tail}")
    elif verdict == INVALID:
        failed = [s for s in report.failed_steps() if s != RECEIPT_STEP]
        tail = text("verdict.invalid.tail", lang, steps=_steps(failed))
        console.print(f"[bold red]{text('verdict.invalid', lang)}[/]{tail}")
    else:
        tail = text("verdict.not-fully-verified.tail", lang, steps=_steps(sorted(report.not_checked_reasons)))
        console.print(f"[bold magenta]{text('verdict.not-fully-verified', lang)}[/]{tail}")
    if report.receipt_verdict is not None:
        style = "bold green" if report.receipt_verdict == RECEIPT_MATCHES else "bold red"
        console.print(f"[{style}]{text('receipt.' + report.receipt_verdict, lang)}[/]", highlight=False)


#: the properties the end of the report states, each with the checks that establish it
PROPERTIES: Final[tuple[tuple[str, tuple[int, ...]], ...]] = (
    ("props.well-formed", (13, 14, 15, 16)),
    ("props.recorded", (1, 2, 3, 4, 5, 6, 7, 8, 12)),
    ("props.counted", (17, 18)),
    ("props.decrypted", (19, 20, 21)),
    ("props.declaration", (22,)),
)


def print_properties(report: Report, console: Console, lang: str = "en") -> None:
    """One sentence per property: what was verified, by which checks; then what a public verifier cannot
    check (eligibility beyond the roll: the observers' evidence audit)."""
    console.print(f"[bold]{text('props.title', lang)}[/]")
    for key, steps in PROPERTIES:
        sts = {s: report.statuses[s] for s in steps}
        failed = [s for s, st in sts.items() if st == "fail"]
        unchecked = [s for s, st in sts.items() if st == NOT_CHECKED]
        ran = [s for s, st in sts.items() if st == "pass"]
        if failed:
            how = text("props.failed", lang, steps=_steps(failed))
        elif unchecked:
            how = text("props.not-checked", lang, steps=_steps(unchecked))
        elif not ran:
            how = text("props.not-run", lang, steps=_steps(list(steps)))
        else:
            how = text("props.verified", lang, steps=_steps(ran))
        console.print(text("props.line", lang, prop=text(key, lang), how=how), highlight=False)
    console.print(("・" if lang == "ja" else "- ") + text("props.cannot", lang), highlight=False)


#: ``tvote-verify --help``: what it does and every exit status (paragraphs; typer wraps each one)
HELP: Final[str] = "\n\n".join(
    (
        "Verify an election record (docs/verifier.md). Exit statuses:",
        "0 VALID: every check that applies ran and holds (and the --receipt, if given, matches the record).",
        "1 INVALID: a check of the record failed.",
        "2 nothing verified: the record, a --trust-root, the --pins or the --receipt file cannot be read "
        "(or is not what it should be), the command line is wrong, or --engine native is not installed.",
        "3 the verifier itself failed (a bug): no verdict.",
        "4 NOT FULLY VERIFIED: no check failed, but a check that applies could not run for a missing input "
        "(V22 without --trust-root or --pins: the result PDF's signature); the report names it and why.",
        "5 RECEIPT DOES NOT MATCH: the --receipt does not match the record (V25); that alone does not make "
        "the record INVALID. 1 takes precedence over 5, and 5 over 4.",
    )
)


@app.command(help=HELP)
def verify(
    record: Annotated[Path, typer.Argument(help="election record directory or archive")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write a machine-readable report here")
    ] = None,
    since: Annotated[Path | None, typer.Option(help="an older copy of the record: prove append-only")] = None,
    receipt: Annotated[
        Path | None, typer.Option(help="a voter's receipt (JSON) to find in the record")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="local worker processes for ballot checks")] = 1,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:8786)")] = None,
    trust_root: Annotated[
        list[Path] | None, typer.Option(help="commission root certificate (PEM/DER) for result.pdf")
    ] = None,
    pdf: Annotated[
        Path | None, typer.Option(help="result PDF (default: result.pdf in/beside the record)")
    ] = None,
    log_key: Annotated[str | None, typer.Option(help="pin the log's verifier key (signed-note vkey)")] = None,
    base_hash: Annotated[str | None, typer.Option(help="pin the election base hash (64 hex)")] = None,
    pins: Annotated[
        Path | None,
        typer.Option(help="official mode: the pins file (tvote-pins/1) the commission published out of band"),
    ] = None,
    partial: Annotated[bool, typer.Option(help="accept a record of an election still in progress")] = False,
    unsafe_allow_unwitnessed: Annotated[
        bool,
        typer.Option(
            "--unsafe-allow-unwitnessed",
            help="UNSAFE (development records): a manifest with no witnesses is a note, not a V5 failure",
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="ballots per verification batch")] = 256,
    engine: Annotated[
        Engine,
        typer.Option(
            case_sensitive=False,
            help="ballot engine: auto (native when installed, else python), python (the reference) or "
            "native (the Rust batch verifier; exit 2 when it is not installed)",
        ),
    ] = Engine.auto,
    progress: Annotated[bool | None, typer.Option(help="force the progress bar on/off")] = None,
    language: Annotated[
        Lang,
        typer.Option(
            "--lang",
            case_sensitive=False,
            help="language of the printed report: en (default) or ja (the --json report is always English)",
        ),
    ] = Lang.en,
) -> None:
    """Verify an election record (the help text, with the exit statuses, is :data:`HELP`)."""
    console = Console(stderr=False)
    lang = Lang(language).value
    if unsafe_allow_unwitnessed:
        console.print(
            "[bold yellow]warning:[/] --unsafe-allow-unwitnessed: a record without witnesses will not fail "
            "V5; nothing then shows that voters were shown this same ledger"
        )
    if Engine(engine) == Engine.native and not native_available():
        console.print(
            f"[bold red]{text('error.engine', lang)}[/] {escape(NATIVE_INSTALL_HINT)}", highlight=False
        )
        raise typer.Exit(EXIT_UNREADABLE)
    if scheduler is not None and importlib.util.find_spec("distributed") is None:
        console.print("[red]--scheduler needs Dask:[/] " + escape("pip install 'tvote[cluster]'"))
        raise typer.Exit(2)
    try:
        roots = _load_roots(trust_root or [])
    except TrustRootUnusable as e:
        console.print(f"[bold red]{text('error.trust-root', lang)}[/] {escape(str(e))}", highlight=False)
        raise typer.Exit(EXIT_UNREADABLE) from None
    receipt_doc = None
    if receipt is not None:  # read before the (long) verification: a receipt that cannot be read stops here
        from ._extras import load_receipt

        try:
            receipt_doc = load_receipt(receipt)
        except ReceiptUnreadable as e:
            console.print(f"[bold red]{text('error.receipt', lang)}[/] {escape(str(e))}", highlight=False)
            raise typer.Exit(EXIT_UNREADABLE) from None
    official = None
    if pins is not None:
        from ._pins import load_pins

        try:
            official = load_pins(pins)
        except RecordUnreadable as e:
            console.print(
                f"[bold red]{text('error.pins', lang)}[/] {escape(e.operator_message)}", highlight=False
            )
            raise typer.Exit(EXIT_UNREADABLE) from None
    opts = Options(
        workers=workers,
        scheduler=scheduler,
        batch_size=batch_size,
        engine=Engine(engine).value,
        partial=partial,
        pdf_trust_roots=roots,
        pdf_path=pdf,
        log_key=log_key,
        base_hash=base_hash,
        unsafe_allow_unwitnessed=unsafe_allow_unwitnessed,
        pins=official,
    )
    try:
        report = _verify_with_progress(record, opts, console, progress)
        if since is not None or receipt is not None:
            from ._extras import check_receipt, check_since
            from ._source import open_record

            with open_record(record) as src:
                if since is not None:
                    check_since(since, src.directory, report)
                if receipt_doc is not None:
                    check_receipt(receipt_doc, src.directory, report)
    except RecordUnreadable as e:
        console.print(
            f"[bold red]{text('error.record', lang)}[/] {escape(e.operator_message)}", highlight=False
        )
        raise typer.Exit(EXIT_UNREADABLE) from None
    if json_out is not None:
        report.write_json(json_out)
    print_report(report, console, lang)
    raise typer.Exit(exit_status(report))


def _verify_with_progress(record: Path, opts: Options, console: Console, show: bool | None) -> Report:
    from ._source import ENTRIES_FILE

    size = (record / ENTRIES_FILE).stat().st_size if (record / ENTRIES_FILE).is_file() else 0
    if show is False or (show is None and (size < _PROGRESS_MIN_BYTES or not console.is_terminal)):
        return verify_record(record, opts)
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("entries", total=None)

        def cb(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return verify_record(record, opts, progress=cb)


def main() -> None:  # console entry (pyproject: tvote-verify = "verifier.cli:main")
    try:
        app(standalone_mode=True)
    except SystemExit as e:
        sys.exit(e.code if isinstance(e.code, int) else EXIT_UNREADABLE)
    except Exception as e:  # a verifier bug must not look like a verdict
        print(f"tvote-verify: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
