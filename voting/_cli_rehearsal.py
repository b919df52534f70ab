"""``tvote rehearsal``: a complete rehearsal setup for an election office, and a voter with a test card.

* ``tvote rehearsal init DIR`` writes the kit (:mod:`voting.testing._rehearsal`): test CA, cards with PINs,
  CRLs, witnesses, the commission's TEST signing key, a manifest, a roll and a settings file production
  refuses;
* ``tvote rehearsal oidc DIR`` runs the kit's local OpenID provider and face-match hook (digital ID);
* ``tvote rehearsal vote`` casts one ballot with a kit card or a kit digital-ID account
  (``voting.clients.voter.VoterClient``: encrypt on this machine, sign with the card or log in, verify the
  receipt) and prints the tracking code;

NEVER for a real election: everything here is test material, and production refuses it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ._cli_errors import CliError

__all__ = ["app"]

app = typer.Typer(
    help="Rehearse an election with test cards, test CA, local witnesses (NEVER for a real election).",
    no_args_is_help=True,
)


def _time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            "rehearsal.period",
            f"{option}: {value!r} is not an RFC 3339 time such as 2027-04-18T09:00:00+09:00",
        ) from None
    if t.tzinfo is None:
        raise CliError("rehearsal.period", f"{option} needs a time zone, e.g. 2027-04-18T09:00:00+09:00")
    return t


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="the kit directory (created; must be empty)")],
    voters: Annotated[int, typer.Option(help="residents with a test card")] = 10,
    digital_id_voters: Annotated[int, typer.Option(help="residents on the roll with a digital ID only")] = 2,
    trustees: Annotated[int, typer.Option(help="number of trustees")] = 3,
    threshold: Annotated[int, typer.Option(help="trustees needed to decrypt")] = 2,
    election_id: Annotated[str, typer.Option(help="the election id")] = "tsukuba-rehearsal",
    opens: Annotated[
        str | None, typer.Option(help="voting opens (RFC 3339) [default: in 10 minutes]")
    ] = None,
    closes: Annotated[
        str | None, typer.Option(help="voting closes (RFC 3339) [default: 3 hours after it opens]")
    ] = None,
    public_url: Annotated[str, typer.Option(help="the server's base URL (printed in the result PDF)")] = (
        "http://127.0.0.1:8000"
    ),
    oidc_port: Annotated[int, typer.Option(help="loopback port of the local OpenID provider")] = 8701,
    face_port: Annotated[int, typer.Option(help="loopback port of the face-match hook")] = 8702,
    force: Annotated[bool, typer.Option("--force", help="replace the contents of a non-empty DIR")] = False,
) -> None:
    """Write a complete rehearsal setup into DIR and print what to run next (also in DIR/README.txt)."""
    from voting.testing._rehearsal import KIT_README, KitOptions, write_kit

    options = KitOptions(
        voters=voters,
        digital_id_voters=digital_id_voters,
        trustees=trustees,
        threshold=threshold,
        election_id=election_id,
        opens=_time(opens, "--opens"),
        closes=_time(closes, "--closes"),
        public_url=public_url,
        oidc_port=oidc_port,
        face_port=face_port,
    )
    kit = write_kit(directory, options, force=force)
    typer.echo(f"rehearsal kit written to {kit.directory} (REHEARSAL ONLY: test CA, test cards, TEST keys)")
    typer.echo(f"  voting period {kit.opens:%Y-%m-%dT%H:%M:%SZ} to {kit.closes:%Y-%m-%dT%H:%M:%SZ}")
    typer.echo(f"  {len(kit.cards)} card files in {kit.directory / 'cards'} (PINs in cards/PINS.txt)")
    if kit.digital_id:
        names = ", ".join(kit.digital_id)
        typer.echo(f"  digital-ID residents {names} (run: tvote rehearsal oidc {kit.directory})")
    typer.echo(f"  log key {kit.log_key}")
    typer.echo(f"  next: read {kit.directory / KIT_README}, then tvote serve --config {kit.settings}")


def _choices(values: Sequence[str], manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """``--choose contest=selection`` (repeat for several); every contest not named is left blank."""
    contests = {c["id"]: {s["id"] for s in c["selections"]} for c in manifest["contests"]}
    out: dict[str, list[str]] = {}
    for v in values:
        contest, sep, selection = v.partition("=")
        if not sep or not contest or not selection:
            raise CliError("ballot.choice", f"--choose {v!r}: write CONTEST=SELECTION, e.g. mayor=cand-2")
        if contest not in contests:
            raise CliError(
                "ballot.choice",
                f"--choose {v!r}: no contest {contest!r} (the contests are {', '.join(sorted(contests))})",
            )
        if selection not in contests[contest]:
            raise CliError(
                "ballot.choice",
                f"--choose {v!r}: contest {contest!r} has no selection "
                f"{selection!r} (it has {', '.join(sorted(contests[contest]))})",
            )
        if selection in out.get(contest, []):
            raise CliError("ballot.choice", f"--choose {v!r} is given twice")
        out.setdefault(contest, []).append(selection)
    for c in manifest["contests"]:
        if len(out.get(c["id"], [])) > int(c["max"]):
            raise CliError("ballot.choice", f"contest {c['id']!r} allows at most {c['max']} selection(s)")
    return out


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(what, f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from e


@app.command()
def vote(
    server: Annotated[str, typer.Option("--server", help="election server base URL")],
    card: Annotated[Path | None, typer.Option("--card", help="a kit card file (cards/NNNN.p12)")] = None,
    pin_env: Annotated[
        str | None,
        typer.Option("--pin-env", help="environment variable holding the card's PIN (cards/PINS.txt)"),
    ] = None,
    digital_id: Annotated[
        str | None,
        typer.Option(
            "--digital-id",
            help="instead of a card: a digital-ID resident of the kit (resident id; "
            "needs --kit and `tvote rehearsal oidc`)",
        ),
    ] = None,
    kit: Annotated[Path | None, typer.Option("--kit", help="the kit directory (for --digital-id)")] = None,
    choose: Annotated[
        list[str] | None,
        typer.Option("--choose", help="CONTEST=SELECTION; repeat (contests not named are left blank)"),
    ] = None,
    log_key_file: Annotated[
        Path | None,
        typer.Option(
            "--log-key-file",
            help="the ledger's public key (DIR/log-key.txt); without it the "
            "server's key is trusted on first use",
        ),
    ] = None,
    challenge: Annotated[
        bool,
        typer.Option("--challenge", help="first challenge one encryption (Benaloh) and check its opening"),
    ] = False,
    kiosk_key: Annotated[
        Path | None,
        typer.Option(
            "--kiosk-key",
            help="vote at a polling-place kiosk: the enrolled kiosk's key (DIR/kiosk-key); the kiosk opens a "
            "session with the poll-worker PIN, casts, and closes it",
        ),
    ] = None,
    kiosk_id: Annotated[
        str | None, typer.Option("--kiosk-id", help="the kiosk's enrolled id (with --kiosk-key)")
    ] = None,
    poll_worker_pin_env: Annotated[
        str | None,
        typer.Option(
            "--poll-worker-pin-env",
            help="environment variable holding the kiosk's poll-worker PIN (with --kiosk-key)",
        ),
    ] = None,
    receipt_out: Annotated[
        Path | None, typer.Option("--receipt-out", help="write the receipt (JSON) for tvote-verify --receipt")
    ] = None,
) -> None:
    """Cast one ballot with a test card (or a digital ID): encrypt here, sign, check the receipt."""
    from voting.testing._rehearsal import load_card

    from .clients.voter import (
        ChallengeError,
        ElectionDataError,
        ReceiptError,
        ServerError,
        VoterClient,
        VoterClientError,
    )

    test_card: Any = None
    resident: dict[str, Any] | None = None
    if (card is None) == (digital_id is None):
        raise CliError("rehearsal.vote", "give --card (with --pin-env) or --digital-id (with --kit)")
    if card is not None:
        if not pin_env:
            raise CliError("card.pin", "--card needs --pin-env, the variable holding the card's PIN")
        pin = os.environ.get(pin_env)
        if not pin:
            raise CliError("card.pin", f"set the environment variable {pin_env} to the card's PIN")
        test_card = load_card(card, pin)  # a wrong PIN stops here, before anything is sent
    elif digital_id is not None:
        resident = _digital_id_resident(kit, digital_id)
    log_key = _read_text(log_key_file, "config.log_key") if log_key_file is not None else None
    kiosk = _kiosk(kiosk_key, kiosk_id, poll_worker_pin_env) if kiosk_key is not None else None
    try:
        with VoterClient(server, log_key=log_key) as client:
            info = client.election()
            choices = _choices(choose or [], info.manifest)
            if challenge:
                opened = client.challenge(choices)
                typer.echo(
                    f"challenged: tracking code {opened.receipt.tracking_code} opened to the chosen "
                    "selections and was published as spoiled; now casting a fresh encryption"
                )
            ballot = client.prepare(choices)
            typer.echo(f"tracking code: {ballot.tracking_code}")
            if resident is not None:
                if kiosk is not None:
                    raise CliError("rehearsal.vote", "a kiosk takes My Number cards only, not a digital ID")
                receipt = client.cast_oidc(ballot, face=resident["face"], login=resident["login"])
            else:
                receipt = (
                    client.cast_jpki(test_card, ballot)
                    if kiosk is None
                    else _cast_at_kiosk(server, kiosk, test_card, ballot)
                )
            receipt = client.complete_receipt(receipt)  # pending until the next scheduled checkpoint
            try:
                client.verify_receipt(receipt)
                witnessed = "cosigned by the witness quorum"
            except ReceiptError as e:
                if e.check != "checkpoint-unwitnessed":
                    raise
                # witnesses cosign later (their round): everything else is checked now
                client.verify_receipt(receipt, require_witnessed=False)
                witnessed = "NOT yet cosigned by the witness quorum (check again after the witnesses cosign)"
    except ServerError as e:
        raise CliError(e.code, e.message, exit_code=1) from None
    except ReceiptError as e:
        raise CliError(f"receipt.{e.check}", str(e), exit_code=1) from None
    except ChallengeError as e:
        raise CliError("ballot.challenge", str(e), exit_code=1) from None
    except ElectionDataError as e:
        raise CliError("election.data", str(e), exit_code=1) from None
    except VoterClientError as e:
        raise CliError("voter.error", str(e), exit_code=1) from None
    source = "pinned" if log_key is not None else "the server's, trusted on first use"
    typer.echo(
        f"cast ({receipt.channel}): ledger entry {receipt.leaf_index}; receipt verified "
        f"(inclusion proof, checkpoint signed by the log key ({source}), consistency); {witnessed}"
    )
    if receipt_out is not None:
        from ledger.files import write_atomic

        write_atomic(receipt_out, json.dumps(receipt.to_dict(), indent=2) + "\n")
        typer.echo(f"receipt written to {receipt_out}")


def _kiosk(key_file: Path, kiosk_id: str | None, pin_env: str | None) -> tuple[Any, str, str]:
    """The kit's kiosk: its key, its id, its poll-worker PIN (from the environment variable ``pin_env``)."""
    from .clients.kiosk import KioskApiError, KioskKey

    if not kiosk_id or not pin_env:
        raise CliError("rehearsal.kiosk", "--kiosk-key needs --kiosk-id and --poll-worker-pin-env")
    pin = os.environ.get(pin_env)
    if not pin:
        raise CliError("rehearsal.kiosk", f"set the environment variable {pin_env} to the poll-worker PIN")
    try:
        return KioskKey.load(key_file), kiosk_id, pin
    except KioskApiError as e:
        raise CliError(e.code, e.message) from None


