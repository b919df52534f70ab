"""The rehearsal kit: everything an election office needs to rehearse an election on one machine, written
into one directory by ``tvote rehearsal init DIR``. NEVER for a real election.

What it writes (``docs/operator-guide.md``, "Rehearsal"; ``DIR/README.txt`` lists it too)::

    DIR/                              0700
      README.txt                      what is here and the commands, in order
      tvote.toml                      the server's settings: environment "test", the test CA with the
                                      JPKI test policy (production refuses this file: config.unsafe)
      admin-token                     0600: the commission's bearer token
      kiosk-key                       0600: one polling-place kiosk's Ed25519 key (its 32-byte seed, as
      kiosk-public-key.txt            ``tvote-kiosk init`` makes it) and its public key, to enrol
      manifest.yaml                   the election: voting period, 3 witnesses (quorum 2), methods
      roll.csv                        0600: the synthetic residents (as ``tvote admin load-roll`` takes)
      roll-key                        0600: the roll key (settings ``roll_key_file``), so the kit knows the
                                      voter aliases of the digital-ID residents' reference photos
      log-key.txt                     the ledger's public verifier key (voters and witnesses pin it)
      server-data/                    0700: the server's data directory, prepared with
                                      ledger-signing.key (0600), commission-signer.key (0600), .crt,
                                      commission-chain.pem (a TEST commission CA; the verifier's trust root)
      jpki/trust-anchors/             the JPKI *test* CA (the only trust anchor)
      jpki/crls/                      per-municipality complete CRL + delta CRL, as J-LIS publishes them
      cards/                          0700: NNNN.p12 (0600) per card resident, revoked.p12, PINS.txt (0600)
      witnesses/w1 w2 w3/             0700 each: BLS keys made as ``tvote witness init`` makes them,
                                      pinned to the log key
      digital-id/                     0700: provider.json (the local OpenID provider's client and accounts of
                                      the digital-ID residents: on the roll, no card), client-secret (0600),
                                      reference-photos/<voter alias>.png (synthetic, never a face)

Everything comes from the project's own code: the JPKI test CA (:class:`voting.testing.JpkiTestCa`) and its
CRL partitions, the commission's TEST signing key
(:func:`voting._commission_key.ensure_test_commission_signer`),
the ledger's signing key (:func:`voting.service.log_signer`), the witnesses' keys
(:func:`voting._cli_witness.init_witness`, what ``tvote witness init`` runs), the demo's synthetic residents
and manifest (:func:`voting.testing.make_residents`, :func:`~voting.testing.tsukuba_manifest`). A card
file is PKCS#12
(``cryptography``: the key and certificate encrypted under the card's PIN, AES-256 with PBKDF2).

Digital ID (``oidc+face``): ``tvote rehearsal oidc DIR`` runs the development OpenID provider
(:class:`voting.testing.DevOidcProvider`, a real authlib provider) with the kit's digital-ID accounts and a
face-match *hook* (:func:`face_hook_app`: the ``HttpFaceMatcher`` wire format answered by the deterministic
test matcher, which matches byte-identical synthetic images) on the loopback ports the settings name. It
rehearses the flow, not face recognition. With ``--digital-id-voters 0`` the kit leaves digital ID out.

It lives with the test scaffolding (test CA, cards with PINs, a development OpenID provider: nothing a server
may load) and only ``tvote rehearsal``'s commands import it, inside their functions.

Length: about 600 lines, one kit written in one pass: the files it writes depend on each other (the log key
the witnesses pin, the roll key that names the reference photos, the settings that name all of them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ledger.files import write_atomic
from voting._cli_errors import CliError
from voting._db import make_private_dir

from ._residents import rfc3339
from ._testca import JpkiTestCa, TestCard

__all__ = [
    "KIT_README",
    "KitOptions",
    "load_card",
    "write_kit",
]

KIT_README: Final = "README.txt"
ROLL_KEY_FILE: Final = "roll-key"
DIGITAL_ID_DIR: Final = "digital-id"
PROVIDER_FILE: Final = "provider.json"
CLIENT_SECRET_FILE: Final = "client-secret"  # noqa: S105 - a file name
OIDC_CLIENT_ID: Final = "tvote-rehearsal"
#: the rehearsal's face-match hook: the TEST engine comparing the residents' drawn pictures
#: (:class:`voting.testing._faces.PerceptualTestMatcher`)
FACE_ENGINE_ID: Final = "tvote-rehearsal-face-hook/2 (test engine, never for production)"
SETTINGS_FILE: Final = "tvote.toml"
ADMIN_TOKEN_FILE: Final = "admin-token"  # noqa: S105 - a file name
KIOSK_KEY_FILE: Final = "kiosk-key"
KIOSK_PUBLIC_KEY_FILE: Final = "kiosk-public-key.txt"
#: the kit's kiosk, as the guide enrols it (``tvote admin kiosk enrol``)
KIOSK_ID: Final = "rehearsal-kiosk-1"
MANIFEST_FILE: Final = "manifest.yaml"
ROLL_FILE: Final = "roll.csv"
LOG_KEY_FILE: Final = "log-key.txt"
DATA_DIR: Final = "server-data"
CARDS_DIR: Final = "cards"
PINS_FILE: Final = "PINS.txt"
WITNESS_NAMES: Final = ("w1", "w2", "w3")
WITNESS_QUORUM: Final = 2
MAX_VOTERS: Final = 1000
#: the JPKI signing password is 6 to 16 alphanumeric characters (shared/jpki/README.md); a rehearsal PIN has 8
_PIN_ALPHABET: Final = string.ascii_uppercase + string.digits
_PIN_LENGTH: Final = 8


@dataclass(frozen=True, slots=True)
class KitOptions:
    """What ``tvote rehearsal init`` was asked for (validated by :meth:`check`)."""

    voters: int = 10
    digital_id_voters: int = 2
    trustees: int = 3
    threshold: int = 2
    election_id: str = "tsukuba-rehearsal"
    opens: dt.datetime | None = None
    closes: dt.datetime | None = None
    public_url: str = "http://127.0.0.1:8000"
    oidc_port: int = 8701
    face_port: int = 8702

    def check(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The voting period (defaults: opens in 10 minutes, closes 3 hours later); refuses bad options."""
        if not 1 <= self.voters <= MAX_VOTERS:
            raise CliError("rehearsal.voters", f"--voters must be 1 to {MAX_VOTERS}")
        if not 0 <= self.digital_id_voters <= 100:
            raise CliError("rehearsal.voters", "--digital-id-voters must be 0 to 100")
        for name, port in (("--oidc-port", self.oidc_port), ("--face-port", self.face_port)):
            if not 1 <= port <= 65535:
                raise CliError("rehearsal.port", f"{name} must be a TCP port (1 to 65535)")
        if self.oidc_port == self.face_port:
            raise CliError("rehearsal.port", "--oidc-port and --face-port must differ")
        if not 1 <= self.threshold <= self.trustees <= 10:
            raise CliError(
                "rehearsal.trustees", "need 1 <= --threshold <= --trustees <= 10 (a rehearsal: 3 of 2, say)"
            )
        opens = self.opens or (now + dt.timedelta(minutes=10)).replace(microsecond=0)
        closes = self.closes or opens + dt.timedelta(hours=3)
        for name, t in (("--opens", opens), ("--closes", closes)):
            if t.tzinfo is None:
                raise CliError(
                    "rehearsal.period", f"{name} needs a time zone, e.g. 2027-04-18T09:00:00+09:00"
                )
        if closes <= opens:
            raise CliError("rehearsal.period", "--closes must be after --opens")
        if closes <= now:
            raise CliError("rehearsal.period", "--closes is in the past")
        if closes - now > dt.timedelta(days=365):
            raise CliError("rehearsal.period", "a rehearsal's voting period must end within a year")
        return opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)


