"""The polling-place kiosk's page in a real Chromium (Playwright), served by the real kiosk service
(``tvote-kiosk serve``, started by the test: ``_kiosk_site.start_kiosk``) in front of a real election server,
with a SoftHSM2 token as the My Number card in the reader.

A whole vote as the poll worker and the voter do it (open with the poll-worker PIN and the zero report, unlock
for one voter, choose, review, insert the card, the signing password on the on-screen pad, the receipt with
its tracking code, locked again with nothing of the voter left), a wrong password saying how many tries are
left, the idle reset dropping every trace of the voter, and axe-core's WCAG 2.2 AA rules with 0 violations on
every screen in Japanese and English. Needs Debian's chromium and SoftHSM2 (skips without them unless
TVOTE_REQUIRE_ALL=1).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _booth_site import TRACKING_CODE, axe_violations, watch_page_problems
from _kiosk_site import CARD_PIN, KioskSite, cut_proxy, softhsm_available, start_kiosk
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

_ids = itertools.count(1)
#: the demo manifest's first candidate for mayor, in the page's two languages
MAYOR = {"ja": "青木 一郎", "en": "Ichiro Aoki"}
#: a kiosk's screen is 1280 × 800 (a 13-inch tablet in landscape)
KIOSK_VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def kiosk_election(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An open election (the demo's three contests) on a real server; eight residents on the roll, each test
    votes with cards of its own (a kiosk ballot is final for its voter)."""
    softhsm_available()
    from voting.testing import JpkiTestCa, RsaKeyPool, make_residents, start_election, tsukuba_manifest

    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(8, ca, now, pool=RsaKeyPool(8))
    manifest = tsukuba_manifest(now, trustees=1, threshold=1)
    with start_election(tmp_path_factory.mktemp("kiosk-election"), residents, ca, manifest) as e:
        yield e


_residents = itertools.count(0)


def _resident(election: Any) -> Any:
    return election.residents[next(_residents)]


@pytest.fixture
def kiosk(kiosk_election: Any, tmp_path: Path) -> Iterator[KioskSite]:
    """A freshly enrolled kiosk (polls not open yet), its page served by ``tvote-kiosk serve``."""
    with start_kiosk(kiosk_election, tmp_path, f"ui-kiosk-{next(_ids)}") as k:
        yield k


@pytest.fixture
def watched(browser: Browser) -> Iterator[Page]:
    """A kiosk-sized page that fails the test on any Content-Security-Policy violation or page error."""
    context = browser.new_context(viewport=KIOSK_VIEWPORT)
    page = context.new_page()
    problems: list[str] = []
    watch_page_problems(page, problems)
    yield page
    context.close()
    assert problems == []


# ------------------------------------------------------------------------------------------- the steps


def _screen(page: Page, name: str, timeout: float = 30_000) -> None:
    expect(page.locator(f'[data-screen="{name}"]')).to_be_visible(timeout=timeout)


def _pad(page: Page, text: str) -> None:
    """Type ``text`` on the on-screen pad, one key at a time."""
    for key in text:
        page.locator(f'.pin-keys button[data-key="{key}"]').click()


def _poll_worker(page: Page, kiosk: KioskSite, action: str) -> None:
    _pad(page, kiosk.poll_worker_pin)
    page.locator("[data-pin-submit]", has_text=action).click()


def _open_polls(page: Page, kiosk: KioskSite) -> None:
    page.goto(kiosk.url)
    _screen(page, "closed")
    _poll_worker(page, kiosk, "投票を始める")
    _screen(page, "locked")


def _unlock(page: Page, kiosk: KioskSite) -> None:
    _poll_worker(page, kiosk, "使えるようにする")
    _screen(page, "choose")


def _choose_to_pin(page: Page) -> None:
    """The voter (in Japanese): the first candidate for mayor, the rest blank; review; the card; the pad."""
    page.locator("#contest-mayor .option label").first.click()
    page.get_by_role("button", name="選択を確認する").click()
    _screen(page, "review")
    expect(page.locator("main")).to_contain_text(MAYOR["ja"])
    page.get_by_role("button", name="この内容で進む").click()
    _screen(page, "card")
    page.get_by_role("button", name="カードを置きました").click()
    _screen(page, "pin")


