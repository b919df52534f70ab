"""``tvote trustee …``: a trustee's commands, run on the trustee's own machine.

Lifecycle: before the election exists, ``enrol`` (draw an Ed25519 enrolment key; its fingerprint is read out
at the public ceremony step and the commission pins the key in the manifest) → ``init`` (generate key material
into a passphrase-protected secret file, with the enrolment key) → ``register`` (with the
one-time code from the commission) → ``deal`` (encrypted shares to every other trustee, once all registered)
→ ``verify-shares`` (check what you received; complains publicly about a bad share) → ``answer`` (answer
complaints against you) → after the tally: ``decrypt`` (checks the tally against the public ledger,
then partial decryptions with proofs).

The passphrase is read from ``--passphrase-env`` (name of an environment variable) or prompted for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer

from ._cli_errors import CliError
from .clients.trustee import (
    KdfLimits,
    Trustee,
    TrusteeApi,
    TrusteeFileError,
    client_for,
    create_enrolment_key,
    read_enrolment_key,
)

__all__ = ["app"]

app = typer.Typer(help="Trustee commands (key ceremony and partial decryption).", no_args_is_help=True)

ServerOpt = Annotated[str, typer.Option("--server", help="election server base URL")]
FileOpt = Annotated[Path, typer.Option("--secret-file", help="this trustee's encrypted secret file")]
PassEnvOpt = Annotated[
    str | None, typer.Option("--passphrase-env", help="environment variable holding the passphrase")
]


def _passphrase(env: str | None, *, confirm: bool = False) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            raise CliError("config.passphrase", f"environment variable {env} is empty or unset")
        return value
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


def _load(path: Path, env: str | None) -> tuple[Trustee, str]:
    pw = _passphrase(env)
    try:
        return Trustee.load(path, pw), pw
    except TrusteeFileError as e:
        raise CliError("trustee.secret_file", str(e)) from e


@contextmanager
def _server(base_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the election server. An error answer (:class:`ApiError`), an unreachable server or
    a step this trustee cannot take now (:class:`TrusteeStateError`) propagate to ``tvote``'s one-line
    report (:mod:`voting._cli_errors`), exit status 1."""
    with client_for(base_url) as http:
        yield http


KdfOpt = Annotated[
    str,
    typer.Option("--kdf", help="Argon2id cost: 'moderate' (256 MiB, default) or 'interactive' (64 MiB)"),
]


def _limits(kdf: str) -> KdfLimits:
    if kdf not in ("moderate", "interactive"):
        raise CliError("trustee.kdf", "--kdf is 'moderate' or 'interactive'")
    return KdfLimits.interactive() if kdf == "interactive" else KdfLimits()


@app.command()
def enrol(
    key_file: Annotated[Path, typer.Option("--key-file", help="where to write the new enrolment key")],
    passphrase_env: PassEnvOpt = None,
    kdf: KdfOpt = "moderate",
) -> None:
    """Before the election is created: draw this trustee's Ed25519 enrolment key (kept in a
    passphrase-protected file); print its public key, for the commission to pin in the manifest, and its
    fingerprint, to read out at the ceremony."""
    from ._pins import enrolment_fingerprint

    limits = _limits(kdf)
    if key_file.exists():
        raise CliError("trustee.secret_file_exists", f"{key_file} exists; refusing to overwrite key material")
    pw = _passphrase(passphrase_env, confirm=True)
    try:
        public = create_enrolment_key(key_file, pw, limits)
    except TrusteeFileError as e:
        raise CliError("trustee.secret_file", str(e)) from e
    typer.echo(f"enrolment public key (to pin in the manifest): {public}")
    typer.echo(f"fingerprint (read it out at the ceremony):      {enrolment_fingerprint(public)}")


