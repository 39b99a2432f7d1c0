"""The console in a real browser: Debian's headless Chromium, driven by Playwright for Python.

Signs in with a one-time link, reads the dashboard (also in Arabic on a phone-sized screen),
runs a Spanish signing flow in the simulator (SMS, then Telegram buttons), sends a broadcast
to the local Twilio stand-in and watches its delivery counts, downloads the export. Every page
is saved as a PNG under docs/screenshots/.

Playwright only drives the browser that is installed (`/usr/bin/chromium`); it never downloads
one. Without Chromium these tests are skipped on a developer's machine and fail under CI=true.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.reports import EXPORT_COLUMNS
from tests.console_support import console_link, seed
from tests.harness import ACCOUNT_SID, AUTH_TOKEN, ROOT, BotProcess, Twilio, sms_env
from tests.standins.twilio_api import TwilioAPI

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = browser_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioAPI]:
    with TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, twilio_api: TwilioAPI) -> Iterator[BotProcess]:
    """A real `serve` over a database of signers from the last three weeks, sending SMS to the
    Twilio stand-in at any hour."""
    workdir = tmp_path_factory.mktemp("console-browser")
    seed(workdir / "bot.sqlite3")
    env = sms_env(TWILIO_API_URL=twilio_api.url, BROADCAST_HOURS="00-24", SEND_RATE_SMS="50")
    process = BotProcess(workdir, env).start()
    yield process
    process.stop()


class Errors(list[str]):
    """Console errors of a page (a CSP violation shows up here)."""


@pytest.fixture
def page(browser: Any, bot: BotProcess) -> Iterator[Any]:
    """A signed-in page: a fresh browser context that opened a one-time link."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    tab = context.new_page()
    tab.errors = Errors()
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.goto(console_link(bot))
    tab.wait_for_url(f"{bot.url}/console/")
    yield tab
    assert list(tab.errors) == []
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def signatures(bot: BotProcess) -> int:
    return int(bot.query("SELECT count(*) AS n FROM signatures WHERE contact NOT LIKE "
                         "'sandbox:%'")[0]["n"])


def kpi(page: Any, label: str) -> str:
    return str(page.locator(f"section.kpi:has(h2:text-is('{label}')) .value").inner_text())


# --- sign-in and the dashboard ----------------------------------------------------------------

