"""An election started and opened in one call, for the tests and the demo: :func:`start_election` runs the
server on loopback with the demo's settings (:func:`demo_settings`, through the same path as ``tvote
serve``), creates the election, commits the roll, runs the key ceremony with every trustee in this process
and opens voting; :class:`DemoElection` drives it, :class:`DemoWitnesses` cosigns its checkpoints. NEVER for a
real election: test CA, synthetic people, a development OIDC provider and a stub face-match engine."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from voting.clients._http import read_error, tls_context

from ._dapp_emulator import DappEmulator
from ._loopback import LoopbackServer
from ._residents import (
    Resident,
    demo_claims,
    dev_account,
    reference_photo_dir,
    roll_csv,
    write_reference_photos,
)
from ._testca import JpkiTestCa

__all__ = [
    "DEMO_WITNESSES",
    "DEMO_WITNESS_QUORUM",
    "DemoElection",
    "DemoWitnesses",
    "demo_settings",
    "start_election",
]


def _admin_request(
    http: httpx.Client,
    token: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    """``/api/v1/admin{path}`` with the admin token; an error answer raises :class:`RuntimeError`."""
    auth = {"Authorization": f"Bearer {token}", **(headers or {})}
    r = http.request(method, "/api/v1/admin" + path, headers=auth, **kw)
    if r.status_code >= 400:
        code, message, _ = read_error(r)
        raise RuntimeError(f"admin {method} {path}: HTTP {r.status_code} {code}: {message}")
    return r


@dataclass
class DemoElection:
    """A running election, open for voting, and everything needed to drive it."""

    base_url: str
    app: Any
    service: Any
    intake: Any
    http: httpx.Client
    admin_token: str
    trustees: dict[int, Any]
    residents: list[Resident]
    ca: JpkiTestCa
    oidc_provider: Any | None
    server: LoopbackServer | None
    #: the election's witnesses (``start_election(witnesses=3)``), or None (no witnesses: quorum 0)
    witnesses: DemoWitnesses | None = None
    #: the Digital Authentication App emulator (``start_election(signing_app=True)``), and each resident's
    #: card id there (every card's signing PIN is :data:`voting.testing.DAPP_TEST_PIN`)
    dapp: DappEmulator | None = None
    dapp_cards: dict[str, str] = field(default_factory=dict)

    def cosign(self, names: Sequence[str] | None = None) -> list[int]:
        """One round of the witnesses (``names``, default all) against the running server."""
        if self.witnesses is None:
            raise RuntimeError("this election has no witnesses")
        return self.witnesses.cosign(self.base_url, names)

    def admin(self, path: str, method: str = "POST", **kw: Any) -> Any:
        r = _admin_request(self.http, self.admin_token, method, path, **kw)
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content

    def enrol_kiosk(
        self, kiosk_id: str, polling_place: str = "つくば市役所 1階 期日前投票所"
    ) -> tuple[Any, str]:
        """Enrol a polling-place kiosk with a fresh key (``POST /admin/kiosks``): its
        :class:`voting.clients.kiosk.KioskApi` on this server and its poll-worker PIN."""
        from voting.clients.kiosk import KioskApi, KioskKey

        key = KioskKey.generate()
        out = self.admin(
            "/kiosks",
            json={"kiosk_id": kiosk_id, "public_key": key.public_key_hex, "polling_place": polling_place},
        )
        return KioskApi(self.http, key, kiosk_id), str(out["poll_worker_pin"])

    def close_early(self, reason: str = "demo: every resident has voted") -> Any:
        """Close voting before the manifest's end: an override, with its reason published in the entry."""
        return self.admin("/close", json={"override_reason": reason})

    def ledger_size(self) -> int:
        return int(self.service.ledger.size)

    def client(self, **kw: Any) -> Any:
        from voting.clients.voter import VoterClient

        return VoterClient(self.base_url, log_key=self.service.ledger.log_key, **kw)

    def election_info(self) -> Any:
        with self.client() as c:
            return c.election()


#: the demo's witnesses and quorum (protocol brief §6: production needs at least 2 of 3)
DEMO_WITNESSES = ("w1", "w2", "w3")
DEMO_WITNESS_QUORUM = 2