# ----------------------------------------------------------------------------------------------- files


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    """Create ``path`` with ``mode`` from the start (a secret is never readable by others, even briefly)."""
    write_atomic(path, data, mode=mode)
    return path


def prepare_directory(directory: Path, *, force: bool) -> Path:
    """``directory`` made (mode 0700); a non-empty one is refused unless ``force`` (then it is emptied)."""
    d = Path(directory)
    if d.is_symlink() or (d.exists() and not d.is_dir()):
        raise CliError("rehearsal.dir", f"{d} exists and is not a directory")
    if d.exists() and any(d.iterdir()):
        if not force:
            raise CliError(
                "rehearsal.dir",
                f"{d} is not empty; choose an empty directory, or --force to replace its contents "
                "(the old kit's keys, cards and server data are deleted)",
            )
        for child in d.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    make_private_dir(d)
    os.chmod(d, 0o700)  # an existing (empty) directory is narrowed too: the kit holds secrets
    return d


# ------------------------------------------------------------------------------------------------ cards


def new_pin() -> str:
    return "".join(secrets.choice(_PIN_ALPHABET) for _ in range(_PIN_LENGTH))


def card_bytes(card: TestCard, pin: str, label: str) -> bytes:
    """A test card as PKCS#12: its key and certificate, encrypted under ``pin``."""
    return pkcs12.serialize_key_and_certificates(
        label.encode("ascii"),
        card.private_key,
        card.certificate,
        None,
        serialization.BestAvailableEncryption(pin.encode("utf-8")),
    )


