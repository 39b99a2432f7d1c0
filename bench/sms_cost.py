"""SMS cost: outbound segments of one whole signing per language, from `locales check`.

    python -m bench.sms_cost

`python run_bot.py locales check` prints the segments of each text a person receives while
signing over SMS (welcome and language list, petition, name, province, confirm, news,
thanks). Each language's total is reported beside the least a signing can cost (one segment
per text, `floor`) and the same texts before the GSM-7 mapping where the campaign maps them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.common import PYTHON, ROOT, Report, standalone

SEGMENT = re.compile(r"(\d+)(?: \((\d+)\))?")


def flow_table(output: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the 'Segments of one whole signing' table."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Segments of one whole"))
    header = lines[start + 1].split()
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        rows.append(re.findall(r"\d+ \(\d+\)|\S+", line))
    return header, rows


def run(workdir: Path, quick: bool = False) -> Report:
    proc = subprocess.run([PYTHON, str(ROOT / "run_bot.py"), "locales", "check"], cwd=workdir,
                          capture_output=True, text=True, timeout=120)
    report = Report("sms_cost")
    header, rows = flow_table(proc.stdout)
    texts = len(header) - 2  # lang ... total
    for row in rows:
        lang, total = row[0], SEGMENT.fullmatch(row[-1])
        assert total is not None, row
        segments, before = int(total[1]), int(total[2]) if total[2] else None
        report.add(f"segments of one signing, {lang}", segments, "seg",
                   reference="one segment per text", ref_value=texts, ratio=segments / texts,
                   note=f"{before} before the GSM-7 mapping" if before else "")
    report.details = {"header": header, "rows": rows, "locales_check_exit": proc.returncode}
    return report


if __name__ == "__main__":
    sys.exit(standalone("sms_cost", run, __doc__))
