"""The booth's flows that encrypt, in Chromium against a real election server: the built booth (bundles with
the protocol library, ``built_booth``). A ballot encrypted in the browser is opened (Benaloh) and the Python
voter client, as an independent second device, verifies the spoiled ballot from the ledger and finds the
resident's choices; the booth's own second-device page (``/check?spoiled=``) shows the same; the booth then
encrypts afresh under a new tracking code.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from _booth_site import BoothSite
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.xdist_group("browser")

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")
CHOICES = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1", "proj-3"]}


def _tracking_code(page: Page) -> str:
    code = "-".join(page.locator(".tracking-code .group").all_inner_texts())
    assert CODE.match(code), code
    return code


def _choose_and_encrypt(page: Page, site: BoothSite) -> str:
    page.goto(site.url + "/vote?lang=en")
    page.get_by_role("button", name="Start").click()
    for contest, picked in CHOICES.items():
        for selection in picked:
            page.locator(f"#contest-{contest}-{selection}").check()
    page.get_by_role("button", name="Review my choices").click()
    page.get_by_role("button", name="Encrypt my ballot").click()
    expect(page.locator("#step-heading")).to_have_accessible_name("Your ballot is encrypted", timeout=30_000)
    return _tracking_code(page)


def test_challenge_then_a_second_device_verifies_and_the_booth_encrypts_afresh(
    built_booth: BoothSite, election: Any, page: Page
) -> None:
    code = _choose_and_encrypt(page, built_booth)
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
    assert _tracking_code(page) != code


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
    with election.client() as kiosk:
        third = kiosk.cast_jpki(resident.card, CHOICES, kiosk_token=election.kiosk_token)
    said = _check(page, second.tracking_code)
    assert "voted at a polling place" in said, said
    said = _check(page, third.tracking_code)
    assert "(at a polling place)" in said and "A ballot cast at a polling place counts" in said, said
    # a code that is on no ballot, and text that is no code
    said = _check(page, "0000-0000-0000-0000")
    assert "No ballot with this tracking code" in said, said
    field = page.get_by_label("Tracking code")
    field.fill("not a code")
    field.press("Enter")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#code-error")).to_contain_text("16 letters and digits")
