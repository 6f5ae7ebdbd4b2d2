"""Asset builder (tools/): integrity data, deterministic build ids, the lock, the Node runner.

Builds run on copies of browser/, pipeline/ and pyproject.toml in tmp, reusing the real
node_modules and wheel cache so no test needs npm or the network once the cache is warm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.importer.assets import AssetManifest, AssetsMissingError
from tools.build_assets import AssetBuildError, app_sources, build_assets, parse_wheels_txt

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "tests" / "conformance" / "pyodide_runner.mjs"
PINNED = [
    "arro3-core",
    "arro3-io",
    "arro3-compute",
    "python-calamine",
    "charset-normalizer",
    "phonenumbers",
]
PROBE = "probe.css"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
PIPELINE_WHEEL = f"loadbay_pipeline-{VERSION}-py3-none-any.whl"


@dataclass(frozen=True)
class Built:
    out: Path
    manifest: AssetManifest


def _copy_repo(dest: Path) -> Path:
    """A build root sharing node_modules and the wheel cache with the real checkout."""
    shutil.copytree(
        REPO / "browser", dest / "browser", ignore=shutil.ignore_patterns("node_modules")
    )
    (dest / "browser" / "node_modules").symlink_to(REPO / "browser" / "node_modules")
    (dest / "browser" / PROBE).write_text("/* a */\n")
    shutil.copytree(
        REPO / "pipeline", dest / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copyfile(REPO / "pyproject.toml", dest / "pyproject.toml")
    cache = REPO / "build" / "wheel-cache"
    cache.mkdir(parents=True, exist_ok=True)
    (dest / "build").mkdir()
    (dest / "build" / "wheel-cache").symlink_to(cache)
    return dest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = _copy_repo(tmp_path_factory.mktemp("root"))
    out = root / "out" / "assets"
    return Built(out, build_assets(root, out))


def test_manifest_lists_every_file_with_integrity(built: Built) -> None:
    out, manifest = built.out, built.manifest
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {
        "manifest.json"
    }
    assert set(manifest.files) == on_disk
    for rel, entry in manifest.files.items():
        data = (out / rel).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest(), rel
        sri = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert entry.sri == sri, rel
        assert entry.size == len(data), rel
    assert {
        "pyodide/pyodide.mjs",
        "pyodide/pyodide.asm.mjs",
        "pyodide/pyodide.asm.wasm",
        "pyodide/python_stdlib.zip",
        "wheels/pyodide-lock.json",
        f"app/{PROBE}",
    } <= on_disk
    served = {r.removeprefix("app/") for r in on_disk if r.startswith("app/")}
    assert served == set(app_sources(REPO / "browser")) | {PROBE}
    # The entry files, every ES module under src/ with its path, the SDK at its public URL.
    modules = {
        p.relative_to(REPO / "browser").as_posix() for p in (REPO / "browser" / "src").rglob("*.js")
    }
    assert {"importer.js", "worker.mjs", "importer.css", "embed.js"} | modules <= served
    assert "src/ui/review.js" in served
    assert not any(name.startswith("sdk/") or "eslint" in name for name in served)
    assert manifest.pyodide_version == "314.0.7"
    lines = "".join(f"{rel}\0{manifest.files[rel].sha256}\n" for rel in sorted(manifest.files))
    assert manifest.build_id == hashlib.sha256(lines.encode()).hexdigest()[:16]
    assert AssetManifest.load(out) == manifest


def test_build_id_is_deterministic(built: Built, tmp_path: Path) -> None:
    first = built.manifest
    root = _copy_repo(tmp_path)
    again = build_assets(root, tmp_path / "assets")
    assert again.build_id == first.build_id
    assert again.files == first.files


def test_build_id_changes_with_a_browser_file(built: Built, tmp_path: Path) -> None:
    first = built.manifest
    root = _copy_repo(tmp_path)
    (root / "browser" / PROBE).write_text("/* b */\n")
    changed = build_assets(root, tmp_path / "assets")
    assert changed.build_id != first.build_id
    differing = {k for k in first.files if first.files[k] != changed.files[k]}
    assert differing == {f"app/{PROBE}"}


def test_build_id_changes_with_pipeline_source(built: Built, tmp_path: Path) -> None:
    first = built.manifest
    root = _copy_repo(tmp_path)
    with (root / "pipeline" / "__init__.py").open("a") as fh:
        fh.write("\n# changed\n")
    changed = build_assets(root, tmp_path / "assets")
    assert changed.build_id != first.build_id
    differing = {k for k in first.files if first.files[k] != changed.files[k]}
    assert differing == {
        f"wheels/{PIPELINE_WHEEL}",
        "wheels/pyodide-lock.json",
    }


def test_lock_lists_pinned_wheels_and_pipeline(built: Built) -> None:
    out, manifest = built.out, built.manifest
    lock = json.loads((out / "wheels" / "pyodide-lock.json").read_text())
    upstream = json.loads(
        (REPO / "browser" / "node_modules" / "pyodide" / "pyodide-lock.json").read_text()
    )
    assert lock["info"] == upstream["info"]
    assert manifest.packages == (*PINNED, "loadbay-pipeline")
    assert sorted(lock["packages"]) == sorted(manifest.packages)
    pins = {pin.name: pin for pin in parse_wheels_txt(REPO / "browser" / "wheels.txt")}
    upstream_keys = {frozenset(entry) for entry in upstream["packages"].values()}
    for name, entry in lock["packages"].items():
        assert entry["name"] == name
        assert frozenset(entry) in upstream_keys
        assert "/" not in entry["file_name"]
        assert entry["sha256"] == _sha256(out / "wheels" / entry["file_name"])
        assert entry["sha256"] == manifest.files[f"wheels/{entry['file_name']}"].sha256
        assert (entry["install_dir"], entry["package_type"], entry["depends"]) == (
            "site",
            "package",
            [],
        )
        if name in pins:
            assert entry["sha256"] in pins[name].hashes
            assert entry["version"] == pins[name].version
    imports = {name: entry["imports"] for name, entry in lock["packages"].items()}
    assert imports == {
        "arro3-core": ["arro3"],
        "arro3-io": ["arro3"],
        "arro3-compute": ["arro3"],
        "python-calamine": ["python_calamine"],
        "charset-normalizer": ["charset_normalizer"],
        "phonenumbers": ["phonenumbers"],
        "loadbay-pipeline": ["pipeline"],
    }
    assert lock["packages"]["loadbay-pipeline"]["file_name"] == PIPELINE_WHEEL


@pytest.mark.usefixtures("built")  # warms the real wheel cache this test copies
def test_tampered_hash_fails_and_keeps_previous_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_repo(tmp_path / "root")
    # A private cache copy (pip deletes cached files with a bad hash) and an offline index.
    (root / "build" / "wheel-cache").unlink()
    shutil.copytree(REPO / "build" / "wheel-cache", root / "build" / "wheel-cache")
    links = shutil.copytree(REPO / "build" / "wheel-cache", tmp_path / "links")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    wheels_txt = root / "browser" / "wheels.txt"
    real = next(p for p in parse_wheels_txt(wheels_txt) if p.name == "arro3-core")
    (real_hash,) = real.hashes
    wheels_txt.write_text(wheels_txt.read_text().replace(real_hash, "0" * 64))
    out = root / "assets"
    out.mkdir()
    (out / "manifest.json").write_text("previous build")

    with pytest.raises(AssetBuildError, match="does not match its hash") as excinfo:
        build_assets(root, out)

    assert "arro3" in str(excinfo.value)
    assert "0" * 64 in str(excinfo.value)
    assert (out / "manifest.json").read_text() == "previous build"
    assert sorted(p.name for p in root.iterdir()) == [
        "assets",
        "browser",
        "build",
        "pipeline",
        "pyproject.toml",
    ]


def test_two_sources_for_one_served_path_fail_the_build(tmp_path: Path) -> None:
    browser = tmp_path / "browser"
    (browser / "sdk").mkdir(parents=True)
    (browser / "embed.js").write_text("// a\n")
    (browser / "sdk" / "embed.js").write_text("// b\n")
    with pytest.raises(AssetBuildError, match="would both be served as embed.js"):
        app_sources(browser)


def test_load_missing_assets_dir(tmp_path: Path) -> None:
    with pytest.raises(AssetsMissingError) as excinfo:
        AssetManifest.load(tmp_path / "missing")
    assert str(excinfo.value) == "Browser assets are not built: run `loadbay assets build`"
    assert isinstance(excinfo.value, RuntimeError)


def test_url_is_immutable_path(built: Built) -> None:
    manifest = built.manifest
    assert manifest.url("pyodide/pyodide.mjs") == f"/assets/{manifest.build_id}/pyodide/pyodide.mjs"
    assert manifest.url("wheels/pyodide-lock.json") == (
        f"/assets/{manifest.build_id}/wheels/pyodide-lock.json"
    )
    with pytest.raises(KeyError):
        manifest.url("pyodide/nope.js")


def _run_node(assets: Path, tmp_path: Path, script_text: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(script_text)
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "upload.csv").write_text("a,b\n1,2\n")
    node = shutil.which("node")
    assert node is not None
    return subprocess.run(
        [node, str(RUNNER), str(assets), str(mount), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )


no_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")


@pytest.mark.node
@no_node
def test_node_runner_loads_wheels_from_lock(built: Built, tmp_path: Path) -> None:
    result = _run_node(
        built.out,
        tmp_path,
        "import json, os, arro3.core, pipeline\n"
        "print('to stderr')\n"
        "json.dumps({'ok': arro3.core.__name__, 'data': os.listdir('/data')})\n",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": "arro3.core", "data": ["upload.csv"]}
    assert "to stderr" in result.stderr


@pytest.mark.node
@no_node
def test_node_runner_refuses_wheel_not_matching_lock(built: Built, tmp_path: Path) -> None:
    assets = shutil.copytree(built.out, tmp_path / "assets")
    lock_path = assets / "wheels" / "pyodide-lock.json"
    lock = json.loads(lock_path.read_text())
    lock["packages"]["arro3-core"]["sha256"] = "0" * 64
    lock_path.write_text(json.dumps(lock))
    result = _run_node(assets, tmp_path, "import json\njson.dumps(1)\n")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "arro3_core" in result.stderr and "lock says " + "0" * 64 in result.stderr


@pytest.mark.node
@no_node
def test_node_runner_reports_python_errors(built: Built, tmp_path: Path) -> None:
    result = _run_node(built.out, tmp_path, "raise ValueError('boom')\n")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "ValueError: boom" in result.stderr
