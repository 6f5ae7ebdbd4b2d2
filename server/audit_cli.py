"""`loadbay audit ...`: check the audit log's hash chain."""

from __future__ import annotations

import typer

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify() -> None:
    """Recompute the whole chain; name every entry that was changed, deleted or moved
    (exit status 1), else say how many entries are intact."""
    from server import audit
    from server.runtime import Runtime
    from server.settings import Settings

    verdict = audit.verify(Runtime.from_settings(Settings.from_env()))
    for problem in verdict.problems:
        typer.echo(problem, err=True)
    if not verdict.intact:
        typer.echo(f"The audit log is NOT intact ({len(verdict.problems)} problems).", err=True)
        raise typer.Exit(1)
    typer.echo(f"The audit log is intact: {verdict.checked} entries, each chained to the last.")
