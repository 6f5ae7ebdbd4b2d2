"""Two engines through the bridge, as the page's coordinator drives them (browser/src/
parallel.js): each its own copy of pipeline.bridge, the primary's answers equal to one
engine's reading and validating the whole file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipeline import bridge, chunking

TEMPLATE = json.dumps(
    {
        "fields": [
            {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
            {"name": "email", "format": "email"},
            {"name": "note"},
        ],
        "primaryKey": ["email", "note"],
    }
)


def engine() -> ModuleType:
    """A fresh pipeline.bridge, as a new worker's engine has (its own session and part)."""
    spec = importlib.util.spec_from_file_location("engine_bridge", bridge.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def value(answer: str) -> Any:
    decoded = json.loads(answer)
    assert decoded["ok"], decoded
    return decoded["value"]


def data() -> bytes:
    """Errors, a repeated id and key across the cut, a quoted line break near it, a ragged row."""
    lines = ["id,email,note"]
    for i in range(1, 41):
        lines.append(f"{i},user{i}@example.com,n{i}")
    lines[5] = '5,user5@example.com,"two\nlines"'
    lines[22] = "22,not-an-email,n22"
    lines[30] = "30,user30@example.com,n30,EXTRA"
    lines[35] = "3,user1@example.com,n1"  # id 3 and key (user1, n1) again, in the second part
    lines[38] = ""  # a blank line
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("near", [-6, 0, 4])
def test_two_engines_answer_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, near: int
) -> None:
    monkeypatch.setattr(chunking, "SPLIT_BYTES", 0)
    raw = data()
    path = tmp_path / "people.csv"
    path.write_bytes(raw)
    one = engine()
    described = value(one.open_file(str(path), "people.csv", TEMPLATE))
    mapping = json.dumps(described["mapping"])
    summary = value(one.set_mapping(mapping))

    primary, helper = engine(), engine()
    plan = value(primary.plan_parts(str(path), "people.csv", "{}", 2))
    assert plan is not None
    cut = raw.index(b"\n27,") + 1 + near  # the quoted line break is in row 6, near the start
    cut = raw.index(b"\n", cut - 1) + 1
    plan["bounds"] = [plan["bounds"][0], cut, len(raw)]
    head = json.dumps(plan["head"])
    mine = value(primary.read_part_at(str(path), head, plan["bounds"][0], cut, False))
    theirs = value(helper.read_part_at(str(path), head, cut, len(raw), True))
    assert mine["verified"] and theirs["verified"]
    assert theirs["slow"] and not mine["slow"]  # only the ragged part took the Python reader
    primary.add_part(theirs["rows"], helper.part_meta())
    opened = value(primary.open_parts(str(path), "people.csv", TEMPLATE, "{}", json.dumps(plan)))
    assert opened["described"] == described
    starts = opened["starts"]
    assert starts == [0, mine["rows"]]
    assert set(primary._awaited) == {1}  # the helper's cells come after its errors

    first_row = described["first_data_row"] + starts[1]
    rows = opened["rows"] - starts[1]
    assert value(primary.validate_own(mapping)) is None
    errors = helper.validate_part_at(TEMPLATE, mapping, first_row, rows)
    # the helper's cells travel after its errors, in pieces, and it lets them go
    pieces: list[bytes] = []
    helper.send_cells(lambda piece: pieces.append(bytes(piece)))
    assert helper._part is None
    stream = b"".join(pieces)
    at = 0

    def read(n: int) -> bytes:  # as the worker gives them: at most n bytes, each piece apart
        nonlocal at
        piece = stream[at : at + min(n, 7)]
        at += len(piece)
        return piece

    assert value(primary.finish_parts([errors], [read])) == summary
    assert summary["error_count"] >= 4  # the e-mail, the extra cell, the id and the key
    assert value(primary.window(0, 100)) == value(one.window(0, 100))
    assert primary.rejected_csv('["Row", "Why"]', "deleted") == one.rejected_csv(
        '["Row", "Why"]', "deleted"
    )
    edited = value(primary.edit(35 - 1, "id", '"35"'))
    assert edited == value(one.edit(35 - 1, "id", '"35"'))


def test_a_small_file_is_read_by_one_engine(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_bytes(data())
    assert value(engine().plan_parts(str(path), "small.csv", "{}", 2)) is None


def test_a_helper_lost_before_validating_leaves_its_part_to_the_primary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper's cells never came (it crashed, or the mapping went to one engine): the
    primary reads that part itself and answers as one engine."""
    monkeypatch.setattr(chunking, "SPLIT_BYTES", 0)
    path = tmp_path / "people.csv"
    path.write_bytes(data())
    one = engine()
    described = value(one.open_file(str(path), "people.csv", TEMPLATE))
    mapping = json.dumps(described["mapping"])

    primary, helper = engine(), engine()
    plan = value(primary.plan_parts(str(path), "people.csv", "{}", 2))
    head, (start, cut, end) = json.dumps(plan["head"]), plan["bounds"]
    value(primary.read_part_at(str(path), head, start, cut, False))
    theirs = value(helper.read_part_at(str(path), head, cut, end, True))
    primary.add_part(theirs["rows"], helper.part_meta())
    opened = value(primary.open_parts(str(path), "people.csv", TEMPLATE, "{}", json.dumps(plan)))
    assert opened["described"] == described
    assert len(opened["starts"]) == 2

    assert value(primary.set_mapping(mapping)) == value(one.set_mapping(mapping))
    assert value(primary.window(0, 100)) == value(one.window(0, 100))
