"""Sync: bench/sync.py (100,000 signatures into PostgreSQL through the bot's sync path vs a
bare COPY of the same rows), run as it is and its figures read back.

    python -m bench.sync_pg [--quick]   (BENCH_PG_URL or postgresql://postgres@127.0.0.1/test)

bench/sync.py is its own benchmark (another engineer tunes it); this only runs it in a
subprocess and parses what it prints into the common table.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.common import PYTHON, ROOT, Report, standalone

RATE = r"([\d,]+) rows/s \(([\d.]+) s\)"


def run(workdir: Path, quick: bool = False) -> Report:
    rows = 20_000 if quick else 100_000
    proc = subprocess.run([PYTHON, str(ROOT / "bench" / "sync.py"), "--rows", str(rows)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = Report("sync")
    out = proc.stdout
    bot = re.search(r"through the bot.*?:\s+" + RATE, out)
    bare = re.search(r"bare COPY.*?:\s+" + RATE, out)
    if proc.returncode != 0 or bot is None or bare is None:
        report.add(f"sync of {rows:,} signatures", None, "rows/s", goal="runs", met=False,
                   note=(proc.stderr or out).strip().splitlines()[-1][:120]
                   if (proc.stderr or out).strip() else f"exit {proc.returncode}")
        report.details = {"stdout": out, "stderr": proc.stderr[-2000:]}
        return report
    bot_rate, bare_rate = (float(m[1].replace(",", "")) for m in (bot, bare))
    report.add(f"sync of {rows:,} signatures into PostgreSQL", bot_rate, "rows/s",
               reference="bare COPY of the same rows", ref_value=bare_rate,
               ratio=bot_rate / bare_rate, note=f"{float(bot[2]):.2f} s vs {float(bare[2]):.2f} s")
    again = re.search(r"every mark lost, sync again: .*?\(" + RATE + r"\)", out)
    if again:
        report.add("re-sync, every mark lost (all present)", float(again[1].replace(",", "")),
                   "rows/s", reference="bare COPY", ref_value=bare_rate,
                   ratio=float(again[1].replace(",", "")) / bare_rate)
    report.details = {"stdout": out, "exit": proc.returncode}
    return report


if __name__ == "__main__":
    sys.exit(standalone("sync", run, __doc__))
