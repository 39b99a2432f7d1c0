"""Drive a real `python run_bot.py serve` process the way Twilio would.

`BotProcess` starts the bot on a free port with its own database and settings;
`Twilio` posts webhooks signed by twilio's own RequestValidator and reads the TwiML.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC00000000000000000000000000000001"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
BOT_NUMBER = "+15550001111"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sms_env(**extra: str) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": BOT_NUMBER,
        "TWILIO_API_URL": "http://127.0.0.1:9",  # nothing listens: core never calls REST
        **extra,
    }


class BotProcess:
    """A real bot process; `restart()` kills it and starts another on the same database."""

    def __init__(self, workdir: Path, env: Mapping[str, str], command: str = "serve") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.command = command
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_"))},
            "BOT_HOST": "127.0.0.1",
            "BOT_PORT": str(self.port),
            "BOT_DB": str(workdir / "bot.sqlite3"),
            "CENTRAL_STORE_URL": f"sqlite:///{workdir / 'central.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.public_url = self.env.get("PUBLIC_URL", self.url)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"bot-{self.port}.log"

    def start(self) -> BotProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "run_bot.py"), self.command],
                cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"bot did not start:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self, sig: int = signal.SIGKILL) -> BotProcess:
        self.stop(sig)
        return self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.env["BOT_DB"], timeout=10)
        conn.row_factory = sqlite3.Row
        return conn

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self.db() as conn:
            return list(conn.execute(sql, params))


@dataclass
class Answer:
    status: int
    messages: list[str]
    body: str


_sids = itertools.count(1)


def new_sid() -> str:
    return f"SM{os.getpid():08x}{next(_sids):024x}"


class Twilio:
    """Posts inbound-SMS webhooks to a bot the way Twilio does, signed with the auth token."""

    def __init__(self, bot: BotProcess, auth_token: str = AUTH_TOKEN) -> None:
        self.bot = bot
        self.validator = RequestValidator(auth_token)
        self.client = httpx.Client(timeout=10)

    def __enter__(self) -> Twilio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def form(self, sender: str, body: str, sid: str | None = None, **extra: str) -> dict[str, str]:
        return {
            "MessageSid": sid or new_sid(),
            "AccountSid": ACCOUNT_SID,
            "From": sender,
            "To": BOT_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "FromCountry": "CA",
            **extra,
        }

    def post(self, form: Mapping[str, str], *, signature: str | None = "sign",
             path: str = "/twilio/sms") -> Answer:
        headers = {}
        if signature == "sign":
            headers["X-Twilio-Signature"] = self.validator.compute_signature(
                self.bot.public_url + path, dict(form)
            )
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        r = self.client.post(self.bot.url + path, data=dict(form), headers=headers)
        return Answer(r.status_code, parse_twiml(r.text) if r.status_code == 200 else [], r.text)

    def send(self, sender: str, body: str, sid: str | None = None, **extra: str) -> list[str]:
        answer = self.post(self.form(sender, body, sid, **extra))
        assert answer.status == 200, (answer.status, answer.body)
        return answer.messages

    def conversation(self, sender: str, *lines: str) -> list[list[str]]:
        return [self.send(sender, line) for line in lines]


def parse_twiml(text: str) -> list[str]:
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    return [(m.text or "") for m in root.findall("Message")]


_numbers = itertools.count(1000)


def new_number() -> str:
    """A fresh, valid Canadian mobile-style number for each test (416-555-01xx is fictional)."""
    return f"+1416555{next(_numbers):04d}"


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll `check()` until it is truthy (and return it), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        time.sleep(0.05)


def busiest_second(times: list[float]) -> int:
    """The most events in any one-second window (times in seconds)."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most
