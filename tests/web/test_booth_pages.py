"""The residents' booth in a real Chromium (Playwright), against a real election server (``conftest.booth``).

What a resident sees and can do before any cryptography runs: the election from the manifest's names in
Japanese and English (one tap away), the voting period; choosing with the keyboard alone, reviewing, an
overvote impossible and an undervote said in words; the digital-ID return with the camera refused and the
way back; axe-core's WCAG 2.2 AA rules with 0 violations on every page in both languages; nothing blocked
by the strict Content-Security-Policy. Needs Debian's chromium (skips without it unless TVOTE_REQUIRE_ALL=1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from _booth_site import BoothSite, axe_violations, watch_page_problems
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.xdist_group("browser")

LANGS = ["ja", "en"]


def _contest(site: BoothSite, contest_id: str) -> dict[str, Any]:
    return next(c for c in site.manifest["contests"] if c["id"] == contest_id)


def _url(site: BoothSite, path: str, lang: str) -> str:
    return site.url + path + ("?lang=en" if lang == "en" else "")


@pytest.fixture
def watched(page: Page) -> Iterator[Page]:
    """The page, failing the test afterwards on any Content-Security-Policy violation or page error."""
    problems: list[str] = []
    watch_page_problems(page, problems)
    yield page
    assert problems == []


def _tab_to(page: Page, accessible: str, limit: int = 60) -> None:
    """Press Tab until the focused element's text or label contains `accessible` (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = page.evaluate(
            "() => { const e = document.activeElement; if (!e) return '';"
            " const l = e.labels && e.labels[0] ? e.labels[0].innerText : '';"
            " return [e.innerText || '', e.getAttribute('aria-label') || '', l].join(' | '); }"
        )
        if accessible in label:
            return
    raise AssertionError(f"Tab never reached {accessible!r}")


def _visible_text(page: Page, selector: str = "main") -> str:
    """The text a reader sees, without the ruby readings."""
    return str(
        page.eval_on_selector(
            selector,
            "e => { const c = e.cloneNode(true); c.querySelectorAll('rt, rp').forEach(x => x.remove());"
            " return c.textContent; }",
        )
    )


# ------------------------------------------------------------------------------------------ languages


@pytest.mark.parametrize("lang", LANGS)
def test_home_shows_the_election_from_the_manifest(booth: BoothSite, watched: Page, lang: str) -> None:
    page = watched
    page.goto(_url(booth, "/", lang))
    name = booth.manifest["name"][lang]
    expect(page.locator("h1")).to_have_text(name)
    assert page.evaluate("document.documentElement.lang") == lang
    assert name in page.title()
    main = _visible_text(page)
    period = "投票期間" if lang == "ja" else "Voting period"
    assert period in main
    assert ("投票できます" if lang == "ja" else "Voting is open.") in main
    link = page.get_by_role("link", name="投票を始める" if lang == "ja" else "Start voting")
    expect(link).to_have_attribute("href", "/vote" if lang == "ja" else "/vote?lang=en")


def test_english_is_one_tap_away_and_back(booth: BoothSite, watched: Page) -> None:
    page = watched
    page.goto(booth.url + "/")
    expect(page.locator("h1")).to_have_text(booth.manifest["name"]["ja"])
    switch = page.locator("#lang-switch")
    switch.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(booth.manifest["name"]["en"])
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.url.endswith("/?lang=en")
    expect(switch).to_be_focused()  # the focus stays where the resident was
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(booth.manifest["name"]["ja"])


def test_the_booths_own_instructions_carry_readings_for_kanji(booth: BoothSite, watched: Page) -> None:
    page = watched
    page.goto(booth.url + "/")
    expect(page.locator("h1")).to_have_text(booth.manifest["name"]["ja"])
    readings = page.eval_on_selector_all(
        "main ruby", "rs => rs.map(r => [r.firstChild.textContent, r.querySelector('rt').textContent])"
    )
    assert ["投票", "とうひょう"] in readings
    assert ["暗号化", "あんごうか"] in readings
    # the manifest's own names are shown as written (the commission's text, no invented readings)
    assert not page.locator("h1 ruby").count()


# ------------------------------------------------------------------------------------------ choosing