@dataclass
class DemoWitnesses:
    """The demo's witnesses, each a ``tvote witness`` directory (BLS key and proof of possession, pinned to
    the log key; ``witness-state.json`` holds the last checkpoint it cosigned). In a real election each
    runs ``tvote witness run`` on its own machine; the demo runs a round of them, in threads of its own
    process, whenever it needs a cosigned checkpoint (:meth:`cosign`)."""

    directories: dict[str, Path]
    quorum: int

    @classmethod
    def create(
        cls, directory: Path, log_vkey: str, names: Sequence[str] = DEMO_WITNESSES, quorum: int = 2
    ) -> tuple[DemoWitnesses, list[dict[str, str]]]:
        """Make the witnesses (``tvote witness init``: one BLS key generation and proof of possession
        each, about a second of CPU in py_ecc, done once per run); return them and the manifest's keys."""
        from voting._cli_witness import init_witness

        dirs: dict[str, Path] = {}
        keys = []
        for name in names:
            d = directory / name
            pub = init_witness(d, f"demo-{name}", log_vkey)
            dirs[name] = d
            keys.append({"name": pub["name"], "bls_public_key": pub["public_key"], "pop": pub["pop"]})
        return cls(dirs, quorum), keys

    def cosign(self, base_url: str, names: Sequence[str] | None = None) -> list[int]:
        """Each witness (``names``, default all) fetches the newest checkpoint, checks it extends what it
        cosigned before, cosigns it and posts the cosignature; returns the sizes cosigned. A witness that
        refuses (fork, rollback) raises."""
        import concurrent.futures as cf

        from ledger import Witness

        def one(d: Path) -> int:
            with httpx.Client(base_url=base_url + "/api/v1", timeout=120) as client:
                return Witness.load(d).cosign(client).size

        chosen = [self.directories[n] for n in (names if names is not None else self.directories)]
        with cf.ThreadPoolExecutor(max_workers=len(chosen) or 1) as pool:
            return list(pool.map(one, chosen))


