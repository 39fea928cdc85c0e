"""The per-layer coverage gates of `make test` (scripts/coverage_gates.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("coverage_gates", ROOT / "scripts/coverage_gates.py")
gates = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gates)


def report(tmp_path: Path, **percent_by_prefix: float) -> str:
    files = {}
    for prefix, percent in percent_by_prefix.items():
        path = prefix.replace("_", "/") + "/module.py"
        files[path] = {
            "summary": {"covered_lines": int(percent), "num_statements": 100, "num_branches": 0}
        }
    target = tmp_path / "coverage.json"
    target.write_text(json.dumps({"files": files}))
    return str(target)


def test_every_layer_at_its_gate_passes(tmp_path):
    path = report(tmp_path, core_domain=100, core_usecases=95, apps=85, config=70)
    assert gates.main(path) == 0


def test_a_layer_below_its_gate_fails(tmp_path):
    path = report(tmp_path, core_domain=99, core_usecases=95, apps=85, config=70)
    assert gates.main(path) == 1


def test_a_layer_with_nothing_measured_fails(tmp_path):
    path = report(tmp_path, core_domain=100, core_usecases=95, apps=85)
    assert gates.main(path) == 1