@pytest.mark.parametrize("lang", LANGS)
def test_keyboard_only_choose_and_review(booth: BoothSite, watched: Page, lang: str) -> None:
    page = watched
    mayor, referendum, subsidy = (_contest(booth, c) for c in ("mayor", "referendum", "subsidy"))
    page.goto(_url(booth, "/vote", lang))
    expect(page.locator("#step-heading")).to_be_visible()
    _tab_to(page, "始める" if lang == "ja" else "Start")
    page.keyboard.press("Enter")
    expect(page.locator("#step-heading")).to_be_focused()  # focus moves to the new step
    # mayor: the second candidate (Tab into the group, arrow keys move and select within a radio group)
    _tab_to(page, mayor["selections"][0]["name"][lang])
    page.keyboard.press("ArrowDown")
    expect(page.locator("#contest-mayor-" + mayor["selections"][1]["id"])).to_be_checked()
    # referendum: left blank on purpose. subsidy: two projects with Space
    _tab_to(page, subsidy["selections"][0]["name"][lang])
    page.keyboard.press("Space")
    _tab_to(page, subsidy["selections"][2]["name"][lang])
    page.keyboard.press("Space")
    _tab_to(page, "選択を確認する" if lang == "ja" else "Review my choices")
    page.keyboard.press("Enter")
    heading = page.locator("#step-heading")
    expect(heading).to_be_focused()
    expect(heading).to_have_accessible_name("選択の確認" if lang == "ja" else "Review your choices")
    review = _visible_text(page)
    assert mayor["selections"][1]["name"][lang] in review
    assert (
        subsidy["selections"][0]["name"][lang] in review and subsidy["selections"][2]["name"][lang] in review
    )
    assert subsidy["selections"][1]["name"][lang] not in review
    # the undervote is said in words, for the referendum only
    blank = "白票" if lang == "ja" else "undervote"
    items = page.locator(".review-item")
    expect(items).to_have_count(3)
    assert blank in _visible_text(page, ".review-item:nth-child(2)")
    assert blank not in _visible_text(page, ".review-item:nth-child(1)")
    # change a contest from the review: back to the form, focus in that contest, choices kept
    _tab_to(page, referendum["name"][lang])
    page.keyboard.press("Enter")
    expect(page.locator("#contest-referendum-yes")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("#contest-referendum-yes")).to_be_checked()
    expect(page.locator("#contest-mayor-" + mayor["selections"][1]["id"])).to_be_checked()
    _tab_to(page, "選択を確認する" if lang == "ja" else "Review my choices")
    page.keyboard.press("Enter")
    assert referendum["selections"][0]["name"][lang] in _visible_text(page, ".review-item:nth-child(2)")
    assert blank not in _visible_text(page)


def _to_choices(page: Page, site: BoothSite, lang: str = "en") -> None:
    page.goto(_url(site, "/vote", lang))
    page.get_by_role("button", name="Start" if lang == "en" else "始める").click()


def test_overvote_is_impossible(booth: BoothSite, watched: Page) -> None:
    page = watched
    subsidy = _contest(booth, "subsidy")
    _to_choices(page, booth)
    boxes = page.locator("#contest-subsidy input[type=checkbox]")
    expect(boxes).to_have_count(len(subsidy["selections"]))
    for i in range(subsidy["max"]):
        boxes.nth(i).check()
    count = page.locator("#contest-subsidy-count")
    expect(count).to_contain_text(f"{subsidy['max']} of at most {subsidy['max']} chosen")
    expect(count).to_contain_text("first remove one")
    extra = boxes.nth(subsidy["max"])
    expect(extra).to_be_disabled()
    # neither a click, nor a script's click, nor Space on it ticks a fourth box
    extra.click(force=True)
    page.evaluate("id => document.getElementById(id).click()", extra.get_attribute("id"))
    expect(extra).not_to_be_checked()
    assert page.locator("#contest-subsidy input:checked").count() == subsidy["max"]
    # a 1-of-n contest is a radio group: one choice at most by construction
    mayor = page.locator("#contest-mayor input[type=radio]")
    mayor.nth(0).check()
    mayor.nth(1).check()
    assert page.locator("#contest-mayor input:checked").count() == 1
    # removing one frees the others again
    boxes.nth(0).uncheck()
    expect(extra).to_be_enabled()


