"""Every benchmark, one table, bench/results.json.

    python -m bench [--quick] [--only inbound_sms,telegram,...]     (or python bench/run.py)

Each benchmark measures its figure beside a ceiling or peer in the same run and reports the
ratio and its goal; each also runs alone (`python -m bench.inbound_sms`, ...). Everything
talks over 127.0.0.1 only, and every load is bounded in count and in time: the whole run
takes about 8 minutes here (`--quick`: about 2).
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import broadcast, inbound_sms, sms_cost, startup, sync_pg, telegram  # noqa: E402
from bench.common import Report, machine, parser, save, table, timed  # noqa: E402

#: In the order they run: the cheap and the independent first.
BENCHES = {
    "sms_cost": sms_cost.run,
    "inbound_sms": inbound_sms.run,
    "telegram": telegram.run,
    "broadcast": broadcast.run,
    "startup": startup.run,
    "sync": sync_pg.run,
}


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--only", help="comma-separated: " + ", ".join(BENCHES))
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}")
    info = machine()
    print(f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}"
          f"{' (quick run)' if args.quick else ''}", flush=True)
    started = time.monotonic()
    reports: list[Report] = []
    failed = False
    for name in names:
        print(f"- {name} ...", end=" ", flush=True)
        try:
            report = timed(BENCHES[name], quick=args.quick)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            report = Report(name)
            report.add("failed", None, "", note=f"{type(exc).__name__}: {exc}"[:200], met=False)
        print(f"{report.seconds:.0f} s", flush=True)
        reports.append(report)
    print()
    print(table(reports))
    print(f"\n{time.monotonic() - started:.0f} s in all")
    if not args.no_save:
        save(reports, merge=bool(args.only))
        print(f"written to {Path('bench/results.json')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
