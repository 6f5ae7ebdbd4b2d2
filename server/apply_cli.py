"""`loadbay apply FILE.yaml [--dry-run]`: the command line of server/provisioning.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def apply_file(
    file: Annotated[Path, typer.Argument(help="The YAML file describing organisations.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
) -> None:
    """Provision organisations, allowed origins, templates and destinations from FILE
    (idempotent; secrets from the environment variables the file names)."""
    from server import provisioning
    from server.errors import ServiceError
    from server.runtime import Runtime
    from server.settings import Settings

    try:
        wanted = provisioning.load(file)
        rt = Runtime.from_settings(Settings.from_env())
        run = provisioning.plan if dry_run else provisioning.apply
        changes = run(rt, wanted)
    except ServiceError as exc:
        typer.echo(f"loadbay apply: {exc.message}", err=True)
        raise typer.Exit(2) from None
    for change in changes:
        typer.echo(change.line())
    made = sum(c.action != "unchanged" for c in changes)
    verb = "would change" if dry_run else "changed"
    typer.echo(f"{verb} {made} of {len(changes)}")