def _cast_at_kiosk(server: str, kiosk: tuple[Any, str, str], card: Any, ballot: Any) -> Any:
    """What a kiosk does for one voter, in one go: the poll worker opens its next session (the zero report,
    ``kiosk.opened``) unless one is open, the card signs, the kiosk signs and casts, the poll worker closes
    the session (the closing report, ``kiosk.closed``). Every request is signed with the kiosk's key."""
    import httpx

    from .clients.kiosk import KioskApi, KioskApiError
    from .receipt import Receipt

    key, kiosk_id, pin = kiosk
    try:
        with httpx.Client(base_url=server, timeout=120) as http:
            api = KioskApi(http, key, kiosk_id)
            status = api.status()
            session = int(status["session"])
            if status["state"] != "open":
                session += 1
                opened = api.open(session, pin)
                typer.echo(
                    f"kiosk {kiosk_id}: session {session} opened (ledger entry {opened['ledger_index']})"
                )
            challenge = api.challenge()
            submission = card.sign_ballot(api.base_hash, ballot.ballot_hash, challenge)
            receipt = Receipt.from_dict(api.cast(ballot.ballot.to_dict(), submission, challenge, session))
            count = int(api.status()["ballots_cast"])
            closed = api.close(session, count, pin)
            typer.echo(
                f"kiosk {kiosk_id}: session {session} closed, {closed['entry']['ballots_cast']} ballot(s) "
                f"(ledger entry {closed['ledger_index']})"
            )
    except KioskApiError as e:
        raise CliError(e.code, e.message, exit_code=1) from None
    return receipt


