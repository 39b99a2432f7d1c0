"""Chaos: drive SMS conversations at a real `serve` and SIGKILL it at random moments.

    python bench/chaos.py [--contacts 200] [--kills 50] [--seed 1]

After every run: each message the platform got a 2xx for was processed exactly once (a retry
of the same MessageSid gets the same TwiML), no signature is lost or counted twice, and every
conversation resumes at its step. `tests/test_chaos.py` runs a short version.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import BotProcess, Twilio, new_sid, sms_env  # noqa: E402

SCRIPT = ["hi", "2", "FIRMAR", "Ana Cruz", "ON", "1", "1"]
FINAL_STATE = "menu"


@dataclass
class Person:
    phone: str
    step: int = 0
    sid: str = field(default_factory=new_sid)
    answers: dict[str, str] = field(default_factory=dict)  # MessageSid -> TwiML seen


@dataclass
class Report:
    kills: int = 0
    messages: int = 0
    retries: int = 0
    mismatched_retries: int = 0
    signatures: int = 0
    duplicates: int = 0
    unfinished: int = 0
    wrong_state: int = 0


def person_form(twilio: Twilio, rng: random.Random, people: list[Person]) -> dict[str, str]:
    person = rng.choice([p for p in people if p.step < len(SCRIPT)])
    return twilio.form(person.phone, SCRIPT[person.step], sid=person.sid)


def run(workdir: Path, contacts: int, kills: int, seed: int, verbose: bool = False) -> Report:
    rng = random.Random(seed)
    bot = BotProcess(workdir, sms_env()).start()
    people = [Person(f"+1416{6000000 + i:07d}") for i in range(contacts)]
    report = Report()
    total = contacts * len(SCRIPT)
    gap = max(1, total // (kills + 1))
    next_kill = rng.randint(1, 2 * gap)  # kill after this many more requests
    try:
        with Twilio(bot) as twilio:
            twilio.client.timeout = httpx.Timeout(5.0)
            while any(p.step < len(SCRIPT) for p in people):
                next_kill -= 1
                if report.kills < kills and next_kill <= 0:
                    if rng.random() < 0.5 and bot.proc is not None:
                        # Kill while a request is in flight, not only between requests.
                        threading.Timer(rng.uniform(0, 0.004), bot.proc.kill).start()
                        try:
                            twilio.post(person_form(twilio, rng, people))
                        except httpx.HTTPError:
                            pass
                    bot.restart(signal.SIGKILL)
                    report.kills += 1
                    next_kill = rng.randint(1, 2 * gap)
                    if verbose:
                        print(f"kill {report.kills}", file=sys.stderr)
                person = rng.choice([p for p in people if p.step < len(SCRIPT)])
                form = twilio.form(person.phone, SCRIPT[person.step], sid=person.sid)
                try:
                    answer = twilio.post(form)
                except httpx.HTTPError:
                    continue  # killed mid-request: the platform got no 2xx, it will retry
                report.messages += 1
                if answer.status != 200:
                    continue
                # Sometimes Twilio retries a message we did answer: same TwiML, no change.
                if rng.random() < 0.1:
                    try:
                        again = twilio.post(form)
                        report.retries += 1
                        if again.status == 200 and again.body != answer.body:
                            report.mismatched_retries += 1
                    except httpx.HTTPError:
                        pass
                person.step += 1
                person.sid = new_sid()
    finally:
        bot.stop()
    rows = bot.query("SELECT contact, count(*) AS n FROM signatures GROUP BY contact")
    report.signatures = sum(r["n"] for r in rows)
    report.duplicates = sum(r["n"] - 1 for r in rows if r["n"] > 1)
    states = {r["address"]: r["state"] for r in bot.query("SELECT address, state FROM contacts")}
    report.unfinished = sum(1 for p in people if p.phone not in {r["contact"] for r in rows})
    report.wrong_state = sum(1 for p in people if states.get(p.phone) != FINAL_STATE)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        r = run(Path(tmp), args.contacts, args.kills, args.seed, verbose=True)
    print(f"kills survived: {r.kills}; messages: {r.messages}; retries: {r.retries} "
          f"({r.mismatched_retries} answered differently); signatures: {r.signatures} of "
          f"{args.contacts}; duplicates: {r.duplicates}; lost: {r.unfinished}; "
          f"wrong state: {r.wrong_state}; {time.monotonic() - started:.0f} s")
    ok = not (r.duplicates or r.unfinished or r.wrong_state or r.mismatched_retries)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
