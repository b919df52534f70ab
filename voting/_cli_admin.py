"""``tvote admin …``: the commission's lifecycle commands against a running server.

The admin token is read from ``TVOTE_ADMIN_TOKEN`` or else from the file named by
``TVOTE_ADMIN_TOKEN_FILE``, which no one but its owner may read (``chmod 600``; otherwise refused with
``config.secret_file``). Order: ``create`` → ``load-roll`` → ``publish-roll`` → (trustees run the key
ceremony) → ``finalize-keys`` → ``publish-booth`` (else opening voting publishes the booth) → (the server
opens voting when the manifest's voting period begins and closes it at its end; ``open``, ``close`` and
``extend`` depart from it, with a published reason) → ``tally`` → (trustees ``decrypt``) → ``publish``
(result + signed PDF) → ``export``.

``backup`` and ``restore`` run on the server machine against its database (:mod:`voting._backup`,
:mod:`voting._restore`), not over HTTP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from ._cli_errors import CliError, read_secret_file
from .clients._http import read_error

__all__ = ["app"]

app = typer.Typer(help="Election commission commands.", no_args_is_help=True)

ServerOpt = Annotated[str, typer.Option("--server", help="election server base URL")]


def _admin_token() -> str:
    """``TVOTE_ADMIN_TOKEN``, or the content of ``TVOTE_ADMIN_TOKEN_FILE`` (owner-only), as the server reads
    them (the variable wins)."""
    token = os.environ.get("TVOTE_ADMIN_TOKEN")
    if token:
        return token
    path = os.environ.get("TVOTE_ADMIN_TOKEN_FILE")
    if path:
        return read_secret_file(Path(path), "TVOTE_ADMIN_TOKEN_FILE")
    raise CliError(
        "config.admin_token",
        "set TVOTE_ADMIN_TOKEN, or TVOTE_ADMIN_TOKEN_FILE to a file (mode 600) holding the admin token",
    )


def _call(server: str, method: str, path: str, **kw: Any) -> Any:
    token = _admin_token()
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    with httpx.Client(base_url=server, timeout=120) as http:
        r = http.request(method, "/api/v1/admin" + path, headers=headers, **kw)
    if r.status_code >= 400:
        code, message, details = read_error(r)
        typer.echo(f"error: {code}: {message}", err=True)
        for p in details:
            if isinstance(p, dict):
                typer.echo(f"  {p.get('loc')}: {p.get('msg')}", err=True)
        raise typer.Exit(1)
    return r


def _show(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2))


@app.command()
def create(
    server: ServerOpt,
    manifest: Annotated[Path, typer.Option("--manifest", help="manifest file (.yaml or .json)")],
) -> None:
    """Validate the manifest locally, create the election, print the trustee registration codes."""
    from ._errors import ManifestError
    from ._manifest import load_manifest

    try:
        m = load_manifest(manifest)
    except ManifestError as e:
        typer.echo(f"error: {e.code}: {e.message}", err=True)
        for p in e.details or ():
            if isinstance(p, dict):
                typer.echo(f"  {p.get('loc')}: {p.get('msg')}", err=True)
        raise typer.Exit(1) from e
    out = _call(server, "POST", "/election", json=m.to_dict()).json()
    typer.echo(f"election {out['election_id']} created; base hash {out['base_hash']}")
    typer.echo("One-time trustee registration codes (hand each to its trustee privately; shown only once):")
    for i, code in sorted(out["invitations"].items(), key=lambda kv: int(kv[0])):
        typer.echo(f"  trustee {i}: {code}")


@app.command("load-roll")
def load_roll(server: ServerOpt, roll: Annotated[Path, typer.Option("--roll", help="roll CSV")]) -> None:
    """Upload the voter roll (checked: no My Number) and show its commitment (not yet published)."""
    _show(
        _call(server, "PUT", "/roll", content=roll.read_bytes(), headers={"Content-Type": "text/csv"}).json()
    )


@app.command("publish-roll")
def publish_roll(server: ServerOpt) -> None:
    """Publish the roll commitment on the ledger (before voting opens)."""
    _show(_call(server, "POST", "/roll/publish").json())


@app.command("finalize-keys")
def finalize_keys(server: ServerOpt) -> None:
    """Resolve complaints and publish the joint election key."""
    jk = _call(server, "POST", "/key-ceremony/finalize").json()
    typer.echo(f"joint key {jk['joint_key']}; qualified trustees {jk['qualified']}")


@app.command("publish-booth")
def publish_booth(
    server: ServerOpt,
    expect: Annotated[
        str | None,
        typer.Option("--expect", help="the booth digest (64 hex) you reviewed: publish nothing else"),
    ] = None,
) -> None:
    """Publish the digest of the booth the server serves (booth.published), before voting opens, so that
    observers can compare it with what is served (GET /api/v1/election/booth). Opening voting publishes it
    itself if this was not done."""
    body = {"expected_digest": expect.strip().lower()} if expect is not None else None
    index = _call(server, "POST", "/booth/publish", json=body).json()["ledger_index"]
    with httpx.Client(base_url=server, timeout=60) as http:
        booth = http.get("/api/v1/election/booth").json()
    published = booth.get("published") or {}
    typer.echo(
        f"booth published at ledger entry {index}: digest {published.get('digest')} "
        f"({len(published.get('assets', []))} files)"
    )


OverrideOpt = Annotated[
    str | None,
    typer.Option(
        "--override-reason",
        help="why the manifest's voting period is departed from (published on the ledger)",
    ),
]


@app.command("open")
def open_(server: ServerOpt, override_reason: OverrideOpt = None) -> None:
    """Open voting now. The server opens it by itself when the voting period begins; before that, opening
    needs --override-reason, which is published in the voting.opened entry."""
    body = {"override_reason": override_reason} if override_reason is not None else None
    _show(_call(server, "POST", "/open", json=body).json())


@app.command()
def close(server: ServerOpt, override_reason: OverrideOpt = None) -> None:
    """Close voting now. The server closes it by itself at the end of the voting period; before that,
    closing needs --override-reason, which is published in the voting.closed entry."""
    body = {"override_reason": override_reason} if override_reason is not None else None
    _show(_call(server, "POST", "/close", json=body).json())


@app.command()
def extend(
    server: ServerOpt,
    until: Annotated[str, typer.Option("--until", help="new end of voting, RFC 3339 with a time zone")],
    reason: Annotated[str, typer.Option("--reason", help="why voting closes late (published)")],
) -> None:
    """Move the end of voting later (before the current end), publishing a voting.extended entry."""
    _show(_call(server, "POST", "/extend", json={"closes": until, "reason": reason}).json())


@app.command()
def tally(server: ServerOpt) -> None:
    """Apply the counting rule and publish the encrypted tally."""
    out = _call(server, "POST", "/tally").json()
    out.pop("ciphertexts", None)
    _show(out)


def _phase(server: str) -> str:
    """The election's phase (public ``GET /api/v1/election``)."""
    with httpx.Client(base_url=server, timeout=120) as http:
        r = http.get("/api/v1/election")
    if r.status_code >= 400:
        code, message, _ = read_error(r)
        typer.echo(f"error: {code}: {message}", err=True)
        raise typer.Exit(1)
    return str(r.json()["phase"])


