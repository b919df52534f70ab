"""Check my ballot's "Scan the QR code" in Debian's Chromium, against a real election server
(``built_booth``).

The camera is Chromium's fake capture device playing a still picture
(``voting.testing.write_fake_camera_video``; ``--use-fake-device-for-media-stream
--use-fake-ui-for-media-stream --use-file-for-fake-video-capture=….mjpeg``); the QR codes are made by the
``qrcode`` package or taken from the booth's own screen. Chromium on Linux has no
``BarcodeDetector``, and an init script deletes it anyway, so what is tested is the booth's JavaScript decoder
(the ``qr`` package in ``/static/qr-worker.js``), which most residents' browsers use.

Scanning the receipt's address verifies a cast ballot; scanning the QR code the booth shows after "Check the
encryption" opens that spoiled ballot on a second device; a QR code naming another website is refused and
nothing is requested from that site; any other text is refused; a refused camera is said and typing still
works; axe-core finds nothing while the camera runs, and Stop turns the camera off.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import qrcode
from _booth_site import (
    CHROMIUM,
    CHROMIUM_ARGS,
    BoothSite,
    axe_violations,
    choose_and_encrypt,
    watch_page_problems,
)
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from voting.testing import write_fake_camera_video

pytestmark = pytest.mark.xdist_group("browser")

LANGS = ["ja", "en"]
CHOICES = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1", "proj-3"]}
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
#: before the page's scripts: no native QR detector (so the booth's own decoder runs), and every camera
#: stream the page opens kept in a list, to see that Stop and a finished scan end its tracks
NO_DETECTOR = """
delete window.BarcodeDetector;
window.__tvoteStreams = [];
if (navigator.mediaDevices) {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const s = await real(c);
    window.__tvoteStreams.push(s);
    return s;
  };
}
"""
CAMERA_OFF = "() => __tvoteStreams.length > 0 && __tvoteStreams.every(s => s.getTracks().every(t => t.readyState === 'ended'))"  # noqa: E501
SCAN = {"ja": "QRコードを読み取る", "en": "Scan the QR code"}
STOP = {"ja": "読み取りをやめる", "en": "Stop scanning"}


def _url(site: BoothSite, path: str, lang: str) -> str:
    return site.url + path + ("?lang=en" if lang == "en" else "")


def _visible_text(page: Page, selector: str) -> str:
    """The text a reader sees, without the ruby readings."""
    return str(
        page.eval_on_selector(
            selector,
            "e => { const c = e.cloneNode(true); c.querySelectorAll('rt, rp').forEach(x => x.remove());"
            " return c.textContent; }",
        )
    )


def qr_png(text: str) -> bytes:
    """``text`` as a QR code (the ``qrcode`` package: 8 pixels a module, the 4-module quiet zone), PNG."""
    buf = io.BytesIO()
    qrcode.make(text, box_size=8, border=4).save(buf)
    return buf.getvalue()


def no_qr_png() -> bytes:
    """A picture with shapes and no QR code: what the camera sees before the code is in view."""
    picture = Image.new("RGB", (480, 360), "white")
    draw = ImageDraw.Draw(picture)
    draw.rectangle((60, 60, 200, 200), fill="black")
    draw.ellipse((260, 120, 420, 300), outline="black", width=12)
    buf = io.BytesIO()
    picture.save(buf, "PNG")
    return buf.getvalue()


Camera = Callable[..., Page]


@pytest.fixture
def camera(browser_type: Any, tmp_path: Path) -> Iterator[Camera]:
    """``camera(picture, grant=True, **context_options)``: a page in a Chromium whose camera shows ``picture``
    (no ``BarcodeDetector``), with the camera permission granted, or with ``grant=False`` refused (the
    resident said no). Unless the context bypasses the CSP (for axe), any Content-Security-Policy violation
    or page error fails the test afterwards."""
    browsers: list[Any] = []
    problems: list[str] = []

    def start(picture: bytes, *, grant: bool = True, **options: Any) -> Page:
        video = write_fake_camera_video(picture, tmp_path / f"camera-{len(browsers)}.mjpeg")
        fake = FAKE_CAMERA if grant else FAKE_CAMERA[:1]  # without the fake UI, no permission is refused
        browser = browser_type.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, *fake, f"--use-file-for-fake-video-capture={video}"],
        )
        browsers.append(browser)
        context = browser.new_context(permissions=["camera"] if grant else [], **options)
        context.add_init_script(NO_DETECTOR)
        page = context.new_page()
        if not options.get("bypass_csp"):
            watch_page_problems(page, problems)
        return page

    try:
        yield start
    finally:
        for browser in browsers:
            browser.close()
    assert problems == []


def _scan(page: Page, lang: str) -> None:
    """Press "Scan the QR code"; the booth's decoder worker is loaded (so the JavaScript decoder runs)."""
    assert page.evaluate("'BarcodeDetector' in window") is False
    with page.expect_request("**/static/qr-worker.js"):
        page.get_by_role("button", name=SCAN[lang]).click()


