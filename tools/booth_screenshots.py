"""Take the screenshots of the residents' booth that ``docs/voting.md`` shows (section 8, "Screenshots").

    .venv/bin/python tools/booth_screenshots.py               # rewrites docs/images/booth/
    .venv/bin/python tools/booth_screenshots.py --out /tmp/x  # somewhere else

The script starts a real election server (``voting.testing.start_election``: the server ``tvote serve`` runs,
open for voting, the demo's three-contest manifest and three witnesses, the Digital Authentication App
emulator with every test card inserted, and a development digital-ID provider that signs in the third
resident), which serves the built booth (``voting/web/``; run ``make web`` first after changing web/). It
drives Debian's Chromium (``/usr/bin/chromium`` through Playwright, never a downloaded browser) like a
resident on a phone: a 390 × 844 CSS px viewport, device scale factor 1, reduced motion, and a fake camera
showing the third resident's drawn stand-in photo (``voting.testing.demo_face_image``, which the demo's test
face engine accepts). Every step is shot full-page as ``NN-step-lang.png`` (:data:`SHOTS`, in order) once it
has reached its final state (the encryption done, the QR codes drawn, the receipt's checks finished), so a
new run differs from the last only where the election does (tracking codes, QR codes, dates).

The PNGs are re-saved by Pillow (``optimize``, lossless) to keep the committed files small.
``tests/web/test_booth_screenshots.py`` runs this script and checks that it writes exactly the files
``docs/voting.md`` shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _booth_site import (  # noqa: E402
    BUILT_STATIC,
    CHROMIUM,
    BoothSite,
    camera_browser,
    route_provider_to_booth,
    tracking_code,
)

DEFAULT_OUT: Final[Path] = ROOT / "docs" / "images" / "booth"
#: what a resident sees, in order: (file name, what it shows)
SHOTS: Final[tuple[tuple[str, str], ...]] = (
    ("01-home-ja.png", "the election's home page"),
    ("02-choose-ja.png", "choosing in each contest"),
    ("03-review-ja.png", "the review"),
    ("04-tracking-ja.png", "the tracking code: cast, or check the encryption"),
    ("05-challenge-ja.png", "the checked encryption and its second-device QR code"),
    ("06-auth-ja.png", "the sign-in choice"),
    ("07-app-ja.png", "waiting for the Digital Authentication App"),
    ("08-app-phone-ja.png", "the app emulator's phone page: the card and its PIN"),
    ("09-receipt-ja.png", "the receipt, verified in the browser"),
    ("10-face-ja.png", "the digital-ID path: the camera and the liveness prompt"),
    ("11-check-en.png", "Check my ballot: the ballot that counts, cosigned by the witnesses"),
    ("12-check-revoted-en.png", "Check my ballot after a re-vote: this ballot no longer counts"),
    ("13-check-scan-en.png", "Check my ballot scanning a QR code with the camera"),
)
#: the names of shots, this script's and its earlier versions' (only these are deleted as stale)
STALE_NAME: Final[re.Pattern[str]] = re.compile(r"[0-9]+-[a-z0-9-]+-(ja|en)\.png")
WIDTH: Final[int] = 390
HEIGHT: Final[int] = 844
TIMEOUT_MS: Final[int] = 60_000
#: the resident who votes with the card on the phone, and the one who signs in with a digital ID
CARD_HOLDER, DIGITAL_ID = 1, 2
CHOICES: Final[dict[str, list[str]]] = {
    "mayor": ["cand-2"],
    "referendum": ["no"],
    "subsidy": ["proj-1", "proj-3"],
}
FACE_CHOICES: Final[dict[str, list[str]]] = {"mayor": ["cand-4"], "referendum": ["yes"], "subsidy": []}
REVOTE: Final[dict[str, list[str]]] = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-2"]}
#: the receipt's final states (web/src/booth/lib/vote-receipt.js): its checks in the browser are done
FINAL_RECEIPT_KEYS: Final[tuple[str, ...]] = (
    "receipt.verified",
    "receipt.verified_log",
    "receipt.verified_unwitnessed",
    "receipt.failed",
)
JA: Final[dict[str, str]] = json.loads(
    (ROOT / "web" / "src" / "booth" / "i18n" / "ja.json").read_text(encoding="utf-8")
)


def ja(key: str) -> str:
    """A Japanese text of the booth as its accessible name reads (the kanji without their readings)."""
    return re.sub(r"\[\[([^|\]]+)\|[^\]]+\]\]", r"\1", JA[key])


def japanese_font() -> bool:
    """Whether fontconfig (which Chromium on Linux asks) has a font for Japanese."""
    try:
        found = subprocess.run(
            ["fc-list", ":lang=ja", "family"], capture_output=True, text=True, check=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(found.stdout.strip())


class _Shooter:
    """Writes the shots, in :data:`SHOTS`'s order (a shot out of order is a bug here)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.taken: list[Path] = []

    def __call__(self, page: Any, name: str) -> None:
        from PIL import Image

        expected = SHOTS[len(self.taken)][0]
        assert name == expected, (name, expected)
        path = self.out / name
        page.wait_for_load_state("networkidle")
        page.evaluate("document.fonts.ready.then(() => undefined)")
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        with Image.open(path) as image:
            image.load()
        image.save(path, optimize=True)  # lossless; drops Chromium's ancillary chunks
        self.taken.append(path)
        print(f"{path}  {SHOTS[len(self.taken) - 1][1]}")