def load_card(path: Path, pin: str) -> TestCard:
    """Open a rehearsal card file with its PIN. A wrong PIN or a file that is not a card: ``card.pin`` /
    ``card.invalid`` (:class:`CliError`, exit status 1), nothing sent anywhere."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CliError(
            "card.unreadable", f"cannot read the card file {path}: {e.strerror}", exit_code=1
        ) from e
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, pin.encode("utf-8"))
    except ValueError:
        # cryptography says "Invalid password or PKCS12 data": tell which, as far as one can
        raise CliError(
            "card.pin",
            f"the PIN does not open {Path(path).name} (wrong PIN, or not a PKCS#12 card file)",
            exit_code=1,
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or cert is None:
        raise CliError("card.invalid", f"{Path(path).name} holds no RSA key and certificate", exit_code=1)
    return TestCard(cert, key)


# ------------------------------------------------------------------------------------------------ the kit


@dataclass(frozen=True, slots=True)
class Kit:
    """What :func:`write_kit` wrote (paths inside the kit directory)."""

    directory: Path
    settings: Path
    manifest: Path
    cards: tuple[Path, ...]
    log_key: str
    opens: dt.datetime
    closes: dt.datetime
    #: the resident ids of the digital-ID residents
    digital_id: tuple[str, ...] = ()


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _toml_str(value: str | Path) -> str:
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def write_kit(
    directory: Path, options: KitOptions, *, force: bool = False, now: dt.datetime | None = None
) -> Kit:
    """Write a complete rehearsal setup into ``directory`` (module docstring)."""
    import yaml

    from voting._cli_witness import init_witness
    from voting._commission_key import ensure_test_commission_signer
    from voting._manifest import parse_manifest
    from voting._settings import Settings
    from voting.clients.kiosk import KioskKey
    from voting.service import log_signer

    from ._residents import make_residents, roll_csv, tsukuba_manifest

    now = now or dt.datetime.now(dt.UTC)
    opens, closes = options.check(now)
    d = prepare_directory(directory, force=force).resolve()

    # -- tokens
    admin_token = secrets.token_hex(32)
    _write(d / ADMIN_TOKEN_FILE, admin_token + "\n", 0o600)
    kiosk = KioskKey.generate()  # the polling-place kiosk's own key (what `tvote-kiosk init` draws)
    kiosk.save(d / KIOSK_KEY_FILE)
    _write(d / KIOSK_PUBLIC_KEY_FILE, kiosk.public_key_hex + "\n")

    # -- the server's data directory: the ledger's signing key and the commission's TEST signing key set
    data = make_private_dir(d / DATA_DIR)
    key_settings = Settings(environment="test", data_dir=data, admin_token=admin_token)
    log_key = log_signer(key_settings, options.election_id).public.vkey
    ensure_test_commission_signer(key_settings, now)
    _write(d / LOG_KEY_FILE, log_key + "\n")

    # -- JPKI: the test CA, its CRLs (valid until a day after voting closes), the cards
    ca = JpkiTestCa.generate(now)
    anchors, crls = d / "jpki" / "trust-anchors", d / "jpki" / "crls"
    anchors.mkdir(parents=True)
    crls.mkdir(parents=True)
    _write(anchors / "jpki-test-ca.pem", _pem(ca.certificate))
    residents = make_residents(
        options.voters + options.digital_id_voters + 1, ca, now, seed=secrets.randbits(32)
    )
    card_residents = residents[: options.voters]
    digital_id = residents[options.voters : options.voters + options.digital_id_voters]
    revoked = residents[-1]
    cities = sorted({r.person.city for r in residents})
    for name, crl in ca.partition_crls(
        now,
        cities,
        [(revoked.person.city, revoked.card.certificate.serial_number)],
        valid_for=closes - now + dt.timedelta(days=1),
    ):
        _write(crls / name, crl.public_bytes(serialization.Encoding.DER))
    cards = make_private_dir(d / CARDS_DIR)
    pins: list[tuple[str, str, str]] = []
    card_paths: list[Path] = []
    for i, r in enumerate([*card_residents, revoked], 1):
        name = f"{i:04d}.p12" if r is not revoked else "revoked.p12"
        pin = new_pin()
        card_paths.append(_write(cards / name, card_bytes(r.card, pin, r.resident_id), 0o600))
        pins.append((name, r.resident_id, pin))
    _write(cards / PINS_FILE, _pins_text(pins), 0o600)

    # -- the roll: every card resident, the digital-ID residents and the resident with the revoked card
    _write(d / ROLL_FILE, roll_csv(residents), 0o600)
    # -- digital ID: the roll key (so the kit knows the voter aliases), the residents' reference photos, the
    #    local provider's client and subjects, the face-match hook (`tvote rehearsal oidc DIR` runs both)
    roll_key = secrets.token_bytes(32)
    _write(d / ROLL_KEY_FILE, roll_key.hex() + "\n", 0o600)
    oidc_lines: list[str] = []
    if digital_id:
        oidc_lines = _write_digital_id(d, options, roll_key, digital_id)

    # -- three witnesses, pinned to the log key (the code of `tvote witness init`)
    witnesses_dir = make_private_dir(d / "witnesses")
    witness_keys = []
    for name in WITNESS_NAMES:
        wdir = make_private_dir(witnesses_dir / name)
        pj = init_witness(wdir, f"rehearsal-{name}", log_key)
        witness_keys.append({"name": pj["name"], "bls_public_key": pj["public_key"], "pop": pj["pop"]})

    # -- the manifest
    manifest: dict[str, Any] = tsukuba_manifest(
        now, election_id=options.election_id, trustees=options.trustees, threshold=options.threshold
    )
    manifest["name"] = {
        "ja": "つくば市 インターネット投票 リハーサル (本番ではありません)",
        "en": "Tsukuba City internet voting rehearsal (not a real election)",
    }
    manifest["voting_period"] = {"opens": rfc3339(opens), "closes": rfc3339(closes)}
    manifest["witnesses"] = {"quorum": WITNESS_QUORUM, "keys": witness_keys}
    manifest["auth_methods"] = ["jpki", "oidc+face"] if digital_id else ["jpki"]
    parse_manifest(manifest)  # the kit never writes a manifest the server would refuse
    header = (
        "# REHEARSAL manifest written by `tvote rehearsal init` (tvote-manifest/1, docs/events.md).\n"
        "# Witnesses: the kit's three (quorum 2). Methods: test cards, and digital ID with the kit's local\n"
        "# provider and face-match hook (`tvote rehearsal oidc DIR`) when it has digital-ID residents.\n"
    )
    _write(d / MANIFEST_FILE, header + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False))

    # -- the settings: environment "test", which production refuses
    settings_text = "\n".join(
        [
            "# REHEARSAL settings written by `tvote rehearsal init` (keys: docs/operator-guide.md).",
            "# Production refuses this file: it trusts a test CA under the JPKI *test* policy.",
            'environment = "test"',
            f"data_dir = {_toml_str(data)}",
            f"admin_token_file = {_toml_str(d / ADMIN_TOKEN_FILE)}",
            f"public_url = {_toml_str(options.public_url)}",
            "# printed on the result declaration (docs/result-pdf.md)",
            f"commission_name = {_toml_str('つくば市選挙管理委員会（リハーサル）')}",
            f"signatory_title = {_toml_str('つくば市選挙管理委員会委員長（リハーサル）')}",
            f"jpki_trust_anchors = {_toml_str(anchors)}",
            f"jpki_crl_dir = {_toml_str(crls)}",
            "jpki_test_policy = true",
            f"roll_key_file = {_toml_str(d / ROLL_KEY_FILE)}",
            "# checkpoints on a schedule as in production (default 10 s), "
            "shorter so receipts complete quickly",
            "checkpoint_interval = 2",
            *oidc_lines,
            "",
        ]
    )
    _write(d / SETTINGS_FILE, settings_text)
    Settings.from_env({}, config_file=d / SETTINGS_FILE)  # it loads, in the test environment

    kit = Kit(
        d,
        d / SETTINGS_FILE,
        d / MANIFEST_FILE,
        tuple(card_paths),
        log_key,
        opens,
        closes,
        tuple(r.resident_id for r in digital_id),
    )
    _write(d / KIT_README, readme_text(kit, options, [p[0] for p in pins]))
    return kit


def _write_digital_id(d: Path, options: KitOptions, roll_key: bytes, residents: Sequence[Any]) -> list[str]:
    """The digital-ID side of the kit; returns the settings lines that point the server at it."""
    from voting._roll import voter_alias

    from ._dev_oidc import DEV_ACR, DEV_TRUST_FRAMEWORK
    from ._residents import demo_face_image

    did = make_private_dir(d / DIGITAL_ID_DIR)
    photos = make_private_dir(did / "reference-photos")
    secret = secrets.token_urlsafe(32)
    _write(did / CLIENT_SECRET_FILE, secret + "\n", 0o600)
    subjects = []
    for r in residents:
        alias = voter_alias(roll_key, options.election_id, r.resident_id)
        # the commission's export of the resident's reference photo (synthetic: never a real face)
        _write(photos / f"{alias.hex()}.png", demo_face_image(r.resident_id), 0o600)
        p = r.person
        subjects.append(
            {
                "resident_id": r.resident_id,
                "sub": subject_of(r.resident_id),
                "claims": {
                    "name": p.name,
                    "birthdate": p.birth_date.isoformat(),
                    "address": {"formatted": p.address},
                },
            }
        )
    provider: dict[str, Any] = {
        "rehearsal_only": True,
        "issuer": f"http://127.0.0.1:{options.oidc_port}",
        "face_matcher_url": f"http://127.0.0.1:{options.face_port}/match",
        "client_id": OIDC_CLIENT_ID,
        "redirect_uri": options.public_url.rstrip("/") + "/vote/oidc-callback",
        "subjects": subjects,
    }
    _write(did / PROVIDER_FILE, json.dumps(provider, ensure_ascii=False, indent=2) + "\n", 0o600)
    return [
        f"oidc_issuer = {_toml_str(provider['issuer'])}",
        f"oidc_client_id = {_toml_str(OIDC_CLIENT_ID)}",
        f"oidc_client_secret_file = {_toml_str(did / CLIENT_SECRET_FILE)}",
        f"oidc_redirect_uri = {_toml_str(provider['redirect_uri'])}",
        f"oidc_acr_values = [{_toml_str(DEV_ACR)}]",
        f"oidc_trust_frameworks = [{_toml_str(DEV_TRUST_FRAMEWORK)}]",
        f"face_matcher_url = {_toml_str(provider['face_matcher_url'])}",
        f"face_engine_id = {_toml_str(FACE_ENGINE_ID)}",
        f"face_reference_dir = {_toml_str(photos)}",
    ]


def subject_of(resident_id: str) -> str:
    """A digital-ID resident's account id at the rehearsal's provider (not the register's resident id)."""
    return "rehearsal-" + hashlib.sha256(resident_id.encode()).hexdigest()[:16]


def _pins_text(pins: Sequence[tuple[str, str, str]]) -> str:
    lines = [
        "REHEARSAL ONLY. These are test cards from a test CA, not My Number cards; the PINs are printed",
        "here on purpose, so that poll workers can rehearse. Never use this kit, its cards or its CA in a",
        "real election: production refuses them.",
        "",
        "card file          resident    PIN",
    ]
    for name, resident, pin in pins:
        note = "   (revoked: listed on the CRL, refused with jpki.revoked)" if name == "revoked.p12" else ""
        lines.append(f"{name:<18} {resident:<11} {pin}{note}")
    return "\n".join(lines) + "\n"


def readme_text(kit: Kit, options: KitOptions, card_names: Sequence[str]) -> str:
    d = kit.directory
    methods = " and by digital ID with the face-match hook (oidc+face)" if kit.digital_id else ""
    return f"""tvote REHEARSAL KIT (written by `tvote rehearsal init`). NOT FOR A REAL ELECTION.

Everything here is for a rehearsal: a JPKI *test* CA and test cards, a TEST commission signing key,
witness keys that live on this one machine, synthetic residents. Production refuses the settings file
(TVOTE_ENVIRONMENT=production tvote serve --config {SETTINGS_FILE} exits 2: config.unsafe).

Election {options.election_id}: voting period {rfc3339(kit.opens)} to {rfc3339(kit.closes)} (UTC);
{options.trustees} trustees, any {options.threshold} decrypt; witnesses w1 w2 w3, quorum {WITNESS_QUORUM};
ballots by test My Number card (jpki){methods}.

What is here
  {SETTINGS_FILE:<20} the server's settings (environment "test"): tvote serve --config {SETTINGS_FILE}
  {ADMIN_TOKEN_FILE:<20} the commission's admin token (0600; TVOTE_ADMIN_TOKEN_FILE)
  {KIOSK_KEY_FILE:<20} a polling-place kiosk's own Ed25519 key (0600); {KIOSK_PUBLIC_KEY_FILE} to enrol it
  {MANIFEST_FILE:<20} the election: tvote admin create --manifest {MANIFEST_FILE}
  {ROLL_FILE:<20} the roll (synthetic residents, 0600): tvote admin load-roll --roll {ROLL_FILE}
  {LOG_KEY_FILE:<20} the ledger's public key: voters, witnesses and auditors pin it
  {DATA_DIR + "/":<20} the server's data directory (0700): ledger-signing.key, commission-signer.key,
  {"":<20} .crt, commission-chain.pem (give it to tvote-verify as --trust-root)
  {"jpki/":<20} trust-anchors/ (the test CA), crls/ (its CRLs, valid until a day after closing)
  {"cards/":<20} {len(card_names) - 1} test cards (PKCS#12) and revoked.p12; the PINs in cards/{PINS_FILE}
  {"witnesses/":<20} w1 w2 w3: the witnesses (tvote witness cosign --dir witnesses/w1 --server $URL/api/v1)
  {"roll-key":<20} the roll key (0600): the kit knows the voter aliases of the reference photos
  {"digital-id/":<20} provider.json: the local OpenID provider's accounts of the digital-ID residents
  {"":<20} ({", ".join(kit.digital_id) or "none"}; on the roll, no card), client-secret, reference-photos/

The commands, in order (docs/operator-guide.md, section "Rehearsal", has them with explanations):
  export DIR={d} URL={options.public_url}
  export TVOTE_ADMIN_TOKEN_FILE=$DIR/{ADMIN_TOKEN_FILE}
  tvote rehearsal oidc $DIR          (the OpenID provider and face-match hook, if digital ID is used)
  tvote serve --config $DIR/{SETTINGS_FILE} --port <the port of URL>
  tvote admin create --server $URL --manifest $DIR/{MANIFEST_FILE}
  tvote admin load-roll --server $URL --roll $DIR/{ROLL_FILE}
  tvote admin publish-roll --server $URL
  (each trustee) tvote trustee init / register / deal / verify-shares --server $URL ...
  tvote admin finalize-keys --server $URL
  tvote admin kiosk enrol --server $URL --kiosk-id {KIOSK_ID} \\
      --public-key "$(cat $DIR/{KIOSK_PUBLIC_KEY_FILE})" --polling-place "リハーサル投票所"
  (wait for the period, or) tvote admin open --server $URL --override-reason "rehearsal"
  PIN=<from cards/{PINS_FILE}> tvote rehearsal vote --server $URL --card $DIR/cards/0001.p12 \\
      --pin-env PIN --log-key-file $DIR/{LOG_KEY_FILE} --choose mayor=cand-2 --choose referendum=yes
  PIN=... POLL_WORKER_PIN=<from enrol> tvote rehearsal vote --server $URL --card $DIR/cards/0002.p12 \\
      --pin-env PIN --kiosk-key $DIR/{KIOSK_KEY_FILE} --kiosk-id {KIOSK_ID} \\
      --poll-worker-pin-env POLL_WORKER_PIN
  tvote rehearsal vote --server $URL --kit $DIR --digital-id <resident> --choose mayor=cand-1
  tvote admin close --server $URL --override-reason "rehearsal"
  tvote admin tally --server $URL
  tvote witness cosign --dir $DIR/witnesses/w1 --server $URL/api/v1   (and w2, w3: the tally's checkpoint)
  (any {options.threshold} trustees) tvote trustee decrypt --server $URL \\
      --log-key "$(cat $DIR/{LOG_KEY_FILE})" ...
  tvote admin publish --server $URL
  tvote admin checkpoint --server $URL
  tvote witness cosign --dir $DIR/witnesses/w1 --server $URL/api/v1   (and w2, w3)
  tvote admin export --server $URL --out record.tar.gz
  tvote-verify record.tar.gz --trust-root $DIR/{DATA_DIR}/commission-chain.pem \\
      --log-key "$(cat $DIR/{LOG_KEY_FILE})"
"""


# ------------------------------------------------------------------------------- the digital-ID side, running


def face_hook_app() -> Any:
    """The rehearsal's face-match hook: ``POST /match`` in the ``HttpFaceMatcher`` wire format
    (docs/authentication.md), answered by the test engine :class:`voting.testing._faces.PerceptualTestMatcher`
    (a camera's picture of a resident's drawn stand-in photo matches it). A stand-in for the vendor's
    engine; never a face matcher."""
    import base64
    import binascii

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from voting.auth import FaceMatchError, LiveCapture, ReferenceImageSource

    from ._faces import PerceptualTestMatcher

    engine = PerceptualTestMatcher(FACE_ENGINE_ID)

    async def match(request: Request) -> Response:
        try:
            body = await request.json()
            ref, live = body["reference"], body["live"]
            res = engine.match(
                ReferenceImageSource(base64.b64decode(ref["data"], validate=True), ref["media_type"]),
                LiveCapture(
                    base64.b64decode(live["data"], validate=True),
                    live["media_type"],
                    base64.b64decode(live["liveness_evidence"], validate=True),
                ),
            )
        except (ValueError, KeyError, TypeError, binascii.Error, FaceMatchError):
            return JSONResponse({"error": "malformed match request"}, status_code=400)
        return JSONResponse(
            {
                "decision": res.decision,
                "score": res.score,
                "threshold": res.threshold,
                "liveness": res.liveness,
                "engine_id": res.engine_id,
            }
        )

    return Starlette(routes=[Route("/match", match, methods=["POST"])])


def load_provider(directory: Path) -> dict[str, Any]:
    """The kit's digital-ID description (``digital-id/provider.json``); ``rehearsal.digital_id`` if none."""
    path = Path(directory) / DIGITAL_ID_DIR / PROVIDER_FILE
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            "rehearsal.digital_id",
            f"{directory} has no digital-ID residents ({path} is missing): write the kit with "
            "--digital-id-voters N",
        ) from None
    except (OSError, ValueError) as e:
        raise CliError("rehearsal.digital_id", f"cannot read {path}: {e}") from e
    if not isinstance(obj, dict) or not obj.get("subjects"):
        raise CliError("rehearsal.digital_id", f"{path} lists no digital-ID residents")
    return obj