def _digital_id_resident(kit: Path | None, resident_id: str) -> dict[str, Any]:
    """The digital-ID resident's login (the provider approves the account named in ``login_hint``, as a
    real provider's login page would after the resident signs in) and face capture (the synthetic image
    the kit's reference photo holds; a rehearsal never handles a real face)."""
    from urllib.parse import urlencode

    import httpx

    from voting.testing._rehearsal import load_provider
    from voting.testing._residents import live_capture_of

    from .clients._http import tls_context
    from .clients.voter import VoterClientError

    if kit is None:
        raise CliError("rehearsal.vote", "--digital-id needs --kit DIR (the rehearsal kit)")
    desc = load_provider(kit)
    sub = next((s["sub"] for s in desc["subjects"] if s["resident_id"] == resident_id), None)
    if sub is None:
        known = ", ".join(s["resident_id"] for s in desc["subjects"])
        raise CliError("rehearsal.vote", f"{resident_id!r} is not a digital-ID resident of the kit ({known})")

    def login(authorization_url: str) -> str:
        sep = "&" if "?" in authorization_url else "?"
        with httpx.Client(timeout=30, follow_redirects=False, verify=tls_context()) as browser:
            r = browser.get(authorization_url + sep + urlencode({"login_hint": sub}))
        if r.status_code not in (302, 303) or "location" not in r.headers:
            raise VoterClientError(f"the digital-ID provider answered {r.status_code}, not a redirect")
        return str(r.headers["location"])

    return {"login": login, "face": live_capture_of(resident_id)}


@app.command()
def oidc(directory: Annotated[Path, typer.Argument(help="the rehearsal kit directory")]) -> None:
    """Run the kit's local OpenID provider and face-match hook on loopback until stopped (Ctrl-C)."""
    import signal
    import threading

    from voting.testing._rehearsal import start_digital_id

    provider, face, desc = start_digital_id(directory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(
        f"OpenID provider (REHEARSAL ONLY): issuer {provider.issuer}, "
        f"{len(desc['subjects'])} digital-ID account(s)"
    )
    typer.echo(f"face-match hook (REHEARSAL ONLY, not a face matcher): {desc['face_matcher_url']}")
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        face.stop()
        provider.stop()
