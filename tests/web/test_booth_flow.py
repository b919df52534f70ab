"""The booth's flows that encrypt, in Chromium against a real election server: the built booth (bundles with
the protocol library, ``built_booth``). A ballot encrypted in the browser is opened (Benaloh) and the Python
voter client, as an independent second device, verifies the spoiled ballot from the ledger and finds the
resident's choices; the booth's own second-device page (``/check?spoiled=``) shows the same; the booth then
encrypts afresh under a new tracking code.

The digital-ID path runs with Chromium's fake camera playing a picture (``write_fake_camera_video``): the
resident's own drawn stand-in photo is accepted by the demo's test face engine and the ballot, beside one
cast with the My Number card, is counted and checked by the Python verifier; another resident's picture is
refused and nothing is appended.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _booth_site import (
    BoothSite,
    axe_violations,
    camera_browser,
    choose_and_encrypt,
    cosigned_in_the_browser,
    count_and_verify,
    expected_counts,
    receipt_verified,
    route_provider_to_booth,
    tracking_code,
)
from _serve_util import kiosk_cast
from playwright.sync_api import Browser, Page, expect

from voting.clients.voter import ServerError
from voting.testing import TEST_FACE_ENGINE_ID, demo_face_image, login_as, write_fake_camera_video

pytestmark = pytest.mark.xdist_group("browser")

CHOICES = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1", "proj-3"]}


def test_challenge_then_a_second_device_verifies_and_the_booth_encrypts_afresh(
    built_booth: BoothSite, election: Any, page: Page
) -> None:
    code = choose_and_encrypt(page, built_booth, CHOICES)
    page.get_by_role("button", name="Check the encryption").click()
    expect(page.get_by_text("These are the choices you made")).to_be_visible(timeout=30_000)
    link = page.locator("a.url")
    expect(link).to_have_attribute("href", re.compile(rf"/check\?spoiled={code}$"))
    # an independent second device: the Python voter client, from the ledger alone
    with election.client() as other:
        opened = other.audit_spoiled(code)
    assert {c: sorted(v) for c, v in opened.items()} == CHOICES
    # the booth's own second-device page
    second = page.context.new_page()
    second.goto(built_booth.url + f"/check?spoiled={code}&lang=en")
    expect(second.get_by_text("opened for checking (spoiled)")).to_be_visible(timeout=30_000)
    shown = second.locator("#result").inner_text()
    manifest = built_booth.manifest
    for contest in manifest["contests"]:
        for s in contest["selections"]:
            assert (s["name"]["en"] in shown) == (s["id"] in CHOICES[contest["id"]]), (s, shown)
    second.close()
    # encrypt afresh: a new ballot, a new tracking code
    page.get_by_role("button", name="Encrypt afresh and continue").click()
    expect(page.locator("#step-heading")).to_have_accessible_name("Your ballot is encrypted", timeout=30_000)
    assert tracking_code(page) != code


def _check(page: Page, code: str) -> str:
    """Type a tracking code into Check my ballot (keyboard), submit, and return the verdict's text."""
    field = page.get_by_label("Tracking code")
    field.fill("")
    field.type(code.lower().replace("-", " "))  # as people type it: any case, spaces for hyphens
    field.press("Enter")
    heading = page.locator("#result-heading")
    expect(heading).to_be_focused(timeout=30_000)
    expect(page.locator("#result")).not_to_contain_text("Checking…", timeout=30_000)
    return page.locator("#result").inner_text()


