"""Per-layer coverage gates over coverage.py's JSON report.

The layers and their floors come from the architecture document: the domain is fully covered,
use cases nearly so, adapters (apps) and infrastructure (config) less strictly.
"""

from __future__ import annotations

import json
import sys

GATES = [
    ("core/domain/", 100.0),
    ("core/usecases/", 95.0),
    ("apps/", 85.0),
    ("config/", 70.0),
]


def layer_percent(files: dict[str, dict], prefix: str) -> float | None:
    covered = total = 0
    for path, data in files.items():
        if path.startswith(prefix):
            summary = data["summary"]
            covered += summary["covered_lines"] + summary.get("covered_branches", 0)
            total += summary["num_statements"] + summary.get("num_branches", 0)
    return None if total == 0 else 100.0 * covered / total


def main(report_path: str) -> int:
    with open(report_path) as handle:
        files = json.load(handle)["files"]
    failed = False
    for prefix, floor in GATES:
        percent = layer_percent(files, prefix)
        if percent is None:  # a layer the run never imported is not covered, it is missed
            print(f"{prefix:<16} no code measured  BELOW GATE")
            failed = True
            continue
        verdict = "ok" if percent + 1e-9 >= floor else "BELOW GATE"
        failed |= verdict != "ok"
        print(f"{prefix:<16} {percent:6.2f}%  (gate {floor:.0f}%)  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "var/coverage.json"))