@contextmanager
def start_election(
    data_dir: Path,
    residents: Sequence[Resident],
    ca: JpkiTestCa,
    manifest: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
    rate_limit_per_minute: int = 1_000_000,
    rate_limit_per_address: int = 1_000_000,
    spoil_rate_per_hour: int = 1_000_000,
    spoil_burst: int = 1_000_000,
    max_spoiled_ballots: int = 50_000,
    oidc_residents: Sequence[Resident] = (),
    revoked: Sequence[Resident] = (),
    real_http: bool = True,
    database_url: str | None = None,
    oidc_jwks_min_refresh: int = 60,
    checkpoint_interval: int = 1,
    checkpoint_max_entries: int = 1000,
    witnesses: Sequence[str] = (),
    witness_quorum: int = DEMO_WITNESS_QUORUM,
    pinned: bool = False,
    signing_app: bool = False,
    port: int = 0,
) -> Iterator[DemoElection]:
    """Create, set up and open an election; yield it running; stop the servers afterwards.

    ``witnesses`` (names, e.g. :data:`DEMO_WITNESSES`): witness directories are made under
    ``data_dir/witnesses``, pinned to the ledger's key (created here, before the election), and the manifest
    lists their keys with ``witness_quorum``; ``DemoElection.cosign()`` runs a round of them.

    ``oidc_residents`` get accounts at a local development OIDC provider (claims: name, birthdate,
    address), which is started only if there are any. ``revoked`` cards are listed on the CA's CRL.
    ``database_url`` is the private database (default: an SQLite file in ``data_dir``). The rate limits
    are off unless given (``rate_limit_per_minute``, ``rate_limit_per_address``, ``spoil_rate_per_hour``,
    ``spoil_burst``). Checkpoints are issued every ``checkpoint_interval`` seconds (receipts are pending
    until then; ``0``: a checkpoint for every receipt), or once ``checkpoint_max_entries`` are uncovered.
    ``pinned``: the manifest gets its ``pins`` (this server's log key, the test JPKI root, the test
    commission root, an enrolment key drawn for each trustee, who registers with it).
    ``signing_app``: a Digital Authentication App emulator (:class:`DappEmulator`) runs on loopback with
    every resident's card inserted, and the server is its registered client (My Number card on the phone).
    ``port``: the server listens on this port of 127.0.0.1 (default: a free one), and the development
    provider sends a browser back to this server's ``/vote/oidc-callback`` (``tvote demo --serve``).
    """
    from voting.app import create_app

    from ._ceremony import run_key_ceremony

    now = now or dt.datetime.now(dt.UTC)
    admin_token = secrets.token_urlsafe(32)
    redirect = f"http://127.0.0.1:{port}/vote/oidc-callback" if port else _DEMO_REDIRECT
    provider, oidc_client = _start_dev_oidc(oidc_residents, redirect) if oidc_residents else (None, None)
    dapp: DappEmulator | None = None
    dapp_cards: dict[str, str] = {}
    try:
        if signing_app:
            dapp, dapp_settings = _start_dapp(data_dir)
            dapp_cards = {r.resident_id: dapp.insert_card(r.card, label=r.resident_id) for r in residents}
        settings, intake_config = demo_settings(
            data_dir,
            ca,
            now,
            admin_token=admin_token,
            revoked=revoked,
            oidc=(provider.issuer, oidc_client) if provider is not None else None,
            rate_limit_per_minute=rate_limit_per_minute,
            rate_limit_per_address=rate_limit_per_address,
            spoil_rate_per_hour=spoil_rate_per_hour,
            spoil_burst=spoil_burst,
            max_spoiled_ballots=max_spoiled_ballots,
            database_url=database_url,
            oidc_jwks_min_refresh=oidc_jwks_min_refresh,
            checkpoint_interval=checkpoint_interval,
            checkpoint_max_entries=checkpoint_max_entries,
            dapp=dapp_settings if dapp is not None else None,
        )
        app = create_app(settings, intake=intake_config)
    except BaseException:
        if provider is not None:
            provider.stop()
        if dapp is not None:
            dapp.stop()
        raise
    service = app.state.service
    demo_witnesses: DemoWitnesses | None = None
    server: LoopbackServer | None = None
    http: httpx.Client
    if real_http:
        server = LoopbackServer(app, port=port, lifespan=True)  # its keepers run, as under `tvote serve`
        base_url = server.start(timeout=15)
        if settings.public_record_url is None:  # the port is known now: the declaration prints this server
            service.settings = settings.with_(public_url=base_url)
        http = httpx.Client(base_url=base_url, timeout=120)
    else:
        from fastapi.testclient import TestClient

        base_url = "http://testserver"
        http = TestClient(app)
    enrolment_keys: dict[int, bytes] = {}
    try:
        if witnesses:  # the ledger's key exists before the election, so that the witnesses can pin it
            from voting.service import log_signer

            log_vkey = log_signer(settings, str(manifest["election_id"])).public.vkey
            demo_witnesses, keys = DemoWitnesses.create(
                data_dir / "witnesses", log_vkey, witnesses, witness_quorum
            )
            manifest = {**manifest, "witnesses": {"quorum": witness_quorum, "keys": keys}}
        if pinned:  # the commission pins what the election trusts before creating it (operator guide §7)
            from voting._pins import server_pins
            from voting.clients.trustee import enrolment_public_key

            enrolment_keys = {i: secrets.token_bytes(32) for i in range(1, manifest["trustees"]["n"] + 1)}
            pinned_keys = [enrolment_public_key(enrolment_keys[i]) for i in sorted(enrolment_keys)]
            manifest = {**manifest, "pins": server_pins(settings, manifest["election_id"], pinned_keys)}
        created = _admin_request(http, admin_token, "POST", "/election", json=dict(manifest)).json()
        csv = {"Content-Type": "text/csv"}
        _admin_request(http, admin_token, "PUT", "/roll", content=roll_csv(residents), headers=csv)
        _admin_request(http, admin_token, "POST", "/roll/publish")
        if provider is not None:  # the commission's export of the roll residents' reference photos
            write_reference_photos(
                reference_photo_dir(data_dir), service.roll_key, service.election_id, residents
            )
        invitations = {int(i): c for i, c in created["invitations"].items()}
        trustees = run_key_ceremony(http, invitations, admin_token=admin_token, enrolment_keys=enrolment_keys)
        intake = app.state.intake_provider.get()
        # The server opens voting by itself once the period has begun and the ceremony and the roll are done
        # (its period keeper runs this same step every second); a period that begins later needs an override.
        service.enforce_period()
        if service.phase == "setup":
            _admin_request(
                http, admin_token, "POST", "/open", json={"override_reason": "demo: opened before the period"}
            )
        yield DemoElection(
            base_url=base_url,
            app=app,
            service=service,
            intake=intake,
            http=http,
            admin_token=admin_token,
            trustees=dict(trustees),
            residents=list(residents),
            ca=ca,
            oidc_provider=provider,
            server=server,
            witnesses=demo_witnesses,
            dapp=dapp,
            dapp_cards=dapp_cards,
        )
    finally:
        http.close()
        if server is not None:
            server.stop()
        if provider is not None:
            provider.stop()
        if dapp is not None:
            dapp.stop()
        service.close()


_DEMO_OIDC_CLIENT = "tvote-demo"
#: the booth's callback page under `tvote serve`'s default address (a server on another port names its own)
_DEMO_REDIRECT = "http://127.0.0.1:8000/vote/oidc-callback"


def _start_dev_oidc(oidc_residents: Sequence[Resident], redirect: str) -> tuple[Any, Any]:
    from ._dev_oidc import DevClient, DevOidcProvider, DevSubject

    first = oidc_residents[0]
    client = DevClient(_DEMO_OIDC_CLIENT, secrets.token_urlsafe(24), (redirect,))
    provider = DevOidcProvider([client], DevSubject(dev_account(first), demo_claims(first)))
    provider.start()
    return provider, client