@contextmanager
def _election(data_dir: Path) -> Iterator[Any]:
    from voting.testing import (
        DEMO_WITNESSES,
        JpkiTestCa,
        RsaKeyPool,
        make_residents,
        start_election,
        tsukuba_manifest,
    )

    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now, pool=RsaKeyPool(3))
    manifest = tsukuba_manifest(now, trustees=1, threshold=1)
    with start_election(
        data_dir,
        residents,
        ca,
        manifest,
        pinned=True,
        signing_app=True,
        oidc_residents=residents[DIGITAL_ID:],
        witnesses=DEMO_WITNESSES,
    ) as election:
        yield election


def _tick(page: Any, choices: dict[str, list[str]]) -> None:
    for contest, picked in choices.items():
        for selection in picked:
            page.locator(f"#contest-{contest}-{selection}").check()


def _heading(page: Any, name: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#step-heading")).to_have_accessible_name(name, timeout=TIMEOUT_MS)


def _qr_drawn(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator(".qr-box canvas")).to_be_visible(timeout=TIMEOUT_MS)


def _encrypt(page: Any, site: BoothSite, choices: dict[str, list[str]], shoot: _Shooter | None) -> str:
    """From /vote (Japanese): start, choose, review, encrypt; the tracking code."""
    from playwright.sync_api import expect

    page.goto(site.url + "/vote")
    page.get_by_role("button", name=ja("vote.start")).click()
    expect(page.locator("#contest-mayor-cand-1")).to_be_visible()
    _tick(page, choices)
    if shoot:
        page.evaluate("document.activeElement.blur()")  # no focus ring on the last box ticked
        shoot(page, "02-choose-ja.png")
    page.get_by_role("button", name=ja("choose.review")).click()
    if shoot:
        shoot(page, "03-review-ja.png")
    page.get_by_role("button", name=ja("review.encrypt")).click()
    _heading(page, ja("tracking.heading"))
    return tracking_code(page)


def _card_path(page: Any, site: BoothSite, election: Any, shoot: _Shooter) -> str:
    """Home, choose, review, encrypt, check the encryption, encrypt afresh, cast with the card on the phone
    (the emulator's page, as the resident fills it in); the receipt. The cast ballot's tracking code."""
    from playwright.sync_api import expect

    from voting.testing import DAPP_TEST_PIN

    page.goto(site.url + "/")
    expect(page.get_by_role("link", name=ja("index.vote"))).to_be_visible(timeout=TIMEOUT_MS)
    shoot(page, "01-home-ja.png")
    _encrypt(page, site, CHOICES, shoot)
    shoot(page, "04-tracking-ja.png")
    page.get_by_role("button", name=ja("tracking.challenge")).click()
    expect(page.locator(".msg-ok")).to_be_visible(timeout=TIMEOUT_MS)
    _qr_drawn(page)
    shoot(page, "05-challenge-ja.png")
    page.get_by_role("button", name=ja("challenge.again")).click()
    _heading(page, ja("tracking.heading"))
    code = tracking_code(page)
    page.get_by_role("button", name=ja("tracking.cast")).click()
    expect(page.get_by_role("button", name=ja("auth.jpki"))).to_be_visible()
    shoot(page, "06-auth-ja.png")
    page.get_by_role("button", name=ja("auth.jpki")).click()
    link = page.get_by_role("link", name=ja("jpki.open_app"))
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    _qr_drawn(page)
    shoot(page, "07-app-ja.png")
    with page.context.expect_page() as opened:  # the app link opens the emulator's phone page in a new tab
        link.click()
    phone = opened.value
    phone.wait_for_load_state()
    phone.get_by_label("Card").select_option(label=election.residents[CARD_HOLDER].resident_id)
    phone.get_by_label("Signing PIN (6-16 letters and digits)").fill(DAPP_TEST_PIN)
    shoot(phone, "08-app-phone-ja.png")
    phone.get_by_role("button", name="Approve / 署名する").click()
    expect(phone.get_by_role("status")).to_have_text("Signed.")
    phone.close()
    _receipt_checked(page, code)
    shoot(page, "09-receipt-ja.png")
    return code


def _receipt_checked(page: Any, code: str) -> None:
    """The receipt of ``code`` with the browser's checks finished: under a checkpoint the log signed, which
    the witnesses cosign later (they run on demand here, as in the demo every few seconds)."""

    _heading(page, ja("receipt.heading"))
    assert tracking_code(page) == code
    finals = [max(re.split(r"\{\w+\}", ja(k)), key=len) for k in FINAL_RECEIPT_KEYS]
    page.wait_for_function(
        "finals => { const c = document.querySelector('.verification').cloneNode(true);"
        " c.querySelectorAll('rt, rp').forEach(x => x.remove());"
        " return finals.some(f => c.textContent.includes(f)); }",
        arg=finals,
        timeout=TIMEOUT_MS,
    )
    errors = page.locator(".verification .msg-error")
    assert not errors.count(), errors.all_inner_texts()
    _qr_drawn(page)


def _digital_id_path(page: Any, site: BoothSite, election: Any, shoot: _Shooter) -> str:
    """Choose, encrypt, cast with a digital ID: the provider signs the resident in and sends the browser back
    to the booth, which turns on the camera for the face check (the liveness prompt); the pictures are
    taken and the ballot is cast. Its tracking code."""
    from playwright.sync_api import expect

    code = _encrypt(page, site, FACE_CHOICES, None)
    page.get_by_role("button", name=ja("tracking.cast")).click()
    page.get_by_role("button", name=ja("auth.oidc")).click()
    page.wait_for_url(re.compile(r"/vote\?resume=oidc"), timeout=TIMEOUT_MS)
    _heading(page, ja("face.heading"))
    page.get_by_role("button", name=ja("face.start")).click()
    expect(page.locator("video.camera")).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => { const v = document.querySelector('video.camera');"
        " return v.videoWidth > 0 && v.readyState >= 2 && !v.paused; }",
        timeout=TIMEOUT_MS,
    )
    shoot(page, "10-face-ja.png")
    page.get_by_role("button", name=ja("face.capture")).click()
    _receipt_checked(page, code)
    return code


def _check_page(page: Any, site: BoothSite, code: str, verdict: str) -> None:
    """Check my ballot (English) for ``code``, every check finished: the verdict, the witnesses' cosignatures,
    the booth's digest recomputed on the device."""
    from playwright.sync_api import expect

    page.goto(site.url + f"/check?code={code}&lang=en")
    result = page.locator("#result")
    expect(result).to_contain_text(verdict, timeout=TIMEOUT_MS)
    expect(result).to_contain_text("Cosigned by the independent witnesses", timeout=TIMEOUT_MS)
    expect(result).not_to_contain_text("Checking…", timeout=TIMEOUT_MS)
    expect(page.locator(".digest")).to_contain_text("They are the same.", timeout=TIMEOUT_MS)
    expect(page.locator("#checked-count")).not_to_be_empty(timeout=TIMEOUT_MS)
    page.evaluate("document.activeElement && document.activeElement.blur()")


def take(out: Path, work: Path) -> list[Path]:
    """Run the election in ``work`` and write every shot of :data:`SHOTS` to ``out``; the files written."""
    from playwright.sync_api import expect, sync_playwright

    from voting.testing import demo_face_image, login_as, write_fake_camera_video

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is not installed (Debian package chromium)")
    if not japanese_font():
        raise SystemExit("no Japanese font: the Japanese shots would show boxes (Debian: fonts-noto-cjk)")
    if not (BUILT_STATIC.parent / "assets.json").exists():
        raise SystemExit("the booth is not built (make web writes voting/web/assets.json)")
    out.mkdir(parents=True, exist_ok=True)
    shoot = _Shooter(out)
    with _election(work / "election") as election, sync_playwright() as pw:
        site = BoothSite(election.base_url, {})
        face = demo_face_image(election.residents[DIGITAL_ID].resident_id)
        video = write_fake_camera_video(face, work / "camera.mjpeg")
        login_as(election.oidc_provider, election.residents[DIGITAL_ID])
        with camera_browser(pw.chromium, video) as browser:
            context = browser.new_context(
                viewport={"width": WIDTH, "height": HEIGHT},
                device_scale_factor=1,
                is_mobile=False,
                reduced_motion="reduce",
                locale="ja-JP",
                timezone_id="Asia/Tokyo",
                permissions=["camera"],
            )
            route_provider_to_booth(context, election, site)
            page = context.new_page()
            card_code = _card_path(page, site, election, shoot)
            face_code = _digital_id_path(page, site, election, shoot)
            with election.client() as other:  # a checkpoint covering both ballots, then a witness round
                for c in (card_code, face_code):
                    other.complete_receipt(other.lookup(c))
            election.cosign()
            _check_page(page, site, card_code, "This is the ballot that counts")
            shoot(page, "11-check-en.png")
            # the card holder votes again (on another device): the ballot above no longer counts
            with election.client() as device:
                again = device.cast_jpki(election.residents[CARD_HOLDER].card, REVOTE)
                device.complete_receipt(device.lookup(again.tracking_code))
            election.cosign()
            _check_page(page, site, card_code, "This ballot does not count")
            shoot(page, "12-check-revoted-en.png")
            # scanning instead of typing: a fresh Check my ballot, the camera on (it sees no QR code here)
            page.goto(site.url + "/check?lang=en")
            expect(page.locator(".digest")).to_contain_text("They are the same.", timeout=TIMEOUT_MS)
            page.get_by_role("button", name="Scan the QR code").click()
            expect(page.get_by_role("button", name="Stop scanning")).to_be_visible(timeout=TIMEOUT_MS)
            page.wait_for_function(
                "() => { const v = document.querySelector('video.scan-camera');"
                " return v !== null && v.videoWidth > 0 && v.readyState >= 2 && !v.paused; }",
                timeout=TIMEOUT_MS,
            )
            shoot(page, "13-check-scan-en.png")
            page.get_by_role("button", name="Stop scanning").click()
            context.close()
    assert [p.name for p in shoot.taken] == [name for name, _ in SHOTS]
    return shoot.taken


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the PNGs (%(default)s)")
    parser.add_argument(
        "--keep-stale",
        action="store_true",
        help="keep the shots of earlier versions in --out (NN-step-lang.png that are no step now; by default "
        "they are deleted)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    with tempfile.TemporaryDirectory(prefix="tvote-shots-") as work:
        taken = take(out, Path(work))
    if not args.keep_stale:
        names = {p.name for p in taken}
        for stale in sorted(out.glob("*.png")):
            if STALE_NAME.fullmatch(stale.name) and stale.name not in names:
                print(f"deleted {stale} (no such step any more)")
                stale.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
