"""Organizer broadcasts against a local Twilio REST stand-in: plan, send, pace, resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.store import migrate
from tests.harness import ACCOUNT_SID, AUTH_TOKEN, ROOT, BotProcess, Twilio, busiest_second, sms_env
from tests.standins.twilio_api import TwilioAPI

MESSAGE = """
[en]
text = "The petition reached Parliament! Thank you."
[es]
text = "¡La petición llegó al Parlamento! Gracias."
"""


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioAPI]:
    with TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


@pytest.fixture
def api(twilio_api: TwilioAPI) -> TwilioAPI:
    twilio_api.reset()
    return twilio_api


def seed(db: Path, people: list[dict[str, object]]) -> None:
    """Signers written straight into a bot database (fast for thousands)."""
    migrate(db)
    with sqlite3.connect(db) as conn:
        for i, p in enumerate(people):
            address = str(p.get("address") or f"+1416{7000000 + i:07d}")
            cur = conn.execute(
                "INSERT INTO contacts (address, channel, language, state, stopped, created_at, "
                "updated_at) VALUES (?, ?, ?, 'menu', ?, 'x', 'x')",
                (address, p.get("channel", "sms"), p.get("language", "en"),
                 int(bool(p.get("stopped")))))
            if p.get("signed", True):
                conn.execute(
                    "INSERT INTO signatures (signature_id, contact_id, campaign, full_name, region,"
                    " channel, language, opted_in_updates, signed_at, contact) VALUES "
                    "(?, ?, 'mwac-pathway-pr', 'N', ?, ?, ?, ?, '2026-11-28T10:00:00Z', ?)",
                    (str(uuid.uuid4()), cur.lastrowid, p.get("region"), p.get("channel", "sms"),
                     p.get("language", "en"), int(bool(p.get("updates", True))), address))


def env_for(workdir: Path, api: TwilioAPI, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_"))}
    return {**clean, **sms_env(TWILIO_API_URL=api.url, BROADCAST_HOURS="00-24", **extra),
            "BOT_DB": str(workdir / "bot.sqlite3")}


def start_broadcast(workdir: Path, env: dict[str, str],
                    stdout: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """`broadcast --yes` of MESSAGE, running in the background (to kill or interrupt)."""
    (workdir / "update.toml").write_text(MESSAGE, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run_bot.py"), "broadcast", "--message-file", "update.toml",
         "--yes"], cwd=workdir, env=env, stdout=stdout, stderr=subprocess.DEVNULL, text=True)


def broadcast(workdir: Path, api: TwilioAPI, *args: str, message: str = MESSAGE,
              **extra: str) -> subprocess.CompletedProcess[str]:
    (workdir / "update.toml").write_text(message, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "broadcast", "--message-file", "update.toml",
         *args], cwd=workdir, env=env_for(workdir, api, **extra), capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL)


PEOPLE = [
    {"address": "+14165550001", "language": "en", "region": "ON"},
    {"address": "+14165550002", "language": "es", "region": "ON"},
    {"address": "+14165550003", "language": "tl", "region": "BC"},  # no tl text: English
    {"address": "+14165550004", "language": "fr", "region": None},  # no fr text: English
    {"address": "+14165550005", "language": "es", "region": "ON", "updates": False},
    {"address": "+14165550006", "language": "en", "region": "ON", "stopped": True},
    {"address": "+14165550007", "language": "en", "signed": False},
    {"address": "telegram:5001", "language": "es", "region": "ON", "channel": "telegram"},
]


def test_dry_run_shows_counts_and_cost_and_sends_nothing(tmp_path: Path, api: TwilioAPI) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE)
    result = broadcast(tmp_path, api, "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Dry run: nothing was sent." in out
    lines = {tuple(line.split()[:3]) for line in out.splitlines()}
    assert ("en", "sms", "1") in lines and ("es", "sms", "1") in lines
    assert ("tl", "sms", "1") in lines and ("fr", "sms", "1") in lines
    assert ("es", "telegram", "1") in lines
    assert "default text" in out  # tl and fr fall back
    assert "GSM-7" in out and "SMS segments" in out and "$" in out
    assert "NUPGE:" in out and "STOP" in out and "PARAR" in out  # org named, how to stop
    assert api.requests == 0


def test_send_reaches_only_opted_in_contacts_in_their_language(tmp_path: Path,
                                                              api: TwilioAPI) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE)
    result = broadcast(tmp_path, api, "--yes")
    assert result.returncode == 0, result.stderr
    got = {s.to: s.body for s in api.sent}
    assert set(got) == {"+14165550001", "+14165550002", "+14165550003", "+14165550004"}
    assert "Parliament" in got["+14165550001"] and "STOP" in got["+14165550001"]
    assert "Parlamento" in got["+14165550002"] and "PARAR" in got["+14165550002"]
    assert "Parliament" in got["+14165550003"]  # Tagalog contact, English fallback
    assert "¡" in got["+14165550002"] and "ó" not in got["+14165550002"]  # GSM-7 mapping
    assert all(s.callback and s.callback.endswith("/twilio/status") for s in api.sent)
    assert "4 sent" in result.stdout
    assert "telegram" in result.stdout  # the Telegram recipient is reported, not lost


SEGMENTS = [
    pytest.param("region=ON", {"+14165550001", "+14165550002"}, id="region"),
    pytest.param("signed=true and region=ON", {"+14165550001", "+14165550002"}, id="signed-region"),
    pytest.param("language=es", {"+14165550002"}, id="language"),
    pytest.param("channel=sms and region=BC", {"+14165550003"}, id="channel-region"),
    pytest.param("region=ON and region=BC", {"+14165550001", "+14165550002", "+14165550003"},
                 id="either-region"),
    pytest.param("signed=false", set(), id="unsigned-never-opted-in"),
]


@pytest.mark.parametrize("segment,expected", SEGMENTS)
def test_segments_select_recipients(tmp_path: Path, api: TwilioAPI, segment: str,
                                    expected: set[str]) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE)
    result = broadcast(tmp_path, api, "--yes", "--segment", segment)
    assert result.returncode == 0, result.stderr
    assert {s.to for s in api.sent} == expected


BAD = [
    pytest.param(["--segment", "province=ON"], MESSAGE, "unknown", id="unknown-key"),
    pytest.param(["--segment", "region=Ontario"], MESSAGE, "province code", id="bad-region"),
    pytest.param(["--segment", "signed"], MESSAGE, "key=value", id="no-value"),
    pytest.param([], '[es]\ntext = "solo"\n', "[en]", id="no-default-language-text"),
    pytest.param([], '[xx]\ntext = "x"\n', "not one of", id="unknown-language"),
    pytest.param([], "[en\ntext=", "not valid TOML", id="broken-toml"),
    pytest.param([], '[en]\ntext = "Hi {name}"\n', "placeholder", id="placeholder"),
    pytest.param([], '[en]\ntext = "  "\n', "empty", id="empty-text"),
]


@pytest.mark.parametrize("args,message,fragment", BAD)
def test_bad_message_files_and_segments_exit_2(tmp_path: Path, api: TwilioAPI, args: list[str],
                                               message: str, fragment: str) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE)
    result = broadcast(tmp_path, api, "--yes", *args, message=message)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert api.requests == 0


def test_without_yes_it_asks_and_sends_nothing_on_no(tmp_path: Path, api: TwilioAPI) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE)
    (tmp_path / "update.toml").write_text(MESSAGE)
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "broadcast", "--message-file", "update.toml"],
        cwd=tmp_path, env=env_for(tmp_path, api), input="no\n", capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 1 and "Type 'yes'" in result.stdout
    assert api.requests == 0


def test_long_message_to_many_phones_is_warned(tmp_path: Path, api: TwilioAPI) -> None:
    seed(tmp_path / "bot.sqlite3", [{"language": "en"} for _ in range(1200)])
    long = "[en]\ntext = \"" + "Big news about the campaign. " * 20 + "\"\n"
    result = broadcast(tmp_path, api, "--dry-run", message=long)
    assert "WARNING" in result.stdout and "segments" in result.stdout


PLATFORM_ERRORS = [
    pytest.param(21610, "stopped", id="21610-unsubscribed-at-carrier"),
    pytest.param(21211, "unreachable", id="21211-invalid-number"),
    pytest.param(21614, "unreachable", id="21614-not-mobile"),
    pytest.param(30007, "failed", id="30007-filtered"),
]


@pytest.mark.parametrize("code,effect", PLATFORM_ERRORS)
def test_platform_errors_are_recorded(tmp_path: Path, api: TwilioAPI, code: int,
                                      effect: str) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE[:2])
    api.errors_for["+14165550001"] = code
    result = broadcast(tmp_path, api, "--yes")
    assert result.returncode == 0, result.stderr
    assert {s.to for s in api.sent} == {"+14165550002"}
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        stopped, unreachable = conn.execute(
            "SELECT stopped, unreachable FROM contacts WHERE address = '+14165550001'").fetchone()
        state, error = conn.execute(
            "SELECT state, error FROM broadcast_recipients WHERE address = '+14165550001'"
        ).fetchone()
        ledger = [r[0] for r in conn.execute(
            "SELECT event FROM consent c JOIN contacts k ON k.id = c.contact_id "
            "WHERE k.address = '+14165550001'")]
    assert state == "failed" and str(code) in error
    assert bool(stopped) is (effect == "stopped")
    assert (unreachable is not None) is (effect == "unreachable")
    assert ("stop" in ledger) is (effect == "stopped")
    # Next time they are not even chosen.
    api.reset()
    broadcast(tmp_path, api, "--yes", message=MESSAGE.replace("Thank you", "Thanks again"))
    assert "+14165550001" not in {s.to for s in api.sent} or effect == "failed"


def test_rate_limit_429_is_backed_off_and_retried(tmp_path: Path, api: TwilioAPI) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE[:2])
    api.rate_limit_next = 2
    result = broadcast(tmp_path, api, "--yes")
    assert result.returncode == 0, result.stderr
    assert sorted(s.to for s in api.sent) == ["+14165550001", "+14165550002"]
    assert api.requests == 4


def test_rate_is_never_exceeded_in_any_second(tmp_path: Path, api: TwilioAPI) -> None:
    n, rate = 3000, 400
    seed(tmp_path / "bot.sqlite3", [{"language": "en"} for _ in range(n)])
    started = time.monotonic()
    result = broadcast(tmp_path, api, "--yes", SEND_RATE_SMS=str(rate))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert len(api.sent) == n and len({s.to for s in api.sent}) == n
    assert busiest_second([s.at for s in api.sent]) <= rate
    assert elapsed >= (n / rate) - 1


def test_kill_mid_broadcast_then_resume_sends_nobody_twice(tmp_path: Path,
                                                          api: TwilioAPI) -> None:
    n = 400
    seed(tmp_path / "bot.sqlite3", [{"language": "en"} for _ in range(n)])
    proc = start_broadcast(tmp_path, env_for(tmp_path, api, SEND_RATE_SMS="100"))
    deadline = time.monotonic() + 30
    while len(api.sent) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(api.sent)
    assert 0 < before < n
    result = broadcast(tmp_path, api, "--yes", SEND_RATE_SMS="400")
    assert result.returncode == 0, result.stderr
    assert "Resuming" in result.stdout
    counts = Counter(s.to for s in api.sent)
    assert max(counts.values()) == 1, "somebody got the update twice"
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        states = dict(conn.execute("SELECT address, state FROM broadcast_recipients").fetchall())
        status = conn.execute("SELECT status FROM broadcasts").fetchone()[0]
    sent = {a for a, s in states.items() if s == "sent"}
    skipped = {a for a, s in states.items() if s == "skipped"}
    assert sent <= set(counts), "a message recorded as sent never reached Twilio"
    missed = set(states) - set(counts)
    assert missed <= skipped, "only the messages in flight at the kill may be missed"
    assert len(skipped) <= 32  # at most the messages in flight at the kill
    assert status == "done"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory,
         twilio_api: TwilioAPI) -> Iterator[BotProcess]:
    """A serving bot (webhooks, status callbacks, the broadcast worker) on its own database."""
    workdir = tmp_path_factory.mktemp("live")
    seed(workdir / "bot.sqlite3", [{"address": f"+1416555{8000 + i}", "language": "en"}
                                   for i in range(30)])
    bot = BotProcess(workdir, sms_env(TWILIO_API_URL=twilio_api.url, BROADCAST_HOURS="00-24",
                                      SEND_RATE_SMS="10")).start()
    yield bot
    bot.stop()


def test_stop_mid_broadcast_is_honoured(live: BotProcess, api: TwilioAPI) -> None:
    workdir = live.workdir
    env = {**env_for(workdir, api, SEND_RATE_SMS="10"), "BOT_PORT": str(live.port)}
    proc = start_broadcast(workdir, env, stdout=subprocess.PIPE)
    last = "+14165558029"  # sent last (highest contact id)
    with Twilio(live) as twilio:
        deadline = time.monotonic() + 20
        while not api.sent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert twilio.send(last, "STOP") == []
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert last not in {s.to for s in api.sent}
        assert len(api.sent) == 29
        # Delivery status callbacks move states forward only.
        sid = api.sent[0].sid
        status = lambda state, **kw: twilio.post(  # noqa: E731
            {"MessageSid": sid, "MessageStatus": state, "AccountSid": ACCOUNT_SID, **kw},
            path="/twilio/status")
        assert status("delivered").status == 204
        assert status("sent").status == 204  # late and out of order: ignored
        row = live.query("SELECT state FROM broadcast_recipients WHERE platform_id = ?", (sid,))
        assert row[0][0] == "delivered"
        forged = twilio.post({"MessageSid": sid, "MessageStatus": "failed",
                              "AccountSid": ACCOUNT_SID}, path="/twilio/status", signature="x")
        assert forged.status == 403
        sid2 = api.sent[1].sid
        twilio.post({"MessageSid": sid2, "MessageStatus": "undelivered", "ErrorCode": "21610",
                     "AccountSid": ACCOUNT_SID}, path="/twilio/status")
        to2 = api.sent[1].to
        assert live.query("SELECT stopped FROM contacts WHERE address = ?", (to2,))[0][0] == 1
    stats = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "stats"], cwd=workdir,
                           env=env, capture_output=True, text=True, timeout=60)
    assert "Broadcasts" in stats.stdout and "delivered" in stats.stdout


def test_serve_resumes_an_unfinished_broadcast(tmp_path: Path, api: TwilioAPI) -> None:
    seed(tmp_path / "bot.sqlite3", [{"language": "en"} for _ in range(60)])
    proc = start_broadcast(tmp_path, env_for(tmp_path, api, SEND_RATE_SMS="20"))
    deadline = time.monotonic() + 20
    while len(api.sent) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    proc.wait(timeout=10)
    bot = BotProcess(tmp_path, sms_env(TWILIO_API_URL=api.url, BROADCAST_HOURS="00-24",
                                       SEND_RATE_SMS="100")).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = bot.query("SELECT status FROM broadcasts")[0][0]
            if done == "done":
                break
            time.sleep(0.1)
        assert done == "done", bot.logs()
    finally:
        bot.stop()
    counts = Counter(s.to for s in api.sent)
    assert max(counts.values()) == 1
    rows = bot.query("SELECT address, state FROM broadcast_recipients")
    assert {r[0] for r in rows} - set(counts) <= {r[0] for r in rows if r[1] == "skipped"}


def test_quiet_hours_hold_messages(tmp_path: Path, api: TwilioAPI) -> None:
    seed(tmp_path / "bot.sqlite3", PEOPLE[:2])
    now = time.gmtime()
    # A window of one hour that is not now anywhere in Canada's zones... use an empty window.
    hours = f"{(now.tm_hour + 12) % 24:02d}-{(now.tm_hour + 13) % 24:02d}"
    proc = start_broadcast(tmp_path, {**env_for(tmp_path, api), "BROADCAST_HOURS": hours})
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    assert api.sent == [] or all(s.to not in ("+14165550001", "+14165550002") for s in api.sent)
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM broadcast_recipients WHERE state = 'queued'"
                            ).fetchone()[0] == 2


def test_health_is_unaffected(live: BotProcess) -> None:
    assert httpx.get(live.url + "/healthz").status_code == 200


def test_rerun_while_serve_sends_follows_its_progress(tmp_path: Path, api: TwilioAPI) -> None:
    """A `broadcast` killed mid-way is taken over by serve's worker; running the command again
    then shows serve's progress to the end (exit 0) instead of failing or sending twice."""
    seed(tmp_path / "bot.sqlite3", [{"language": "en"} for _ in range(60)])
    proc = start_broadcast(tmp_path, env_for(tmp_path, api, SEND_RATE_SMS="20"))
    deadline = time.monotonic() + 20
    while len(api.sent) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    bot = BotProcess(tmp_path, sms_env(TWILIO_API_URL=api.url, BROADCAST_HOURS="00-24",
                                       SEND_RATE_SMS="10")).start()
    try:
        owner = lambda: bot.query("SELECT lease_owner FROM broadcasts")[0][0] or ""  # noqa: E731
        deadline = time.monotonic() + 20
        while f":{proc.pid}:" in owner() or not owner():
            assert time.monotonic() < deadline, "serve never took the broadcast over"
            time.sleep(0.05)
        result = broadcast(tmp_path, api, "--yes", SEND_RATE_SMS="100")
        assert result.returncode == 0, result.stderr
        assert "Resuming broadcast 1" in result.stdout
        assert "being sent by another process" in result.stdout
        assert bot.query("SELECT status FROM broadcasts")[0][0] == "done"
    finally:
        bot.stop()
    counts = Counter(s.to for s in api.sent)
    assert max(counts.values()) == 1, "somebody got the update twice"
    states = Counter(r[0] for r in bot.query("SELECT state FROM broadcast_recipients"))
    assert states["sent"] + states["skipped"] == 60
    assert f"Broadcast 1: {states['sent']} sent" in result.stdout


def test_a_new_broadcast_is_leased_to_its_creator_at_once(tmp_path: Path) -> None:
    """serve's worker must not take a broadcast between its creation by `broadcast` and the
    command's first claim (the race that once made the command fail)."""
    import asyncio

    from bot import broadcast as b
    from bot.app import open_bot
    from bot.config import load_settings

    seed(tmp_path / "bot.sqlite3", [{"language": "en"}])
    (tmp_path / "update.toml").write_text(MESSAGE, encoding="utf-8")

    async def go() -> tuple[bool, bool, bool]:
        settings = load_settings({**sms_env(), "BOT_DB": str(tmp_path / "bot.sqlite3")},
                                 cwd=tmp_path)
        async with open_bot(settings) as bot:
            message = b.load_message_file(tmp_path / "update.toml", bot.campaign.languages,
                                          bot.campaign.default_language)
            plan = await b.plan(bot, message, None)
            creator = b.Sender(bot, {}, {})
            bid, new = await b.create(bot, plan, owner=creator.owner)
            worker = b.Sender(bot, {}, {})
            return new, await worker.claim(bid), await creator.claim(bid)

    new, worker_got_it, creator_kept_it = asyncio.run(go())
    assert new and not worker_got_it and creator_kept_it
