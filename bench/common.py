"""What every benchmark shares: the machine, processes and their memory, the load client,
signed requests, and the results (one table, `bench/results.json`).

Every figure is reported beside the ceiling or peer measured in the same run and the ratio
between them, with the goal it is held to. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    BOT_NUMBER,
    BotProcess,
    free_port,
    sms_env,
)

RESULTS = ROOT / "bench" / "results.json"
PYTHON = sys.executable
TELEGRAM_TOKEN = "4242001:bench-token_ABCdef"
TELEGRAM_SECRET = "bench-Secret_token"

__all__ = ["ACCOUNT_SID", "AUTH_TOKEN", "BOT_NUMBER", "BotProcess", "free_port", "sms_env"]


# --- the machine ----------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release()}


# --- processes and memory -------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
    except FileNotFoundError:
        pass
    return out


def rss_mb(pid: int) -> float:
    return proc_status(pid).get("VmRSS", 0) / 1024


def peak_rss_mb(pid: int) -> float:
    return proc_status(pid).get("VmHWM", 0) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bot_env(**extra: str) -> dict[str, str]:
    """A serve process with SMS on; extra settings on top (the harness adds BOT_* and the DB)."""
    return sms_env(**extra)


@contextmanager
def running_bot(workdir: Path, env: Mapping[str, str]) -> Iterator[BotProcess]:
    bot = BotProcess(workdir, env).start()
    try:
        yield bot
    finally:
        bot.stop()


def wait_telegram(bot: BotProcess, timeout: float = 15) -> None:
    """Until the bot has registered its webhook with the stand-in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(f"{bot.url}/healthz", timeout=5).json()
        if health["channels"]["telegram"]["reason"] is None:
            return
        time.sleep(0.05)
    raise RuntimeError(f"Telegram did not connect:\n{bot.logs()[-2000:]}")


# --- requests -------------------------------------------------------------------------------

def http_post(path: str, body: bytes, headers: Mapping[str, str], port: int,
              content_type: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
            f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


#: One conversation per person over SMS, from the first message to a keyword after signing:
#: new contact, language choice, SIGN, name, province, confirm (the signature), news yes/no
#: (the count), and a keyword once signed. Four languages, so every catalog path is taken.
SMS_SCRIPTS: list[list[str]] = [
    ["hi", "1", "SIGN", "Ana Cruz", "ON", "1", "1", "MENU"],
    ["hola", "2", "FIRMAR", "María López", "BC", "1", "2", "AYUDA"],
    ["bonjour", "3", "SIGNER", "Élise Tremblay", "QC", "1", "1", "AIDE"],
    ["kumusta", "4", "PUMIRMA", "Jose Rizal", "LAKTAW", "1", "2", "TULONG"],
]


def sms_conversations(port: int, public_url: str, people: int, first: int = 0,
                      scripts: list[list[str]] | None = None) -> list[list[bytes]]:
    """Signed Twilio webhooks, one conversation per distinct number (pre-signed: the client
    spends no CPU on HMAC during the run)."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    url = public_url + "/twilio/sms"
    scripts = scripts or SMS_SCRIPTS
    out: list[list[bytes]] = []
    sids = itertools.count(1)
    for n in range(first, first + people):
        sender = f"+1416{2000000 + n:07d}"
        conv = []
        for text in scripts[n % len(scripts)]:
            form = {"MessageSid": f"SM{os.getpid():08x}{n:012x}{next(sids):012x}",
                    "AccountSid": ACCOUNT_SID, "From": sender, "To": BOT_NUMBER, "Body": text,
                    "NumMedia": "0", "NumSegments": "1", "FromCountry": "CA"}
            signature = validator.compute_signature(url, form)
            body = urlencode(form).encode()
            conv.append(http_post("/twilio/sms", body, {"X-Twilio-Signature": signature}, port,
                                  "application/x-www-form-urlencoded"))
        out.append(conv)
    return out


# --- the load client ------------------------------------------------------------------------

def write_plan(workdir: Path, conversations: list[list[bytes]], name: str = "plan") -> Path:
    path = workdir / f"{name}.pickle"
    path.write_bytes(pickle.dumps(conversations, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load(plan: Path, port: int, *, mode: str = "closed", connections: int = 50,
         duration: float = 10.0, warmup: int = 0, rate: float = 0.0, expect: str = "",
         active: int = 200, trace: Path | None = None) -> dict[str, Any]:
    """Run the load client in its own process; its JSON summary."""
    spec = {"plan": str(plan), "host": "127.0.0.1", "port": port, "mode": mode,
            "connections": connections, "duration": duration, "warmup": warmup, "rate": rate,
            "expect": expect, "active": active, "trace": str(trace) if trace else None}
    spec_path = plan.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([PYTHON, "-m", "bench.load", str(spec_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- results --------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the table: a figure, what it is measured against, the ratio, the goal."""

    bench: str
    metric: str
    value: float | None
    unit: str
    reference: str = ""  # the ceiling or peer, named
    ref_value: float | None = None
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Report:
    bench: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, metric: str, value: float | None, unit: str, **kw: Any) -> Row:
        row = Row(self.bench, metric, value, unit, **kw)
        self.rows.append(row)
        return row


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.0f}%"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(reports: Iterable[Report]) -> str:
    head = ("bench", "figure", "value", "ceiling / peer", "ref", "ratio", "goal", "met")
    lines = [head]
    for report in reports:
        for r in report.rows:
            lines.append((r.bench, r.metric, fmt(r.value, r.unit), r.reference,
                          fmt(r.ref_value, r.unit) if r.ref_value is not None else "",
                          f"{r.ratio:.2f}" if r.ratio is not None else "",
                          r.goal, {True: "yes", False: "NO", None: ""}[r.met]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def save(reports: list[Report], path: Path = RESULTS, merge: bool = True) -> None:
    """Write (or, for one benchmark run alone, update) bench/results.json."""
    data: dict[str, Any] = {}
    if merge and path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    data.setdefault("benches", {})
    data["machine"] = machine()
    data["written_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for report in reports:
        data["benches"][report.bench] = {"rows": [asdict(r) for r in report.rows],
                                         "details": report.details,
                                         "seconds": round(report.seconds, 1)}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").strip().split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller and shorter: a smoke run")
    p.add_argument("--no-save", action="store_true", help="do not update bench/results.json")
    return p


def standalone(name: str, run: Any, doc: str | None) -> int:
    """`python -m bench.<name>`: run one benchmark, print its rows, update results.json."""
    args = parser(doc).parse_args()
    report = timed(run, quick=args.quick)
    print(table([report]))
    if not args.no_save:
        save([report])
    return 0


def timed(run: Any, **kw: Any) -> Report:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        report: Report = run(Path(tmp), **kw)
    report.seconds = time.monotonic() - started
    return report
