"""`make bench`'s harness end to end on a tiny file: right shape, and both engines agree.

Correctness only (no timing asserts): the same generated CSV goes through loadbay's engine
in Pyodide and through PapaParse + plain-JS rules in the same Chromium, and both must count
exactly the invalid cells the generator injected for the rules the template carries.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.run import ROOT, run_bench

ASSETS = ROOT / "build" / "assets"

pytestmark = pytest.mark.e2e


def test_harness_runs_both_engines_and_they_agree(tmp_path: Path) -> None:
    if not (ASSETS / "manifest.json").exists():
        pytest.fail("build/assets is not built: run `make assets`")
    # In a thread of its own: the harness starts its own Playwright, whose sync API refuses a
    # thread where another (the e2e tests' session fixture, in the same xdist worker) runs.
    with ThreadPoolExecutor(1) as thread:
        result = thread.submit(
            run_bench,
            rows=2000,
            xlsx_rows=300,
            runs=1,
            data_dir=tmp_path / "data",
            results_dir=tmp_path / "results",
            assets=ASSETS,
        ).result()

    saved = json.loads((tmp_path / "results" / "latest.json").read_text())
    assert saved["files"] == result["files"]
    assert len(list((tmp_path / "results").glob("2*.json"))) == 1
    assert (tmp_path / "results" / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert saved["machine"]["nproc"] >= 1
    assert saved["files"]["csv"]["rows"] == 2000
    assert saved["files"]["csv"]["cols"] == 20
    assert saved["files"]["csv"]["bytes"] > 0
    for key in ("parse_ms", "match_ms", "validate_ms", "total_ms", "peak_mem_bytes", "errors"):
        assert key in saved["loadbay"], key
    for key in ("total_ms", "peak_mem_bytes", "errors"):
        assert key in saved["papaparse"], key
    assert saved["loadbay"]["stats"]["total_ms"].keys() >= {"median", "min", "max"}
    for key in ("ratio_speed", "ratio_mem"):
        assert isinstance(saved[key], float)
    assert set(saved["targets"]) == {
        "csv_parse_validate_le_4s",
        "faster_2x",
        "mem_le_3x",
        "mem_over_idle_le_2_5x",
        "edit_lt_50ms",
        "xlsx_le_20s",
    }
    # One and two engines in the same run, each against PapaParse; the loadbay section is
    # the most engines' run, with the floor of that many idle engines (issue #20).
    assert set(saved["ratio_speed_by_workers"]) == {"1", "2"}
    assert saved["loadbay"]["workers"] == 2
    assert saved["loadbay"]["idle_engines_floor_bytes"] == saved["floor"]["idle_2_engines_bytes"]
    assert all(isinstance(v, bool) for v in saved["targets"].values())
    # One-cell edits timed after the review is built, with each engine count; every edit's
    # answer held the cell re-checked (a bad value flagged, a good one clear).
    for summary in saved["loadbay_by_workers"].values():
        assert summary["edit_ms"] > 0
        assert summary["edit_shown_ms"] >= summary["edit_ms"]
        for run in summary["runs"]:
            assert len(run["edits"]["answered_ms"]) == 9
            assert run["edits"]["field"] == "age"
    assert saved["loadbay"]["edit_ms"] == saved["loadbay_by_workers"]["2"]["edit_ms"]
    assert saved["checks"]["edits_checked"] is True

    # The harness is only worth its figures if both engines did the same work.
    assert saved["loadbay"]["rows"] == saved["papaparse"]["rows"] == 2000
    assert saved["loadbay"]["mapped"] == saved["papaparse"]["mapped"] == 20
    expected = saved["files"]["csv"]["expected_invalid_cells"]
    assert expected > 0
    assert saved["loadbay"]["invalid_cells"] == expected
    assert saved["papaparse"]["invalid_cells"] == expected
    assert saved["checks"]["invalid_cells_agree"] is True

    # The floor: a tab idles heavier with each engine, and reading the file costs memory.
    floor = saved["floor"]
    assert 0 < floor["idle_0_engines_bytes"] < floor["idle_1_engines_bytes"]
    assert floor["idle_1_engines_bytes"] < floor["idle_2_engines_bytes"]
    assert floor["second_engine_bytes"] > 50_000_000  # a Pyodide engine is tens of MB at least
    # Reading boots an engine: above the tab with none by an engine's tens of MB. (Not
    # compared with idle_1: two fresh tabs with one engine differ by tens of MB.)
    assert floor["read_only_peak_bytes"] > floor["idle_0_engines_bytes"] + 50_000_000
    assert floor["read_only_ms"] > 0
    for engines in (1, 2):
        assert floor["ratios_to_file"][f"idle_{engines}_engines"] == pytest.approx(
            floor[f"idle_{engines}_engines_bytes"] / saved["files"]["csv"]["bytes"]
        )

    xlsx = saved["xlsx"]
    if not xlsx.get("skipped"):
        assert xlsx["rows"] == 300
        assert xlsx["total_ms"] > 0


def test_papaparse_is_never_served_by_the_product() -> None:
    """The baseline is a devDependency: nothing in the built assets may carry it."""
    manifest = json.loads((ASSETS / "manifest.json").read_text())
    assert not [p for p in manifest["files"] if "papa" in p.lower()]
    for path in manifest["files"]:
        if path.startswith("app/"):
            assert b"papaparse" not in (ASSETS / path).read_bytes().lower(), path