def _text(page: Page) -> str:
    """The text of the screen as a reader sees it (without the ruby readings)."""
    return str(
        page.eval_on_selector(
            "main",
            "e => { const c = e.cloneNode(true); c.querySelectorAll('rt, rp').forEach(x => x.remove());"
            " return c.textContent; }",
        )
    )


def _small_targets(page: Page) -> list[str]:
    """The buttons and choices on screen smaller than 48 × 48 CSS px (the kiosk's touch targets)."""
    return list(
        page.evaluate(
            "() => [...document.querySelectorAll('main button, header button, main .option')]"
            ".map(b => [b.textContent, b.getBoundingClientRect()])"
            ".filter(([, r]) => r.width < 48 || r.height < 48).map(([t]) => t)"
        )
    )


def _voter_traces(page: Page) -> str:
    """Everything the page holds now: its DOM (main, the idle dialog, the live region) and its address."""
    return str(page.evaluate("() => document.documentElement.outerHTML + ' ' + location.href"))


# ------------------------------------------------------------------------------------------ the tests


def test_a_whole_vote_at_the_kiosk(kiosk: KioskSite, kiosk_election: Any, watched: Page) -> None:
    page = watched
    _open_polls(page, kiosk)
    assert [p.name for p in kiosk.reports()] == ["session-0001-zero-report.pdf"]
    assert "ゼロ報告を印刷しました" in _text(page)
    assert _small_targets(page) == []
    expect(page.locator("#kiosk-place")).to_contain_text("つくば市役所")

    resident = _resident(kiosk_election)
    kiosk.insert(resident)
    _unlock(page, kiosk)
    assert _small_targets(page) == []
    _choose_to_pin(page)
    assert _small_targets(page) == []
    # the pad: masked, only A–Z and 0–9, the button off until 6 characters
    submit = page.get_by_role("button", name="この暗証番号で投票する")
    _pad(page, CARD_PIN[:5])
    expect(submit).to_be_disabled()
    expect(page.locator("#pin-display")).to_have_text("●" * 5)
    page.get_by_role("button", name="1文字消す").click()
    expect(page.locator("#pin-display")).to_have_text("●" * 4)
    page.get_by_role("button", name="全部消す").click()
    expect(page.locator("#pin-display")).to_have_text("")
    page.keyboard.type(CARD_PIN.lower() + "-!")  # a keyboard works too: upper-cased, the rest refused
    expect(page.locator("#pin-display")).to_have_text("●" * len(CARD_PIN))
    assert CARD_PIN not in _voter_traces(page)
    submit.click()

    _screen(page, "receipt", timeout=120_000)
    code = "-".join(page.locator(".tracking-code .group").all_inner_texts())
    assert TRACKING_CODE.match(code), code
    assert "控えをお取りください" in _text(page)
    # printed (to a file: no printer configured) and on the server's record as a kiosk ballot
    receipts = kiosk.receipts()
    assert len(receipts) == 1 and code in receipts[0].name
    on_record = httpx.get(f"{kiosk_election.base_url}/api/v1/voter/ballots/{code}", timeout=30).json()
    assert on_record["channel"] == "kiosk" and on_record["tracking_code"] == code
    assert kiosk.state()["state"] == "locked" and kiosk.state()["ballots_cast"] == 1

    page.get_by_role("button", name="終わる").click()
    _screen(page, "locked")
    assert "投票数（第 1 回）：1" in _text(page)
    traces = _voter_traces(page)
    for trace in (code, *code.split("-"), MAYOR["ja"], CARD_PIN, "●"):
        assert trace not in traces, trace

    # the poll worker closes: the closing report prints
    _poll_worker(page, kiosk, "投票を終える")
    _screen(page, "closed")
    assert [p.name for p in kiosk.reports()] == [
        "session-0001-closing-report.pdf",
        "session-0001-zero-report.pdf",
    ]