def test_undervote_is_stated_for_every_blank_contest(booth: BoothSite, watched: Page) -> None:
    page = watched
    _to_choices(page, booth, "ja")
    page.locator("#contest-mayor-blank").check()  # an explicit "leave blank"
    page.get_by_role("button", name="選択を確認する").click()
    items = page.locator(".review-item")
    expect(items).to_have_count(3)
    for i in range(3):  # mayor explicitly, the others by leaving them alone
        text = _visible_text(page, f".review-item:nth-child({i + 1})")
        assert "選択なし" in text and "白票" in text, text


# ------------------------------------------------------------------------------------------ camera refused


def _arrive_from_provider(page: Page, site: BoothSite, lang: str) -> None:
    """The digital-ID provider's redirect back to /vote/oidc-callback for the ballot this tab started."""
    page.goto(site.url + "/check")  # any booth page: same origin, for sessionStorage
    pending = {"ballot": {"version": 2}, "ballotHash": "00" * 32, "trackingCode": "ABCD-EFGH-JKMN-PQRS",
               "state": "st-123", "lang": lang}  # fmt: skip
    page.evaluate("p => sessionStorage.setItem('tvote.booth.pending', JSON.stringify(p))", pending)
    page.goto(site.url + "/vote/oidc-callback?code=one-time-code&state=st-123")
    page.wait_for_url(re.compile(r"/vote\?resume=oidc"))


@pytest.mark.parametrize("lang", LANGS)
def test_refused_camera_says_so_and_offers_a_way_back(booth: BoothSite, watched: Page, lang: str) -> None:
    page = watched  # no camera permission granted: getUserMedia is refused
    _arrive_from_provider(page, booth, lang)
    assert "code=" not in page.url  # the one-time code is not left in the address bar
    expect(page.locator("#step-heading")).to_have_accessible_name(
        "顔の確認" if lang == "ja" else "Face check"
    )
    page.get_by_role("button", name="カメラをオンにする" if lang == "ja" else "Turn on the camera").press(
        "Enter"
    )
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_be_focused()
    said = _visible_text(page, "#camera-refused")
    assert ("投票所" if lang == "ja" else "polling place") in said
    retry = page.get_by_role(
        "button", name="もう一度カメラを試す" if lang == "ja" else "Try the camera again"
    )
    expect(retry).to_be_visible()
    other = page.get_by_role(
        "button", name="別の方法で本人確認する" if lang == "ja" else "Choose another way to sign in"
    )
    other.press("Enter")
    expect(page.locator("#step-heading")).to_be_focused()
    methods = _visible_text(page)
    assert ("マイナンバーカード" if lang == "ja" else "My Number card") in methods
    assert "ABCD-EFGH-JKMN-PQRS" in methods  # the same encrypted ballot, still to be cast


def test_a_callback_for_another_login_is_refused(booth: BoothSite, watched: Page) -> None:
    page = watched
    page.goto(booth.url + "/vote/oidc-callback?code=x&state=not-ours")
    expect(page.get_by_role("alert")).to_be_visible()
    assert "ブースの最初からやり直してください" in _visible_text(page, "[role=alert]")
    assert "/vote/oidc-callback" in page.url


# ------------------------------------------------------------------------------------------ axe-core


def _states(page: Page, site: BoothSite, lang: str) -> Iterator[str]:
    """Every page, and every step reachable without the protocol library, in `lang`."""
    page.goto(_url(site, "/", lang))
    expect(page.locator("h1")).to_have_text(site.manifest["name"][lang])
    yield "home"
    page.goto(_url(site, "/vote", lang))
    expect(page.locator("#step-heading")).to_be_visible()
    yield "vote: intro"
    page.locator("button.primary").click()
    subsidy = page.locator("#contest-subsidy input[type=checkbox]")
    for i in range(_contest(site, "subsidy")["max"]):
        subsidy.nth(i).check()  # the "full" state: disabled boxes and the count's explanation
    yield "vote: choose"
    page.locator("form button[type=submit]").click()
    expect(page.locator(".review-item")).to_have_count(3)
    yield "vote: review"
    page.goto(_url(site, "/check", lang))
    expect(page.locator("#code")).to_be_visible()
    yield "check"
    _arrive_from_provider(page, site, lang)
    page.locator("button.primary").click()
    expect(page.get_by_role("alert")).to_be_visible()
    yield "vote: camera refused"
    page.goto(site.url + "/vote/oidc-callback?code=x&state=not-ours" + ("&lang=en" if lang == "en" else ""))
    expect(page.get_by_role("alert")).to_be_visible()
    yield "oidc callback: refused"


