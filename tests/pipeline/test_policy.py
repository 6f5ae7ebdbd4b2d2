"""The invalid-row policy: parsed from the template, applied by the review (what is sent,
whether it may be submitted) and by the server's re-check (what a batch stores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.cell_errors import CellError
from pipeline.errors import TemplateError
from pipeline.policy import judge, left_out_per_batch, rows_sent, submittable
from pipeline.schema import RowPolicy
from pipeline.session import ImportSession
from pipeline.template import parse_template, with_row_policy

FIELDS: list[dict[str, Any]] = [
    {"name": "email", "constraints": {"required": True}},
    {"name": "age", "type": "integer"},
]
CSV = "email,age\na@x,1\n,2\nc@x,three\nd@x,4\ne@x,5\nf@x,x\ng@x,7\n"  # rows 3, 4, 7 invalid


def _schema(policy: str | None) -> dict[str, Any]:
    ext = {} if policy is None else {"x-loadbay": {"invalidRowPolicy": policy}}
    return {"fields": FIELDS, **ext}


@pytest.mark.parametrize(
    ("policy", "default", "applies"),
    [
        (None, "reject", RowPolicy.REJECT),
        (None, "valid-only", RowPolicy.VALID_ONLY),  # the organisation's stored default
        ("with-errors", "valid-only", RowPolicy.WITH_ERRORS),  # the template's own wins
        ("reject", "with-errors", RowPolicy.REJECT),
    ],
)
def test_the_template_policy_else_the_organisations(
    policy: str | None, default: str, applies: RowPolicy
) -> None:
    template = parse_template(_schema(policy))
    assert template.invalid_row_policy == (None if policy is None else RowPolicy(policy))
    assert template.row_policy(default) is applies
    written = with_row_policy(_schema(policy), default)
    assert parse_template(written).invalid_row_policy is applies  # what the browser is given


@pytest.mark.parametrize("bad", ["drop", "", 3, ["reject"]])
def test_an_unknown_policy_is_refused(bad: object) -> None:
    with pytest.raises(TemplateError, match=r'"x-loadbay.invalidRowPolicy" must be one of reject'):
        parse_template({"fields": FIELDS, "x-loadbay": {"invalidRowPolicy": bad}})


def _session(tmp_path: Path, policy: str) -> ImportSession:
    path = tmp_path / "p.csv"
    path.write_text(CSV, encoding="utf-8")
    session = ImportSession.open(str(path), path.name, parse_template(_schema(policy)))
    session.set_mapping({"email": 0, "age": 1})
    return session


@pytest.mark.parametrize(
    ("policy", "sent", "submittable_"),
    [("reject", 7, False), ("valid-only", 4, True), ("with-errors", 7, True)],
)
def test_the_summary_says_what_is_sent_and_whether_it_may_be_submitted(
    tmp_path: Path, policy: str, sent: int, submittable_: bool
) -> None:
    summary = _session(tmp_path, policy).review.summary().to_dict()
    assert (summary["policy"], summary["rows"], summary["rows_with_errors"]) == (policy, 7, 3)
    assert (summary["sent"], summary["left_out"], summary["submittable"]) == (
        sent,
        7 - sent,
        submittable_,
    )


def test_valid_only_batches_leave_invalid_rows_out_and_count_them(tmp_path: Path) -> None:
    session = _session(tmp_path, "valid-only")
    plan = [b.to_dict() for b in session.batch_plan(2)]
    # sent: rows 2, 5 | 6, 8; left out: 3, 4 before row 5, 7 between 6 and 8
    assert plan == [
        {"offset": 0, "length": 2, "first_row": 2, "left_out": 2},
        {"offset": 2, "length": 2, "first_row": 6, "left_out": 1},
    ]
    batches = [
        pa.ipc.open_stream(session.encode_batch(o, n)).read_all() for o, n in session.batches(2)
    ]
    assert [b.column("__row").to_pylist() for b in batches] == [[2, 5], [6, 8]]
    assert [b.column("email").to_pylist() for b in batches] == [["a@x", "d@x"], ["e@x", "g@x"]]
    session.review.edit(2, "age", "3")  # row 4 fixed: it travels now
    assert [b.first_row for b in session.batch_plan(2)] == [2, 5, 8]  # rows 2, 4 | 5, 6 | 8
    assert sum(b.left_out for b in session.batch_plan(2)) == 2


def test_with_errors_sends_every_row(tmp_path: Path) -> None:
    session = _session(tmp_path, "with-errors")
    [batch] = session.batch_plan()
    assert (batch.length, batch.left_out) == (7, 0)


def test_rules_without_a_session() -> None:
    assert rows_sent(RowPolicy.VALID_ONLY, [0, 1, 2, 4], {1: [], 4: []}) == [0, 2]
    assert rows_sent(RowPolicy.WITH_ERRORS, [0, 1], {1: []}) == [0, 1]
    assert [submittable(p, 3, 3) for p in RowPolicy] == [False, False, True]
    assert [submittable(p, 0, 0) for p in RowPolicy] == [False, False, False]
    # trailing invalid rows count towards the last batch
    assert left_out_per_batch([0, 1, 2, 3, 4, 5], [0, 2, 3], [(0, 2), (2, 1)]) == [1, 2]


def _error(row: int, field: str = "age") -> CellError:
    return CellError(row, field, "type-error", "type")


def test_judging_a_batch_on_the_server() -> None:
    errors = [_error(11), _error(13), _error(13, "email")]
    assert judge(RowPolicy.REJECT, errors, [10, 11, 13]) is None
    assert judge(RowPolicy.REJECT, [], [10]) is not None
    valid_only = judge(RowPolicy.VALID_ONLY, errors, [10, 11, 13])
    assert valid_only is not None and (valid_only.keep, valid_only.left_out) == ([0], 2)
    with_errors = judge(RowPolicy.WITH_ERRORS, errors, [10, 11, 13])
    assert with_errors is not None and (with_errors.keep, with_errors.left_out) == ([0, 1, 2], 0)
    assert {at: [e.field for e in errs] for at, errs in with_errors.errors.items()} == {
        1: ["age"],
        2: ["age", "email"],
    }


def test_a_field_named_like_the_errors_column_is_refused() -> None:
    with pytest.raises(TemplateError, match='"_errors" cannot be a field name'):
        parse_template({"fields": [*FIELDS, {"name": "_errors"}]})