@app.command()
def init(
    server: ServerOpt,
    invitation: Annotated[str, typer.Option("--invitation", help="one-time registration code")],
    name: Annotated[str, typer.Option("--name", help="public role name, e.g. 'University of Tsukuba'")],
    secret_file: FileOpt,
    passphrase_env: PassEnvOpt = None,
    kdf: KdfOpt = "moderate",
    enrolment_key: Annotated[
        Path | None,
        typer.Option(
            "--enrolment-key",
            help="the enrolment key file from `tvote trustee enrol` (same passphrase); required when the "
            "manifest pins the trustees' enrolment keys",
        ),
    ] = None,
) -> None:
    """Generate this trustee's key material (kept only in the secret file)."""
    limits = _limits(kdf)
    if secret_file.exists():
        raise CliError(
            "trustee.secret_file_exists", f"{secret_file} exists; refusing to overwrite key material"
        )
    pw = _passphrase(passphrase_env, confirm=True)
    seed = None
    if enrolment_key is not None:
        try:
            seed = read_enrolment_key(enrolment_key, pw)
        except TrusteeFileError as e:
            raise CliError("trustee.secret_file", f"{enrolment_key}: {e}") from e
    with _server(server) as http:
        t = Trustee.init(TrusteeApi(http), invitation, name, enrolment_key=seed)
    t.save(secret_file, pw, limits)
    typer.echo(f"trustee {t.index} of election {t.election_id}: key material written to {secret_file}")


@app.command()
def register(server: ServerOpt, secret_file: FileOpt, passphrase_env: PassEnvOpt = None) -> None:
    """Register: publish commitments and X25519 key; receive this trustee's API token."""
    t, pw = _load(secret_file, passphrase_env)
    with _server(server) as http:
        t.register(http)
    t.save(secret_file, pw)
    typer.echo(f"trustee {t.index} registered")


@app.command()
def deal(server: ServerOpt, secret_file: FileOpt, passphrase_env: PassEnvOpt = None) -> None:
    """Deal encrypted shares to every other trustee (after all have registered)."""
    t, _ = _load(secret_file, passphrase_env)
    with _server(server) as http:
        index = t.deal(http)
    typer.echo(f"shares published (ledger entry {index})")


@app.command("verify-shares")
def verify_shares(
    server: ServerOpt,
    secret_file: FileOpt,
    passphrase_env: PassEnvOpt = None,
    complain_missing: Annotated[
        bool, typer.Option("--complain-missing", help="also complain about dealers that sent no share")
    ] = False,
) -> None:
    """Decrypt and check received shares; publicly complain about every bad one."""
    t, pw = _load(secret_file, passphrase_env)
    with _server(server) as http:
        bad = t.verify_shares(http, complain_missing=complain_missing)
    t.save(secret_file, pw)
    if bad:
        typer.echo(f"complained about dealer(s) {', '.join(map(str, bad))}: their shares failed the check")
        raise typer.Exit(3)
    typer.echo(f"all {len(t.received)} received shares are valid")


@app.command()
def answer(server: ServerOpt, secret_file: FileOpt, passphrase_env: PassEnvOpt = None) -> None:
    """Answer complaints against this trustee by publishing the disputed shares."""
    t, _ = _load(secret_file, passphrase_env)
    with _server(server) as http:
        n = t.answer_complaints(http)
    typer.echo(f"answered {n} complaint(s)")


@app.command()
def decrypt(
    server: ServerOpt,
    secret_file: FileOpt,
    passphrase_env: PassEnvOpt = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="the log's verifier key (name+id+key), obtained out of band; default: the server's, "
            "bound by the witness quorum the manifest names",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=256, help="processes for the ledger check (ballot proofs)")
    ] = 1,
) -> None:
    """Check the tally against the public ledger, then submit partial decryptions of it.

    Before anything is decrypted, the ledger under the newest signed (and, if the manifest names
    witnesses, cosigned) checkpoint is re-checked by the public verifier, and the tally must be a
    ``tally.encrypted`` entry under it equal to the sum of the counted ballots
    (docs/protocol-trustees.md). Otherwise: ``error: tally.<reason>: ...``, exit status 1, nothing sent."""
    t, pw = _load(secret_file, passphrase_env)
    with _server(server) as http:
        if t.key is None:
            t.finalize(http)
            t.save(secret_file, pw)
        typer.echo("checking the tally against the public ledger before decrypting ...", err=True)
        out = t.decrypt(http, log_key=log_key, workers=workers)
    if not out["accepted"]:
        typer.echo(f"the server excluded this partial decryption: {out['reason']}", err=True)
        raise typer.Exit(1)
    typer.echo(f"partial decryptions accepted (ledger entry {out['ledger_index']})")