@app.command()
def publish(server: ServerOpt) -> None:
    """Combine the trustees' partial decryptions, publish the result and the signed declaration PDF.

    Re-runnable: a step already on the ledger is skipped, so after a failed declaration (e.g. the commission
    key could not be read) fix the cause and run ``publish`` again."""
    phase = _phase(server)
    if phase == "declared":
        typer.echo("the result and its declaration are already published")
        return
    if phase == "decrypted":
        typer.echo("the result is already on the ledger (tally.result); producing the declaration")
    else:
        _show(_call(server, "POST", "/result").json())
    _show(_call(server, "POST", "/declaration").json())


@app.command()
def checkpoint(server: ServerOpt) -> None:
    """Sign a checkpoint covering every entry (e.g. after publish), for the witnesses to cosign.

    The exported record's last checkpoint must carry the manifest's witness quorum (verifier V5): run this,
    let the witnesses cosign (``tvote witness cosign``), then ``export``."""
    out = _call(server, "POST", "/checkpoint").json()
    out.pop("note", None)
    _show(out)


@app.command()
def export(
    server: ServerOpt, out: Annotated[Path, typer.Option("--out", help="archive path (.tar.gz)")]
) -> None:
    """Download the election record archive."""
    from ledger.files import write_atomic

    write_atomic(out, _call(server, "GET", "/export").content)
    typer.echo(f"record written to {out}")