@pytest.mark.parametrize("lang", LANGS)
def test_axe_finds_no_violation_on_any_page(
    booth: BoothSite, browser: Browser, axe_source: str, lang: str
) -> None:
    context = browser.new_context(bypass_csp=True)  # only so that axe itself can be injected
    try:
        page = context.new_page()
        found = {state: axe_violations(page, axe_source) for state in _states(page, booth, lang)}
    finally:
        context.close()
    assert found and all(v == [] for v in found.values()), json.dumps(found, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("lang", LANGS)
def test_reflows_at_200_percent_zoom(booth: BoothSite, browser: Browser, lang: str) -> None:
    """WCAG 1.4.10: a 320 CSS px wide viewport (a 1280 px window at 400 %, a phone at 200 %) scrolls only
    vertically, and the flow's controls stay usable."""
    context = browser.new_context(viewport={"width": 320, "height": 640})
    try:
        page = context.new_page()
        for path in ("/", "/vote", "/check"):
            page.goto(_url(booth, path, lang))
            page.wait_for_selector("main h1")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, overflow)
        page.goto(_url(booth, "/vote", lang))
        page.locator("button.primary").click()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
    finally:
        context.close()


def test_reduced_motion_and_no_inline_styles(booth: BoothSite, browser: Browser) -> None:
    context = browser.new_context(reduced_motion="reduce")
    try:
        page = context.new_page()
        for path in ("/", "/vote", "/check", "/vote/oidc-callback"):
            page.goto(booth.url + path)
            page.wait_for_selector("main h1")
            assert page.evaluate("matchMedia('(prefers-reduced-motion: reduce)').matches")
            inline = page.evaluate(
                "() => [...document.querySelectorAll('[style], script:not([src]), style')].length"
                " + [...document.querySelectorAll('*')]"
                ".filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length"
            )
            assert inline == 0, path
    finally:
        context.close()


def test_switching_language_mid_flow_keeps_the_choices(booth: BoothSite, watched: Page) -> None:
    page = watched
    mayor = _contest(booth, "mayor")
    _to_choices(page, booth, "ja")
    page.locator("#contest-mayor-" + mayor["selections"][2]["id"]).check()
    page.locator("#contest-subsidy input").nth(1).check()
    switch = page.locator("#lang-switch")
    switch.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#contest-mayor legend")).to_contain_text(mayor["name"]["en"])
    expect(switch).to_be_focused()
    expect(page.locator("#contest-mayor-" + mayor["selections"][2]["id"])).to_be_checked()
    expect(page.locator("#contest-subsidy input").nth(1)).to_be_checked()
    expect(page.locator("#contest-subsidy-count")).to_contain_text("1 of at most")
    assert page.url.endswith("/vote?lang=en")


def test_a_provider_error_is_said_with_a_way_back(booth: BoothSite, watched: Page) -> None:
    page = watched
    page.goto(booth.url + "/vote/oidc-callback?error=access_denied&state=whatever")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("access_denied")
    back = page.get_by_role("link", name="ブースに戻る")
    expect(back).to_have_attribute("href", "/vote")


def test_the_sources_render_unbundled(booth_sources: BoothSite, watched: Page) -> None:
    """Before ``make web``: the pages and modules of web/pages and web/src/booth, unbundled, under the same
    CSP, with the built library; what a developer edits is what these tests would show."""
    page = watched
    page.goto(booth_sources.url + "/vote?lang=en")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#contest-subsidy legend")).to_contain_text(
        _contest(booth_sources, "subsidy")["name"]["en"]
    )
