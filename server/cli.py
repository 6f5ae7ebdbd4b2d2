"""The `loadbay` command."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from server import logs
from server.admin_cli import org_app, rotate_master
from server.apply_cli import apply_file
from server.audit_cli import audit_app
from server.import_cli import import_file

if TYPE_CHECKING:
    from pipeline.session import ImportSession, Report
    from server.runtime import Runtime

app = typer.Typer(help="loadbay: a self-hostable embeddable data importer.", no_args_is_help=True)
assets_app = typer.Typer(help="Browser assets (Pyodide, wheels, the importer).")
app.add_typer(assets_app, name="assets")
keys_app = typer.Typer(help="Secret keys for the management API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
keys_app.command("rotate-master")(rotate_master)
app.add_typer(org_app, name="org")
app.command("import")(import_file)  # a headless import through a server's API
app.add_typer(audit_app, name="audit")
app.command("apply")(apply_file)  # declarative provisioning (server/provisioning.py)


@assets_app.command("build")
def assets_build(
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
) -> None:
    """Install Pyodide, download the pinned wheels, build the pipeline wheel, write a manifest.

    Building is the checkout's tools/build_assets.py (build-time only, not installed); this
    runs it with the server's assets directory as the output.
    """
    from server.settings import REPO_ROOT, Settings

    tool = REPO_ROOT / "tools" / "build_assets.py"
    if not tool.is_file():
        _fail("`loadbay assets build` needs a source checkout (tools/build_assets.py).")
    target = (out or Settings.from_env().assets_dir).resolve()
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            sys.executable,
            "-m",
            "tools.build_assets",
            "--root",
            str(REPO_ROOT),
            "--out",
            str(target),
        ],
        cwd=REPO_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise typer.Exit(done.returncode)


@app.command()
def check(
    file: Path,
    template: Annotated[Path, typer.Option("--template", help="Table Schema JSON.")],
    sheet: Annotated[str | None, typer.Option(help="Sheet name (spreadsheets).")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default: detect).")] = None,
    header_row: Annotated[
        int | None,
        typer.Option(help="Header row, 1-based; 0: the file has no header row (default: detect)."),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="json or text.")] = "text",
) -> None:
    """Validate FILE against a template. Exit 0 valid, 1 errors, 2 unreadable."""
    session, report = _checked(file, template, sheet, encoding, header_row)
    if format == "json":
        typer.echo(
            json.dumps({"rows": report.rows, "errors": [e.to_dict() for e in report.errors]})
        )
    else:
        for e in report.errors:  # an error of the whole row (no field) names the row only
            where = f"row {e.row}, {e.field}" if e.field else f"row {e.row}"
            typer.echo(f"{where}: {e.message}")
        typer.echo(f"{report.rows} rows, {len(report.errors)} errors")
    raise typer.Exit(1 if report.errors else 0)


@app.command()
def convert(
    file: Path,
    template: Annotated[Path, typer.Option("--template", help="Table Schema JSON.")],
    out: Annotated[Path, typer.Option("--out", help="Output: .ndjson, .csv or .parquet.")],
    sheet: Annotated[str | None, typer.Option(help="Sheet name (spreadsheets).")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default: detect).")] = None,
    header_row: Annotated[
        int | None, typer.Option(help="Header row, 1-based (default: detect).")
    ] = None,
) -> None:
    """Validate FILE and write its typed rows; nothing is written if any cell fails."""
    import pyarrow as pa

    from pipeline.validation import coerce
    from server.exports import FORMATS, write_export

    if out.suffix.lower() not in FORMATS:
        _fail(f"{out.name}: choose an output ending in {', '.join(FORMATS)}.")
    session, report = _checked(file, template, sheet, encoding, header_row)
    if report.errors:
        for e in report.errors[:20]:
            where = f"row {e.row}, {e.field}" if e.field else f"row {e.row}"
            typer.echo(f"{where}: {e.message}", err=True)
        typer.echo(f"{len(report.errors)} errors; {out} was not written.", err=True)
        raise typer.Exit(1)
    write_export(pa.table(coerce(session.mapped_table(), session.template)), out)
    typer.echo(f"wrote {report.rows} rows to {out}")


@app.command()
def migrate() -> None:
    """Bring the metadata database to the newest schema."""
    from server.db import migrate as run
    from server.settings import Settings

    run(Settings.from_env().database_url)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8443,
    certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS key (PEM).")] = None,
) -> None:
    """Run the HTTPS server (DATABASE_URL, REDIS_URL, LOADBAY_* from the environment)."""
    from server.runtime import Runtime
    from server.settings import Settings

    _serve(Runtime.from_settings(Settings.from_env()), host, port, certfile, keyfile)


@app.command()
def worker(burst: bool = False) -> None:
    """Run one RQ worker with its scheduler (retries need it). It reads the retry queue
    first, reconnects when Redis goes away, and its children end with it."""
    import destinations
    from server import jobs
    from server.queue import run_worker
    from server.runtime import Runtime
    from server.settings import Settings

    logs.configure()
    rt = Runtime.from_settings(Settings.from_env())
    jobs.use_runtime(rt)  # built once here; every work horse inherits it
    destinations.kinds()  # discover destination kinds once, not in every horse
    engine = rt.sessions.kw["bind"]
    run_worker(rt.queue, burst=burst, after_fork=lambda: engine.dispose(close=False))


@app.command()
def cron() -> None:
    """Run the periodic jobs through RQ's cron scheduler (server.jobs.periodic): the
    delivery sweeper (every minute: stale claims released, due deliveries enqueued), the
    hourly retention purge and the hourly purge of Idempotency-Keys older than 24 h."""
    from server import jobs
    from server.queue import run_cron
    from server.runtime import Runtime
    from server.settings import Settings

    logs.configure()
    queues = Runtime.from_settings(Settings.from_env()).queue
    run_cron(queues, jobs.periodic(queues))


@app.command("delete-import")
def delete_import(import_id: str) -> None:
    """Delete an import's stored rows now (blobs and data key: crypto-shredding)."""
    from server.retention import delete_import_data
    from server.runtime import Runtime
    from server.settings import Settings

    if not delete_import_data(Runtime.from_settings(Settings.from_env()), import_id, actor="cli"):
        _fail(f"Import {import_id} does not exist or holds no data any more.")
    typer.echo(f"deleted the data of {import_id}")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option("--org", help="The organisation's id (org_...).")],
    name: Annotated[str, typer.Option("--name", help="What the key is for.")],
) -> None:
    """Create a secret key and print it: it is shown this once, and only its hash is kept."""
    from server import keys
    from server.errors import ServiceError

    try:
        created = keys.create_key(_runtime(), org, name)
    except ServiceError as exc:
        _fail(exc.message)
    typer.echo(created.secret)
    typer.echo(f"{created.key.id} ({created.key.name}): shown once; keep it safe.", err=True)


