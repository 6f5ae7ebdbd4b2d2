"""Builds the browser assets loadbay serves itself: Pyodide, pinned wheels, pipeline, app files.

Everything the importer runs in the browser comes from one content-addressed directory, so
pages can reference files by immutable URL with SRI and nothing is fetched from third parties.
"""

from __future__ import annotations

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

MANIFEST_NAME = "manifest.json"
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


class AssetsMissingError(RuntimeError):
    """The server was started before `loadbay assets build` produced a manifest."""


class AssetBuildError(RuntimeError):
    """A build step failed; the message says which and why, the old assets stay in place."""


@dataclass(frozen=True)
class AssetFile:
    """Integrity data for one served file."""

    sha256: str
    sri: str
    size: int


@dataclass(frozen=True)
class AssetManifest:
    """What a build produced; `build_id` versions every URL so assets can be cached forever."""

    build_id: str
    pyodide_version: str
    packages: tuple[str, ...]
    files: dict[str, AssetFile]

    def url(self, path: str) -> str:
        """Immutable URL of `path`; unknown paths raise KeyError rather than 404 at runtime."""
        if path not in self.files:
            raise KeyError(path)
        return f"/assets/{self.build_id}/{path}"

    @classmethod
    def load(cls, assets_dir: Path) -> AssetManifest:
        """Read the manifest a build wrote into `assets_dir`."""
        try:
            raw = json.loads((assets_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise AssetsMissingError(
                "Browser assets are not built: run `loadbay assets build`"
            ) from exc
        return cls(
            build_id=raw["build_id"],
            pyodide_version=raw["pyodide_version"],
            packages=tuple(raw["packages"]),
            files={path: AssetFile(**entry) for path, entry in raw["files"].items()},
        )


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

    (dest / "app").mkdir()
    for path in sorted(browser.iterdir()):
        if path.is_file() and path.suffix in APP_SUFFIXES:
            shutil.copyfile(path, dest / "app" / path.name)

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
