"""Outage: the central store (PostgreSQL) unreachable for a long stretch while people sign.

    python -m bench.outage [--minutes 2] [--signers 60]

A real `serve` syncs to PostgreSQL through a TCP proxy that is cut for the whole stretch.
Meanwhile people sign over signed SMS webhooks: every one must be answered as usual, /healthz
must say "degraded" with the sync error, and when the network comes back the outbox must drain
with exactly one row per signature in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import BotProcess, Twilio, sms_env, wait_for  # noqa: E402
from tests.standins.tcp_proxy import TcpProxy  # noqa: E402
from tests.sync_support import PG_HOST, PG_PORT, PgSchemas, pg_user  # noqa: E402

SCRIPT = ["hi", "1", "SIGN", "Ana Cruz", "ON", "1", "2"]


def run(workdir: Path, minutes: float, signers: int) -> dict[str, object]:
    pg = PgSchemas(pg_user())
    schema = pg.new()
    proxy = TcpProxy((PG_HOST, PG_PORT)).start()
    bot = BotProcess(workdir, sms_env(CENTRAL_STORE_URL=pg.url(schema, proxy.port))).start()
    report: dict[str, object] = {}
    try:
        with Twilio(bot) as twilio:
            proxy.cut()
            started = time.monotonic()
            answered = unanswered = 0
            degraded_seen = False
            phones = [f"+1416{8000000 + i:07d}" for i in range(signers)]
            pace = minutes * 60 / max(1, signers)
            for phone in phones:  # spread the signers over the outage
                for line in SCRIPT:
                    if twilio.send(phone, line):
                        answered += 1
                    else:
                        unanswered += 1
                health = httpx.get(bot.url + "/healthz").json()
                degraded_seen |= health["status"] == "degraded" and bool(
                    health["sync"]["last_error"])
                time.sleep(max(0.0, started + pace * (phones.index(phone) + 1) -
                               time.monotonic()))
            pending = httpx.get(bot.url + "/healthz").json()["outbox"]["pending"]
            outage = time.monotonic() - started
            proxy.restore()
            back = time.monotonic()
            wait_for(lambda: httpx.get(bot.url + "/healthz").json()["outbox"]["pending"] == 0,
                     timeout=180)
            drained = time.monotonic() - back

            async def rows() -> tuple[int, int]:
                conn = await pg.connect()
                try:
                    total = await conn.fetchval(f"SELECT count(*) FROM {schema}.signatures")
                    distinct = await conn.fetchval(
                        f"SELECT count(DISTINCT contact) FROM {schema}.signatures")
                finally:
                    await conn.close()
                return int(total), int(distinct)

            total, distinct = asyncio.run(rows())
            report = {"outage_s": round(outage, 1), "signers": signers,
                      "replies_during_outage": answered, "turns_unanswered": unanswered,
                      "pending_at_end_of_outage": pending, "degraded_seen": degraded_seen,
                      "drain_s": round(drained, 1), "rows": total, "distinct": distinct,
                      "ok": total == distinct == signers and unanswered == 0 and degraded_seen}
    finally:
        bot.stop()
        proxy.stop()
        pg.drop_all()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--signers", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = run(Path(tmp), args.minutes, args.signers)
    print(r)
    return 0 if r.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