@keys_app.command("list")
def keys_list(
    org: Annotated[str, typer.Option("--org", help="The organisation's id (org_...).")],
) -> None:
    """An organisation's keys: id, name, last four characters, last use, revocation."""
    from server import keys

    for key in keys.list_keys(_runtime(), org):
        used = key.last_used_at.isoformat() if key.last_used_at else "never used"
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "live"
        typer.echo(f"{key.id}\t{key.name}\t...{key.hint}\t{used}\t{state}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once: every request with it is refused from now on."""
    from server import keys
    from server.errors import ServiceError

    try:
        keys.revoke_key(_runtime(), key_id)
    except ServiceError as exc:
        _fail(exc.message)
    typer.echo(f"revoked {key_id}")


def _runtime() -> Runtime:
    from server.runtime import Runtime
    from server.settings import Settings

    return Runtime.from_settings(Settings.from_env())


@app.command()
def demo(
    port: int = 8443,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its data.")] = Path(
        ".loadbay/demo"
    ),
) -> None:
    """Everything on one machine: HTTPS server, worker, embedded Redis, SQLite, demo data.

    SIGINT and SIGTERM stop all of it: the worker and its children, cron, redis-server."""
    from server import db
    from server.demo import seed
    from server.demo.owner import demo_owner
    from server.demo.processes import Children, stop_redis
    from server.keys import rotate_key
    from server.queue import embedded_redis
    from server.runtime import Runtime
    from server.settings import Settings
    from server.tls import ensure_certificate

    signal.signal(signal.SIGTERM, _exit_on_signal)  # uvicorn re-raises it after its shutdown
    data_dir = data_dir.resolve()
    cert, key = ensure_certificate(data_dir / "tls")
    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(data_dir),
        "LOADBAY_PUBLIC_URL": f"https://127.0.0.1:{port}",
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8,::1/128",
        "LOADBAY_WEBHOOK_CA_FILE": str(cert),
    }
    settings = Settings.from_env(env, demo=True)
    redis = None
    children = Children(env)
    try:
        if settings.redis_url is None:
            redis = embedded_redis(settings)  # shared with the worker through its socket
            env["REDIS_URL"] = f"unix://{redis.socket_file}"
            settings = dataclasses.replace(settings, redis_url=env["REDIS_URL"])
        db.migrate(settings.database_url)
        rt = Runtime.from_settings(settings)  # the one this process uses, server included
        state = seed(rt)
        demo_key = rotate_key(rt, state.org_id, "loadbay demo", actor="demo").secret
        owner_email, owner_password = demo_owner(rt, state.org_id)
        children.start("worker", "cron")
        typer.echo(
            f"\nloadbay demo is running.\n"
            f"  Demo host page (open this): {state.host_page}\n"
            f"  Webhook receiver:           {state.receiver_page}\n"
            f"  TLS certificate:            {cert} (self-signed: accept it in the browser)\n"
            f"  Publishable key:            {state.publishable_key}\n"
            f"  Secret key:                 {demo_key}\n"
            f"  Dashboard:                  {settings.public_url}/dashboard/\n"
            f"    signed in as the owner:   {owner_email} / {owner_password}\n"
            f"Press Ctrl-C to stop.\n"
        )
        _serve(rt, "127.0.0.1", port, cert, key)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        children.stop(timeout=5)
        if redis is not None:
            stop_redis(redis)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve(rt: Runtime, host: str, port: int, cert: Path | None, key: Path | None) -> None:
    import uvicorn

    from server import db
    from server.app import create_app
    from server.tls import ensure_certificate

    if cert is None or key is None:
        cert, key = ensure_certificate(rt.settings.data_dir / "tls")
    db.migrate(rt.settings.database_url)
    logs.configure()
    uvicorn.run(
        create_app(rt),
        log_config=None,  # uvicorn's loggers go through logs.configure()'s handler
        host=host,
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="info",
        server_header=False,
        # Client addresses (rate limits, mapping memory) come from the socket unless the
        # operator names the proxies whose X-Forwarded-For is to be believed.
        proxy_headers=bool(rt.settings.trusted_proxies),
        forwarded_allow_ips=",".join(rt.settings.trusted_proxies) or None,
    )


def _checked(
    file: Path, template: Path, sheet: str | None, encoding: str | None, header_row: int | None
) -> tuple[ImportSession, Report]:
    """The file read and validated, or exit 2 with a message that says what is wrong."""
    from pipeline.errors import PipelineError
    from pipeline.readers import ReadOptions
    from pipeline.session import ImportSession
    from pipeline.template import parse_template

    try:
        schema = json.loads(template.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"{template}: cannot read the template ({exc}).")
    try:
        options = ReadOptions(sheet=sheet, encoding=encoding, header_row=header_row)
        session = ImportSession.open(str(file), file.name, parse_template(schema), options)
        # An unmapped required field (MappingError) stops the check like a broken file.
        return session, session.report()
    except PipelineError as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(2)


if __name__ == "__main__":
    app()
