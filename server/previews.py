"""An import's rows previewed in the dashboard, with personal data masked.

A field the template classifies as personal data (`x-loadbay.classification`, read by
pipeline.template.personal_fields) shows as a mask in every preview. Revealing one field
for the previewed rows is its own action, and each preview and each reveal writes an audit
entry naming the import, the field, the row range and the actor: never a value.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.template import personal_fields
from server import audit, db, exports
from server.batches import load_batch
from server.errors import Invalid
from server.runtime import Runtime

MASK = "••••••"
PREVIEW_ROWS = 20
PREVIEWED = "import.previewed"
REVEALED = "import.revealed"


@dataclass(frozen=True)
class Preview:
    import_id: str
    columns: tuple[str, ...]
    personal: frozenset[str]
    revealed: str | None  # the one personal field shown in clear, if any
    first_row: int  # 1-based, as a spreadsheet numbers them (0 when there is no row)
    last_row: int
    rows: tuple[tuple[str, ...], ...]  # cells as text, masked where personal

    @property
    def row_range(self) -> str:
        return f"{self.first_row}-{self.last_row}" if self.rows else "none"


def preview(
    rt: Runtime,
    org_id: str,
    import_id: str,
    *,
    actor: str,
    address: str | None = None,
    reveal: str | None = None,
    limit: int = PREVIEW_ROWS,
) -> Preview:
    """The first `limit` rows of a retained import, personal fields masked except `reveal`
    (which must be one of them: Invalid otherwise). Errors as exports.plan_export (NotFound,
    Gone). Writes `import.previewed`, or `import.revealed` with the field, in the log."""
    plan = exports.plan_export(rt, import_id, "csv", org_id=org_id)
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        template = session.get(db.Template, imp.template_id) if imp is not None else None
        personal = personal_fields(template.schema if template is not None else {})
        if reveal is not None and reveal not in personal:
            raise Invalid(
                f"{reveal!r} is not a personal-data field of this import: nothing to reveal."
            )
        rows: list[tuple[str, ...]] = []
        if imp is not None and imp.batch_count:
            table = load_batch(rt, session, imp, 0).select(list(plan.columns)).slice(0, limit)
            columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
            for r in range(table.num_rows):
                rows.append(
                    tuple(
                        MASK
                        if name in personal and name != reveal
                        else ("" if column[r] is None else str(column[r]))
                        for name, column in zip(plan.columns, columns, strict=True)
                    )
                )
    found = Preview(
        import_id, plan.columns, personal, reveal, 1 if rows else 0, len(rows), tuple(rows)
    )
    detail: dict[str, object] = {"rows": found.row_range}
    if reveal is not None:
        detail["field"] = reveal
    else:
        detail["masked"] = sorted(personal)
    audit.write(
        rt,
        action=REVEALED if reveal is not None else PREVIEWED,
        actor=actor,
        org_id=org_id,
        target=import_id,
        address=address,
        detail=detail,
    )
    return found