def test_a_wrong_card_password_says_how_many_tries_are_left(
    kiosk: KioskSite, kiosk_election: Any, watched: Page
) -> None:
    page = watched
    _open_polls(page, kiosk)
    size = kiosk_election.ledger_size()
    kiosk.insert(_resident(kiosk_election))
    _unlock(page, kiosk)
    _choose_to_pin(page)
    _pad(page, "WRONG123")
    page.get_by_role("button", name="この暗証番号で投票する").click()
    _screen(page, "pin_wrong", timeout=120_000)
    assert "あと 4 回試せます" in _text(page)
    assert kiosk_election.ledger_size() == size  # nothing was cast
    page.get_by_role("button", name="やり直す").click()
    _screen(page, "pin")
    expect(page.locator("#pin-display")).to_have_text("")  # the wrong password is gone
    _pad(page, CARD_PIN)
    page.get_by_role("button", name="この暗証番号で投票する").click()
    _screen(page, "receipt", timeout=120_000)


def test_the_idle_reset_leaves_nothing_of_the_voter(
    kiosk_election: Any, tmp_path: Path, watched: Page
) -> None:
    page = watched
    with start_kiosk(kiosk_election, tmp_path, f"ui-kiosk-{next(_ids)}", idle_seconds=9) as kiosk:
        _open_polls(page, kiosk)
        kiosk.insert(_resident(kiosk_election))
        _unlock(page, kiosk)
        page.locator("#lang-switch").click()  # the voter reads English
        expect(page.locator("h2")).to_have_text("Your choices")
        page.locator("#contest-mayor .option label").first.click()
        page.get_by_role("button", name="Review my choices").click()
        page.get_by_role("button", name="Continue with these choices").click()
        page.get_by_role("button", name="My card is in the reader").click()
        _screen(page, "pin")
        _pad(page, "ABC")
        expect(page.locator("#pin-display")).to_have_text("●●●")
        # the countdown, then the reset
        dialog = page.locator("#idle-dialog")
        expect(dialog).to_be_visible(timeout=15_000)
        expect(dialog).to_contain_text("seconds")
        _screen(page, "locked", timeout=15_000)
        expect(dialog).to_be_hidden()
        assert kiosk.state()["state"] == "locked"
        assert page.evaluate("document.documentElement.lang") == "ja"
        traces = _voter_traces(page)
        for trace in (MAYOR["en"], MAYOR["ja"], "Your choices", "●", "lang=en", "Insert your", "checked"):
            assert trace not in traces, trace
        assert page.evaluate("document.querySelector('#idle-dialog').childElementCount") == 0


def test_a_cast_without_answer_waits_for_the_poll_worker(
    kiosk_election: Any, tmp_path: Path, browser: Browser, axe_source: str
) -> None:
    """The network goes down as the ballot leaves: "wait for the poll worker" with the tracking code (axe: 0
    violations), no idle reset; once it is back the poll worker's re-check finds it not cast, and the voter
    casts again."""
    proxy = cut_proxy(kiosk_election.base_url)
    context = browser.new_context(bypass_csp=True, viewport=KIOSK_VIEWPORT)  # for axe
    try:
        with start_kiosk(
            kiosk_election, tmp_path, f"ui-kiosk-{next(_ids)}", idle_seconds=20, server=proxy.url
        ) as kiosk:
            page = context.new_page()
            _open_polls(page, kiosk)
            kiosk.insert(_resident(kiosk_election))
            _unlock(page, kiosk)
            _choose_to_pin(page)
            _pad(page, CARD_PIN)
            size = kiosk_election.ledger_size()
            proxy.mode = "cut_at_cast"
            page.get_by_role("button", name="この暗証番号で投票する").click()
            _screen(page, "unconfirmed", timeout=120_000)
            code = "-".join(page.locator(".tracking-code .group").all_inner_texts())
            assert TRACKING_CODE.match(code), code
            assert "係員をお待ちください" in _text(page)
            assert axe_violations(page, axe_source) == []
            page.get_by_role("button", name="もう一度確かめる").first.click()  # the voter's: still no answer
            _screen(page, "unconfirmed", timeout=60_000)
            page.wait_for_timeout(21_000)  # longer than the idle time: the screen stays for the poll worker
            _screen(page, "unconfirmed")
            assert kiosk.state()["unconfirmed"] == code
            assert kiosk_election.ledger_size() == size

            proxy.mode = "forward"
            _pad(page, kiosk.poll_worker_pin)
            page.locator("[data-pin-submit]", has_text="もう一度確かめる").click()
            _screen(page, "not_cast", timeout=60_000)
            assert "記録されていません" in _text(page)
            page.get_by_role("button", name="やり直す").click()
            _screen(page, "card")
            page.get_by_role("button", name="カードを置きました").click()
            _pad(page, CARD_PIN)
            page.get_by_role("button", name="この暗証番号で投票する").click()
            _screen(page, "receipt", timeout=120_000)
            assert (
                "-".join(page.locator(".tracking-code .group").all_inner_texts()) == code
            )  # the same ballot
    finally:
        context.close()
        proxy.close()