def test_scanning_the_receipts_qr_code_verifies_the_cast_ballot(
    built_booth: BoothSite, election: Any, camera: Camera
) -> None:
    with election.client() as device:
        cast = device.cast_jpki(election.residents[0].card, CHOICES)
    # what the booth's receipt QR code holds (web/src/booth/lib/vote-receipt.js)
    page = camera(qr_png(f"{built_booth.url}/check?code={cast.tracking_code}"))
    page.goto(_url(built_booth, "/check", "en"))
    _scan(page, "en")
    result = page.locator("#result")
    expect(result).to_contain_text(
        f"cast (on the internet) and is on the public record at index {cast.leaf_index}", timeout=30_000
    )
    expect(result).to_contain_text("This is the ballot that counts")
    expect(page.locator("#result-heading")).to_have_text(cast.tracking_code)
    expect(page.locator("#result-heading")).to_be_focused()
    expect(page.get_by_label("Tracking code")).to_have_value(cast.tracking_code)
    expect(page.locator("video")).to_have_count(0)
    assert page.evaluate(CAMERA_OFF)  # the code is read: the camera is off


def test_a_scanned_ballot_hash_must_be_the_receipts(
    built_booth: BoothSite, election: Any, camera: Camera
) -> None:
    """A ballot hash (64 hex) is looked up by its tracking code (its first 80 bits), and the receipt found
    must carry that very hash: one that differs only after those bits is refused."""
    with election.client() as device:
        cast = device.cast_jpki(election.residents[2].card, CHOICES)
    assert len(cast.ballot_hash) == 64
    page = camera(qr_png(cast.ballot_hash.upper()))
    page.goto(_url(built_booth, "/check", "en"))
    _scan(page, "en")
    expect(page.locator("#result")).to_contain_text(
        f"is on the public record at index {cast.leaf_index}", timeout=30_000
    )
    expect(page.locator("#result-heading")).to_have_text(cast.tracking_code)

    other = cast.ballot_hash[:-1] + ("0" if cast.ballot_hash[-1] != "0" else "1")  # the same tracking code
    page = camera(qr_png(other))
    page.goto(_url(built_booth, "/check", "en"))
    _scan(page, "en")
    result = page.locator("#result")
    expect(result.get_by_role("alert")).to_contain_text("ballot-hash", timeout=30_000)
    assert "is on the public record" not in result.inner_text()


def test_a_second_device_scans_the_spoiled_ballots_qr_code_from_the_booths_screen(
    built_booth: BoothSite, page: Page, camera: Camera
) -> None:
    """The Benaloh second device: the booth (first device) encrypts and opens the ballot and shows a QR code;
    the picture of that QR code, on another device's camera, opens the same spoiled ballot there."""
    code = choose_and_encrypt(page, built_booth, CHOICES)
    page.get_by_role("button", name="Check the encryption").click()
    expect(page.get_by_text("These are the choices you made")).to_be_visible(timeout=30_000)
    shown = page.locator(".qr-box canvas")
    expect(shown).to_have_count(1)
    picture = base64.b64decode(shown.evaluate("c => c.toDataURL('image/png')").split(",", 1)[1])

    second = camera(picture)
    second.goto(built_booth.url + "/check")  # Japanese, the default
    _scan(second, "ja")
    result = second.locator("#result")
    expect(result.locator(".review-item").first).to_be_visible(timeout=30_000)
    said = _visible_text(second, "#result")
    assert "確認のために開かれた無効票" in said, said
    expect(second.locator("#result-heading")).to_have_text(code)
    for contest in built_booth.manifest["contests"]:
        for s in contest["selections"]:
            assert (s["name"]["ja"] in said) == (s["id"] in CHOICES[contest["id"]]), (s, said)
    assert second.evaluate(CAMERA_OFF)


@pytest.mark.parametrize("lang", LANGS)
def test_a_qr_code_of_another_site_is_refused_and_never_opened(
    built_booth: BoothSite, camera: Camera, lang: str
) -> None:
    page = camera(qr_png("https://evil.example/check?code=ABCD-EFGH-JKMN-PQRS"))
    requested: list[str] = []
    page.context.on("request", lambda r: requested.append(r.url))
    page.context.route(re.compile(r"evil\.example"), lambda route: route.abort())
    page.goto(_url(built_booth, "/check", lang))
    _scan(page, lang)
    alert = page.locator("#scan-box [role=alert]")
    expect(alert).to_contain_text("evil.example", timeout=30_000)
    said = _visible_text(page, "#scan-box [role=alert]")
    assert ("別のウェブサイト（evil.example）" if lang == "ja" else "another website (evil.example)") in said
    assert ("開いていません" if lang == "ja" else "It was not opened") in said
    expect(page.get_by_role("button", name=SCAN[lang])).to_be_focused()  # to try again at once
    assert page.evaluate(CAMERA_OFF)
    page.wait_for_timeout(500)  # anything the page would do next has had time to leave
    assert not [u for u in requested if "evil.example" in u], requested
    assert not [u for u in requested if "/voter/check/" in u or "/voter/ballots/" in u], requested
    assert page.url.startswith(built_booth.url + "/check")
    assert page.evaluate("document.getElementById('result').textContent") == ""