@app.command()
def reconcile(
    server: ServerOpt,
    full: Annotated[bool, typer.Option("--full", help="replay the whole ledger, compare everything")] = False,
) -> None:
    """Bring the server's private state up to the ledger (it also does this at start-up); print the report.

    Exit status 3 if the report lists problems it could not repair."""
    out = _call(server, "POST", "/reconcile", params={"full": "true" if full else "false"}).json()
    _show(out)
    if out.get("problems"):
        raise typer.Exit(3)


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help="the backup file to write (a new file; mode 600)")],
) -> None:
    """On the server machine: back up the database (ledger and private state) and result.pdf, while the
    server runs (SQLite online backup API; PostgreSQL pg_dump). Reads the server's configuration (TVOTE_*,
    TVOTE_CONFIG). The keys in the data directory are not in it: keep them in your key backup
    (docs/operator-guide.md, "Backup and restore")."""
    from ._backup import NOT_IN_BACKUP
    from ._backup import backup as take_backup
    from ._settings import Settings

    info = take_backup(Settings.from_env(), out)
    typer.echo(f"backup written to {out}: {info.describe()}")
    typer.echo(
        "it holds private data (the roll key, evidence): store it encrypted, readable by the commission only"
    )
    typer.echo("not in the backup (keep them in your key backup): " + "; ".join(NOT_IN_BACKUP))


