"""The organizer console over HTTP, against a real `python run_bot.py serve`.

Sign-in by one-time link, session cookies, CSRF, every route's answer without a session, and
the pages with one; the simulator's sandbox contacts kept out of stats, export, broadcasts
and the sync outbox. (Real-browser tests: test_console_browser.py.)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.console.views import build_routes
from bot.reports import EXPORT_COLUMNS
from tests.console_support import console_link, csrf_of, sign_by_sms, sign_in, token_of
from tests.harness import ACCOUNT_SID, AUTH_TOKEN, ROOT, BotProcess, Twilio, sms_env
from tests.standins.twilio_api import TwilioAPI

#: Every console route: (method, a concrete path, the route's template).
ROUTES = [
    pytest.param("GET", "/console", "/console", id="GET-root"),
    pytest.param("GET", "/console/", "/console/", id="GET-dashboard"),
    pytest.param("POST", "/console/logout", "/console/logout", id="POST-logout"),
    pytest.param("POST", "/console/language", "/console/language", id="POST-language"),
    pytest.param("GET", "/console/broadcasts", "/console/broadcasts", id="GET-broadcasts"),
    pytest.param("GET", "/console/broadcasts/cost?lang=en&text=hi", "/console/broadcasts/cost",
                 id="GET-broadcast-cost"),
    pytest.param("POST", "/console/broadcasts/preview", "/console/broadcasts/preview",
                 id="POST-broadcast-preview"),
    pytest.param("POST", "/console/broadcasts/edit", "/console/broadcasts/edit",
                 id="POST-broadcast-edit"),
    pytest.param("POST", "/console/broadcasts/send", "/console/broadcasts/send",
                 id="POST-broadcast-send"),
    pytest.param("GET", "/console/broadcasts/1", "/console/broadcasts/{bid:int}",
                 id="GET-broadcast"),
    pytest.param("GET", "/console/broadcasts/1/status", "/console/broadcasts/{bid:int}/status",
                 id="GET-broadcast-status"),
    pytest.param("GET", "/console/simulator", "/console/simulator", id="GET-simulator"),
    pytest.param("POST", "/console/simulator/send", "/console/simulator/send",
                 id="POST-simulator-send"),
    pytest.param("POST", "/console/simulator/settings", "/console/simulator/settings",
                 id="POST-simulator-settings"),
    pytest.param("POST", "/console/simulator/reset", "/console/simulator/reset",
                 id="POST-simulator-reset"),
    pytest.param("GET", "/console/export", "/console/export", id="GET-export"),
    pytest.param("GET", "/console/export/signatures.csv", "/console/export/signatures.{ext}",
                 id="GET-export-csv"),
    pytest.param("GET", "/console/static/console.css", "/console/static/{name}",
                 id="GET-static"),
    pytest.param("GET", "/console/no/such/page", "/console/{rest:path}", id="GET-unknown"),
    pytest.param("POST", "/console/no/such/page", "/console/{rest:path}", id="POST-unknown"),
]
POSTS = [p for p in ROUTES if p.values[0] == "POST"]


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioAPI]:
    with TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, twilio_api: TwilioAPI) -> Iterator[BotProcess]:
    env = sms_env(TWILIO_API_URL=twilio_api.url, BROADCAST_HOURS="00-24", SEND_RATE_SMS="50")
    process = BotProcess(tmp_path_factory.mktemp("console"), env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def signers(twilio: Twilio) -> list[str]:
    """Two real signers, through the SMS webhook: one in Spanish, one in English."""
    numbers = ["+14165550401", "+16045550402"]
    sign_by_sms(twilio, numbers[0])
    sign_by_sms(twilio, numbers[1], lang_choice="1", sign="SIGN", name="John Doe", region="BC")
    return numbers


@pytest.fixture
def client(bot: BotProcess) -> Iterator[httpx.Client]:
    with sign_in(bot) as signed_in:
        yield signed_in


def anonymous(bot: BotProcess) -> httpx.Client:
    return httpx.Client(base_url=bot.url, timeout=30, follow_redirects=False)


# --- the routes table covers the app ---------------------------------------------------------

def test_every_console_route_is_in_the_table() -> None:
    served = {(method, route.path) for route in build_routes(None, {})  # type: ignore[arg-type]
              for method in (route.methods or ()) if method != "HEAD"}
    tested = {(p.values[0], p.values[2]) for p in ROUTES}
    served -= {("GET", "/console/login"), ("POST", "/console/login")}  # the only public ones
    assert served == tested


# --- no session, no console ------------------------------------------------------------------

@pytest.mark.parametrize("method,path,template", ROUTES)
def test_without_a_session_every_route_redirects_to_login(bot: BotProcess, method: str,
                                                          path: str, template: str) -> None:
    with anonymous(bot) as http:
        answer = http.request(method, path, data={"csrf": "x"} if method == "POST" else None)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login"
    assert "set-cookie" not in answer.headers


@pytest.mark.parametrize("method,path,template", ROUTES)
def test_a_forged_cookie_is_no_session(bot: BotProcess, method: str, path: str,
                                       template: str) -> None:
    with anonymous(bot) as http:
        http.cookies.set("console_session", "made-up-id.made-up-signature", path="/console")
        answer = http.request(method, path)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login"


def test_a_tampered_signature_or_id_is_no_session(bot: BotProcess) -> None:
    with sign_in(bot) as http:
        good = http.cookies["console_session"]
        assert http.get("/console/").status_code == 200
        sid, mac = good.split(".")
        for forged in (f"{sid}.{mac[:-2]}AA", f"{sid[:-2]}AA.{mac}", sid, f".{mac}"):
            http.cookies.clear()
            http.cookies.set("console_session", forged, path="/console")
            assert http.get("/console/").status_code == 303, forged


# --- the one-time link -----------------------------------------------------------------------

def test_console_link_prints_a_link_to_the_public_url(bot: BotProcess) -> None:
    link = console_link(bot)
    assert link.startswith(f"{bot.url}/console/login?token=")
    other = console_link(bot, PUBLIC_URL="https://bot.example.org/")
    assert other.startswith("https://bot.example.org/console/login?token=")
    assert token_of(link) != token_of(other)


def test_only_the_hash_of_a_token_is_stored(bot: BotProcess) -> None:
    token = token_of(console_link(bot))
    rows = bot.query("SELECT token_hash, expires_at, created_at FROM console_links")
    hashes = {r["token_hash"] for r in rows}
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    dump = "\n".join(bot.db().iterdump())
    assert token not in dump


def test_login_page_without_a_token_says_how_to_get_a_link(bot: BotProcess) -> None:
    with anonymous(bot) as http:
        page = http.get("/console/login")
    assert page.status_code == 200
    assert "console-link" in page.text and "/console" in page.text
    assert "set-cookie" not in page.headers


def test_a_link_starts_one_session_once(bot: BotProcess) -> None:
    link = console_link(bot)
    token = token_of(link)
    with anonymous(bot) as http:
        started = http.get(link.removeprefix(bot.url))  # opening the link signs in
        assert started.status_code == 303
        assert started.headers["location"] == "/console/"
        assert started.headers["referrer-policy"] == "no-referrer"
        cookie = started.headers["set-cookie"]
        assert cookie.startswith("console_session=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "path=/console" in flags
        assert "secure" not in flags  # PUBLIC_URL is http here; see the https test
        assert http.get("/console/").status_code == 200

    with anonymous(bot) as other:
        assert other.post("/console/login", data={"token": token}).status_code == 403
        used = other.get(link.removeprefix(bot.url))
        assert used.status_code == 403
        assert "used already" in used.text
        assert "set-cookie" not in used.headers


def test_an_expired_link_is_refused(bot: BotProcess) -> None:
    token = token_of(console_link(bot))
    with bot.db() as conn:
        conn.execute("UPDATE console_links SET expires_at = '2000-01-01T00:00:00Z' "
                     "WHERE token_hash = ?", (hashlib.sha256(token.encode()).hexdigest(),))
    with anonymous(bot) as http:
        assert http.get("/console/login", params={"token": token}).status_code == 403
        refused = http.post("/console/login", data={"token": token})
        assert refused.status_code == 403
        assert "set-cookie" not in refused.headers


def test_a_link_lasts_fifteen_minutes(bot: BotProcess) -> None:
    token = token_of(console_link(bot))
    row = bot.query("SELECT created_at, expires_at FROM console_links WHERE token_hash = ?",
                    (hashlib.sha256(token.encode()).hexdigest(),))[0]
    made = time.strptime(row["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    ends = time.strptime(row["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert time.mktime(ends) - time.mktime(made) == 15 * 60


@pytest.mark.parametrize("token", [
    pytest.param("A" * 43, id="made-up"),
    pytest.param("", id="empty"),
    pytest.param("x" * 500, id="huge"),
])
def test_a_forged_token_is_refused(bot: BotProcess, token: str) -> None:
    with anonymous(bot) as http:
        refused = http.post("/console/login", data={"token": token})
        assert refused.status_code == 403
        assert "set-cookie" not in refused.headers
        if token:
            assert http.get("/console/login", params={"token": token}).status_code == 403


def test_secure_cookie_when_the_public_url_is_https(tmp_path: Path) -> None:
    bot = BotProcess(tmp_path, {"PUBLIC_URL": "https://console.example.org"}).start()
    try:
        link = console_link(bot)
        assert link.startswith("https://console.example.org/console/login?token=")
        with anonymous(bot) as http:
            started = http.post("/console/login", data={"token": token_of(link)})
        assert started.status_code == 303
        flags = {p.strip().lower() for p in started.headers["set-cookie"].split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax"} <= flags
    finally:
        bot.stop()


def test_sign_out_ends_the_session_for_good(bot: BotProcess) -> None:
    with sign_in(bot) as http:
        cookie = http.cookies["console_session"]
        csrf = csrf_of(http)
        say(http, csrf, "hi")
        address = re.search(r"<code>(sandbox:[0-9a-f]+:\d+)</code>",
                            http.get("/console/simulator").text)
        assert address and bot.query("SELECT 1 FROM contacts WHERE address = ?", (address[1],))
        out = http.post("/console/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == "/console/login?bye=1"
        assert 'console_session=""' in out.headers["set-cookie"]
    assert bot.query("SELECT 1 FROM contacts WHERE address = ?", (address[1],)) == []
    with anonymous(bot) as replay:  # the old cookie, kept by someone, no longer works
        replay.cookies.set("console_session", cookie, path="/console")
        assert replay.get("/console/").status_code == 303


# --- CSRF -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,template", POSTS)
def test_a_post_without_the_csrf_token_is_refused(bot: BotProcess, client: httpx.Client,
                                                  method: str, path: str, template: str) -> None:
    with sign_in(bot) as other:
        foreign = csrf_of(other)  # a token of another session is no token of this one
    for data in ({}, {"csrf": ""}, {"csrf": "0" * 43}, {"csrf": foreign}):
        answer = client.post(path, data={**data, "lang": "fr", "text": "hola"})
        assert answer.status_code == 403, data
    assert client.get("/console/").status_code == 200  # still signed in: nothing changed
    assert 'lang="en"' in client.get("/console/").text


def test_the_csrf_header_works_for_scripts(client: httpx.Client) -> None:
    csrf = csrf_of(client)
    answer = client.post("/console/simulator/send", data={"text": "hi"},
                         headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert answer.status_code == 200
    assert "msg bot" in answer.json()["html"]


# --- pages with a session --------------------------------------------------------------------

PAGES = [
    pytest.param("/console/", "Dashboard", id="dashboard"),
    pytest.param("/console", "Dashboard", id="root"),
    pytest.param("/console/broadcasts", "Broadcasts", id="broadcasts"),
    pytest.param("/console/simulator", "Simulator", id="simulator"),
    pytest.param("/console/export", "Export", id="export"),
]


@pytest.mark.parametrize("path,title", PAGES)
def test_pages_render_with_a_session(client: httpx.Client, signers: list[str], path: str,
                                     title: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert f"<h1>{title}</h1>" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline


def test_static_assets_with_a_session(client: httpx.Client) -> None:
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/console/static/console.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/console/static/../web.py").status_code in (303, 404)
    assert client.get("/console/static/other.js").status_code == 404


def test_unknown_pages_are_404_with_a_session(client: httpx.Client) -> None:
    assert client.get("/console/no/such/page").status_code == 404
    assert client.get("/console/broadcasts/99999").status_code == 404
    assert client.get("/console/broadcasts/99999/status").status_code == 404


def test_dashboard_shows_the_numbers(client: httpx.Client, signers: list[str]) -> None:
    page = client.get("/console/").text
    assert re.search(r'<p class="value">2</p>', page)  # two signatures
    assert "of the goal of 20,000" in page
    assert "Español (es)" in page and "English (en)" in page
    assert "British Columbia (BC)" in page and "Ontario (ON)" in page
    assert '<figure class="chart" role="img"' in page and 'class="bar"' in page
    assert "Waiting to sync" in page and "Channels" in page


def test_numbers_and_direction_follow_the_organizer_language(client: httpx.Client,
                                                             signers: list[str]) -> None:
    csrf = csrf_of(client)
    moved = client.post("/console/language", data={"csrf": csrf, "lang": "fr",
                                                   "next": "/console/"})
    assert moved.status_code == 303 and moved.headers["location"] == "/console/"
    page = client.get("/console/").text
    assert '<html lang="fr" dir="ltr">' in page
    assert "20\u202f000" in page  # French groups thousands with a narrow no-break space
    client.post("/console/language", data={"csrf": csrf, "lang": "ar", "next": "/console/"})
    assert '<html lang="ar" dir="rtl">' in client.get("/console/").text
    client.post("/console/language", data={"csrf": csrf, "lang": "xx", "next": "/console/"})
    assert '<html lang="ar" dir="rtl">' in client.get("/console/").text  # not a language


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/elsewhere"])
def test_language_form_never_redirects_off_the_console(client: httpx.Client,
                                                       target: str) -> None:
    moved = client.post("/console/language", data={"csrf": csrf_of(client), "lang": "es",
                                                   "next": target})
    assert moved.headers["location"] == "/console/"


# --- broadcasts -------------------------------------------------------------------------------

COST = [
    pytest.param("en", "Rally on Saturday.", "GSM-7", 1, id="english"),
    pytest.param("es", "¡Gracias! Reunión el sábado en Toronto.", "GSM-7", 1,
                 id="spanish-mapped-to-gsm7"),
    pytest.param("vi", "Cảm ơn bạn đã ký tên.", "UCS-2", 1, id="vietnamese-ucs2"),
    pytest.param("en", "word " * 60, "GSM-7", 3, id="long"),
]


@pytest.mark.parametrize("lang,text,encoding,segments", COST)
def test_live_cost_of_a_text(client: httpx.Client, lang: str, text: str, encoding: str,
                             segments: int) -> None:
    data = client.get("/console/broadcasts/cost", params={"lang": lang, "text": text}).json()
    assert data["encoding"] == encoding
    assert data["segments"] == segments
    assert data["final"].startswith("NUPGE: ")  # the organization is named
    assert "segment" in data["summary_html"]


def test_live_cost_refuses_placeholders_and_unknown_languages(client: httpx.Client) -> None:
    data = client.get("/console/broadcasts/cost", params={"lang": "en", "text": "Hi {name}"})
    assert "placeholder" in data.json()["summary_html"] and data.json()["final"] == ""
    assert client.get("/console/broadcasts/cost",
                      params={"lang": "xx", "text": "hi"}).status_code == 400


def _count_broadcasts(bot: BotProcess) -> int:
    return int(bot.query("SELECT count(*) AS n FROM broadcasts")[0]["n"])


@pytest.mark.parametrize("form,status,fragment", [
    pytest.param({"text_es": "Hola"}, 400, "Write the English (en) text", id="no-default-text"),
    pytest.param({"text_en": "Hi", "segment": "region=XX"}, 400, "is not a province code",
                 id="bad-segment"),
    pytest.param({"text_en": "Hi {name}"}, 400, "placeholder", id="placeholder"),
])
def test_preview_explains_what_is_wrong(client: httpx.Client, form: dict[str, str], status: int,
                                        fragment: str) -> None:
    answer = client.post("/console/broadcasts/preview", data={"csrf": csrf_of(client), **form})
    assert answer.status_code == status
    assert fragment in answer.text
    assert 'name="text_en"' in answer.text  # the form again, texts kept


def test_preview_send_and_progress(bot: BotProcess, client: httpx.Client, signers: list[str],
                                   twilio_api: TwilioAPI) -> None:
    csrf = csrf_of(client)
    form = {"csrf": csrf, "text_en": "The petition reached Parliament!",
            "text_es": "¡La petición llegó al Parlamento!", "segment": "channel=sms"}
    preview = client.post("/console/broadcasts/preview", data=form)
    assert preview.status_code == 200
    assert "<h1>Broadcast preview (dry run)</h1>" in preview.text
    assert re.search(r'<p class="value">2</p>', preview.text)  # two recipients
    assert "PARAR" in preview.text and "Parliament" in preview.text
    key = re.search(r'name="key" value="([0-9a-f]+)"', preview.text)
    assert key
    before = _count_broadcasts(bot)

    unconfirmed = client.post("/console/broadcasts/send", data={**form, "key": key[1]})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.text
    changed = client.post("/console/broadcasts/send",
                          data={**form, "text_en": "Something else", "key": key[1],
                                "confirm": "yes"})
    assert changed.status_code == 409
    assert _count_broadcasts(bot) == before

    edit = client.post("/console/broadcasts/edit", data={**form, "key": key[1]})
    assert edit.status_code == 200 and "The petition reached Parliament!" in edit.text

    sent = client.post("/console/broadcasts/send", data={**form, "key": key[1],
                                                         "confirm": "yes"})
    assert sent.status_code == 303
    bid = int(sent.headers["location"].rsplit("/", 1)[1])
    assert _count_broadcasts(bot) == before + 1
    page = client.get(f"/console/broadcasts/{bid}")
    assert page.status_code == 200 and f"Broadcast #{bid}" in page.text

    deadline = time.monotonic() + 30  # serve's broadcast worker sends it
    while time.monotonic() < deadline:
        status = client.get(f"/console/broadcasts/{bid}/status").json()
        if status["status"] == "done":
            break
        time.sleep(0.3)
    assert status["status"] == "done", status
    assert status["total"] == 2 and status["numbers"]["sent"] == 2
    assert {s.to for s in twilio_api.sent} >= set(signers)
    history = client.get("/console/broadcasts").text
    assert f'href="/console/broadcasts/{bid}"' in history and "finished" in history


# --- export -----------------------------------------------------------------------------------

def test_export_downloads_the_signatures(client: httpx.Client, signers: list[str]) -> None:
    answer = client.get("/console/export/signatures.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == list(EXPORT_COLUMNS)
    contacts = {row[-1] for row in rows[1:]}
    assert set(signers) <= contacts
    lines = client.get("/console/export/signatures.jsonl").text.splitlines()
    assert {json.loads(line)["contact"] for line in lines} == contacts
    assert client.get("/console/export/signatures.xml").status_code == 404


# --- the simulator and its sandbox ------------------------------------------------------------

def say(client: httpx.Client, csrf: str, text: str, label: str | None = None) -> str:
    data = {"csrf": csrf, "text": text, **({"label": label} if label else {})}
    answer = client.post("/console/simulator/send", data=data,
                         headers={"Accept": "application/json"})
    assert answer.status_code == 200
    return str(answer.json()["html"])


def stats_json(bot: BotProcess) -> dict[str, object]:
    result = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "stats", "--json"],
                            cwd=bot.workdir, env=bot.env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_simulator_signs_in_spanish_but_the_sandbox_is_never_counted(
        bot: BotProcess, client: httpx.Client, signers: list[str]) -> None:
    before = stats_json(bot)
    outbox_before = bot.query("SELECT count(*) AS n FROM outbox")[0]["n"]
    csrf = csrf_of(client)
    client.post("/console/simulator/settings", data={"csrf": csrf, "channel": "sms", "lang": ""})
    first = say(client, csrf, "hola")
    assert "2 Español" in first and "segment" in first
    assert "FIRMAR" in say(client, csrf, "2")
    assert "nombre" in say(client, csrf, "FIRMAR")
    say(client, csrf, "Prueba Sandbox")
    assert "firmas" in say(client, csrf, "ON")
    assert "noticias" in say(client, csrf, "1")
    thanks = say(client, csrf, "1")
    assert "Gracias" in thanks

    sandbox = bot.query("SELECT * FROM signatures WHERE contact LIKE 'sandbox:%'")
    assert len(sandbox) == 1 and sandbox[0]["opted_in_updates"] == 1
    sid = sandbox[0]["signature_id"]
    assert bot.query("SELECT * FROM outbox WHERE signature_id = ?", (sid,)) == []
    assert bot.query("SELECT count(*) AS n FROM outbox")[0]["n"] == outbox_before
    after = stats_json(bot)
    for key in ("signatures", "contacts", "opted_in_updates", "signatures_by_language",
                "contacts_by_channel"):
        assert after[key] == before[key], key
    export = client.get("/console/export/signatures.csv").text
    assert "sandbox:" not in export and "Prueba Sandbox" not in export
    preview = client.post("/console/broadcasts/preview",
                          data={"csrf": csrf, "text_en": "Hello", "segment": "language=es"})
    assert re.search(r'<p class="value">1</p>', preview.text)  # the real Spanish signer only
    health = httpx.get(f"{bot.url}/healthz").json()
    assert health["outbox"]["pending"] == 0

    page = client.get("/console/simulator").text
    assert "Prueba Sandbox" in page  # the transcript survives a reload
    address = re.search(r"<code>(sandbox:[0-9a-f]+:\d+)</code>", page)
    assert address and address[1] == sandbox[0]["contact"]
    client.post("/console/simulator/reset", data={"csrf": csrf})
    assert bot.query("SELECT * FROM signatures WHERE contact LIKE 'sandbox:%'") == []
    assert bot.query("SELECT * FROM contacts WHERE address = ?", (address[1],)) == []
    assert bot.query("SELECT * FROM consent WHERE contact_id IS NOT NULL AND contact_id NOT IN "
                     "(SELECT id FROM contacts)") == []
    assert "Prueba Sandbox" not in client.get("/console/simulator").text


def test_simulator_telegram_shows_buttons_that_send_their_value(client: httpx.Client) -> None:
    csrf = csrf_of(client)
    client.post("/console/simulator/settings",
                data={"csrf": csrf, "channel": "telegram", "lang": "es"})
    page = client.get("/console/simulator").text
    assert "Telegram chat" in page and 'value="telegram" checked' in page
    welcome = say(client, csrf, "/start")
    assert "¡Hola!" in welcome and 'class="keyboard"' in welcome
    button = re.search(r'name="text" value="([^"]+)"><input type="hidden" name="label" '
                       r'value="Firmar">', welcome)
    assert button, welcome
    asked = say(client, csrf, button[1], "Firmar")
    assert "[Firmar]" in asked and "nombre" in asked


def test_simulator_whatsapp_shows_the_list_and_the_buttons_a_phone_gets(
        client: httpx.Client) -> None:
    """The ten languages as a list behind "Choose", yes/no as quick replies; what a tap
    sends is the choice's value, as Twilio reports a real tap."""
    csrf = csrf_of(client)
    client.post("/console/simulator/settings", data={"csrf": csrf, "channel": "whatsapp",
                                                      "lang": ""})
    page = client.get("/console/simulator").text
    assert "WhatsApp chat" in page and 'value="whatsapp" checked' in page
    welcome = say(client, csrf, "hola")
    assert '<details class="keyboard picker"><summary>Choose</summary>' in welcome
    spanish = re.search(r'name="text" value="([^"]+)"><input type="hidden" name="label" '
                        r'value="2 Español">', welcome)
    assert spanish and spanish[1] == "lang:es", welcome
    petition = say(client, csrf, spanish[1], "2 Español")
    assert "FIRMAR" in petition and 'value="Firmar"' in petition
    assert "segment" not in petition, "WhatsApp has no SMS segments"
    say(client, csrf, "SIGN", "Firmar")
    say(client, csrf, "Prueba WhatsApp")
    confirm = say(client, csrf, "ON")
    assert 'value="Sí"' in confirm and 'value="No"' in confirm and "<details" not in confirm
    client.post("/console/simulator/reset", data={"csrf": csrf})


def test_simulator_without_script_redirects_back(client: httpx.Client) -> None:
    csrf = csrf_of(client)
    answer = client.post("/console/simulator/send", data={"csrf": csrf, "text": "hi"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/simulator")
