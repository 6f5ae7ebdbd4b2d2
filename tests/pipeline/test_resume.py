"""Resuming an upload: the mapping and edits saved from one session restore the same
batches in a fresh session of the same file (what the page keeps in IndexedDB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import MappingError
from pipeline.protocol import SavedReview
from pipeline.session import ImportSession
from pipeline.template import parse_template

TEMPLATE = parse_template(
    {
        "fields": [
            {"name": "email", "constraints": {"required": True, "unique": True}},
            {"name": "age", "type": "integer"},
        ]
    }
)
CSV = (
    "Mail,Age,Notes\nada@example.com,36,n1\n,x,n2\n\nalan@example.com,41,n3\nada@example.com,5,n4\n"
)


def _session(tmp_path: Path) -> ImportSession:
    path = tmp_path / "people.csv"
    path.write_text(CSV, encoding="utf-8")
    return ImportSession.open(str(path), path.name, TEMPLATE)


def test_saved_edits_and_deletions_restore_the_same_batches(tmp_path: Path) -> None:
    first = _session(tmp_path)
    first.set_mapping({"email": 0, "age": 1})
    review = first.review
    review.edit(1, "email", "grace@example.com")
    review.edit(1, "age", "85")
    review.delete_rows([4])  # the duplicate ada
    assert review.summary().error_count == 0
    saved = first.saved()
    # JSON round trip, as it travels to IndexedDB and back through the bridge
    wire = json.loads(json.dumps(saved.to_dict()))
    assert wire == {
        "mapping": {"email": 0, "age": 1},
        "edits": {"email": [[1, "grace@example.com"]], "age": [[1, "85"]]},
        "deleted": [4],  # the file's blank row (index 2) is not the user's doing
    }
    second = _session(tmp_path)
    summary = second.restore(SavedReview.from_dict(wire))
    assert (summary.rows, summary.error_count) == (3, 0)
    assert second.batch_plan(2) == first.batch_plan(2)
    assert [second.encode_batch(o, n) for o, n in second.batches(2)] == [
        first.encode_batch(o, n) for o, n in first.batches(2)
    ]


def test_restored_edits_are_validated_again(tmp_path: Path) -> None:
    session = _session(tmp_path)
    saved = SavedReview(mapping={"email": 0, "age": 1}, edits={"age": ((0, "old"),)}, deleted=())
    summary = session.restore(saved)
    assert summary.by_field == {"email": 2, "age": 2}  # row 3 blank email, dup ada; x, old
    assert summary.can_undo


@pytest.mark.parametrize(
    "saved",
    [
        SavedReview(mapping={"email": 0}, edits={"email": ((99, "x"),)}, deleted=()),
        SavedReview(mapping={"email": 0}, edits={"nope": ((0, "x"),)}, deleted=()),
        SavedReview(mapping={"email": 0}, edits={}, deleted=(99,)),
    ],
    ids=["row-past-the-end", "unknown-field", "deleted-past-the-end"],
)
def test_saved_edits_that_do_not_fit_the_file_are_refused(
    tmp_path: Path, saved: SavedReview
) -> None:
    session = _session(tmp_path)
    with pytest.raises(MappingError, match="The saved edits do not fit this file"):
        session.restore(saved)