@app.command()
def restore(
    backup_file: Annotated[Path, typer.Argument(help="a file written by `tvote admin backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="replace the election the database holds now")
    ] = False,
) -> None:
    """On the server machine, with the server stopped: restore a backup into the configured database,
    check the restored ledger against the data directory's ledger key, and reconcile the private state.
    Whatever was appended after the backup was taken is lost (point-in-time). Exit status 3 if the
    reconciliation lists problems it could not repair."""
    from ._backup import read_info
    from ._restore import restore as do_restore
    from ._settings import Settings

    typer.echo(f"backup: {read_info(backup_file).describe()}")
    outcome = do_restore(Settings.from_env(), backup_file, force=force)
    if outcome.replaced is not None:
        typer.echo(f"replaced election {outcome.replaced}")
    typer.echo("restored; the ledger checks out")
    if outcome.reconcile is not None:
        _show(outcome.reconcile)
        if outcome.reconcile.get("problems"):
            raise typer.Exit(3)


@app.command("reissue-invitations")
def reissue_invitations(server: ServerOpt) -> None:
    """New one-time codes for every trustee that has not registered (e.g. the codes of `create` were lost)."""
    out = _call(server, "POST", "/key-ceremony/invitations").json()
    for i, code in sorted(out["invitations"].items(), key=lambda kv: int(kv[0])):
        typer.echo(f"  trustee {i}: {code}")


kiosk_app = typer.Typer(
    help="Polling-place kiosks: enrol, revoke, poll-worker PINs, list (docs/kiosk.md).", no_args_is_help=True
)
app.add_typer(kiosk_app, name="kiosk")


@kiosk_app.command("enrol")
def kiosk_enrol(
    server: ServerOpt,
    kiosk_id: Annotated[
        str, typer.Option("--kiosk-id", help="the kiosk's id (lowercase letters, digits, '-')")
    ],
    public_key: Annotated[
        str, typer.Option("--public-key", help="the kiosk's Ed25519 public key, 64 hex (`tvote-kiosk init`)")
    ],
    polling_place: Annotated[str, typer.Option("--polling-place", help="where it stands (published)")],
) -> None:
    """Enrol a kiosk (kiosk.enrolled on the ledger) and print its poll-worker PIN, shown only this once.

    Compare the printed fingerprint with the one the kiosk shows before handing out the PIN."""
    body = {"kiosk_id": kiosk_id, "public_key": public_key.strip().lower(), "polling_place": polling_place}
    out = _call(server, "POST", "/kiosks", json=body).json()
    typer.echo(f"kiosk {out['kiosk_id']} enrolled at ledger entry {out['ledger_index']}")
    typer.echo(f"key fingerprint (compare with the kiosk's): {out['fingerprint']}")
    typer.echo(
        f"poll-worker PIN (hand it to the polling place's poll workers; shown once): {out['poll_worker_pin']}"
    )


@kiosk_app.command("revoke")
def kiosk_revoke(
    server: ServerOpt,
    kiosk_id: Annotated[str, typer.Argument(help="the kiosk's id")],
    reason: Annotated[str, typer.Option("--reason", help="why (published in kiosk.revoked)")],
) -> None:
    """Revoke a kiosk (kiosk.revoked): from this entry on its requests are refused."""
    out = _call(server, "POST", f"/kiosks/{kiosk_id}/revoke", json={"reason": reason}).json()
    typer.echo(f"kiosk {out['kiosk_id']} revoked at ledger entry {out['ledger_index']}")


@kiosk_app.command("pin")
def kiosk_pin(server: ServerOpt, kiosk_id: Annotated[str, typer.Argument(help="the kiosk's id")]) -> None:
    """Issue a new poll-worker PIN for a kiosk (the old one stops working; a lock after 5 wrong PINs is
    cleared). Not on the ledger."""
    out = _call(server, "POST", f"/kiosks/{kiosk_id}/poll-worker-pin").json()
    typer.echo(f"new poll-worker PIN for kiosk {out['kiosk_id']} (shown once): {out['poll_worker_pin']}")


@kiosk_app.command("list")
def kiosk_list(server: ServerOpt) -> None:
    """The enrolled kiosks: id, state, session, ballots of the session, PIN state, polling place."""
    kiosks = _call(server, "GET", "/kiosks").json()["kiosks"]
    if not kiosks:
        typer.echo("no kiosk is enrolled")
    for k in kiosks:
        typer.echo(
            f"{k['kiosk_id']}  {k['state']}  session {k['session']}  ballots {k['ballots_cast']}  "
            f"PIN {k['poll_worker_pin']}  key {k['fingerprint']}  {k['polling_place']}"
        )


@app.command("export-evidence")
def export_evidence(
    server: ServerOpt,
    out: Annotated[Path, typer.Option("--out", help="where to write the sealed evidence export (JSON)")],
) -> None:
    """Export the sealed authentication evidence for the observers (appends evidence.exported to the
    ledger). Only the observers' key opens it: hand the file to them with the election record."""
    r = _call(server, "POST", "/evidence/export")
    export = r.json()
    from ledger.files import write_atomic

    write_atomic(out, json.dumps(export, indent=1))
    n = len(export["evidence"])
    typer.echo(f"{n} sealed evidence items written to {out} (logged: evidence.exported)")


@app.command()
def pins(
    trustee_key: Annotated[
        list[str],
        typer.Option(
            "--trustee-key",
            help="a trustee's enrolment public key (64 hex, from `tvote trustee enrol`), once per trustee, "
            "in trustee index order",
        ),
    ],
    election_id: Annotated[
        str | None, typer.Option("--election-id", help="the election id the manifest will have")
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="the manifest (.yaml or .json): its election id is used"),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="add the block to the --manifest file (which must have no pins)")
    ] = False,
) -> None:
    """On the server machine, before creating the election: print the manifest's ``pins`` block (JSON).

    Reads the server's configuration (``TVOTE_*``, ``TVOTE_CONFIG``): the ledger's key in the data directory
    (created now if it does not exist yet, as the server would on first use), the configured JPKI trust
    anchors and the commission's root (``commission-chain.pem``). Paste the output into the manifest, or give
    ``--manifest FILE --write`` to add it there (a YAML file keeps its comments: the block is appended)."""
    import re

    from ._errors import ConfigurationError
    from ._pins import enrolment_fingerprint, server_pins
    from ._settings import Settings

    bad = [k for k in trustee_key if not re.fullmatch(r"[0-9a-fA-F]{64}", k)]
    if bad:
        raise CliError("pins.trustee_key", "a trustee enrolment key is 64 hex digits (32-byte Ed25519 key)")
    if len({k.lower() for k in trustee_key}) != len(trustee_key):
        raise CliError("pins.trustee_key", "the trustee enrolment keys must be distinct")
    if write and manifest is None:
        raise CliError("pins.manifest", "--write needs --manifest, the file to add the pins to")
    current = _load_manifest(manifest) if manifest is not None else None
    if current is not None:
        if election_id is not None and election_id != current.election_id:
            raise CliError(
                "pins.election_id",
                f"--election-id {election_id!r} is not the manifest's election id {current.election_id!r}",
            )
        election_id = current.election_id
        if write and current.pins is not None:
            raise CliError("pins.exists", f"{manifest} already has pins; remove them to write new ones")
    if election_id is None:
        raise CliError("pins.election_id", "give --election-id or --manifest")
    settings = Settings.from_env()
    try:
        block = server_pins(settings, election_id, trustee_key)
    except ConfigurationError as e:
        raise CliError(e.code, e.message) from e
    for i, k in enumerate(block["trustee_enrolment_keys"], start=1):
        typer.echo(f"trustee {i} enrolment key fingerprint (read out): {enrolment_fingerprint(k)}", err=True)
    if write and manifest is not None:
        _write_pins(manifest, block)
        typer.echo(f"pins written to {manifest}", err=True)
    _show({"pins": block})


