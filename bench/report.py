"""bench/results.json as a Markdown table (for docs/performance.md and the README).

    python -m bench.report
"""

from __future__ import annotations

import json
import sys

from bench.common import RESULTS, fmt


def markdown(data: dict) -> str:  # type: ignore[type-arg]
    m = data["machine"]
    out = [f"Machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, Linux {m['kernel']}"
           f"; written {data['written_at']}.", "",
           "| bench | figure | value | ceiling / peer | ref | ratio | goal | met |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for bench in data["benches"].values():
        for r in bench["rows"]:
            met = {True: "yes", False: "**no**", None: ""}[r["met"]]
            ref = fmt(r["ref_value"], r["unit"]) if r["ref_value"] is not None else ""
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
            note = f" ({r['note']})" if r["note"] else ""
            out.append(f"| {r['bench']} | {r['metric']}{note} | {fmt(r['value'], r['unit'])} | "
                       f"{r['reference']} | {ref} | {ratio} | {r['goal']} | {met} |")
    return "\n".join(out)


def main() -> int:
    print(markdown(json.loads(RESULTS.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
