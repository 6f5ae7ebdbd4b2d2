"""AES-256-GCM sealing and the operator's master key file."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from server import crypto
from server.crypto import DecryptionError

KEY = bytes(range(32))
AAD = crypto.batch_aad("org_a", "imp_a", 0)
PLAINTEXT = b"Zyxwab Quorth,zq@example.com,+49 30 1234567"
HEADER = len(b"LBY1") + crypto.NONCE_BYTES


def test_seal_then_open_gives_the_plaintext_back() -> None:
    sealed = crypto.seal(KEY, PLAINTEXT, AAD)
    assert sealed.startswith(b"LBY1")
    assert len(sealed) == HEADER + len(PLAINTEXT) + 16  # magic + nonce + ciphertext + tag
    assert PLAINTEXT not in sealed
    assert crypto.open_sealed(KEY, sealed, AAD) == PLAINTEXT


def test_empty_plaintext_round_trips() -> None:
    assert crypto.open_sealed(KEY, crypto.seal(KEY, b"", AAD), AAD) == b""


@pytest.mark.parametrize(
    "aad",
    [
        crypto.batch_aad("org_a", "imp_a", 1),  # another batch
        crypto.batch_aad("org_a", "imp_b", 0),  # another import
        crypto.batch_aad("org_b", "imp_a", 0),  # another organisation
        crypto.import_aad("org_a", "imp_a"),  # another purpose
        b"",
    ],
    ids=["other-seq", "other-import", "other-org", "other-purpose", "empty"],
)
def test_wrong_associated_data_is_refused(aad: bytes) -> None:
    sealed = crypto.seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(DecryptionError, match="does not authenticate"):
        crypto.open_sealed(KEY, sealed, aad)


def test_wrong_key_is_refused() -> None:
    sealed = crypto.seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(DecryptionError, match="does not authenticate"):
        crypto.open_sealed(bytes(32), sealed, AAD)


@pytest.mark.parametrize(
    "position",
    [HEADER - 1, HEADER, HEADER + 5, -1, 4],
    ids=["nonce-end", "ciphertext-start", "ciphertext", "tag", "nonce-start"],
)
def test_any_flipped_byte_is_refused(position: int) -> None:
    sealed = bytearray(crypto.seal(KEY, PLAINTEXT, AAD))
    sealed[position] ^= 0x01
    with pytest.raises(DecryptionError, match="does not authenticate"):
        crypto.open_sealed(KEY, bytes(sealed), AAD)


@pytest.mark.parametrize(
    "sealed",
    [b"", b"LBY1", b"LBY1" + bytes(12 + 15), b"XXXX" + bytes(40), b"lby1" + bytes(40)],
    ids=["empty", "magic-only", "one-short-of-a-tag", "other-magic", "lowercase-magic"],
)
def test_what_is_not_a_ciphertext_is_refused(sealed: bytes) -> None:
    with pytest.raises(DecryptionError, match="not a loadbay ciphertext"):
        crypto.open_sealed(KEY, sealed, AAD)


def test_truncated_ciphertext_is_refused() -> None:
    sealed = crypto.seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(DecryptionError):
        crypto.open_sealed(KEY, sealed[:-1], AAD)


def test_every_seal_uses_a_fresh_nonce() -> None:
    sealed = [crypto.seal(KEY, PLAINTEXT, AAD) for _ in range(200)]
    nonces = {s[4:HEADER] for s in sealed}
    assert len(nonces) == 200
    assert len({s[HEADER:] for s in sealed}) == 200  # so equal plaintexts never look equal


def test_new_keys_are_32_random_bytes() -> None:
    keys = {crypto.new_key() for _ in range(50)}
    assert len(keys) == 50
    assert {len(k) for k in keys} == {32}


def test_master_key_file_is_created_private_with_32_bytes(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "master.key"
    key = crypto.load_or_create_master_key(path)
    assert len(key) == 32
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_master_key_file_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = crypto.load_or_create_master_key(path)
    mtime = path.stat().st_mtime_ns
    assert crypto.load_or_create_master_key(path) == first
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_key_file_of_the_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(b"k" * size)
    path.chmod(0o600)
    with pytest.raises(crypto.MasterKeyError, match="exactly 32 bytes"):
        crypto.load_or_create_master_key(path)
    assert path.read_bytes() == b"k" * size  # never silently replaced


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_master_key_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    """Before: a key left 0644 (copied, restored from a backup) was used as it was."""
    path = tmp_path / "master.key"
    path.write_bytes(b"k" * 32)
    path.chmod(mode)
    with pytest.raises(crypto.MasterKeyError, match=f"mode {mode:o}.*chmod 600"):
        crypto.load_or_create_master_key(path)


def test_files_at_rest_are_private(runtime_factory: Any, tmp_path: Path) -> None:
    """The data directory 0700; the SQLite database, blobs and master key 0600; SQLite's
    secure_delete set by loadbay (before: left to the build)."""
    data = tmp_path / "fresh"
    rt = runtime_factory(data_dir=data, database_url=f"sqlite:///{data / 'loadbay.db'}")
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "loadbay.db").stat().st_mode & 0o777 == 0o600
    assert (data / "master.key").stat().st_mode & 0o777 == 0o600
    rt.blobs.put("org_x/imp_x/0.arrow.sealed", b"sealed")
    blob = rt.settings.blob_dir / "org_x" / "imp_x" / "0.arrow.sealed"
    assert blob.stat().st_mode & 0o777 == 0o600
    assert blob.parent.stat().st_mode & 0o777 == 0o700
    with rt.sessions() as session:
        assert session.connection().exec_driver_sql("PRAGMA secure_delete").scalar() == 1


def test_a_loose_data_directory_is_narrowed(runtime_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "loose"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    runtime_factory(data_dir=data, database_url=f"sqlite:///{data / 'loadbay.db'}")
    assert data.stat().st_mode & 0o777 == 0o700


def test_the_embedded_redis_files_are_private(settings_factory: Any, tmp_path: Path) -> None:
    """redis-server has no setting for its files' modes; it is started under umask 077 so
    its AOF (which holds queued job ids) and database are 0600, its directory 0700."""
    from server.queue import embedded_redis

    settings = settings_factory(data_dir=tmp_path / "redis-data", redis_url=None)
    server = embedded_redis(settings)
    try:
        server.set("k", "v")
        server.bgrewriteaof()
        aof = [p for p in settings.data_dir.rglob("*") if "aof" in p.name and p.is_file()]
        assert aof
        for path in aof:
            assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
        assert settings.data_dir.stat().st_mode & 0o777 == 0o700
    finally:
        server.shutdown(save=False)