def start_digital_id(directory: Path) -> tuple[Any, Any, dict[str, Any]]:
    """Start the kit's local OpenID provider (:class:`voting.testing.DevOidcProvider`, every digital-ID
    resident's account; a login names its account in ``login_hint``) and the face-match hook, on the ports
    the settings point the server at. Returns ``(provider, face server, provider.json)``; stop both."""
    from urllib.parse import urlsplit

    from ._dev_oidc import DevClient, DevOidcProvider, DevSubject
    from ._loopback import LoopbackServer

    d = Path(directory)
    desc = load_provider(d)
    secret = (d / DIGITAL_ID_DIR / CLIENT_SECRET_FILE).read_text(encoding="utf-8").strip()
    client = DevClient(desc["client_id"], secret, (desc["redirect_uri"],))
    subjects = {s["sub"]: DevSubject(s["sub"], s["claims"]) for s in desc["subjects"]}
    oidc_port = urlsplit(desc["issuer"]).port or 0
    face_port = urlsplit(desc["face_matcher_url"]).port or 0
    provider = DevOidcProvider([client], next(iter(subjects.values())), subjects=subjects, port=oidc_port)
    face = LoopbackServer(face_hook_app(), port=face_port)
    try:
        provider.start()
        face.start()
    except OSError as e:
        provider.stop()
        face.stop()
        raise CliError(
            "rehearsal.port", f"cannot listen on 127.0.0.1:{oidc_port} and :{face_port}: {e.strerror}"
        ) from e
    return provider, face, desc
