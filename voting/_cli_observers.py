"""``tvote observers keygen`` and ``tvote audit-evidence``: the independent observers' commands.

The observers create the oversight key pair once, before the manifest is final (its public half goes into
the manifest, ``oversight.x25519_public_key``); the secret half stays in a passphrase-protected file (the
trustee secret-file format, mode 0600). After voting they receive the election record and the sealed
evidence export (``tvote admin export-evidence``) and run ``tvote audit-evidence``, which never talks to the
server. See ``docs/operator-guide.md`` ("The observers' key and the evidence audit").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ._cli_errors import CliError
from ._cli_trustee import PassEnvOpt, _passphrase
from .clients.trustee import TrusteeFileError

__all__ = ["app", "audit_evidence_command"]

app = typer.Typer(help="The independent observers' oversight key.", no_args_is_help=True)

SecretOpt = Annotated[Path, typer.Option("--secret-file", help="the observers' encrypted secret key file")]


@app.command()
def keygen(secret_file: SecretOpt, passphrase_env: PassEnvOpt = None) -> None:
    """Create the observers' X25519 key pair; write the secret file (0600) and print the public key for the
    manifest (oversight.x25519_public_key)."""
    from ._oversight import generate_oversight_key, save_oversight_secret

    if secret_file.exists():
        raise CliError("observers.exists", f"{secret_file} exists; refusing to overwrite an oversight key")
    key = generate_oversight_key()
    save_oversight_secret(secret_file, key, _passphrase(passphrase_env, confirm=True))
    typer.echo(json.dumps({"oversight": {"x25519_public_key": bytes(key.public_key).hex()}}))


def audit_evidence_command(
    record: Annotated[Path, typer.Argument(help="the exported election record (directory or .tar.gz)")],
    evidence: Annotated[Path, typer.Option("--evidence", help="the sealed evidence export (JSON)")],
    secret_file: SecretOpt,
    jpki_roots: Annotated[
        Path | None, typer.Option("--jpki-roots", help="JPKI signing root certificates (file or directory)")
    ] = None,
    crl: Annotated[
        list[Path] | None, typer.Option("--crl", help="a CRL file or directory of CRLs (repeatable)")
    ] = None,
    oidc_jwks: Annotated[
        Path | None,
        typer.Option("--oidc-jwks", help="the digital-ID provider's JWKS (JSON), obtained from it"),
    ] = None,
    unsafe_accept_test_policy: Annotated[
        bool, typer.Option("--unsafe-accept-test-policy", help="accept JPKI test cards (demo and tests only)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Re-verify every cast ballot's sealed authentication evidence against the record (never the server);
    exit 1 naming every ballot that the evidence does not justify."""
    from voting.auth import load_crl, load_trust_anchors

    from ._audit import audit_evidence
    from ._oversight import OversightKeyError, load_oversight_secret

    try:
        key = load_oversight_secret(secret_file, _passphrase(passphrase_env))
    except (TrusteeFileError, OversightKeyError) as e:
        raise CliError("observers.secret_file", str(e)) from e
    if unsafe_accept_test_policy:
        typer.echo(
            "warning: accepting the JPKI TEST certificate policy (never for a real election)", err=True
        )
    roots = load_trust_anchors(jpki_roots) if jpki_roots is not None else []
    crls: list[Any] = []
    for p in crl or []:
        files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
        crls.extend(load_crl(f.read_bytes()) for f in files)
    jwks: Any = None
    if oidc_jwks is not None:
        try:
            jwks = json.loads(oidc_jwks.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CliError("observers.jwks", f"cannot read the JWKS file: {e}") from e
    report = audit_evidence(
        record,
        evidence,
        key,
        jpki_roots=roots,
        crls=crls,
        oidc_jwks=jwks,
        accept_test_policy=unsafe_accept_test_policy,
    )
    typer.echo(json.dumps(report.to_dict(), indent=1) if as_json else report.human())
    raise typer.Exit(0 if report.ok else 1)