@pytest.mark.parametrize("lang", LANGS)
def test_a_qr_code_with_other_text_is_refused(built_booth: BoothSite, camera: Camera, lang: str) -> None:
    page = camera(qr_png("Bakery Tsukuba: fresh bread every morning, 7-19"))
    page.goto(_url(built_booth, "/check", lang))
    _scan(page, lang)
    alert = page.locator("#scan-box [role=alert]")
    expect(alert).to_be_visible(timeout=30_000)
    said = _visible_text(page, "#scan-box [role=alert]")
    expected = {
        "ja": "追跡コードも、この投票ブースの「自分の票を確かめる」ページのアドレスも入っていません",
        "en": "neither a tracking code nor the address of this booth's Check my ballot page",
    }
    assert expected[lang] in said, said
    assert page.evaluate(CAMERA_OFF)
    assert page.evaluate("document.getElementById('result').textContent") == ""


@pytest.mark.parametrize("lang", LANGS)
def test_a_refused_camera_is_said_and_typing_the_code_still_works(
    built_booth: BoothSite, election: Any, camera: Camera, lang: str
) -> None:
    with election.client() as device:
        cast = device.cast_jpki(election.residents[1].card, CHOICES)
    # the camera would show the receipt's QR code, but the resident does not allow it
    page = camera(qr_png(f"{built_booth.url}/check?code={cast.tracking_code}"), grant=False)
    page.goto(_url(built_booth, "/check", lang))
    page.get_by_role("button", name=SCAN[lang]).click()
    alert = page.locator("#scan-box [role=alert]")
    expect(alert).to_be_visible(timeout=30_000)
    said = _visible_text(page, "#scan-box [role=alert]")
    assert ("カメラの使用が許可されなかった" if lang == "ja" else "The camera was not allowed") in said, said
    expect(page.locator("video")).to_have_count(0)
    field = page.get_by_label("追跡コード" if lang == "ja" else "Tracking code")
    field.fill(cast.tracking_code)
    field.press("Enter")
    expect(page.locator("#result")).to_contain_text(str(cast.leaf_index), timeout=30_000)
    expect(page.locator("#scan-box [role=alert]")).to_have_count(0)  # the camera's message is gone
    assert cast.tracking_code in page.locator("#result-heading").inner_text()


def test_a_device_without_a_camera_is_said(built_booth: BoothSite, page: Page) -> None:
    """pytest-playwright's page: a Chromium without any camera device."""
    page.goto(_url(built_booth, "/check", "en"))
    page.get_by_role("button", name=SCAN["en"]).click()
    alert = page.locator("#scan-box [role=alert]")
    expect(alert).to_contain_text("No camera could be used here to read the QR code", timeout=30_000)
    expect(page.get_by_role("button", name=SCAN["en"])).to_be_focused()
    expect(page.locator("video")).to_have_count(0)


def _tab_to(page: Page, name: str, limit: int = 40) -> None:
    """Press Tab until the focused element's text is `name` (the keyboard alone)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => (document.activeElement?.innerText || '').trim()") == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


@pytest.mark.parametrize("lang", LANGS)
def test_while_scanning_axe_finds_nothing_and_stop_turns_the_camera_off(
    built_booth: BoothSite, camera: Camera, axe_source: str, lang: str
) -> None:
    page = camera(no_qr_png(), bypass_csp=True)  # the CSP bypassed only so that axe can be injected
    page.goto(_url(built_booth, "/check", lang))
    expect(page.locator("#code")).to_be_visible()
    _tab_to(page, SCAN[lang])
    with page.expect_request("**/static/qr-worker.js"):
        page.keyboard.press("Enter")
    video = page.locator("video.scan-camera")
    expect(video).to_be_visible()
    page.wait_for_function("document.querySelector('video.scan-camera').videoWidth > 0")
    page.wait_for_timeout(1000)  # several frames looked at, none with a QR code
    stop = page.get_by_role("button", name=STOP[lang])
    expect(stop).to_be_focused()  # the same button, now Stop, keeps the focus
    status = page.locator("#scan-box [role=status]")
    expect(status).to_contain_text("QR")
    assert ("カメラをQRコード" if lang == "ja" else "Point the camera at the QR code") in _visible_text(
        page, "#scan-box [role=status]"
    )
    found = axe_violations(page, axe_source)
    assert found == [], json.dumps(found, ensure_ascii=False, indent=1)
    assert not page.evaluate(CAMERA_OFF)  # still scanning
    page.keyboard.press("Enter")
    expect(video).to_have_count(0)
    assert page.evaluate(CAMERA_OFF)
    expect(page.get_by_role("button", name=SCAN[lang])).to_be_focused()
    stopped = {"ja": "カメラを止めました。", "en": "The camera is off."}
    expect(page.locator("#announce")).to_have_text(stopped[lang])
    found = axe_violations(page, axe_source)
    assert found == [], json.dumps(found, ensure_ascii=False, indent=1)