def test_sign_in_with_a_one_time_link_and_read_the_dashboard(browser: Any,
                                                             bot: BotProcess) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    tab.goto(f"{bot.url}/console/simulator")  # no session: the sign-in page
    assert tab.url == f"{bot.url}/console/login"
    expect(tab.locator("h1")).to_have_text("Sign in to the organizer console")
    expect(tab.locator("main")).to_contain_text("python run_bot.py console-link")
    shot(tab, "login.png")

    link = console_link(bot)
    tab.goto(link)  # its form posts the token at once
    tab.wait_for_url(f"{bot.url}/console/")
    expect(tab.locator("h1")).to_have_text("Dashboard")
    cookie = next(c for c in context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/console"

    total = signatures(bot)
    assert kpi(tab, "Signatures") == f"{total:,}"
    expect(tab.locator("#k-goal")).to_contain_text("of the goal of 20,000")
    assert tab.locator(".chart rect.bar").count() == 30
    expect(tab.locator("table.breakdown").first).to_contain_text("English (en)")
    expect(tab.locator("main")).to_contain_text("Ontario (ON)")
    expect(tab.locator("ul.channels")).to_contain_text("TWILIO_WHATSAPP_NUMBER")
    shot(tab, "dashboard.png")
    tab.locator("details.data summary").focus()
    tab.keyboard.press("Enter")  # the chart's numbers as a table, by keyboard
    expect(tab.locator("details.data table")).to_be_visible()

    other = browser.new_context()
    again = other.new_page()
    again.goto(link)  # used: refused
    expect(again.locator("h1")).to_have_text("Sign-in link not valid")
    other.close()

    tab.get_by_role("button", name="Sign out").click()
    tab.wait_for_url(f"{bot.url}/console/login?bye=1")
    tab.goto(f"{bot.url}/console/")
    assert tab.url == f"{bot.url}/console/login"
    context.close()


def test_dashboard_in_arabic_on_a_phone(browser: Any, bot: BotProcess) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.goto(console_link(bot))
    tab.wait_for_url(f"{bot.url}/console/")
    tab.select_option("#ui-lang", "ar")
    tab.get_by_role("button", name="Apply").click()
    expect(tab.locator("html")).to_have_attribute("dir", "rtl")
    expect(tab.locator("html")).to_have_attribute("lang", "ar")
    expect(tab.locator("#ui-lang")).to_have_value("ar")
    shot(tab, "dashboard-ar-phone.png")
    for path in PAGES:
        tab.goto(f"{bot.url}{path}")
        wide = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, path  # nothing sticks out sideways on a phone
    tab.goto(f"{bot.url}/console/simulator")
    tab.fill("#sim-text", "hola")
    tab.get_by_role("button", name="Send", exact=True).tap()
    expect(tab.locator("#chat .msg.bot").first).to_contain_text("Español")
    shot(tab, "simulator-ar-phone.png")
    context.close()


# --- the simulator ----------------------------------------------------------------------------

def say(page: Any, text: str) -> str:
    """Type into the simulator and press Enter; the bot's answer (the new bubbles' text)."""
    before = page.locator("#chat .msg").count()
    page.fill("#sim-text", text)
    page.press("#sim-text", "Enter")
    page.locator("#chat .msg").nth(before + 1).wait_for()  # what was typed, then the answer
    return "\n".join(page.locator("#chat .msg").all_inner_texts()[before:])


def test_simulator_runs_a_spanish_signing_flow(page: Any, bot: BotProcess) -> None:
    from playwright.sync_api import expect

    before = signatures(bot)
    page.get_by_role("link", name="Simulator").click()
    expect(page.locator("h1")).to_have_text("Simulator")
    assert page.locator("input[name=channel][value=sms]").is_checked()
    assert "10 Українська" in say(page, "hola")
    expect(page.locator("#chat .msg.bot").first).to_contain_text("segment")
    assert "FIRMAR" in say(page, "2")
    assert "nombre" in say(page, "FIRMAR")
    assert "provincia" in say(page, "María Prueba")
    assert "firmas esto" in say(page, "Ontario")
    assert "noticias" in say(page, "1")
    assert "¡Gracias!" in say(page, "1")
    expect(page.locator("#sim-text")).to_be_focused()  # the keyboard stays in the box
    page.locator("#chat").evaluate("el => el.scrollTop = el.scrollHeight")
    shot(page, "simulator-sms.png")
    assert signatures(bot) == before  # the sandbox is never counted

    page.get_by_label("Telegram").check()
    page.select_option("#sim-lang", "es")
    page.get_by_role("button", name="Apply and start over").click()
    expect(page.locator("#phone-title")).to_have_text("Telegram chat")
    assert "Hola" in say(page, "/start")
    page.locator("#chat .keyboard button", has_text="Firmar").last.click()
    expect(page.locator("#chat .msg").last).to_contain_text("nombre")
    expect(page.locator("#chat .msg.me").last).to_have_text("You: [Firmar]")
    shot(page, "simulator-telegram.png")

    page.get_by_role("button", name="Reset the conversation").click()
    expect(page.locator("#chat .msg")).to_have_count(1)  # the "nothing said yet" note


# --- broadcasts -------------------------------------------------------------------------------

def wait_until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_broadcast_sent_to_the_twilio_standin(page: Any, bot: BotProcess,
                                              twilio_api: TwilioAPI) -> None:
    from playwright.sync_api import expect

    twilio_api.reset()
    page.get_by_role("link", name="Broadcasts").click()
    page.fill("#text-en", "Rally at City Hall on Saturday at noon. Bring a co-worker!")
    expect(page.locator("#cost-en")).to_contain_text("1 segment")
    expect(page.locator("#final-en")).to_have_text(
        "NUPGE: Rally at City Hall on Saturday at noon. Bring a co-worker! Reply STOP to stop.")
    page.locator("details.more summary").click()
    page.fill("#text-es", "¡Manifestación el sábado al mediodía en el Ayuntamiento!")
    expect(page.locator("#cost-es")).to_contain_text("GSM-7")
    page.fill("#text-vi", "Biểu tình thứ Bảy lúc 12 giờ trưa tại Tòa thị chính!")
    expect(page.locator("#cost-vi")).to_contain_text("UCS-2")
    page.fill("#segment", "region=ON")
    shot(page, "broadcast-compose.png")

    expected = bot.query(
        "SELECT c.channel, count(*) AS n FROM contacts c JOIN signatures s ON s.contact_id = c.id"
        " WHERE c.stopped = 0 AND s.opted_in_updates = 1 AND s.region = 'ON' "
        "AND c.address NOT LIKE 'sandbox:%' GROUP BY 1")
    by_channel = {r["channel"]: int(r["n"]) for r in expected}
    recipients = sum(by_channel.values())
    page.get_by_role("button", name=re.compile("Preview")).click()
    expect(page.locator("h1")).to_have_text("Broadcast preview (dry run)")
    assert kpi(page, "Recipients") == str(recipients)
    expect(page.locator(".notice.warn")).to_contain_text("telegram recipients will be skipped")
    shot(page, "broadcast-preview.png")

    page.get_by_label(re.compile("I checked the texts")).check()
    page.get_by_role("button", name=f"Send to {recipients} people").click()
    page.wait_for_url(re.compile(r"/console/broadcasts/\d+$"))
    expect(page.locator("h1")).to_contain_text("Broadcast #")

    wait_until(lambda: len(twilio_api.sent) >= by_channel["sms"])
    assert all(s.body.startswith("NUPGE: ") for s in twilio_api.sent)
    assert any("Manifestacion" in s.body for s in twilio_api.sent)  # Spanish, mapped to GSM-7
    with Twilio(bot) as webhooks:  # Twilio reports two of them delivered
        for sent in twilio_api.sent[:2]:
            answer = webhooks.post({"MessageSid": sent.sid, "MessageStatus": "delivered",
                                    "AccountSid": ACCOUNT_SID, "To": sent.to},
                                   path="/twilio/status")
            assert answer.status == 204
    expect(page.locator("[data-k=delivered]")).to_have_text("2", timeout=15000)
    expect(page.locator("[data-k=status]")).to_have_text("finished", timeout=15000)
    expect(page.locator("[data-k=done]")).to_have_text(str(recipients))
    expect(page.locator("[data-k=skipped]")).to_have_text(str(by_channel.get("telegram", 0)))
    if by_channel.get("telegram"):
        expect(page.locator("[data-h=problems]")).to_contain_text("telegram is not configured")
    shot(page, "broadcast-progress.png")

    page.get_by_role("link", name="All broadcasts").click()
    row = page.locator("#h-history + .table-wrap tbody tr").first
    expect(row).to_contain_text("finished")
    expect(row).to_contain_text("region=ON")
    row.scroll_into_view_if_needed()
    shot(page, "broadcasts.png")


# --- export and accessibility -----------------------------------------------------------------

def test_export_downloads_the_csv(page: Any, bot: BotProcess) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Export").click()
    expect(page.locator("main")).to_contain_text(f"{signatures(bot):,} signatures")
    shot(page, "export.png")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename.startswith("signatures-mwac-pathway-pr-")
    with saved.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(EXPORT_COLUMNS)
    assert len(rows) - 1 == signatures(bot)
    assert not any(row[-1].startswith("sandbox:") for row in rows[1:])


PAGES = ["/console/", "/console/broadcasts", "/console/simulator", "/console/export"]
UNLABELLED = """() => Array.from(document.querySelectorAll(
  'input:not([type=hidden]), select, textarea, button'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 80))"""


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_labelled_and_keyboard_usable(page: Any, bot: BotProcess, path: str) -> None:
    page.goto(f"{bot.url}{path}")
    assert page.evaluate(UNLABELLED) == []
    assert page.locator("h1").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    nav = page.locator("nav a[aria-current=page]")
    assert nav.count() == 1
