"""Builds the browser assets loadbay serves itself: Pyodide, pinned wheels, pipeline, app files.

A build-time tool (`make assets`, `loadbay assets build`, `python -m tools.build_assets`);
the server only reads the manifest it writes (server/importer/assets.py). Every served file,
each ES module of the importer included, is listed in the manifest with its SRI hash.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import uuid
import zipfile
from dataclasses import asdict, dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from server.importer.assets import MANIFEST_NAME, AssetFile, AssetManifest

LOCK_NAME = "pyodide-lock.json"
PIPELINE_DIST = "loadbay-pipeline"
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide.js",
)
APP_SUFFIXES = frozenset({".js", ".mjs", ".css", ".html"})
# browser/ files that configure the tooling and are never served.
TOOLING = frozenset({"eslint.config.js"})
# Module folders served beside the entry files, keeping their paths: app/src/ui/review.js.
MODULE_DIRS = ("src",)
# The embed SDK's folder: published at app/embed.js, the URL clients' pages already use.
# Its scripts are ES modules (embed.js imports src/protocol.js, the module the importer
# page imports too); each is bundled with esbuild into one classic script for the
# client's page, so both sides of the postMessage protocol run the same code.
SDK_DIR = "sdk"
SDK_TARGET = "es2017"
PIP_TARGET = (
    "--only-binary=:all:",
    "--platform",
    "pyemscripten_2026_0_wasm32",
    "--python-version",
    "3.14",
    "--implementation",
    "cp",
    "--abi",
    "cp314",
    "--abi",
    "abi3",
    "--abi",
    "none",
)
# Zip timestamps of the pipeline wheel; fixed so identical sources give an identical build_id.
SOURCE_DATE_EPOCH = "315532800"


class AssetBuildError(RuntimeError):
    """A build step failed; the message says which and why, the old assets stay in place."""


@dataclass(frozen=True)
class PinnedWheel:
    """One line of browser/wheels.txt."""

    name: str
    version: str
    hashes: frozenset[str]


@dataclass(frozen=True)
class LockPackage:
    """A pyodide-lock.json entry; the field set mirrors the entries Pyodide 314 ships."""

    name: str
    version: str
    file_name: str
    install_dir: str
    sha256: str
    package_type: str
    imports: list[str]
    depends: list[str]
    unvendored_tests: bool
    tool: dict[str, str]


def build_assets(root: Path, out: Path) -> AssetManifest:
    """Build into a sibling temp dir, then swap it in so a failed build never gets served."""
    root, out = root.resolve(), out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-build-", dir=out.parent))
    try:
        staging.chmod(0o755)
        manifest = _build_into(root, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}-old-{uuid.uuid4().hex}")
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return manifest


def _build_into(root: Path, dest: Path) -> AssetManifest:
    browser = root / "browser"
    pyodide_dir = _ensure_pyodide(browser)
    (dest / "pyodide").mkdir()
    for name in PYODIDE_FILES:
        if (pyodide_dir / name).is_file():
            shutil.copyfile(pyodide_dir / name, dest / "pyodide" / name)

    wheels_dir = dest / "wheels"
    wheels_dir.mkdir()
    pins = parse_wheels_txt(browser / "wheels.txt")
    cached = _cached_wheels(browser / "wheels.txt", pins, root / "build" / "wheel-cache")
    for wheel in cached:
        shutil.copyfile(wheel, wheels_dir / wheel.name)
    pipeline_wheel = _build_pipeline_wheel(root, wheels_dir)

    lock_entries = [_lock_package(wheel) for wheel in [*cached, pipeline_wheel]]
    upstream = json.loads((pyodide_dir / LOCK_NAME).read_text(encoding="utf-8"))
    lock = {"info": upstream["info"], "packages": {p.name: asdict(p) for p in lock_entries}}
    (wheels_dir / LOCK_NAME).write_text(
        json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

    sdk = (browser / SDK_DIR).resolve()
    for served, source in app_sources(browser).items():
        target = dest / "app" / served
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".js" and source.resolve().parent == sdk:
            bundle_sdk(browser, source, target)
        else:
            shutil.copyfile(source, target)

    files = {
        path.relative_to(dest).as_posix(): _asset_file(path)
        for path in sorted(dest.rglob("*"))
        if path.is_file()
    }
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(f"{rel}\0{files[rel].sha256}\n".encode())
    package_json = json.loads((pyodide_dir / "package.json").read_text(encoding="utf-8"))
    manifest = AssetManifest(
        build_id=digest.hexdigest()[:16],
        pyodide_version=package_json["version"],
        packages=tuple(p.name for p in lock_entries),
        files=files,
    )
    payload = {
        "build_id": manifest.build_id,
        "pyodide_version": manifest.pyodide_version,
        "packages": list(manifest.packages),
        "files": {rel: asdict(f) for rel, f in files.items()},
    }
    (dest / MANIFEST_NAME).write_text(
        json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def app_sources(browser: Path) -> dict[str, Path]:
    """Served path under app/ -> source file: the entry files at browser/'s top, the module
    folders with their paths, and the SDK at app/'s top."""
    sources: dict[str, Path] = {}

    def add(served: str, path: Path) -> None:
        if served in sources:
            raise AssetBuildError(f"{path} and {sources[served]} would both be served as {served}")
        sources[served] = path

    def servable(path: Path) -> bool:
        return path.is_file() and path.suffix in APP_SUFFIXES and path.name not in TOOLING

    for path in sorted(browser.iterdir()):
        if servable(path):
            add(path.name, path)
    for folder in MODULE_DIRS:
        for path in sorted((browser / folder).rglob("*")):
            if servable(path):
                add(path.relative_to(browser).as_posix(), path)
    sdk = browser / SDK_DIR
    for path in sorted(sdk.iterdir()) if sdk.is_dir() else []:
        if servable(path):
            add(path.name, path)
    return dict(sorted(sources.items()))