def _walk(page: Page, kiosk: KioskSite, election: Any, lang: str) -> Iterator[str]:
    """Every screen a poll worker and a voter can reach without cutting the network, in ``lang``; yields
    each one's name once it shows."""
    page.goto(kiosk.url + ("?lang=en" if lang == "en" else ""))
    _screen(page, "closed")
    yield "closed"
    _pad(page, "00000000")
    page.locator("[data-pin-submit]").first.click()
    expect(page.locator(".msg-error")).to_be_visible()
    yield "closed, wrong poll-worker PIN"
    page.locator("button", has_text=re.compile("全部消す|Clear")).click()
    _pad(page, kiosk.poll_worker_pin)
    page.locator("[data-pin-submit]").first.click()
    _screen(page, "locked")
    yield "locked"
    first, second = _resident(election), _resident(election)
    kiosk.insert(first)
    _pad(page, kiosk.poll_worker_pin)
    page.locator("[data-pin-submit]").first.click()
    _screen(page, "choose")
    if lang == "en":  # each voter starts in Japanese; this one switches
        page.locator("#lang-switch").click()
    yield "choose"
    page.locator("#contest-mayor .option label").first.click()
    page.locator("form.contests button[type=submit]").click()
    _screen(page, "review")
    yield "review"
    page.locator("[data-screen=review] .actions button.primary").click()
    _screen(page, "card")
    yield "card"
    kiosk.remove_card()
    page.locator("[data-screen=card] .actions button.primary").click()
    _screen(page, "card_absent")
    yield "card_absent"
    kiosk.insert(first)
    page.locator("[data-screen=card_absent] .actions button.primary").click()
    page.locator("[data-screen=card] .actions button.primary").click()
    _screen(page, "pin")
    _pad(page, "ABC")
    yield "pin"
    page.keyboard.type("WRONG")
    page.locator("[data-pin-submit]").click()
    _screen(page, "pin_wrong", timeout=120_000)
    yield "pin_wrong"
    kiosk.insert(second)  # another person's card
    page.locator("[data-screen=pin_wrong] .actions button.primary").click()
    _pad(page, CARD_PIN)
    page.locator("[data-pin-submit]").click()
    _screen(page, "card_different", timeout=120_000)
    yield "card_different"
    kiosk.insert(first)
    page.locator("[data-screen=card_different] .actions button.primary").click()
    page.locator("[data-screen=card] .actions button.primary").click()
    _pad(page, CARD_PIN)
    page.locator("[data-pin-submit]").click()
    _screen(page, "receipt", timeout=120_000)
    yield "receipt"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_axe_finds_no_violation_on_any_kiosk_screen(
    kiosk: KioskSite, kiosk_election: Any, browser: Browser, axe_source: str, lang: str
) -> None:
    context = browser.new_context(
        bypass_csp=True, viewport=KIOSK_VIEWPORT
    )  # only so that axe can be injected
    try:
        page = context.new_page()
        found = {}
        for screen in _walk(page, kiosk, kiosk_election, lang):
            assert page.evaluate("document.documentElement.lang") == lang, screen
            found[screen] = axe_violations(page, axe_source)
    finally:
        context.close()
    assert len(found) == 11, list(found)
    assert all(v == [] for v in found.values()), json.dumps(found, ensure_ascii=False, indent=1)
