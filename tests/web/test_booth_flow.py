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