def bundle_sdk(browser: Path, source: Path, target: Path) -> None:
    """One SDK entry and the modules it imports as one classic script (an IIFE): esbuild,
    from browser/node_modules; the same sources give the same bytes."""
    esbuild = browser / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise AssetBuildError(f"{esbuild} is missing: run `npm ci` in {browser}")
    _run(
        [
            str(esbuild),
            str(source),
            "--bundle",
            "--format=iife",
            f"--target={SDK_TARGET}",
            "--charset=utf8",
            "--legal-comments=none",
            "--log-level=warning",
            f"--outfile={target}",
        ],
        cwd=browser,
        what=f"bundling {source.name}",
    )


def _ensure_pyodide(browser: Path) -> Path:
    """The Makefile runs `npm ci` first; direct CLI use on a fresh clone gets it here."""
    pyodide_dir = browser / "node_modules" / "pyodide"
    if not pyodide_dir.is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise AssetBuildError("npm is required to install Pyodide (browser/package.json)")
        _run([npm, "ci", "--no-audit", "--no-fund"], cwd=browser, what="npm ci")
    return pyodide_dir


def parse_wheels_txt(path: Path) -> list[PinnedWheel]:
    """Parse the `name==version --hash=sha256:...` lines pip --require-hashes accepts."""
    pins = []
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = line.split()
        name, sep, version = spec.partition("==")
        hashes = frozenset(
            opt.removeprefix("--hash=sha256:")
            for opt in options
            if opt.startswith("--hash=sha256:")
        )
        if not sep or not hashes:
            raise AssetBuildError(f"{path}: every line needs name==version and --hash: {raw!r}")
        pins.append(PinnedWheel(_normalise(name), version.strip(), hashes))
    return pins


def _cached_wheels(requirements: Path, pins: list[PinnedWheel], cache: Path) -> list[Path]:
    """Pinned wheels in the cache, in wheels.txt order; pip runs only when one is missing."""
    found = _match_pins(pins, cache)
    if None not in found:
        return [p for p in found if p is not None]
    cache.mkdir(parents=True, exist_ok=True)
    result = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            *PIP_TARGET,
            "--require-hashes",
            "-r",
            str(requirements),
            "-d",
            str(cache),
        ],
        cwd=requirements.parent,
        what="pip download",
        check=False,
    )
    if result.returncode != 0:
        if "DO NOT MATCH THE HASHES" in result.stdout:
            detail = result.stdout[result.stdout.index("THESE PACKAGES") :].strip()
            raise AssetBuildError(
                f"A downloaded wheel does not match its hash in {requirements}; "
                f"refusing to build.\n{detail}"
            )
        raise AssetBuildError(f"pip download failed:\n{result.stdout.strip()}")
    found = _match_pins(pins, cache)
    missing = [pin for pin, path in zip(pins, found, strict=True) if path is None]
    if missing:
        raise AssetBuildError(
            f"After pip download, no file in {cache} matches the pinned hash of "
            + ", ".join(f"{pin.name}=={pin.version}" for pin in missing)
        )
    return [p for p in found if p is not None]


