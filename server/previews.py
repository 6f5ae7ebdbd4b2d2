"""An import's rows previewed, with personal data masked: the one rule the dashboard's
preview and the management API's preview and reveal all call.

A field the template classifies as personal data (`x-loadbay.classification`, read by
pipeline.template.personal_fields) shows as a mask in every preview. Revealing named
fields for a range of rows is its own action, and each preview and each reveal writes an
audit entry naming the import, the fields, the row range and the actor: never a value.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select

from server import audit, db, exports
from server.batches import load_batch
from server.errors import Invalid, NotFound
from server.runtime import Runtime

MASK = exports.MASK
PREVIEW_ROWS = 20
MAX_ROWS = 100  # rows one preview or reveal answers at most
PREVIEWED = "import.previewed"
REVEALED = "import.revealed"


@dataclass(frozen=True)
class Preview:
    import_id: str
    columns: tuple[str, ...]
    personal: frozenset[str]
    revealed: frozenset[str]  # the personal fields shown in clear
    first_row: int  # 1-based, as a spreadsheet numbers them (0 when there is no row)
    last_row: int
    total_rows: int  # the rows the import holds
    rows: tuple[tuple[str, ...], ...]  # cells as text, masked where personal

    @property
    def row_range(self) -> str:
        return f"{self.first_row}-{self.last_row}" if self.rows else "none"

    @property
    def masked(self) -> frozenset[str]:
        return self.personal - self.revealed


def preview(
    rt: Runtime,
    org_id: str,
    import_id: str,
    *,
    actor: str,
    address: str | None = None,
    reveal: Collection[str] = (),
    first_row: int = 1,
    limit: int = PREVIEW_ROWS,
) -> Preview:
    """Rows `first_row` (1-based) to `first_row + limit - 1` of a retained import,
    personal fields masked except those named in `reveal` (each must be one of them:
    Invalid otherwise). Errors as exports.plan_export (NotFound, Gone). Writes
    `import.previewed`, or `import.revealed` with the fields, in the audit log."""
    if not 1 <= limit <= MAX_ROWS:
        raise Invalid(f"A preview shows 1 to {MAX_ROWS} rows at a time, not {limit}.")
    if first_row < 1:
        raise Invalid(f"Rows are numbered from 1: first_row {first_row} does not exist.")
    plan = exports.plan_export(rt, import_id, "csv", org_id=org_id)
    shown = frozenset(reveal)
    rows: list[tuple[str, ...]] = []
    personal = plan.personal
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        unknown = sorted(shown - personal)
        if unknown:
            raise Invalid(
                f"{', '.join(unknown)}: not a personal-data field of this import, so there "
                f"is nothing to reveal. Its personal-data fields: "
                f"{', '.join(sorted(personal)) or 'none'}."
            )
        if imp is None:  # gone since plan_export looked
            raise NotFound(f"Import {import_id} does not exist.")
        batches = session.execute(
            select(db.Batch.seq, db.Batch.row_count)
            .where(db.Batch.import_id == import_id)
            .order_by(db.Batch.seq)
        ).all()
        start, before = first_row - 1, 0  # 0-based: the first row wanted, rows skipped
        for seq, count in batches:
            if len(rows) >= limit:
                break
            if before + count <= start:
                before += count
                continue
            offset = max(0, start - before)
            table = load_batch(rt, session, imp, seq).select(list(plan.columns))
            table = exports.mask_columns(table.slice(offset, limit - len(rows)), personal - shown)
            columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
            rows.extend(
                tuple("" if column[r] is None else str(column[r]) for column in columns)
                for r in range(table.num_rows)
            )
            before += count
    found = Preview(
        import_id,
        plan.columns,
        personal,
        shown,
        first_row if rows else 0,
        first_row + len(rows) - 1 if rows else 0,
        plan.rows,
        tuple(rows),
    )
    detail: dict[str, object] = {"rows": found.row_range}
    if shown:
        detail["fields"] = sorted(shown)
    else:
        detail["masked"] = sorted(personal)
    audit.write(
        rt,
        action=REVEALED if shown else PREVIEWED,
        actor=actor,
        org_id=org_id,
        target=import_id,
        address=address,
        detail=detail,
    )
    return found
