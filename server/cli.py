"""The `loadbay` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from pipeline.session import ImportSession, Report

app = typer.Typer(help="loadbay: a self-hostable embeddable data importer.", no_args_is_help=True)
assets_app = typer.Typer(help="Browser assets (Pyodide, wheels, the importer).")
app.add_typer(assets_app, name="assets")


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
        int | None, typer.Option(help="Header row, 1-based (default: detect).")
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
        for e in report.errors:
            typer.echo(f"row {e.row}, {e.field}: {e.message}")
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
            typer.echo(f"row {e.row}, {e.field}: {e.message}", err=True)
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
    from server.settings import Settings

    settings = Settings.from_env()
    _serve(settings, host, port, certfile, keyfile)


@app.command()
def worker(burst: bool = False) -> None:
    """Run one RQ worker (with its scheduler, which retries need)."""
    from rq import Worker

    from server.queue import connect, delivery_queue
    from server.settings import Settings

    settings = Settings.from_env()
    connection = connect(settings)
    Worker([delivery_queue(settings, connection)], connection=connection).work(
        with_scheduler=True, burst=burst
    )


@app.command()
def cron() -> None:
    """Run the periodic jobs (retention purge, hourly) through RQ's cron scheduler."""
    from rq.cron import CronScheduler

    from server.jobs import purge_expired
    from server.queue import connect
    from server.retention import PURGE_EVERY
    from server.settings import Settings

    settings = Settings.from_env()
    scheduler = CronScheduler(connection=connect(settings))
    scheduler.register(
        purge_expired, settings.queue_name, interval=int(PURGE_EVERY.total_seconds())
    )
    scheduler.start()  # type: ignore[no-untyped-call]


@app.command("delete-import")
def delete_import(import_id: str) -> None:
    """Delete an import's stored rows now (blobs and data key: crypto-shredding)."""
    from server.retention import delete_import_data
    from server.runtime import Runtime
    from server.settings import Settings

    if not delete_import_data(Runtime.from_settings(Settings.from_env()), import_id):
        _fail(f"Import {import_id} does not exist or holds no data any more.")
    typer.echo(f"deleted the data of {import_id}")


@app.command()
def demo(
    port: int = 8443,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its data.")] = Path(
        ".loadbay/demo"
    ),
) -> None:
    """Everything on one machine: HTTPS server, worker, embedded Redis, SQLite, demo data."""
    from server import db
    from server.demo import seed
    from server.queue import embedded_redis
    from server.runtime import Runtime
    from server.settings import Settings
    from server.tls import ensure_certificate

    data_dir = data_dir.resolve()
    cert, key = ensure_certificate(data_dir / "tls")
    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(data_dir),
        "LOADBAY_DEMO": "1",
        "LOADBAY_PUBLIC_URL": f"https://127.0.0.1:{port}",
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8,::1/128",
        "LOADBAY_WEBHOOK_CA_FILE": str(cert),
    }
    settings = Settings.from_env(env)
    redis = None
    if settings.redis_url is None:
        redis = embedded_redis(settings)  # shared with the worker through its socket
        env["REDIS_URL"] = f"unix://{redis.socket_file}"
        settings = Settings.from_env(env)
    db.migrate(settings.database_url)
    state = seed(Runtime.from_settings(settings))
    children = [
        subprocess.Popen([sys.executable, "-m", "server.cli", role], env=env)  # noqa: S603
        for role in ("worker", "cron")
    ]
    typer.echo(
        f"\nloadbay demo is running.\n"
        f"  Demo host page (open this): {state.host_page}\n"
        f"  Webhook receiver:           {state.receiver_page}\n"
        f"  TLS certificate:            {cert} (self-signed: accept it in the browser)\n"
        f"  Publishable key:            {state.publishable_key}\n"
        f"Press Ctrl-C to stop.\n"
    )
    try:
        _serve(settings, "127.0.0.1", port, cert, key)
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if redis is not None:
            redis.shutdown(save=True)  # bundled redis-server 6.2: no NOW option


def _serve(settings: object, host: str, port: int, cert: Path | None, key: Path | None) -> None:
    import uvicorn

    from server import db
    from server.app import create_app
    from server.runtime import Runtime
    from server.settings import Settings
    from server.tls import ensure_certificate

    assert isinstance(settings, Settings)  # noqa: S101 - typed loosely to keep imports lazy
    if cert is None or key is None:
        cert, key = ensure_certificate(settings.data_dir / "tls")
    db.migrate(settings.database_url)
    uvicorn.run(
        create_app(Runtime.from_settings(settings)),
        host=host,
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="info",
        server_header=False,
    )


def _checked(
    file: Path, template: Path, sheet: str | None, encoding: str | None, header_row: int | None
) -> tuple[ImportSession, Report]:
    """The file read and validated, or exit 2 with a message that says what is wrong."""
    from pipeline.errors import PipelineError
    from pipeline.readers import ReadOptions
    from pipeline.session import ImportSession
    from pipeline.template import Template

    try:
        schema = json.loads(template.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"{template}: cannot read the template ({exc}).")
    try:
        options = ReadOptions(sheet=sheet, encoding=encoding, header_row=header_row)
        session = ImportSession.open(str(file), file.name, Template.from_dict(schema), options)
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
