"""bench.headless measures a real headless import: every row of its CSV read in parts,
validated and stored, in a process whose memory it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import headless


def test_a_generated_csv_is_imported_part_by_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    path = headless.csv_file(3000, tmp_path)
    assert path.read_text().splitlines()[0].startswith('"id",')
    result = headless.child(path, part_bytes=64 * 1024)
    assert (result["status"], result["failure"]) == ("complete", None)
    assert result["rows_stored"] == 3000
    assert result["batches"] >= path.stat().st_size // (64 * 1024)  # one a part at least
    assert result["peak_rss_mb"] >= result["rss_before_import_mb"] > 0
    assert path.exists()  # the import deleted its own link to the file only
    json.dumps(result)  # what main() writes
