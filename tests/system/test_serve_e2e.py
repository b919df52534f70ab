"""End to end over real HTTP: the REAL ``tvote serve`` process, driven only through the public CLIs and API.

The server runs as a subprocess configured like a deployment (a TOML config file plus ``TVOTE_*``
variables): a test JPKI CA as trust anchor with its CRL (one card revoked), a development OpenID Connect
provider on loopback, the deterministic face engine behind a small HTTP matcher (``HttpFaceMatcher`` wire
format) with an HTTP reference-photo source. Then:

``tvote admin create / load-roll / publish-roll`` → 3 trustees (quorum 2) ``tvote trustee init / register /
deal / verify-shares`` → ``finalize-keys`` / ``open`` → voters with :class:`voting.clients.voter.VoterClient`
(JPKI cards, one challenge, one re-vote, one digital ID + face, one kiosk override at an enrolled kiosk, a
kiosk request signed by another key, one revoked card) →
``close`` / ``tally`` → ``tvote trustee decrypt`` by 2 of 3 → ``publish`` / ``export`` →
``tvote-verify`` on the exported record (``--trust-root`` the commission root) and on one receipt.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tarfile
from typing import Any

import httpx
import pytest
from _serve_util import (
    CLOSE_EARLY_ARGS,
    ENGINE_ID,
    Cli,
    create_election_by_cli,
    enrol_kiosk,
    face_matcher_app,
    free_port,
    jpki_files,
    key_ceremony_by_cli,
    kiosk_cast,
    reference_photos,
    server_env,
    start_server,
    stop_server,
    wait_for_phase,
    write_config,
)

from voting.clients.kiosk import KioskApi, KioskApiError, KioskKey
from voting.clients.voter import ServerError, VoterClient
from voting.testing import (
    DEV_ACR,
    DEV_TRUST_FRAMEWORK,
    DevClient,
    DevOidcProvider,
    DevSubject,
    JpkiTestCa,
    LoopbackServer,
    RsaKeyPool,
    demo_claims,
    demo_live_capture,
    login_as,
    make_residents,
)

#: the test manifests name no witnesses (quorum 0): tvote-verify accepts that only when told
UNWITNESSED = ("--unsafe-allow-unwitnessed",)


@pytest.fixture
def world(tmp_path):
    """Test CA + CRL, OIDC provider, face matcher, config; the real server process; torn down afterwards."""
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(7, ca, now, pool=RsaKeyPool(7))
    revoked = residents[6]
    anchors, crls = jpki_files(tmp_path, ca, now, [revoked.card.certificate.serial_number])

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    redirect = f"{base}/vote/oidc-callback"
    client_secret = secrets.token_urlsafe(24)
    provider = DevOidcProvider(
        [DevClient("tvote-e2e", client_secret, (redirect,))],
        DevSubject(residents[3].resident_id, demo_claims(residents[3])),
    )
    photos: dict[str, bytes] = {}
    matcher = LoopbackServer(face_matcher_app(photos))
    roll_key = secrets.token_bytes(32)
    (tmp_path / "roll.key").write_text(roll_key.hex())
    admin_token = secrets.token_urlsafe(32)
    data = tmp_path / "data"
    config = tmp_path / "tvote.toml"
    provider.start()
    matcher_url = matcher.start()
    try:
        write_config(
            config,
            anchors,
            crls,
            rate_limit=100000,
            face_matcher_url=f"{matcher_url}/match",
            face_reference_url=f"{matcher_url}/reference",
            face_engine_id=ENGINE_ID,
            roll_key_file=str(tmp_path / "roll.key"),
        )
        env = server_env(
            TVOTE_ADMIN_TOKEN=admin_token,
            TVOTE_PUBLIC_URL=base,
            TVOTE_OIDC_ISSUER=provider.issuer,
            TVOTE_OIDC_CLIENT_ID="tvote-e2e",
            TVOTE_OIDC_CLIENT_SECRET=client_secret,
            TVOTE_OIDC_REDIRECT_URI=redirect,
            TVOTE_OIDC_ACR_VALUES=DEV_ACR,
            TVOTE_OIDC_TRUST_FRAMEWORKS=DEV_TRUST_FRAMEWORK,
            PW="a long trustee passphrase",
            PYTHONWARNINGS="ignore",
        )
        cli = Cli(env)
        server = start_server(cli, port, data, config)
        try:
            yield {
                "cli": cli,
                "base": base,
                "now": now,
                "ca": ca,
                "residents": residents,
                "revoked": revoked,
                "provider": provider,
                "photos": photos,
                "roll_key": roll_key,
                "admin_token": admin_token,
                "data": data,
                "tmp": tmp_path,
            }
        finally:
            stop_server(server)
    finally:
        matcher.stop()
        provider.stop()


def _votes(c: dict[str, list[str]], counts: dict[str, dict[str, int]]) -> None:
    for contest, sels in c.items():
        for s in sels:
            counts[contest][s] += 1


def test_serve_end_to_end(world: dict[str, Any]) -> None:
    from voting.testing import tsukuba_manifest

    cli: Cli = world["cli"]
    base, tmp, residents = world["base"], world["tmp"], world["residents"]
    srv = ["--server", base]

    # -- setup: manifest, roll (residents 0..5 are eligible; 6 has a revoked card but is on the roll too)
    manifest = tsukuba_manifest(world["now"], election_id="tsukuba-e2e", trustees=3, threshold=2, small=True)
    codes = create_election_by_cli(cli, base, tmp, manifest, residents)
    assert len(codes) == 3
    # the ledger routes answer as soon as the election exists (no special wiring in the server)
    first = httpx.get(base + "/api/v1/ledger/entries", params={"start": 0, "stop": 5}).json()["entries"]
    assert [json.loads(e["entry"])["type"] for e in first] == ["election.manifest"]
    cli.run("admin", "load-roll", *srv, "--roll", str(tmp / "roll.csv"))
    cli.run("admin", "publish-roll", *srv)
    # the commission exports the roll residents' reference photos, keyed by voter alias
    world["photos"].update(reference_photos(world["roll_key"], "tsukuba-e2e", residents))

    # -- key ceremony: three trustees, each on "their own machine" (concurrent processes)
    files = key_ceremony_by_cli(cli, base, tmp, codes)
    common = [*srv, "--passphrase-env", "PW"]
    assert "qualified trustees [1, 2, 3]" in cli.run("admin", "finalize-keys", *srv)
    wait_for_phase(base, "voting")  # the server opens voting by itself

    # -- voting over HTTP
    counts = {c["id"]: {s["id"]: 0 for s in c["selections"]} for c in manifest["contests"]}
    log_key = httpx.get(base + "/api/v1/ledger/witnesses").json()["log_key"]
    a = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-1", "proj-2"]}
    b = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": []}
    c_ = {"mayor": [], "referendum": ["yes"], "subsidy": ["proj-3"]}
    receipts = []
    with VoterClient(base, log_key=log_key) as v:
        receipts.append(v.cast_jpki(residents[0].card, a))  # plain JPKI
        _votes(a, counts)
        challenged = v.challenge(b)  # Benaloh: published opening re-verified on a second device
        assert challenged.opened == b
        receipts.append(v.cast_jpki(residents[1].card, b))
        _votes(b, counts)
        v.cast_jpki(residents[2].card, a)  # re-vote: the second ballot counts
        receipts.append(v.cast_jpki(residents[2].card, c_))
        _votes(c_, counts)
        login_as(world["provider"], residents[3])  # digital ID + face match through the HTTP matcher
        r_oidc = v.cast_oidc(b, face=demo_live_capture(residents[3]))
        receipts.append(r_oidc)
        _votes(b, counts)
        with pytest.raises(ServerError) as bad_face:  # a capture of someone else is refused
            login_as(world["provider"], residents[3])
            v.cast_oidc(a, face=demo_live_capture(residents[4]))
        assert bad_face.value.code == "face.rejected"
        v.cast_jpki(residents[4].card, b)  # internet ballot, then overridden at an enrolled kiosk
        with httpx.Client(base_url=base, timeout=60) as kiosk_http:
            kiosk, _ = enrol_kiosk(kiosk_http, world["admin_token"], "e2e-hall-1")
            receipts.append(kiosk_cast(kiosk, v, residents[4].card, a))
            _votes(a, counts)
            assert receipts[-1].channel == "kiosk"
            with pytest.raises(KioskApiError) as kiosk_bad:  # the kiosk's id, but not its key
                kiosk_cast(KioskApi(kiosk_http, KioskKey.generate(), "e2e-hall-1"), v, residents[5].card, a)
            assert kiosk_bad.value.code == "kiosk.signature"
        with pytest.raises(ServerError) as revoked:
            v.cast_jpki(world["revoked"].card, a)
        assert revoked.value.code == "jpki.revoked"
        for r in receipts:
            v.verify_receipt(r)
    assert r_oidc.channel == "internet"
    span = {"start": r_oidc.leaf_index, "stop": r_oidc.leaf_index + 1}
    entries = httpx.get(base + "/api/v1/ledger/entries", params=span).json()["entries"]
    face = json.loads(entries[0]["entry"])["payload"]["auth"]["face"]
    assert face == {"decision": True, "engine": ENGINE_ID}

    # -- tally: close, encrypted tally, 2 of 3 trustees decrypt, publish, export
    cli.run("admin", "close", *srv, *CLOSE_EARLY_ARGS)
    tally = json.loads(cli.run("admin", "tally", *srv))
    assert (tally["cast"], tally["counted"], tally["superseded"], tally["overridden"]) == (7, 5, 1, 1)
    assert tally["spoiled"] == 1
    cli.all([["trustee", "decrypt", *common, "--secret-file", str(f)] for f in files[:2]])
    cli.run("admin", "publish", *srv)
    result = httpx.get(base + "/api/v1/election/result").json()
    assert result["results"] == counts
    assert result["trustees_used"] == [1, 2]
    archive = tmp / "record.tar.gz"
    cli.run("admin", "export", *srv, "--out", str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / "export", filter="data")
    (record,) = (tmp / "export").iterdir()

    # -- the auditor: tvote-verify on the exported record and on one voter's receipt
    root = world["data"] / "commission-chain.pem"
    # the test manifest names no witnesses: accepted here as unwitnessed (V5 fails without the flag)
    cli.run(str(record), "--trust-root", str(root), "--log-key", log_key, *UNWITNESSED, prog="tvote-verify")
    receipt_file = tmp / "receipt.json"
    receipt_file.write_text(json.dumps(r_oidc.to_dict()), encoding="utf-8")
    cli.run(
        str(record),
        "--trust-root",
        str(root),
        "--receipt",
        str(receipt_file),
        *UNWITNESSED,
        prog="tvote-verify",
    )
    # a receipt the record does not hold is caught: exit 5, RECEIPT DOES NOT MATCH (a receipt problem; the
    # record itself is not INVALID for it)
    forged = dict(r_oidc.to_dict(), entry_hash="00" * 32)
    receipt_file.write_text(json.dumps(forged), encoding="utf-8")
    verify = [str(record), "--trust-root", str(root), "--receipt", str(receipt_file), *UNWITNESSED]
    cli.run(*verify, prog="tvote-verify", code=5)
