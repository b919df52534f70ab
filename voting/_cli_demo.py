"""``tvote demo``: a whole Tsukuba-style election on the embedded SQLite default, over real HTTP.

What it runs (all in one process; the election server and a development OpenID Connect provider listen on
127.0.0.1; trustees and voters talk to the server only over HTTP):

1. the commission creates the election (a mayoral race, 1 of 4; a referendum, yes/no; a subsidy-project
   approval vote, up to 3 of 8), loads and commits a roll of synthetic residents, and 5 trustees run the
   key ceremony (threshold 3);
2. voting opens; residents vote with test JPKI cards (software My Number cards issued by a test CA, checked
   against a real CRL) or with a digital ID (the local OIDC provider) plus a face-match decision; some
   challenge a ballot first (Benaloh: the opening is published and re-verified on a "second device"),
   some re-vote, a few vote again at a polling-place kiosk (which overrides their internet ballots);
3. voting closes; the counted ballots are tallied; 4 of the 5 trustees decrypt (one is absent); the result
   is published, the signed result PDF produced and the election record exported;
   three witnesses (``tvote witness`` directories, quorum 2, pinned to the log key) cosign a checkpoint
   after voting (the sampled receipts are checked under it) and the final one (w3 is down then: two of
   three still make the quorum, so the record passes V5);
4. the result table is printed and checked against the tally of the simulated choices.

The building blocks (:func:`tsukuba_manifest`, :func:`make_residents`, :class:`LoopbackServer`,
:func:`start_election`) are also what the intake, client and demo tests use. NEVER for a real election:
test CAs, synthetic people, a development OIDC provider and a stub face-match engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography.hazmat.primitives import serialization
from nacl.public import PrivateKey

from voting._errors import read_error
from voting._loopback import LoopbackServer
from voting._testca import JpkiTestCa, RsaKeyPool, TestCard, TestResident

__all__ = [
    "DemoElection",
    "DemoWitnesses",
    "Resident",
    "demo",
    "make_residents",
    "roll_csv",
    "start_election",
    "tsukuba_manifest",
]


def _t(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tsukuba_manifest(
    now: dt.datetime,
    *,
    election_id: str = "tsukuba-2027",
    trustees: int = 5,
    threshold: int = 3,
    small: bool = False,
) -> dict[str, Any]:
    """The demo manifest. ``small`` keeps the same three contest kinds with fewer selections (tests)."""
    candidates = [
        ("cand-1", "青木 一郎", "Ichiro Aoki"),
        ("cand-2", "石井 花子", "Hanako Ishii"),
        ("cand-3", "上田 誠", "Makoto Ueda"),
        ("cand-4", "江藤 さくら", "Sakura Eto"),
    ]
    projects = [
        ("proj-1", "研究学園駅前の自転車道", "Cycle lanes at Kenkyu-gakuen station"),
        ("proj-2", "筑波山の登山道整備", "Mount Tsukuba trail repair"),
        ("proj-3", "小学校の図書室改修", "Primary-school library renovation"),
        ("proj-4", "公園の遊具更新", "New playground equipment"),
        ("proj-5", "高齢者向け送迎バス", "Shuttle bus for elderly residents"),
        ("proj-6", "公民館の太陽光発電", "Solar panels on community centres"),
        ("proj-7", "子ども食堂への助成", "Grants for children's cafeterias"),
        ("proj-8", "外国人住民の相談窓口", "Help desk for foreign residents"),
    ]
    if small:
        candidates, projects = candidates[:3], projects[:4]
    return {
        "format": "tvote-manifest/1",
        "election_id": election_id,
        "name": _t(
            "つくば市長選挙・住民投票・市民提案事業 (デモ)", "Tsukuba City election and referendum (demo)"
        ),
        "voting_period": {
            "opens": _rfc3339(now - dt.timedelta(hours=1)),
            "closes": _rfc3339(now + dt.timedelta(days=7)),
        },
        "contests": [
            {
                "id": "mayor",
                "kind": "one_of_n",
                "min": 0,
                "max": 1,
                "name": _t("つくば市長", "Mayor of Tsukuba"),
                "selections": [{"id": i, "name": _t(ja, en)} for i, ja, en in candidates],
            },
            {
                "id": "referendum",
                "kind": "yes_no",
                "min": 0,
                "max": 1,
                "name": _t("市庁舎移転の是非", "Move the city hall?"),
                "selections": [
                    {"id": "yes", "name": _t("賛成", "Yes")},
                    {"id": "no", "name": _t("反対", "No")},
                ],
            },
            {
                "id": "subsidy",
                "kind": "up_to_k",
                "min": 0,
                "max": 3 if not small else 2,
                "name": _t("市民提案事業 (3件まで)", "Citizen projects (up to 3)"),
                "selections": [{"id": i, "name": _t(ja, en)} for i, ja, en in projects],
            },
        ],
        "trustees": {"n": trustees, "threshold": threshold},
        "revote_rule": "last-internet-kiosk-overrides",
        "auth_methods": ["jpki", "oidc+face"],
    }


# --------------------------------------------------------------------------------------------- residents

_FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田"]
_GIVEN = ["翔", "陽菜", "蓮", "結衣", "大翔", "葵", "湊", "凛", "悠真", "芽依", "樹", "美咲"]
_TOWNS = ["天久保", "春日", "竹園", "吾妻", "松代", "並木", "研究学園", "みどりの", "北条", "筑波"]


@dataclass(frozen=True, slots=True)
class Resident:
    """A synthetic resident: register id, basic-four data and a test My Number card."""

    resident_id: str
    person: TestResident
    card: TestCard = field(repr=False)


def make_residents(
    n: int, ca: JpkiTestCa, now: dt.datetime, *, seed: int = 2027, pool: RsaKeyPool | None = None
) -> list[Resident]:
    """``n`` synthetic residents of Tsukuba with test cards (keys drawn from ``pool`` when given)."""
    rnd = random.Random(seed)  # synthetic data only; not security relevant
    out: list[Resident] = []
    for i in range(n):
        name = f"{rnd.choice(_FAMILY)} {rnd.choice(_GIVEN)}{i}"
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randrange(0, 365 * 60))
        address = f"茨城県つくば市{rnd.choice(_TOWNS)}{rnd.randint(1, 4)}丁目{rnd.randint(1, 30)}番{i + 1}号"
        person = TestResident(name=name, birth_date=birth, address=address)
        key = pool.key(i) if pool is not None else None
        out.append(Resident(f"R{i + 1:06d}", person, ca.issue_card(person, now, key=key)))
    return out


def roll_csv(residents: Sequence[Resident]) -> bytes:
    """The roll file the register exports (the service hashes the matching data and drops it)."""
    lines = ["resident_id,name,birth_date,address"]
    for r in residents:
        p = r.person
        lines.append(f"{r.resident_id},{p.name},{p.birth_date.isoformat()},{p.address}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# -------------------------------------------------------------------------------------------- HTTP server


# ------------------------------------------------------------------------------------------ the election


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
    kiosk_token: str
    trustees: dict[int, Any]
    residents: list[Resident]
    ca: JpkiTestCa
    oidc_provider: Any | None
    server: LoopbackServer | None
    #: the election's witnesses (``start_election(witnesses=3)``), or None (no witnesses: quorum 0)
    witnesses: DemoWitnesses | None = None

    def cosign(self, names: Sequence[str] | None = None) -> list[int]:
        """One round of the witnesses (``names``, default all) against the running server."""
        if self.witnesses is None:
            raise RuntimeError("this election has no witnesses")
        return self.witnesses.cosign(self.base_url, names)

    def admin(self, path: str, method: str = "POST", **kw: Any) -> Any:
        r = _admin_request(self.http, self.admin_token, method, path, **kw)
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content

    def close_early(self, reason: str = "demo: every resident has voted") -> Any:
        """Close voting before the manifest's end: an override, with its reason published in the entry."""
        return self.admin("/close", json={"override_reason": reason})

    def ledger_size(self) -> int:
        return int(self.service.ledger.size)

    def client(self, **kw: Any) -> Any:
        from voting.client import VoterClient

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
    """
    from voting._trustee_client import run_key_ceremony
    from voting.app import create_app

    now = now or dt.datetime.now(dt.UTC)
    admin_token = secrets.token_urlsafe(32)
    kiosk_token = secrets.token_urlsafe(32)
    provider, oidc_client = _start_dev_oidc(oidc_residents) if oidc_residents else (None, None)
    try:
        settings, intake_config = demo_settings(
            data_dir,
            ca,
            now,
            admin_token=admin_token,
            kiosk_token=kiosk_token,
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
        )
        app = create_app(settings, intake=intake_config)
    except BaseException:
        if provider is not None:
            provider.stop()
        raise
    service = app.state.service
    demo_witnesses: DemoWitnesses | None = None
    server: LoopbackServer | None = None
    http: httpx.Client
    if real_http:
        server = LoopbackServer(app, lifespan=True)  # its keepers run, as under `tvote serve`
        base_url = server.start(timeout=15)
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
            from voting._trustee_client import enrolment_public_key

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
            kiosk_token=kiosk_token,
            trustees=dict(trustees),
            residents=list(residents),
            ca=ca,
            oidc_provider=provider,
            server=server,
            witnesses=demo_witnesses,
        )
    finally:
        http.close()
        if server is not None:
            server.stop()
        if provider is not None:
            provider.stop()
        service.close()


_DEMO_OIDC_CLIENT = "tvote-demo"
_DEMO_REDIRECT = "http://127.0.0.1:8000/vote/oidc-callback"


def _start_dev_oidc(oidc_residents: Sequence[Resident]) -> tuple[Any, Any]:
    from voting._dev_oidc import DevClient, DevOidcProvider, DevSubject

    first = oidc_residents[0]
    client = DevClient(_DEMO_OIDC_CLIENT, secrets.token_urlsafe(24), (_DEMO_REDIRECT,))
    provider = DevOidcProvider([client], DevSubject(_subject(first), _claims(first)))
    provider.start()
    return provider, client


def demo_settings(
    data_dir: Path,
    ca: JpkiTestCa,
    now: dt.datetime,
    *,
    admin_token: str,
    kiosk_token: str,
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
) -> tuple[Any, Any]:
    """The demo's server settings and intake configuration, through the same path as ``tvote serve``.

    Writes the test CA (trust anchor) and, for each municipality in ``cities`` (the residents' cities), the
    complete CRL of its partition (listing its ``revoked`` cards) and an empty delta CRL on it, into
    ``data_dir``; ``oidc`` is
    ``(issuer, client)``: a started development provider and the server's
    :class:`voting._dev_oidc.DevClient` there. The face-match
    engine is the in-process deterministic test engine with synthetic reference images (injected).
    """
    from voting._intake_config import IntakeConfig
    from voting._settings import Settings, hash_kiosk_token
    from voting.client import tls_context

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
        from voting._dev_oidc import DEV_ACR, DEV_TRUST_FRAMEWORK

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
        kiosk_token_hashes=(hash_kiosk_token(kiosk_token),),
        database_url=database_url,
        checkpoint_interval=checkpoint_interval,
        checkpoint_max_entries=checkpoint_max_entries,
        **extra,
    )
    face: Any = None
    reference: Any = None
    if oidc is not None:
        from voting.auth import DeterministicTestMatcher, DirectoryReferencePhotoSource

        face = DeterministicTestMatcher()
        reference_photo_dir(data_dir).mkdir(parents=True, exist_ok=True)
        reference = DirectoryReferencePhotoSource(reference_photo_dir(data_dir))
    intake = IntakeConfig.from_settings(
        settings,
        face=face,
        face_reference=reference,
        oidc_http_client_kwargs={"verify": tls_context()},
    )
    return settings, intake


def demo_face_image(resident_id: str) -> bytes:
    """A synthetic stand-in for a resident's face photo (no biometrics anywhere in the demo)."""
    return b"tvote-demo-face:" + resident_id.encode()


def reference_photo_dir(data_dir: Path) -> Path:
    """Where the demo keeps the roll residents' reference photos (``<voter alias hex>.png``)."""
    return data_dir / "reference-photos"


def write_reference_photos(
    directory: Path, roll_key: bytes, election_id: str, residents: Sequence[Resident]
) -> None:
    """What the commission exports once the roll is committed: each roll resident's photo, named by the
    resident's voter alias (it holds the roll key), for ``DirectoryReferencePhotoSource``."""
    from voting._roll import voter_alias

    directory.mkdir(parents=True, exist_ok=True)
    for r in residents:
        alias = voter_alias(roll_key, election_id, r.resident_id)
        (directory / f"{alias.hex()}.png").write_bytes(demo_face_image(r.resident_id))


def _subject(r: Resident) -> str:
    """The resident's account id at the development provider (not the register's resident id)."""
    return "dev-account-" + hashlib.sha256(r.resident_id.encode()).hexdigest()[:16]


def demo_live_capture(resident: Resident) -> dict[str, str]:
    """The ``face`` object a voter's device sends: the capture and some liveness evidence (hex)."""
    return {
        "media_type": "image/png",
        "image": demo_face_image(resident.resident_id).hex(),
        "liveness_evidence": b"blink+turn".hex(),
    }


def _claims(r: Resident) -> dict[str, Any]:
    p = r.person
    return {"name": p.name, "birthdate": p.birth_date.isoformat(), "address": {"formatted": p.address}}


def login_as(provider: Any, resident: Resident) -> None:
    """Make the development provider approve ``resident`` on the next login."""
    from voting._dev_oidc import DevSubject

    provider.subject = DevSubject(_subject(resident), _claims(resident))


# ----------------------------------------------------------------------------------------------- command


def demo(
    out: Annotated[Path, typer.Option("--out", help="where to write record/ and result.pdf")] = Path(
        "demo-out"
    ),
    voters: Annotated[int, typer.Option(help="number of synthetic residents")] = 200,
    seed: Annotated[int, typer.Option(help="seed of the simulated choices")] = 2027,
) -> None:
    """Run a whole demo election (Tsukuba-style: mayor, referendum, subsidy projects) and print the result."""
    raise typer.Exit(run_demo(out, voters=voters, seed=seed).exit_code)


@dataclass
class DemoOutcome:
    exit_code: int
    record_dir: Path
    pdf: Path
    results: dict[str, dict[str, int]]
    expected: dict[str, dict[str, int]]
    summary: dict[str, int]


@dataclass
class _Plan:
    """What one synthetic resident does (drawn from the seeded RNG)."""

    resident: Resident
    method: str  # "jpki" | "oidc" | "abstain"
    challenge: bool
    revote: bool
    kiosk: bool


def _random_choices(rnd: random.Random, manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in manifest["contests"]:
        ids = [s["id"] for s in c["selections"]]
        if c["kind"] == "one_of_n":
            weights = [5, 3, 2, 1][: len(ids)] + [1] * max(0, len(ids) - 4)
            out[c["id"]] = [] if rnd.random() < 0.05 else rnd.choices(ids, weights=weights)
        elif c["kind"] == "yes_no":
            out[c["id"]] = [] if rnd.random() < 0.05 else [rnd.choices(["yes", "no"], weights=[3, 2])[0]]
        else:
            out[c["id"]] = sorted(rnd.sample(ids, rnd.randint(0, int(c["max"]))))
    return out


def _plans(rnd: random.Random, residents: Sequence[Resident]) -> list[_Plan]:
    plans = []
    for r in residents:
        x = rnd.random()
        method = "abstain" if x < 0.08 else ("oidc" if x < 0.25 else "jpki")
        plans.append(
            _Plan(
                r,
                method,
                challenge=method != "abstain" and rnd.random() < 0.08,
                revote=method != "abstain" and rnd.random() < 0.12,
                kiosk=method == "jpki" and rnd.random() < 0.03,
            )
        )
    if not any(p.kiosk for p in plans):  # the record must exercise the kiosk rule
        next(p for p in plans if p.method == "jpki").kiosk = True
    return plans


def run_demo(
    out: Path, *, voters: int = 200, seed: int = 2027, console: Any | None = None, workers: int = 4
) -> DemoOutcome:
    """Run the whole demo election (see the module docstring); write ``out/record`` and ``out/result.pdf``."""
    import concurrent.futures as cf
    import shutil
    import tempfile

    from rich.console import Console

    from voting._trustee_client import run_decryption

    con = console or Console()
    t0 = time.monotonic()
    out = Path(out)
    record_dir, pdf_path = out / "record", out / "result.pdf"
    if record_dir.exists():
        shutil.rmtree(record_dir)
    pdf_path.unlink(missing_ok=True)
    (out / "commission-root.pem").unlink(missing_ok=True)
    (out / "pins.json").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    now = dt.datetime.now(dt.UTC)
    rnd = random.Random(seed)  # synthetic choices only
    ca = JpkiTestCa.generate(now)
    residents = make_residents(voters, ca, now, seed=seed, pool=RsaKeyPool(16))
    plans = _plans(rnd, residents)
    manifest = tsukuba_manifest(now)
    observers = PrivateKey.generate()  # the independent observers' oversight key (`tvote observers keygen`)
    manifest["oversight"] = {"x25519_public_key": bytes(observers.public_key).hex()}
    oidc_residents = [p.resident for p in plans if p.method == "oidc"]
    con.print(
        f"[bold]tvote demo[/bold]: {voters} synthetic residents, 5 trustees (quorum 3), 3 witnesses "
        f"(quorum {DEMO_WITNESS_QUORUM}), SQLite, real HTTP"
    )

    with (
        tempfile.TemporaryDirectory(prefix="tvote-demo-") as tmp,
        start_election(
            Path(tmp),
            residents,
            ca,
            manifest,
            now=now,
            oidc_residents=oidc_residents,
            witnesses=DEMO_WITNESSES,
            pinned=True,
        ) as e,
    ):
        con.print(f"  server {e.base_url}: election created, roll committed, key ceremony done, voting open")
        con.print(
            f"  witnesses {', '.join(DEMO_WITNESSES)} (quorum {DEMO_WITNESS_QUORUM}) pinned to the log key "
            f"({time.monotonic() - t0:.1f}s)"
        )
        counted: dict[str, dict[str, list[str]]] = {}
        stats = {"challenged": 0, "revotes": 0, "kiosk": 0, "oidc": 0, "jpki": 0}
        receipts: list[Any] = []
        lock = threading.Lock()

        info = e.election_info()

        def vote_internet(p: _Plan) -> None:
            with e.client(election=info, self_check=False) as c:
                choices = _random_choices(random.Random(f"{seed}/{p.resident.resident_id}"), manifest)
                if p.challenge:  # encrypt, challenge (the opening is checked on a second device), vote again
                    c.challenge(choices)
                rounds = [choices]
                if p.revote:
                    rounds.append(
                        _random_choices(random.Random(f"{seed}/{p.resident.resident_id}/2"), manifest)
                    )
                for ch in rounds:
                    if p.method == "oidc":
                        login_as(e.oidc_provider, p.resident)
                        r = c.cast_oidc(ch, face=demo_live_capture(p.resident))
                    else:
                        r = c.cast_jpki(p.resident.card, ch)
                    with lock:
                        receipts.append(r)
                with lock:
                    counted[p.resident.resident_id] = rounds[-1]
                    stats["challenged"] += p.challenge
                    stats["revotes"] += p.revote
                    stats[p.method] += 1

        jpki_plans = [p for p in plans if p.method == "jpki"]
        oidc_plans = [p for p in plans if p.method == "oidc"]
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(vote_internet, jpki_plans))
        for p in oidc_plans:  # the development provider approves one subject at a time
            vote_internet(p)
        for p in (p for p in plans if p.kiosk):  # in person, later: overrides the internet ballots
            ch = _random_choices(random.Random(f"{seed}/{p.resident.resident_id}/kiosk"), manifest)
            with e.client(election=info, self_check=False) as c:
                receipts.append(c.cast_jpki(p.resident.card, ch, kiosk_token=e.kiosk_token))
            counted[p.resident.resident_id] = ch
            stats["kiosk"] += 1
        # receipts are pending until the next scheduled checkpoint (every second here): wait for the one that
        # covers the last ballot, then a round of the three witnesses cosigns it
        with e.client() as c:
            receipts = [c.complete_receipt(r) for r in receipts]
        e.cosign()
        with e.client() as c:  # every voter can check a receipt (witness quorum included); a sample here
            for r in rnd.sample(receipts, min(10, len(receipts))):
                c.verify_receipt(r)
        con.print(
            f"  voting: {stats['jpki']} by My Number card, {stats['oidc']} by digital ID + face match, "
            f"{stats['challenged']} challenged a ballot, {stats['revotes']} re-voted, "
            f"{stats['kiosk']} at a kiosk ({time.monotonic() - t0:.1f}s)"
        )

        e.close_early()
        (out / "evidence.json").write_text(json.dumps(e.admin("/evidence/export")), encoding="utf-8")
        e.admin("/tally")  # signs a checkpoint covering tally.encrypted
        # trustees decrypt only a tally under a checkpoint the witness quorum cosigned: one round of the
        # witnesses; each trustee then relies on that checkpoint (GET /ledger/checkpoint/witnessed), though
        # the partial decryptions before its own have made newer, not yet cosigned, ones
        e.service.ledger.checkpoint()
        e.cosign()
        absent = max(e.trustees)
        for i, t in sorted(e.trustees.items()):
            if i == absent:
                continue
            run_decryption(e.http, [t])
        result = e.admin("/result")
        e.admin("/declaration")
        e.service.ledger.checkpoint()
        # the final checkpoint: w3 is down, w1 and w2 still make the quorum of 2 (verifier V5)
        e.cosign(["w1", "w2"])
        e.service.ledger.export(record_dir)
        pdf_path.write_bytes(e.service.result_pdf())
        signer = e.service.commission_signer()  # the (test) commission root, for `tvote-verify --trust-root`
        root = signer.chain[-1] if signer.chain else signer.certificate
        (out / "commission-root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
        shutil.copyfile(pdf_path, record_dir / "result.pdf")
        audit = _audit_evidence(e, Path(tmp), observers, record_dir, out / "evidence.json")
        con.print(
            f"  observers' evidence audit: {audit.human().splitlines()[-1]} "
            f"({audit.justified} of {audit.ballots} cast ballots justified)"
        )
        from voting._pins import official_pins  # what the commission publishes out of band

        (out / "pins.json").write_text(json.dumps(official_pins(e.service.manifest), indent=1) + "\n")

    expected = {c["id"]: {s["id"]: 0 for s in c["selections"]} for c in manifest["contests"]}
    for choices in counted.values():
        for cid, sels in choices.items():
            for sid in sels:
                expected[cid][sid] += 1
    results = {c: {s: int(v) for s, v in sels.items()} for c, sels in result["results"].items()}
    summary = {k: int(result[k]) for k in ("cast", "counted", "superseded", "overridden", "spoiled")}
    _print_results(con, manifest, results, summary, absent)
    ok = results == expected and summary["counted"] == len(counted) and audit.ok
    con.print(f"  record: [bold]{record_dir}[/bold]   signed result PDF: [bold]{pdf_path}[/bold]")
    con.print(f"  check it (official mode): .venv/bin/tvote-verify {record_dir} --pins {out / 'pins.json'}")
    if ok:
        con.print(
            f"[green]the published result equals the tally of the simulated choices[/green] "
            f"({time.monotonic() - t0:.1f}s)"
        )
    else:
        con.print("[red]MISMATCH: the published result differs from the simulated choices[/red]")
    return DemoOutcome(0 if ok else 1, record_dir, pdf_path, results, expected, summary)


def _audit_evidence(e: DemoElection, data_dir: Path, key: Any, record: Path, export: Path) -> Any:
    """``tvote audit-evidence`` on the demo: the test CA root and CRLs, the provider's JWKS."""
    from voting._audit import audit_evidence
    from voting.auth import load_crl

    crls = [load_crl(f.read_bytes()) for f in sorted((data_dir / "jpki-crls").iterdir())]
    jwks = None
    if e.oidc_provider is not None:
        jwks = {"keys": [k.as_dict(private=False) for k in e.oidc_provider.jwks_keys]}
    return audit_evidence(
        record, export, key, jpki_roots=[e.ca.certificate], crls=crls, oidc_jwks=jwks, accept_test_policy=True
    )


def _print_results(
    con: Any,
    manifest: Mapping[str, Any],
    results: Mapping[str, Mapping[str, int]],
    summary: Mapping[str, int],
    absent: int,
) -> None:
    from rich.table import Table

    for c in manifest["contests"]:
        t = Table(title=f"{c['name']['ja']} / {c['name']['en']}", title_justify="left")
        t.add_column("selection")
        t.add_column("votes", justify="right")
        for s in sorted(c["selections"], key=lambda s: -results[c["id"]][s["id"]]):
            t.add_row(f"{s['name']['ja']} ({s['name']['en']})", str(results[c["id"]][s["id"]]))
        con.print(t)
    con.print(
        f"  ballots cast {summary['cast']}, counted {summary['counted']}, superseded by a re-vote "
        f"{summary['superseded']}, overridden by a kiosk ballot {summary['overridden']}, spoiled "
        f"(challenged) {summary['spoiled']}; trustee {absent} absent at decryption"
    )