_DEMO_DAPP_CLIENT = "tvotedemo"


def _start_dapp(data_dir: Path) -> tuple[DappEmulator, tuple[str, str, Path]]:
    """Start the app emulator and register the server as its client (key written 0600 in ``data_dir``)."""
    from ._testca import new_rsa_key

    key = new_rsa_key()
    key_file = data_dir / "dapp-client-key.pem"
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    emulator = DappEmulator()
    emulator.register_client(_DEMO_DAPP_CLIENT, key.public_key())
    url = emulator.start()
    return emulator, (url, _DEMO_DAPP_CLIENT, key_file)


def demo_settings(
    data_dir: Path,
    ca: JpkiTestCa,
    now: dt.datetime,
    *,
    admin_token: str,
    revoked: Sequence[Resident] = (),
    cities: Sequence[str] = ("Tsukuba-shi",),
    oidc: tuple[str, Any] | None = None,
    rate_limit_per_minute: int = 120,
    rate_limit_per_address: int = 1200,
    spoil_rate_per_hour: int = 600,
    spoil_burst: int = 60,
    max_spoiled_ballots: int = 50_000,
    database_url: str | None = None,
    oidc_jwks_min_refresh: int = 60,
    checkpoint_interval: int = 1,
    checkpoint_max_entries: int = 1000,
    dapp: tuple[str, str, Path] | None = None,
) -> tuple[Any, Any]:
    """The demo's server settings and intake configuration, through the same path as ``tvote serve``.

    ``dapp`` is ``(base URL, client id, client key file)`` of a started :class:`DappEmulator`.

    Writes the test CA (trust anchor) and, for each municipality in ``cities`` (the residents' cities), the
    complete CRL of its partition (listing its ``revoked`` cards) and an empty delta CRL on it, into
    ``data_dir``; ``oidc`` is
    ``(issuer, client)``: a started development provider and the server's
    :class:`voting.testing.DevClient` there. The face-match
    engine is the in-process deterministic test engine with synthetic reference images (injected).
    """
    from voting._intake_config import IntakeConfig
    from voting._settings import Settings

    anchors, crls = data_dir / "jpki-trust-anchors", data_dir / "jpki-crls"
    anchors.mkdir(parents=True, exist_ok=True)
    crls.mkdir(parents=True, exist_ok=True)
    (anchors / "test-ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    # as J-LIS publishes them: one complete CRL per municipality's partition, and a delta CRL on top
    revoked_serials = [(r.person.city, r.card.certificate.serial_number) for r in revoked]
    for name, crl in ca.partition_crls(now, cities, revoked_serials):
        (crls / name).write_bytes(crl.public_bytes(serialization.Encoding.DER))
    extra: dict[str, Any] = {}
    if oidc is not None:
        from ._dev_oidc import DEV_ACR, DEV_TRUST_FRAMEWORK

        issuer, client = oidc
        extra = {
            "oidc_issuer": issuer,
            "oidc_client_id": client.client_id,
            "oidc_client_secret": client.client_secret,
            "oidc_redirect_uri": client.redirect_uris[0],
            "oidc_acr_values": (DEV_ACR,),
            "oidc_trust_frameworks": (DEV_TRUST_FRAMEWORK,),
            "oidc_jwks_min_refresh": oidc_jwks_min_refresh,
        }
    if dapp is not None:
        extra.update(dapp_base_url=dapp[0], dapp_client_id=dapp[1], dapp_client_key_file=dapp[2])
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        admin_token=admin_token,
        rate_limit_per_minute=rate_limit_per_minute,
        rate_limit_per_address=rate_limit_per_address,
        spoil_rate_per_hour=spoil_rate_per_hour,
        spoil_burst=spoil_burst,
        max_spoiled_ballots=max_spoiled_ballots,
        jpki_trust_anchors=anchors,
        jpki_crl_dir=crls,
        jpki_test_policy=True,
        database_url=database_url,
        checkpoint_interval=checkpoint_interval,
        checkpoint_max_entries=checkpoint_max_entries,
        **extra,
    )
    face: Any = None
    reference: Any = None
    if oidc is not None:
        from voting.auth import DirectoryReferencePhotoSource

        from ._faces import PerceptualTestMatcher

        face = PerceptualTestMatcher()  # the TEST engine: compares the residents' drawn pictures
        reference_photo_dir(data_dir).mkdir(parents=True, exist_ok=True)
        reference = DirectoryReferencePhotoSource(reference_photo_dir(data_dir))
    intake = IntakeConfig.from_settings(
        settings,
        face=face,
        face_reference=reference,
        oidc_http_client_kwargs={"verify": tls_context()},
    )
    return settings, intake
