"""Conformance: every vector gives exactly expected.json natively and in Pyodide under Node.

vectors/<name>/ holds data.csv, template.json and expected.json ({"rows", "errors"}, the
shape `loadbay check --format json` prints). The Node run boots Pyodide once for all
vectors, with the wheels from build/assets, i.e. what the browser runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.conformance import generate_vector
from tests.conformance.run_vectors import (
    all_results,
    all_sheet_views,
    data_file,
    open_vector,
    pipeline_sources,
    read_errors,
    vector_result,
)
from tests.pipeline.hostile import bomb_xlsx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VECTORS = HERE / "vectors"
RUNNER = HERE / "pyodide_runner.mjs"
ASSETS = REPO / "build" / "assets"
NAMES = sorted(p.parent.name for p in VECTORS.glob("*/expected.json"))
UNREADABLE = {  # the user sees these messages in the browser: the same text everywhere
    "empty.csv": b"",
    "header_only.csv": b"a,b\r\n",
    "binary.xlsx": b"PK\x03\x04\x14\x00\x06\x00\x08\x00",
    "mixed_encoding.csv": "a,b\nZo\u00e9,x\n".encode() + b"x,y\n" * 20000 + b"\xe9,z\n",
    "long_cell.csv": b"a,b\n1," + b"x" * (200 * 1024) + b"\n",
    "bomb.xlsx": bomb_xlsx(),
    "protected.xlsx": (REPO / "tests" / "fixtures" / "files" / "protected.xlsx").read_bytes(),
    "truncated.xlsx": (REPO / "tests" / "fixtures" / "files" / "people.xlsx").read_bytes()[:3000],
    "ole2.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,
    "zip.csv": (REPO / "tests" / "fixtures" / "files" / "people.ods").read_bytes()[:4000],
    "deep.json": b"[" * 100_000 + b"]" * 100_000,  # a RecursionError in Pyodide too, not a crash
    "unclosed_quote.csv": b'a,b\n1,2\n3,"4\n5,6\n',
}


def expected(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((VECTORS / name / "expected.json").read_text("utf-8"))
    return result


def test_vectors_are_complete() -> None:
    assert len(NAMES) >= 8
    for name in NAMES:
        files = sorted(p.name for p in (VECTORS / name).iterdir())
        assert files == [data_file(str(VECTORS / name)), "expected.json", "template.json"], name
        assert set(expected(name)) == {"rows", "errors"}, name
    assert sum(bool(expected(n)["errors"]) for n in NAMES) >= len(NAMES) - 1


def test_generated_vector_matches_its_generator() -> None:
    data, template, errors = generate_vector.build()
    out = VECTORS / "generated_300"
    assert (out / "data.csv").read_text("utf-8") == data
    assert (out / "template.json").read_text("utf-8") == template
    assert (out / "expected.json").read_text("utf-8") == errors
    assert len(data.encode()) < 50_000
    assert len(json.loads(errors)["errors"]) > 50


@pytest.mark.parametrize("name", NAMES)
def test_native(name: str) -> None:
    assert vector_result(str(VECTORS / name)) == expected(name)


# `make test` always builds the assets first, so these skip only in a hand-run checkout
# without Node or without `loadbay assets build`.
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
needs_assets = pytest.mark.skipif(
    not (ASSETS / "manifest.json").is_file(),
    reason="browser assets are not built: run `loadbay assets build`",
)


def write_unreadable(folder: Path) -> Path:
    folder.mkdir()
    for name, data in UNREADABLE.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def pyodide_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Pyodide boot computing every vector's result and every unreadable file's error."""
    mount = tmp_path_factory.mktemp("mount")
    shutil.copytree(VECTORS, mount / "vectors")
    write_unreadable(mount / "unreadable")
    script = tmp_path_factory.mktemp("pyodide") / "conformance.py"
    script.write_text(
        (HERE / "run_vectors.py").read_text("utf-8")
        + "\nimport sys\n"
        + "json.dumps({'platform': sys.platform, 'sources': pipeline_sources(),"
        + " 'results': all_results('/data/vectors'),"
        + " 'read_errors': read_errors('/data/unreadable'),"
        + " 'views': all_sheet_views('/data/vectors'),"
        + " 'batches': write_batches('/data/vectors', '/data/batches')})\n",
        "utf-8",
    )
    node = shutil.which("node")
    assert node is not None
    proc = subprocess.run(
        [node, str(RUNNER), str(ASSETS), str(mount), str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    run: dict[str, Any] = json.loads(proc.stdout)
    run["batch_dir"] = str(mount / "batches")
    return run


@pytest.mark.node
@needs_node
@needs_assets
def test_pyodide_ran_the_current_pipeline(pyodide_run: dict[str, Any]) -> None:
    assert pyodide_run["platform"] == "emscripten"
    assert sys.platform != "emscripten"
    assert pyodide_run["sources"] == pipeline_sources(), (
        "build/assets holds an older pipeline: run `loadbay assets build`"
    )
    assert sorted(pyodide_run["results"]) == NAMES


@pytest.mark.node
@needs_node
@needs_assets
@pytest.mark.parametrize("name", NAMES)
def test_pyodide(pyodide_run: dict[str, Any], name: str) -> None:
    result = pyodide_run["results"][name]
    assert result == vector_result(str(VECTORS / name))
    assert result == expected(name)


@pytest.mark.node
@needs_node
@needs_assets
def test_pyodide_read_errors(pyodide_run: dict[str, Any], tmp_path: Path) -> None:
    native = read_errors(str(write_unreadable(tmp_path / "unreadable")))
    assert pyodide_run["read_errors"] == native
    assert sorted(native) == sorted(UNREADABLE)
    assert "(read without error)" not in native.values()
    assert native["protected.xlsx"] == (
        "protected.xlsx is password-protected; remove the password and save it again, "
        "then pick the file again."
    )


@pytest.mark.node
@needs_node
@needs_assets
def test_pyodide_reads_every_file_the_same(pyodide_run: dict[str, Any]) -> None:
    """Kind, encoding, header row, headers, every cell and every problem, file by file."""
    assert pyodide_run["views"] == all_sheet_views(str(VECTORS))


@pytest.mark.node
@needs_node
@needs_assets
@pytest.mark.parametrize("name", NAMES)
def test_pyodide_batches_decode_natively(pyodide_run: dict[str, Any], name: str) -> None:
    """The bytes Pyodide sends are a valid IPC stream holding exactly the mapped cells."""
    assert name in pyodide_run["batches"]
    data = (Path(pyodide_run["batch_dir"]) / f"{name}.arrow").read_bytes()
    received = pa.ipc.open_stream(data).read_all()
    session = open_vector(str(VECTORS / name))
    first = session.sheet.first_data_row
    sent = session.review.sent_rows()  # blank rows of the file left out
    assert received.column("__row").to_pylist() == [first + i for i in sent]
    cells = received.drop_columns(["__row"])
    assert cells.to_pylist() == pa.table(session.review.materialise(sent)).to_pylist()


def test_all_results_walks_every_vector() -> None:
    results = all_results(str(VECTORS))
    assert sorted(results) == NAMES
    assert results["clean"] == {"rows": 4, "errors": []}


@pytest.mark.parametrize("name", NAMES)
def test_cli_check_prints_the_same(name: str) -> None:
    from typer.testing import CliRunner

    from server.cli import app

    folder = VECTORS / name
    data = folder / data_file(str(folder))
    args = ["check", str(data), "--template", str(folder / "template.json")]
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert json.loads(result.stdout) == expected(name)
    assert result.exit_code == (1 if expected(name)["errors"] else 0)