def test_check_my_ballot_says_which_ballot_counts(built_booth: BoothSite, election: Any, page: Page) -> None:
    resident = election.residents[0]
    with election.client() as device:
        first = device.cast_jpki(resident.card, CHOICES)
        second = device.cast_jpki(resident.card, {"mayor": ["cand-1"], "referendum": [], "subsidy": []})
    page.goto(built_booth.url + "/check?lang=en")
    said = _check(page, first.tracking_code)
    assert f"cast (on the internet) and is on the public record at index {first.leaf_index}" in said, said
    assert "This ballot does not count" in said and "later internet ballot" in said, said
    assert "The record only grew since" in said, said
    said = _check(page, second.tracking_code)
    assert "This is the ballot that counts" in said, said
    # a ballot at a polling place replaces every internet ballot of the voter
    kiosk, pin = election.enrol_kiosk("booth-flow-hall-1")  # an enrolled polling-place kiosk
    kiosk.open(1, pin)
    with election.client() as device:
        third = kiosk_cast(kiosk, device, resident.card, CHOICES)
    said = _check(page, second.tracking_code)
    assert "voted at a polling place" in said, said
    said = _check(page, third.tracking_code)
    assert "(at a polling place)" in said and "A ballot cast at a polling place counts" in said, said
    # the booth's digest published before voting opened equals the one recomputed here from what was served
    digest = page.locator(".digest")
    expect(digest).to_contain_text("They are the same.", timeout=30_000)
    published = election.http.get("/api/v1/election/booth").json()["published"]["digest"]
    assert digest.inner_text().count(published) == 2, digest.inner_text()
    checked = page.locator("#checked-count").inner_text()
    assert re.match(r"^Cast ballots checked so far with Check my ballot: [1-9]\d* ", checked), checked
    # a code that is on no ballot, and text that is no code
    said = _check(page, "0000-0000-0000-0000")
    assert "No ballot with this tracking code" in said, said
    field = page.get_by_label("Tracking code")
    field.fill("not a code")
    field.press("Enter")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#code-error")).to_contain_text("16 letters and digits")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_axe_and_reflow_on_the_steps_after_encryption(
    built_booth: BoothSite, election: Any, browser: Browser, axe_source: str, lang: str
) -> None:
    """axe-core finds 0 violations on the tracking code, the opened ballot and both verdicts of Check my
    ballot, and nothing scrolls sideways on a 320 CSS px wide screen (200 % zoom on a phone)."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 320, "height": 640})  # to inject axe
    suffix = "?lang=en" if lang == "en" else ""
    found: dict[str, Any] = {}

    def audit(name: str) -> None:
        found[name] = axe_violations(page, axe_source)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            found[name + " (overflow px)"] = overflow

    try:
        page = context.new_page()
        page.goto(built_booth.url + "/vote" + suffix)
        page.locator("button.primary").click()
        page.locator("#contest-mayor-cand-1").check()
        page.locator("form button[type=submit]").click()
        page.locator("button.primary").click()
        expect(page.locator(".tracking-code")).to_be_visible(timeout=30_000)
        code = "-".join(page.locator(".tracking-code .group").all_inner_texts())
        audit("tracking code")
        page.locator(".actions button.secondary").click()  # check the encryption
        expect(page.locator(".msg-ok")).to_be_visible(timeout=30_000)
        audit("opened ballot")
        page.goto(built_booth.url + f"/check?spoiled={code}" + ("&lang=en" if lang == "en" else ""))
        expect(page.locator("#result .review-item").first).to_be_visible(timeout=30_000)
        audit("check: spoiled")
        with election.client() as device:
            cast = device.cast_jpki(
                election.residents[1].card, {"mayor": [], "referendum": ["yes"], "subsidy": []}
            )
        page.goto(
            built_booth.url + f"/check?code={cast.tracking_code}" + ("&lang=en" if lang == "en" else "")
        )
        expect(page.locator("#result .msg-ok").last).to_be_visible(timeout=30_000)
        audit("check: cast")
    finally:
        context.close()
    assert len(found) >= 4 and all(v == [] for v in found.values()), json.dumps(
        found, ensure_ascii=False, indent=1
    )


def _to_app(page: Page, site: BoothSite) -> tuple[str, str]:
    """Choose, encrypt, Cast, My Number card: the tracking code and the app link the booth shows."""
    code = choose_and_encrypt(page, site, CHOICES)
    page.get_by_role("button", name="Cast this ballot").click()
    page.get_by_role("button", name="My Number card (Digital Authentication App)").click()
    link = page.get_by_role("link", name="Open the Digital Authentication App")
    expect(link).to_be_visible(timeout=30_000)
    return code, str(link.get_attribute("href"))


def test_cast_with_the_card_app_and_the_receipt_verifies_in_the_browser(
    built_booth: BoothSite, election: Any, page: Page
) -> None:
    resident = election.residents[1]
    code, app_url = _to_app(page, built_booth)
    expect(page.get_by_text("Waiting for your approval in the app")).to_be_visible()
    election.dapp.approve(app_url, election.dapp_cards[resident.resident_id])  # the resident, on the phone
    receipt_verified(page, code)
    for step in ("signed by the election's log", "inside the signed tree", "The entry is this ballot"):
        expect(page.locator(".checks")).to_contain_text(step)
    # the Python client agrees: the ballot the browser encrypted is this voter's cast ballot on the ledger
    with election.client() as other:
        receipt = other.lookup(code)
        entry = other.verify_receipt(receipt)
    assert (
        receipt.kind == "cast" and entry.type == "ballot.cast" and entry.payload["auth"]["method"] == "jpki"
    )
    # the receipt as a file; and the only thing kept in the browser is the receipt
    with page.expect_download() as download:
        page.get_by_role("button", name="Save the receipt as a file").click()
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["receipt"]["tracking_code"] == code and saved["receipt"]["leaf_index"] == receipt.leaf_index
    kept = page.evaluate("() => [Object.keys(localStorage), Object.keys(sessionStorage)]")
    assert kept == [["tvote.booth.receipts"], []], kept
    stored = json.loads(page.evaluate("localStorage.getItem('tvote.booth.receipts')"))
    assert [r["receipt"]["tracking_code"] for r in stored] == [code]


def test_a_connection_lost_mid_cast_leaves_no_half_cast_ballot(
    built_booth: BoothSite, election: Any, page: Page
) -> None:
    resident = election.residents[1]
    # 1. the request never reached the server: said so, nothing recorded, a safe retry casts it
    lost = {"n": 0}

    def drop(route: Any) -> None:
        lost["n"] += 1
        route.abort("internetdisconnected")

    page.route("**/api/v1/voter/ballots", drop)
    code, app_url = _to_app(page, built_booth)
    election.dapp.approve(app_url, election.dapp_cards[resident.resident_id])
    expect(page.get_by_role("alert")).to_contain_text("Your ballot was not recorded", timeout=30_000)
    assert lost["n"] == 1
    with election.client() as other:
        with pytest.raises(ServerError, match=r"ballot\.not_found"):
            other.lookup(code)
    page.unroute("**/api/v1/voter/ballots")
    page.get_by_role("button", name="Try again").click()
    receipt_verified(page, code)

    # 2. the server cast it but the answer was lost: the booth finds the ballot by its tracking code
    def answer_lost(route: Any) -> None:
        route.fetch()
        route.abort("internetdisconnected")

    page.route("**/api/v1/voter/ballots", answer_lost)
    page.get_by_role("button", name="Vote again").click()
    page.get_by_role("button", name="Review my choices").click()
    page.get_by_role("button", name="Encrypt my ballot").click()
    expect(page.locator("#step-heading")).to_have_accessible_name("Your ballot is encrypted", timeout=30_000)
    code = tracking_code(page)
    page.get_by_role("button", name="Cast this ballot").click()
    page.get_by_role("button", name="My Number card (Digital Authentication App)").click()
    link = page.get_by_role("link", name="Open the Digital Authentication App")
    expect(link).to_be_visible(timeout=30_000)
    election.dapp.approve(str(link.get_attribute("href")), election.dapp_cards[resident.resident_id])
    receipt_verified(page, code)


def _to_face_check(page: Page, site: BoothSite, choices: dict[str, list[str]]) -> str:
    """Choose, encrypt, Cast, digital ID: the provider signs in and its redirect comes back to the booth's
    callback page, and the booth resumes at the face check with the same encrypted ballot; the camera on."""
    code = choose_and_encrypt(page, site, choices)
    page.get_by_role("button", name="Cast this ballot").click()
    page.get_by_role("button", name="Digital ID and face check").click()
    page.wait_for_url(re.compile(r"/vote\?resume=oidc"), timeout=30_000)
    expect(page.locator("#step-heading")).to_have_accessible_name("Face check")
    page.get_by_role("button", name="Turn on the camera").click()
    expect(page.locator("video.camera")).to_be_visible()
    expect(page.get_by_text("slowly turn your head")).to_be_visible()
    page.wait_for_function("document.querySelector('video.camera').videoWidth > 0", timeout=30_000)
    return code


def _take_the_pictures(page: Page) -> dict[str, Any]:
    """Take the pictures; the ``face`` the booth sent with the login (checked for its shape)."""
    with page.expect_request("**/api/v1/voter/ballots") as sent:
        page.get_by_role("button", name="Take the pictures").click()
    auth = sent.value.post_data_json["auth"]
    assert auth["method"] == "oidc+face" and auth["code"] and auth["state"]
    face: dict[str, Any] = auth["face"]
    assert face["media_type"] == "image/jpeg" and bytes.fromhex(face["image"])[:2] == b"\xff\xd8"
    evidence = json.loads(bytes.fromhex(face["liveness_evidence"]))
    assert evidence["format"] == "tvote-booth-liveness/1" and evidence["prompt"] == "turn-left"
    assert bytes.fromhex(evidence["frame"])[:2] == b"\xff\xd8"
    return face


DIGITAL_ID_CHOICES = {"mayor": ["cand-4"], "referendum": ["yes"], "subsidy": ["proj-2", "proj-5", "proj-8"]}


def test_digital_id_and_the_camera_cast_a_ballot_that_is_counted_and_verified(
    counted_election: Any, browser_type: Any, tmp_path: Path
) -> None:
    """The whole digital-ID flow in Chromium, its fake camera showing the resident's own picture (the demo's
    drawn stand-in photo, what the face engine holds as the roll resident's reference): choose, encrypt,
    sign in at the provider, the camera and the liveness prompt, cast, the receipt verified in the browser;
    and the whole My Number card flow (the Digital Authentication App) beside it. Then the election is
    closed and tallied, the record exported, and the Python verifier checks it and counts both ballots."""
    site, election = counted_election
    resident, card_holder = election.residents[2], election.residents[1]
    video = write_fake_camera_video(demo_face_image(resident.resident_id), tmp_path / "camera.mjpeg")
    login_as(election.oidc_provider, resident)
    with camera_browser(browser_type, video) as browser:
        context = browser.new_context(permissions=["camera"])
        route_provider_to_booth(context, election, site)
        page = context.new_page()
        code = _to_face_check(page, site, DIGITAL_ID_CHOICES)
        face = _take_the_pictures(page)
        receipt_verified(page, code, witnessed=True)
        # the face images were sent once and are kept nowhere in the browser
        kept = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
        assert face["image"][:64] not in kept
        # the same booth, the My Number card on the phone (the app emulator approves for the card holder)
        card_code = choose_and_encrypt(page, site, CHOICES)
        page.get_by_role("button", name="Cast this ballot").click()
        page.get_by_role("button", name="My Number card (Digital Authentication App)").click()
        link = page.get_by_role("link", name="Open the Digital Authentication App")
        expect(link).to_be_visible(timeout=30_000)
        election.dapp.approve(str(link.get_attribute("href")), election.dapp_cards[card_holder.resident_id])
        receipt_verified(page, card_code, witnessed=True)
        with election.client() as other:  # a checkpoint covering both ballots, cosigned by the witnesses
            receipts = [other.complete_receipt(other.lookup(c)) for c in (code, card_code)]
        election.cosign()
        for c in (code, card_code):
            said = cosigned_in_the_browser(page, site, c)
            assert "This is the ballot that counts" in said, said
    with election.client() as other:  # on the record: the digital-ID ballot, with the test engine's accept
        entry, card_entry = (other.verify_receipt(r) for r in receipts)
    assert entry.type == "ballot.cast" and entry.payload["auth"]["method"] == "oidc+face"
    assert entry.payload["auth"]["face"] == {"decision": True, "engine": TEST_FACE_ENGINE_ID}
    assert card_entry.payload["auth"]["method"] == "jpki"
    report = count_and_verify(election, tmp_path)
    assert report.results == expected_counts(site.manifest, [DIGITAL_ID_CHOICES, CHOICES])
    assert (report.summary["cast"], report.summary["counted"]) == (2, 2), report.summary


def test_the_camera_showing_another_residents_picture_is_refused(
    built_booth: BoothSite, election: Any, browser_type: Any, tmp_path: Path
) -> None:
    """The attack: signed in at the provider as one resident, the camera shows ANOTHER resident's picture.
    The face engine compares it with the signed-in resident's reference photo and refuses; the booth says
    so and offers to sign in again; nothing is appended to the record."""
    resident, someone_else = election.residents[2], election.residents[0]
    video = write_fake_camera_video(demo_face_image(someone_else.resident_id), tmp_path / "camera.mjpeg")
    login_as(election.oidc_provider, resident)
    with camera_browser(browser_type, video) as browser:
        context = browser.new_context(permissions=["camera"])
        route_provider_to_booth(context, election, built_booth)
        page = context.new_page()
        code = _to_face_check(page, built_booth, CHOICES)
        before = election.ledger_size()
        _take_the_pictures(page)
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("The ballot was not accepted", timeout=30_000)
        expect(alert).to_contain_text("face.rejected")
        expect(page.get_by_role("button", name="Sign in again")).to_be_visible()
        assert tracking_code(page) == code  # the same encrypted ballot, carried across the redirect
    assert election.ledger_size() == before
    with election.client() as other, pytest.raises(ServerError, match=r"ballot\.not_found"):
        other.lookup(code)


def test_the_witnesses_cosignatures_are_checked_in_the_browser(witnessed_booth: Any, page: Page) -> None:
    """With witnesses in the manifest (quorum 2 of 3), a fresh receipt is on the record but not cosigned yet,
    and says so; once the witnesses have cosigned, Check my ballot verifies their BLS aggregate in the
    browser against the manifest's keys and says how many cosigned."""
    site, election = witnessed_booth
    assert site.manifest["witnesses"]["quorum"] == 2 and len(site.manifest["witnesses"]["keys"]) == 3
    resident = election.residents[0]
    code, app_url = _to_app(page, site)
    election.dapp.approve(app_url, election.dapp_cards[resident.resident_id])
    expect(page.locator("#step-heading")).to_have_accessible_name("Your receipt", timeout=30_000)
    expect(page.get_by_text("have not cosigned it yet")).to_be_visible(timeout=30_000)
    with election.client() as other:  # the witnesses cosign a checkpoint that covers the ballot
        receipt = other.complete_receipt(other.lookup(code))
    election.cosign()
    page.goto(site.url + f"/check?code={code}&lang=en")
    said = page.locator("#result")
    expect(said).to_contain_text("cosigned by 3 of the 3 independent witnesses", timeout=30_000)
    expect(said).to_contain_text("Cosigned by the independent witnesses")
    expect(said).not_to_contain_text("Checking…", timeout=30_000)
    assert str(receipt.leaf_index) in said.inner_text()
