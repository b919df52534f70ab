"""The demo (``tvote demo``): a whole Tsukuba-style election on the embedded SQLite default, over real HTTP.

What it runs (all in one process; the election server and a development OpenID Connect provider listen on
127.0.0.1; trustees and voters talk to the server only over HTTP):

1. the commission creates the election (a mayoral race, 1 of 4; a referendum, yes/no; a subsidy-project
   approval vote, up to 3 of 8), loads and commits a roll of synthetic residents, and 5 trustees run the
   key ceremony (threshold 3);
2. voting opens; residents vote with test JPKI cards (software My Number cards issued by a test CA, checked
   against a real CRL; some sign on the phone through a local Digital Authentication App emulator) or with a
   digital ID (the local OIDC provider) plus a face-match decision; some challenge a ballot first (Benaloh:
   the opening is published and re-verified on a "second device"), some re-vote, a few vote again at a
   polling place with two enrolled kiosks (the kiosk ballot overrides their internet ballots; the second
   kiosk is revoked halfway and its next request refused, the first is closed at the end:
   :mod:`voting.testing._demo_kiosk`);
3. voting closes; the counted ballots are tallied; 4 of the 5 trustees decrypt (one is absent); the result
   is published, the signed result PDF produced and the election record exported;
   three witnesses (``tvote witness`` directories, quorum 2, pinned to the log key) cosign a checkpoint
   after voting (the sampled receipts are checked under it) and the final one (w3 is down then: two of
   three still make the quorum, so the record passes V5);
4. the result table is printed and checked against the tally of the simulated choices.

With ``serve`` (``tvote demo --serve``) the demo stops after step 2 with voting still open, leaves the
server on ``127.0.0.1:<port>`` (default 8000) and lets a person vote in a browser: the booth at ``/``, with
three test My Number cards of residents kept out of the simulation (signed on the "phone" through the Digital
Authentication App emulator, which holds only those three cards then) and the digital ID of a fourth (the
development provider signs that resident in; ``<out>/fake-camera.mjpeg`` is the resident's picture as
Chromium's fake camera, for the face check). Witnesses cosign every few seconds, so the booth's receipts and
Check my ballot verify under a cosigned checkpoint. When the person presses Enter (or stdin ends) the demo
goes on with step 3; the result must then equal the simulated tally plus at most one counted ballot per
kept resident, and the demo prints what the browser's ballots added.

Its building blocks (:mod:`voting.testing._residents`, :mod:`voting.testing._demo_election`) are also
what the intake, client and demo tests use. NEVER for a real election:
test CAs, synthetic people, a development OIDC provider and a stub face-match engine.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from nacl.public import PrivateKey

from ._demo_election import DEMO_WITNESS_QUORUM, DEMO_WITNESSES, DemoElection, start_election
from ._demo_kiosk import run_polling_place
from ._residents import Resident, demo_live_capture, login_as, make_residents, tsukuba_manifest
from ._testca import JpkiTestCa, RsaKeyPool

__all__ = ["DemoOutcome", "ServeOptions", "run_demo"]

#: ``tvote demo --serve``: the residents kept out of the simulation for the person at the browser (cards)
SERVE_CARD_RESIDENTS = 3
#: seconds between the witnesses' rounds while the browser votes
SERVE_WITNESS_INTERVAL = 5.0
#: at least this many residents vote (again) at the polling place's kiosks
_KIOSK_VOTERS = 4


@dataclass(frozen=True)
class ServeOptions:
    """``tvote demo --serve``: keep voting open on ``127.0.0.1:port`` for a person at a browser.

    ``wait`` is called once the booth is open and returns when the person is done (default: wait for Enter on
    the terminal; the end of stdin goes on at once)."""

    port: int = 8000
    wait: Callable[[], None] | None = None


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
    method: str  # "jpki" | "jpki-app" (the card on the phone) | "oidc" | "abstain"
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
    # the record must exercise the kiosk rule, and the polling place needs voters at both kiosks
    short = max(0, _KIOSK_VOTERS - sum(p.kiosk for p in plans))
    for p in [p for p in plans if p.method == "jpki" and not p.kiosk][:short]:
        p.kiosk = True
    # every tenth card voter (at least one) signs on the phone, through the Digital Authentication App
    app = [p for p in plans if p.method == "jpki" and not p.kiosk][::10]
    for p in app:
        p.method = "jpki-app"
    return plans


def _approve_on_phone(e: DemoElection, resident: Resident, app_url: str) -> None:
    """What the resident does in the app: approve with the card and its signing PIN (the emulator's API)."""
    assert e.dapp is not None
    answer = e.dapp.approve(app_url, e.dapp_cards[resident.resident_id])
    if answer != {"status": "approved"}:
        raise RuntimeError(f"the signing app did not approve: {answer}")


def run_demo(
    out: Path,
    *,
    voters: int = 200,
    seed: int = 2027,
    console: Any | None = None,
    workers: int = 4,
    serve: ServeOptions | None = None,
) -> DemoOutcome:
    """Run the whole demo election (see the module docstring); write ``out/record`` and ``out/result.pdf``.
    ``serve``: pause with voting open for a person at a browser (``tvote demo --serve``)."""
    import concurrent.futures as cf
    import shutil
    import tempfile

    from rich.console import Console

    from ._ceremony import run_decryption

    con = console or Console()
    t0 = time.monotonic()
    out = Path(out)
    record_dir, pdf_path = out / "record", out / "result.pdf"
    if record_dir.exists():
        shutil.rmtree(record_dir)
    pdf_path.unlink(missing_ok=True)
    (out / "commission-root.pem").unlink(missing_ok=True)
    (out / "pins.json").unlink(missing_ok=True)
    (out / "fake-camera.mjpeg").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    now = dt.datetime.now(dt.UTC)
    rnd = random.Random(seed)  # synthetic choices only
    ca = JpkiTestCa.generate(now)
    kept = SERVE_CARD_RESIDENTS + 1 if serve is not None else 0  # the person's residents (--serve)
    residents = make_residents(voters + kept, ca, now, seed=seed, pool=RsaKeyPool(16))
    yours = residents[voters:]
    plans = _plans(rnd, residents[:voters])
    manifest = tsukuba_manifest(now)
    observers = PrivateKey.generate()  # the independent observers' oversight key (`tvote observers keygen`)
    manifest["oversight"] = {"x25519_public_key": bytes(observers.public_key).hex()}
    oidc_residents = [p.resident for p in plans if p.method == "oidc"] + yours[SERVE_CARD_RESIDENTS:]
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
            signing_app=True,
            port=serve.port if serve is not None else 0,
        ) as e,
    ):
        con.print(f"  server {e.base_url}: election created, roll committed, key ceremony done, voting open")
        con.print(
            f"  witnesses {', '.join(DEMO_WITNESSES)} (quorum {DEMO_WITNESS_QUORUM}) pinned to the log key "
            f"({time.monotonic() - t0:.1f}s)"
        )
        counted: dict[str, dict[str, list[str]]] = {}
        stats = {"challenged": 0, "revotes": 0, "kiosk": 0, "oidc": 0, "jpki": 0, "jpki-app": 0}
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
                    elif p.method == "jpki-app":  # the phone: the app's page, the card and its signing PIN
                        r = c.cast_jpki_app(
                            ch, approve=lambda url, p=p: _approve_on_phone(e, p.resident, url)
                        )
                    else:
                        r = c.cast_jpki(p.resident.card, ch)
                    with lock:
                        receipts.append(r)
                with lock:
                    counted[p.resident.resident_id] = rounds[-1]
                    stats["challenged"] += p.challenge
                    stats["revotes"] += p.revote
                    stats[p.method] += 1

        jpki_plans = [p for p in plans if p.method in ("jpki", "jpki-app")]
        oidc_plans = [p for p in plans if p.method == "oidc"]
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(vote_internet, jpki_plans))
        for p in oidc_plans:  # the development provider approves one subject at a time
            vote_internet(p)
        # in person, later, at the polling place's two kiosks: overrides the internet ballots
        at_kiosk = {
            p.resident.resident_id: _random_choices(
                random.Random(f"{seed}/{p.resident.resident_id}/kiosk"), manifest
            )
            for p in plans
            if p.kiosk
        }
        place = run_polling_place(
            e, [p.resident for p in plans if p.kiosk], lambda r: at_kiosk[r.resident_id]
        )
        receipts.extend(place.receipts)
        counted.update(at_kiosk)
        stats["kiosk"] = len(at_kiosk)
        for line in place.lines():
            con.print(f"  {line}")
        # receipts are pending until the next scheduled checkpoint (every second here): wait for the one that
        # covers the last ballot, then a round of the three witnesses cosigns it
        with e.client() as c:
            receipts = [c.complete_receipt(r) for r in receipts]
        e.cosign()
        with e.client() as c:  # every voter can check a receipt (witness quorum included); a sample here
            for r in rnd.sample(receipts, min(10, len(receipts))):
                c.verify_receipt(r)
        con.print(
            f"  voting: {stats['jpki']} by My Number card, {stats['jpki-app']} by the card on the phone "
            f"(Digital Authentication App emulator), {stats['oidc']} by digital ID + face match, "
            f"{stats['challenged']} challenged a ballot, {stats['revotes']} re-voted, "
            f"{stats['kiosk']} at a kiosk ({time.monotonic() - t0:.1f}s)"
        )

        if serve is not None:
            _serve_person(con, e, out, yours, serve)
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
        record_url = e.service.record_url()  # the server this demo ran (its port), as the PDF prints it
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
    browser = summary["counted"] - len(counted)  # the person's counted ballots (--serve), else 0
    if serve is not None:
        con.print(f"  ballots cast in the browser and counted: {browser}")
        added = [
            f"{c}/{sid} +{n - expected[c][sid]}"
            for c, sels in results.items()
            for sid, n in sels.items()
            if n != expected[c][sid]
        ]
        con.print(f"  what they add to the simulated tally: {', '.join(added) or 'nothing'}", soft_wrap=True)
    ok = _within(manifest, results, expected, browser, kept) and audit.ok
    con.print(f"  record: [bold]{record_dir}[/bold]   signed result PDF: [bold]{pdf_path}[/bold]")
    con.print(f"  the declaration's link and QR code: {record_url}", soft_wrap=True)
    con.print(f"  check it (official mode): .venv/bin/tvote-verify {record_dir} --pins {out / 'pins.json'}")
    if ok:
        plus = " plus the browser's ballots" if serve is not None else ""
        con.print(
            f"[green]the published result equals the tally of the simulated choices{plus}[/green] "
            f"({time.monotonic() - t0:.1f}s)"
        )
    else:
        con.print("[red]MISMATCH: the published result differs from the simulated choices[/red]")
    return DemoOutcome(0 if ok else 1, record_dir, pdf_path, results, expected, summary)


