"""The s3 destination against moto's server over HTTP, read back with boto3 and pyarrow:
formats, keys, server-side encryption, the manifest, credentials, and the SSRF guard on the
endpoint. (The shared contract is in test_conformance.py.)"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import destinations
from destinations import DeliveryBatch, DestinationContext
from destinations.base import FinishedImport
from destinations.errors import ConfigurationError, FatalDeliveryError
from destinations.network import UnsafeAddressError
from destinations.s3 import S3Destination
from destinations.testing import sample_batch
from tests.destinations.conftest import LOOPBACK, FakeDNS
from tests.destinations.stores import S3Harness, s3_client

CONTEXT = DestinationContext(policy=LOOPBACK, timeout=5.0)


def _make(h: S3Harness, **config: Any) -> S3Destination:
    made = destinations.create("s3", h.config(**config), CONTEXT)
    assert isinstance(made, S3Destination)
    return made


def _get(h: S3Harness, key: str) -> bytes:
    body: bytes = h.client.get_object(Bucket=h.bucket, Key=key)["Body"].read()
    return body


def _batch(seq: int = 0, **extra: Any) -> DeliveryBatch:
    base = sample_batch(seq, import_id="imp_s3")
    return DeliveryBatch(
        base.import_id,
        seq,
        2,
        "Contacts list",
        base.table,
        org_id="org_1",
        destination_id="dst_1",
        **extra,
    )


def test_parquet_by_default_read_back_with_pyarrow(s3_harness: S3Harness) -> None:
    h = s3_harness
    batch = _batch(1)
    result = _make(h).write(batch)
    key = "org_1/Contacts_list/1970-01-01/imp_s3/00001.parquet"
    assert result.detail == f"s3://{h.bucket}/{key}"
    assert pq.read_table(io.BytesIO(_get(h, key))).equals(batch.table)
    head = h.client.head_object(Bucket=h.bucket, Key=key)
    assert head["ContentType"] == "application/vnd.apache.parquet"
    assert head["Metadata"] == {"loadbay-rows": "2", "loadbay-import": "imp_s3"}
    assert head["ServerSideEncryption"] == "AES256"


def test_a_redelivery_overwrites_the_same_object(s3_harness: S3Harness) -> None:
    h = s3_harness
    _make(h).write(_batch(0))
    first = h.effects()
    _make(h).write(_batch(0))
    assert h.effects() == first and len(first) == 1


def test_csv_is_escaped_against_formulas(s3_harness: S3Harness) -> None:
    h = s3_harness
    table = pa.table({"name": ["=HYPERLINK(1)", "+1", "plain"], "n": [1, 2, 3]})
    batch = DeliveryBatch("imp_csv", 0, 1, "t", table, org_id="o")
    hook = _make(h, format="csv", key_template="{import_id}/{batch}.{ext}")
    hook.write(batch)
    text = _get(h, "imp_csv/0.csv").decode()
    assert text.splitlines() == ["name,n", "'=HYPERLINK(1),1", "'+1,2", "plain,3"]
    head = h.client.head_object(Bucket=h.bucket, Key="imp_csv/0.csv")
    assert head["ContentType"] == "text/csv; charset=utf-8"


def test_ndjson_keeps_values_exactly(s3_harness: S3Harness) -> None:
    h = s3_harness
    table = pa.table({"name": ["=1+1", None], "n": [1, 2]})
    hook = _make(h, format="ndjson", prefix="in/", key_template="{import_id}-{batch:03d}.{ext}")
    hook.write(DeliveryBatch("imp_nd", 7, 8, "t", table))
    lines = _get(h, "in/imp_nd-007.ndjson").decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"name": "=1+1", "n": 1},
        {"name": None, "n": 2},
    ]


def test_sse_kms_with_a_key_id(s3_harness: S3Harness) -> None:
    h = s3_harness
    kms = s3_client(h.moto, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    _make(h, sse="aws:kms", sse_kms_key_id=key_id).write(_batch(0))
    [(key, _)] = h.effects()
    head = h.client.head_object(Bucket=h.bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]


def test_the_manifest_lists_the_parts_and_is_written_by_finish(s3_harness: S3Harness) -> None:
    h = s3_harness
    hook = _make(h, prefix="drop/")
    hook.write(_batch(0))
    hook.write(_batch(1))
    assert not any(k.endswith("manifest.json") for k, _ in h.effects())
    done = FinishedImport("imp_s3", "Contacts list", "dst_1", "org_1", (2, 2))
    result = hook.finish(done)
    base = "drop/org_1/Contacts_list/1970-01-01/imp_s3"
    assert result.detail == f"s3://{h.bucket}/{base}/manifest.json"
    manifest = json.loads(_get(h, f"{base}/manifest.json"))
    sizes = [h.client.head_object(Bucket=h.bucket, Key=f"{base}/0000{i}.parquet") for i in (0, 1)]
    assert manifest == {
        "import_id": "imp_s3",
        "template": "Contacts list",
        "format": "parquet",
        "bucket": h.bucket,
        "batch_count": 2,
        "row_count": 4,
        "parts": [
            {"batch": i, "key": f"{base}/0000{i}.parquet", "rows": 2, "size": s["ContentLength"]}
            for i, s in enumerate(sizes)
        ],
    }
    before = h.effects()
    hook.finish(done)  # again (a retried last delivery): the same manifest
    assert h.effects() == before


def test_a_missing_part_fails_the_manifest(s3_harness: S3Harness) -> None:
    h = s3_harness
    hook = _make(h)
    hook.write(_batch(0))
    with pytest.raises(FatalDeliveryError, match="Batch 1 is not in the bucket"):
        hook.finish(FinishedImport("imp_s3", "Contacts list", "dst_1", "org_1", (2, 2)))
    assert not any(k.endswith("manifest.json") for k, _ in h.effects())


def test_credentials_come_from_the_environment_when_absent(
    s3_harness: S3Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = s3_harness
    config = {
        k: v for k, v in h.config().items() if k not in ("access_key_id", "secret_access_key")
    }
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    destinations.create("s3", config, CONTEXT).write(_batch(0))
    assert len(h.effects()) == 1


def test_no_credentials_anywhere_is_a_configuration_error(
    s3_harness: S3Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    h = s3_harness
    config = {
        k: v for k, v in h.config().items() if k not in ("access_key_id", "secret_access_key")
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigurationError, match="access_key_id"):
        destinations.create("s3", config, CONTEXT).write(_batch(0))


def test_the_endpoint_name_is_resolved_once_and_pinned(
    s3_harness: S3Harness, fake_dns: FakeDNS
) -> None:
    h = s3_harness
    port = h.moto.rsplit(":", 1)[1]
    resolver = fake_dns({"objectstore": [["127.0.0.1"]]})  # dotless: moto takes path style
    _make(h, endpoint_url=f"http://objectstore:{port}").write(_batch(0))
    assert set(resolver.names_asked) == {"objectstore"}
    assert len(h.effects()) == 1


def test_an_endpoint_that_resolves_to_metadata_is_refused(
    s3_harness: S3Harness, fake_dns: FakeDNS
) -> None:
    fake_dns({"s3.example.test": [["169.254.169.254"]]})
    hook = _make(s3_harness, endpoint_url="https://s3.example.test")
    with pytest.raises(UnsafeAddressError, match="link-local"):
        hook.check()
    with pytest.raises(UnsafeAddressError):
        hook.write(_batch(0))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"bucket": "No_Such"}, "bucket name"),
        ({"format": "xlsx"}, "parquet, csv, ndjson"),
        ({"sse": "des"}, "AES256, aws:kms"),
        ({"sse": "AES256", "sse_kms_key_id": "k"}, "needs"),
        ({"access_key_id": "only-half", "secret_access_key": None}, "both"),
        ({"endpoint_url": "ftp://x"}, "https://"),
        ({"key_template": "{org}/{batch}.parquet"}, "{import_id}"),
        ({"key_template": "{import_id}.parquet"}, "{batch}"),
        ({"key_template": "{import_id}/{batch.__class__}"}, "may only use"),
        ({"key_template": "{import_id}/{batch!r}"}, "may only use"),
        ({"key_template": "{import_id}/{secret}{batch}"}, "may only use"),
        ({"key_template": "{import_id}/{batch:q}"}, "format a key cannot take"),
        ({"key_template": "{import_id}/{batch:099999999999d}"}, "format a key cannot take"),
        ({"key_template": "{import_id}/{org:>50}{batch}"}, "format a key cannot take"),
        ({"key_template": "{import_id}/{batch}" + "x" * 300}, "longer than 300"),
        ({"manifest_template": "{org}/m.json"}, "{import_id}"),
        ({"manifest_template": "{import_id}/{batch}.json"}, "must not name"),
    ],
)
def test_unusable_settings_are_refused(config: dict[str, Any], message: str) -> None:
    base = {"bucket": "ok-bucket", "access_key_id": "k", "secret_access_key": "s"}
    with pytest.raises(ConfigurationError) as caught:
        destinations.create("s3", {**base, **config}, CONTEXT)
    assert message in str(caught.value)


def test_the_connection_test_writes_one_small_object_and_names_it(s3_harness: S3Harness) -> None:
    h = s3_harness
    found = destinations.probe(_make(h, prefix="exports/"))
    assert found == f"Wrote s3://{h.bucket}/exports/loadbay-connection-test.txt."
    listed = h.client.list_objects_v2(Bucket=h.bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["exports/loadbay-connection-test.txt"]
    with pytest.raises(ConfigurationError, match="NoSuchBucket"):
        destinations.probe(_make(h, bucket=h.bucket + "-gone"))
