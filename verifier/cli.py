"""``tvote-verify``: re-check a whole election record without trusting the commission or its server.

Exit codes: ``0`` every check holds; ``1`` the record is invalid (at least one numbered check failed);
``2`` nothing could be verified (the record, an option or the receipt could not be read; also command-line
usage errors); ``3`` the verifier itself failed (a bug; no verdict).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ._checks import CHECKS
from ._engine import Options, verify_record
from ._errors import RecordUnreadable
from ._report import Report

__all__ = ["EXIT_ERROR", "EXIT_INVALID", "EXIT_OK", "EXIT_UNREADABLE", "app", "main"]

EXIT_OK: Final[int] = 0
EXIT_INVALID: Final[int] = 1
EXIT_UNREADABLE: Final[int] = 2
#: show a progress bar only for records at least this large (bytes of entries.jsonl)
_PROGRESS_MIN_BYTES: Final[int] = 2_000_000

EXIT_ERROR: Final[int] = 3  # the verifier itself failed (a bug): never reported as "valid" or "invalid"

app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)


def _load_roots(paths: list[Path]) -> tuple[object, ...]:
    from cryptography import x509

    roots = []
    for p in paths:
        data = p.read_bytes()
        try:
            roots.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            roots.append(x509.load_der_x509_certificate(data))
    return tuple(roots)


def print_report(report: Report, console: Console) -> None:
    s = report.summary
    if s:
        console.print(
            f"ballots cast {s.get('cast', 0)}, counted {s.get('counted', 0)}, superseded by re-votes "
            f"{s.get('superseded', 0)}, overridden by kiosk ballots {s.get('overridden', 0)}, "
            f"spoiled {s.get('spoiled', 0)}"
        )
    if report.results:
        t = Table(title=f"Result{' — ' + report.election_id if report.election_id else ''}")
        names = report.labels  # from the manifest: shown to help the reader, never checked
        t.add_column("contest")
        t.add_column("selection")
        t.add_column("name")
        t.add_column("votes", justify="right")
        for cid, sels in report.results.items():
            t.add_row(escape(cid), "", escape(names.get(cid, "")), "", style="bold")
            for sid, m in sels.items():
                t.add_row("", escape(sid), escape(names.get(f"{cid}/{sid}", "")), escape(str(m)))
            t.add_section()
        console.print(t)
    if report.booth_digest is not None:
        console.print(
            f"booth published at entry {report.booth_entry}: digest {report.booth_digest} (compare it with "
            "GET /api/v1/election/booth)",
            highlight=False,
        )
    checks = Table(title="Checks")
    checks.add_column("#", justify="right")
    checks.add_column("check")
    checks.add_column("status")
    colour = {"pass": "green", "fail": "bold red", "n/a": "yellow", "pending": "dim"}
    for c in CHECKS:
        st = report.statuses[c.step]
        if c.step in (24, 25, 27) and st == "pending":  # the optional checks (--since, --receipt, --pins)
            continue
        shown = "not run" if st == "pending" else st
        n = report.failure_count(c.step)
        checks.add_row(f"V{c.step}", c.title, f"[{colour[st]}]{shown}[/]" + (f" ({n})" if n else ""))
    console.print(checks)
    for f in report.failures:
        console.print(f"[red]FAIL[/] {escape(f.operator_message)}", highlight=False)
    for step, n in sorted(report.suppressed.items()):
        console.print(f"[red]FAIL[/] V{step}: {n} further failures not listed")
    for note in report.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False)
    mode = "(official: checked against --pins)" if report.official else "(not official: no --pins)"
    console.print(
        f"[bold green]VALID[/] {mode} ({report.entries} entries, {report.elapsed_seconds:.1f}s)"
        if report.ok
        else f"[bold red]INVALID[/]: checks {', '.join(f'V{s}' for s in report.failed_steps())} failed"
    )


@app.command()
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
    progress: Annotated[bool | None, typer.Option(help="force the progress bar on/off")] = None,
) -> None:
    """Verify an election record; exit 0 only if every check holds."""
    console = Console(stderr=False)
    if unsafe_allow_unwitnessed:
        console.print(
            "[bold yellow]warning:[/] --unsafe-allow-unwitnessed: a record without witnesses will not fail "
            "V5; nothing then shows that voters were shown this same ledger"
        )
    if scheduler is not None and importlib.util.find_spec("distributed") is None:
        console.print("[red]--scheduler needs Dask:[/] " + escape("pip install 'tvote[cluster]'"))
        raise typer.Exit(2)
    try:
        roots = _load_roots(trust_root or [])
    except (OSError, ValueError) as e:
        console.print(f"[red]cannot read a trust root:[/] {escape(str(e))}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    official = None
    if pins is not None:
        from ._pins import load_pins

        try:
            official = load_pins(pins)
        except RecordUnreadable as e:
            console.print(f"[bold red]cannot read the pins:[/] {escape(e.operator_message)}", highlight=False)
            raise typer.Exit(EXIT_UNREADABLE) from None
    opts = Options(
        workers=workers,
        scheduler=scheduler,
        batch_size=batch_size,
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
                if receipt is not None:
                    check_receipt(receipt, src.directory, report)
    except RecordUnreadable as e:
        console.print(f"[bold red]cannot read the record:[/] {escape(e.operator_message)}", highlight=False)
        raise typer.Exit(EXIT_UNREADABLE) from None
    if json_out is not None:
        report.write_json(json_out)
    print_report(report, console)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_INVALID)


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