def _within(
    manifest: Mapping[str, Any],
    results: Mapping[str, Mapping[str, int]],
    expected: Mapping[str, Mapping[str, int]],
    browser: int,
    kept: int,
) -> bool:
    """The published result is the simulated tally plus what ``browser`` counted ballots (at most ``kept``,
    one per resident kept for the browser) can add: never less for any selection, and per contest at most
    ``browser`` times the selections a ballot may mark. Without ``--serve`` (``kept`` 0): exactly equal."""
    if not 0 <= browser <= kept:
        return False
    if results.keys() != expected.keys():
        return False
    for c in manifest["contests"]:
        got, want = results[c["id"]], expected[c["id"]]
        if got.keys() != want.keys():
            return False
        added = [got[s] - want[s] for s in want]
        if min(added, default=0) < 0 or sum(added) > browser * int(c.get("max", 1)):
            return False
    return True


def _wait_for_enter() -> None:
    try:
        input()
    except EOFError:  # no terminal (stdin closed): go on
        pass


def _serve_person(
    con: Any, e: DemoElection, out: Path, yours: Sequence[Resident], serve: ServeOptions
) -> None:
    """Voting stays open for the person at the browser: only their three cards stay in the app emulator, the
    development provider signs in their digital-ID resident, whose picture becomes Chromium's fake camera;
    witnesses cosign every :data:`SERVE_WITNESS_INTERVAL` seconds until ``serve.wait`` returns."""
    from ._camera import write_fake_camera_video
    from ._dapp_emulator import DAPP_TEST_PIN
    from ._residents import demo_face_image

    assert e.dapp is not None and e.oidc_provider is not None
    cards, face = yours[:SERVE_CARD_RESIDENTS], yours[SERVE_CARD_RESIDENTS]
    keep = {e.dapp_cards[r.resident_id] for r in cards}
    for card_id in sorted(set(e.dapp_cards.values()) - keep):
        e.dapp.eject_card(card_id)
    login_as(e.oidc_provider, face)
    camera = write_fake_camera_video(demo_face_image(face.resident_id), out / "fake-camera.mjpeg")
    stop = threading.Event()

    def witness_rounds() -> None:
        while not stop.wait(SERVE_WITNESS_INTERVAL):
            try:
                e.cosign()
            except Exception as exc:  # a round that fails is tried again at the next interval
                con.print(f"  [yellow]witness round failed, tried again: {exc}[/yellow]")

    rounds = threading.Thread(target=witness_rounds, name="demo-witness-rounds", daemon=True)
    rounds.start()
    booth = e.base_url + "/"
    ids = ", ".join(r.resident_id for r in cards)
    con.print(
        f"\n[bold]the booth is open: {booth}[/bold] (Japanese; English one tap away)\n"
        "  My Number card on the phone: the booth opens the Digital Authentication App emulator in a new\n"
        f"    tab; cards {ids}, signing PIN {DAPP_TEST_PIN} (one resident each)\n"
        f"  digital ID + face: the development provider signs you in as {face.resident_id}; the face check\n"
        f"    needs a camera that shows {face.resident_id}'s picture: start Chromium with it as the camera:\n"
        "    chromium --use-fake-device-for-media-stream --use-fake-ui-for-media-stream \\\n"
        f"      --use-file-for-fake-video-capture={camera.resolve()} {booth}\n"
        f"  check a ballot: {e.base_url}/check (witnesses cosign every {SERVE_WITNESS_INTERVAL:g} s)\n"
        "[bold]press Enter here when you are done[/bold]: voting closes, the trustees decrypt, the record is "
        "exported\n",
        soft_wrap=True,  # the command line stays one line to copy, whatever the terminal's width
    )
    try:
        (serve.wait or _wait_for_enter)()
    finally:
        stop.set()
        rounds.join()


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