def _match_pins(pins: list[PinnedWheel], cache: Path) -> list[Path | None]:
    by_hash = {_sha256(path): path for path in sorted(cache.glob("*.whl"))}
    return [next((by_hash[h] for h in sorted(pin.hashes) if h in by_hash), None) for pin in pins]


def _build_pipeline_wheel(root: Path, wheels_dir: Path) -> Path:
    """Package pipeline/ with setuptools so the browser imports the same code the server runs."""
    version = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    with tempfile.TemporaryDirectory(prefix="loadbay-pipeline-") as tmp:
        project = Path(tmp)
        source = root / "pipeline"
        for path in sorted(source.rglob("*.py")):
            target = project / "pipeline" / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (project / "pyproject.toml").write_text(
            "[build-system]\n"
            'requires = ["setuptools"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            "[project]\n"
            f'name = "{PIPELINE_DIST}"\n'
            f"version = {json.dumps(version)}\n"
            "dependencies = []\n\n"
            "[tool.setuptools.packages.find]\n"
            'include = ["pipeline*"]\n',
            encoding="utf-8",
        )
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(wheels_dir),
                str(project),
            ],
            cwd=project,
            what="building the pipeline wheel",
            env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )
    (wheel,) = wheels_dir.glob(f"{PIPELINE_DIST.replace('-', '_')}-*.whl")
    return wheel


def _lock_package(wheel: Path) -> LockPackage:
    """Lock entry for one wheel, with name, version and imports read from the wheel itself."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = HeaderParser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        top_level = f"{dist_info}/top_level.txt"
        if top_level in names:
            imports = sorted({n for n in zf.read(top_level).decode().split() if n})
        else:
            imports = _imports_from_names(names)
    return LockPackage(
        name=_normalise(metadata["Name"]),
        version=metadata["Version"],
        file_name=wheel.name,
        install_dir="site",
        sha256=_sha256(wheel),
        package_type="package",
        imports=imports,
        depends=[],
        unvendored_tests=False,
        tool={},
    )


def _imports_from_names(names: list[str]) -> list[str]:
    """Top-level importables: modules, and dirs (namespace ones too) holding packages or .so."""
    imports = set()
    for name in names:
        parts = PurePosixPath(name).parts
        if parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1 and name.endswith((".py", ".so")):
            imports.add(name.split(".")[0])
        elif len(parts) > 1 and name.endswith(("/__init__.py", ".so")):
            imports.add(parts[0])
    return sorted(imports)


def _asset_file(path: Path) -> AssetFile:
    with path.open("rb") as fh:
        sha384 = hashlib.file_digest(fh, "sha384").digest()
    sri = "sha384-" + base64.b64encode(sha384).decode("ascii")
    return AssetFile(sha256=_sha256(path), sri=sri, size=path.stat().st_size)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _normalise(name: str) -> str:
    """PEP 503 name, the form Pyodide lock keys and `packages` use."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _run(
    cmd: list[str],
    *,
    cwd: Path,
    what: str,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd,
        cwd=cwd,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssetBuildError(f"{what} failed:\n{result.stdout.strip()}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.build_assets", description=__doc__)
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--root", type=Path, default=root, help="the checkout to build from")
    parser.add_argument("--out", type=Path, default=root / "build" / "assets")
    args = parser.parse_args(argv)
    try:
        manifest = build_assets(args.root, args.out)
    except AssetBuildError as exc:
        sys.exit(f"loadbay assets build: {exc}")
    print(f"built {len(manifest.files)} files into {args.out} (build {manifest.build_id})")


if __name__ == "__main__":
    main()