def _load_manifest(path: Path) -> Any:
    from ._errors import ManifestError
    from ._manifest import load_manifest

    try:
        return load_manifest(path)
    except ManifestError as e:
        raise CliError(e.code, e.message) from e


def _write_pins(path: Path, block: dict[str, Any]) -> None:
    """Add ``pins`` to the manifest file: appended to a YAML file (one JSON flow mapping, valid YAML, so the
    file's comments stay), set in a JSON file; the result must parse as a manifest, else the file is left as
    it was (``pins.invalid``). Written atomically (``ledger.files.write_atomic``), keeping the file's mode."""
    from ledger.files import write_atomic

    from ._errors import ManifestError
    from ._manifest import parse_manifest

    old = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            new = json.dumps({**json.loads(old), "pins": block}, ensure_ascii=False, indent=2) + "\n"
            parse_manifest(json.loads(new))
        else:
            sep = "" if old.endswith("\n") else "\n"
            new = (
                f"{old}{sep}\n# what this election trusts, written by `tvote admin pins` from the server's "
                f"configuration\npins: {json.dumps(block)}\n"
            )
            parse_manifest(new.encode("utf-8"))
    except ManifestError as e:
        raise CliError("pins.invalid", f"the manifest with these pins is refused: {e.message}") from e
    write_atomic(path, new.encode("utf-8"), mode=path.stat().st_mode & 0o777)


@app.command("official-pins")
def official_pins(
    manifest: Annotated[Path, typer.Option("--manifest", help="the election's manifest (.yaml or .json)")],
) -> None:
    """Print the pins file auditors give ``tvote-verify --pins`` (publish it out of band: gazette, web
    site, the witnesses): the manifest's base hash, its ``pins`` and its witnesses (``docs/verifier.md``)."""
    from ._pins import official_pins as pins_file

    _show(pins_file(_load_manifest(manifest)))
