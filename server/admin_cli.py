"""The operator's `loadbay` commands for keys and organisations: `keys rotate-master`,
`org list`, `org export` and `org delete` (registered on the main command in server/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from server.runtime import Runtime

org_app = typer.Typer(
    help="Organisations: list, and offboarding (export, delete).", no_args_is_help=True
)


def rotate_master(
    new_key_file: Annotated[
        Path,
        typer.Option(
            "--new-key-file",
            help="The new master key (32 bytes, 0600); created if it does not exist.",
        ),
    ],
) -> None:
    """Re-wrap every organisation key under a new master key, in one transaction; data keys
    and blobs are not touched. Stop the server, workers and cron first; afterwards point
    LOADBAY_MASTER_KEY_FILE at the new file, start them again, and destroy the old key
    (and the backups holding it). Interrupted, run it again: it finishes the job."""
    from server.errors import ServiceError
    from server.rotation import rotate_master as rotate

    try:
        done = rotate(_runtime(), new_key_file)
    except ServiceError as exc:
        _fail(exc.message)
    typer.echo(
        f"re-wrapped {done.rewrapped} organisation key(s) under {done.new_key_file} "
        f"({done.already} already were)."
    )
    typer.echo(
        f"Now set LOADBAY_MASTER_KEY_FILE={done.new_key_file.resolve()} (or move it over the "
        "old file), restart every loadbay process, and destroy the old master key.",
        err=True,
    )


@org_app.command("list")
def org_list() -> None:
    """Every organisation: id, name, publishable key and allowed origins, tab-separated (the
    id is what `keys create --org` takes, the key what the embed code takes)."""
    from server import orgs

    for org in orgs.list_organisations(_runtime()):
        origins = " ".join(org.allowed_origins) or "-"
        typer.echo(f"{org.id}\t{org.name}\t{org.publishable_key}\t{origins}")


@org_app.command("export")
def org_export(
    org: str,
    directory: Path,
    format: Annotated[
        str, typer.Option("--format", help="Rows as csv, parquet, ndjson or xlsx.")
    ] = "csv",
) -> None:
    """Write everything ORG has into DIRECTORY (created; must not exist): each retained
    import's rows, templates with every version, destinations without secrets, events,
    and manifest.json listing every file with its SHA-256."""
    from server.errors import ServiceError
    from server.offboarding import export_organisation

    try:
        done = export_organisation(_runtime(), org, directory, format)
    except ServiceError as exc:
        _fail(exc.message)
    typer.echo(
        f"exported {org}: {done.imports} import(s), {done.rows} row(s), {done.files} file(s) "
        f"in {done.directory}"
    )


@org_app.command("delete")
def org_delete(
    org: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Shred everything ORG has (rows, data keys, blobs, templates, destinations and their
    secrets, mapping memory, secret keys, events, the organisation key); a tombstone stays.
    This cannot be undone: export first."""
    from server.errors import ServiceError
    from server.offboarding import delete_organisation

    if not yes:
        typer.confirm(f"Shred every piece of data of {org}? This cannot be undone", abort=True)
    try:
        tombstone = delete_organisation(_runtime(), org, actor="cli")
    except ServiceError as exc:
        _fail(exc.message)
    counts = ", ".join(f"{n} {what}" for what, n in tombstone.detail.items())
    typer.echo(f"deleted {org} ({counts}); its tombstone remains.")


def _runtime() -> Runtime:
    from server.runtime import Runtime
    from server.settings import Settings

    return Runtime.from_settings(Settings.from_env())


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(2)
