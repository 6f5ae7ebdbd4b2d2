"""The S3 blob store against moto's server mode, over HTTP, with boto3 as against AWS."""

from __future__ import annotations

import boto3
import pytest

from server.blobs import S3BlobStore
from server.runtime import Runtime
from server.settings import Settings


@pytest.fixture
def s3_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = "loadbay-blobs"
    client = boto3.client("s3")
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)
    return bucket


def _keys(bucket: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_put_get_delete_prefix(s3_env: str) -> None:
    store = S3BlobStore(s3_env, prefix="tenant-a")
    store.put("org/imp_1/0.arrow.sealed", b"sealed-0")
    store.put("org/imp_1/1.arrow.sealed", b"sealed-1")
    store.put("org/imp_10/0.arrow.sealed", b"other import")
    assert store.get("org/imp_1/1.arrow.sealed") == b"sealed-1"
    assert "tenant-a/org/imp_1/0.arrow.sealed" in _keys(s3_env)
    store.delete_prefix("org/imp_1/")
    assert [k for k in _keys(s3_env) if k.startswith("tenant-a/")] == [
        "tenant-a/org/imp_10/0.arrow.sealed"
    ]
    with pytest.raises(store.client.exceptions.NoSuchKey):
        store.get("org/imp_1/0.arrow.sealed")


def test_settings_select_the_s3_store(s3_env: str, tmp_path: object) -> None:
    settings = Settings.from_env(
        {
            "LOADBAY_DATA_DIR": str(tmp_path),
            "LOADBAY_BLOB_S3_BUCKET": s3_env,
            "LOADBAY_BLOB_S3_PREFIX": "p",
        }
    )
    rt = Runtime.from_settings(settings)
    assert isinstance(rt.blobs, S3BlobStore)
    assert (rt.blobs.bucket, rt.blobs.prefix) == (s3_env, "p/")
