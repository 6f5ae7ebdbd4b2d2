"""The local blob store: opaque keys under one root, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.blobs import LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_put_then_get(store: LocalBlobStore) -> None:
    store.put("org_a/imp_1/0.arrow.sealed", b"\x00sealed\xff")
    assert store.get("org_a/imp_1/0.arrow.sealed") == b"\x00sealed\xff"
    assert (store.root / "org_a" / "imp_1" / "0.arrow.sealed").read_bytes() == b"\x00sealed\xff"


def test_put_replaces_and_leaves_no_temporary_files(store: LocalBlobStore) -> None:
    for i in range(5):
        store.put("org_a/imp_1/0.arrow.sealed", f"version {i}".encode())
    assert store.get("org_a/imp_1/0.arrow.sealed") == b"version 4"
    assert _files(store.root) == {"org_a/imp_1/0.arrow.sealed"}


def test_get_of_a_missing_key_raises(store: LocalBlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.get("org_a/imp_1/9.arrow.sealed")


def test_delete_prefix_removes_one_import_only(store: LocalBlobStore) -> None:
    for key in ("org_a/imp_1/0", "org_a/imp_1/1", "org_a/imp_2/0", "org_b/imp_3/0"):
        store.put(key, b"x")
    store.delete_prefix("org_a/imp_1")
    assert _files(store.root) == {"org_a/imp_2/0", "org_b/imp_3/0"}
    store.delete_prefix("org_b/imp_3/0")  # a single blob
    assert _files(store.root) == {"org_a/imp_2/0"}
    store.delete_prefix("org_c")  # nothing there: no error
    assert _files(store.root) == {"org_a/imp_2/0"}


@pytest.mark.parametrize(
    "key",
    ["../outside", "org_a/../../outside", "/etc/passwd", "org_a/../../blobs-sibling/x"],
)
def test_keys_that_escape_the_root_are_refused(store: LocalBlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="escapes the store"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="escapes the store"):
        store.get(key)
    with pytest.raises(ValueError, match="escapes the store"):
        store.delete_prefix(key)
    assert not (store.root.parent / "outside").exists()


def test_delete_prefix_refuses_to_escape_even_to_existing_directories(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "keep.txt").write_text("keep")
    with pytest.raises(ValueError, match="escapes the store"):
        store.delete_prefix("../precious")
    assert (tmp_path / "precious" / "keep.txt").read_text() == "keep"


def test_a_failed_write_keeps_the_old_blob_and_leaves_no_temporary_file(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("org_a/imp_1/0", b"old")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.put("org_a/imp_1/0", b"new")
    assert store.get("org_a/imp_1/0") == b"old"
    assert _files(store.root) == {"org_a/imp_1/0"}
