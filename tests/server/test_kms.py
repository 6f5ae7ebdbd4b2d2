"""Customer-managed keys against moto's KMS in server mode, over HTTP, with boto3 as against
AWS: data keys generated and unwrapped by KMS; a disabled key seals one organisation's rows
(export, upload, delivery) while another's are unaffected; enabling it opens them again."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend
from sqlalchemy import update
from starlette.testclient import TestClient

from server import (
    crypto,
    db,
    deliveries,
    exports,
    imports,
    jobs,
    keys,
    kms,
    offboarding,
    orgs,
    uploads,
)
from server.app import create_app
from server.http.digest import content_digest_header
from server.kms import KeyRefused, UnusableKey
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import (
        BatchFactory,
        DemoOrgFactory,
        OrgSetup,
        Receiver,
        RuntimeFactory,
    )

CSV = "Full name,Email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"
BASE = "https://127.0.0.1:8443"


@pytest.fixture
def store() -> str:
    return "sqlite"


class _KeyStateEnforced:
    """AWS refuses Encrypt, GenerateDataKey and Decrypt under a key that is not enabled
    (DisabledException; KMSInvalidStateException while pending deletion); moto 5.2.5
    records the state but does not refuse. This gives its server AWS's documented
    behaviour; loadbay's side of the wire is unchanged."""

    @staticmethod
    def refuse_unless_enabled(key: Any) -> None:
        if key.key_state == "Disabled":
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
        if key.key_state != "Enabled":
            raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is {key.key_state}.")

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> None:
        encrypt, decrypt = KmsBackend.encrypt, KmsBackend.decrypt

        def checked_encrypt(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
            cls.refuse_unless_enabled(self.keys[self.any_id_to_key_id(key_id)])
            return encrypt(self, key_id, *args, **kwargs)

        def checked_decrypt(self: Any, *args: Any, **kwargs: Any) -> Any:
            plaintext, arn = decrypt(self, *args, **kwargs)
            cls.refuse_unless_enabled(self.keys[self.any_id_to_key_id(arn)])
            return plaintext, arn

        monkeypatch.setattr(KmsBackend, "encrypt", checked_encrypt)
        monkeypatch.setattr(KmsBackend, "decrypt", checked_decrypt)


@pytest.fixture
def kms_client(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """boto3's own configuration from the environment: AWS_ENDPOINT_URL_KMS is all it takes
    to point loadbay at another KMS."""
    _KeyStateEnforced.install(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # the region is the ARN's
    return boto3.client("kms", region_name="eu-west-1")


def _new_key(client: Any) -> str:
    arn: str = client.create_key(Description="loadbay test")["KeyMetadata"]["Arn"]
    return arn


def _key_id(arn: str) -> str:
    """moto's DisableKey/EnableKey take the key id only (AWS takes the ARN too)."""
    return arn.rsplit("/", 1)[1]


@dataclass(frozen=True)
class TwoOrgs:
    rt: Runtime
    kms_org: OrgSetup
    plain_org: OrgSetup
    arn: str


def _import(rt: Runtime, setup: OrgSetup, body: bytes) -> tuple[str, list[int]]:
    with rt.sessions() as session:
        org = session.get(db.Organisation, setup.org.id)
    assert org is not None
    created = imports.create_import(rt, org, setup.template.id, "contacts.csv")
    uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
    ids = imports.submit(rt, created.import_id, created.upload_token, 1, 2)
    return created.import_id, ids


def _csv(rt: Runtime, import_id: str) -> str:
    out = io.BytesIO()
    exports.export_import(rt, import_id, "csv", out)
    return out.getvalue().decode()


@pytest.fixture
def two_orgs(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    kms_client: Any,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> TwoOrgs:
    rt = runtime_factory()
    monkeypatch.setattr(jobs, "_runtime", lambda: rt)
    arn = _new_key(kms_client)
    with_kms = demo_org(rt, webhook_urls=[receiver.url])
    orgs.update_settings(rt, with_kms.org.id, kms_key_arn=arn)
    plain = demo_org(rt, webhook_urls=[receiver.url])
    return TwoOrgs(rt, with_kms, plain, arn)


def test_a_kms_organisation_gets_its_data_keys_from_kms(
    two_orgs: TwoOrgs, batch_factory: BatchFactory
) -> None:
    rt = two_orgs.rt
    body = batch_factory(CSV)
    kms_import, _ = _import(rt, two_orgs.kms_org, body)
    plain_import, _ = _import(rt, two_orgs.plain_org, body)
    with rt.sessions() as session:
        kms_row = session.get(db.Import, kms_import)
        plain_row = session.get(db.Import, plain_import)
        assert kms_row is not None and plain_row is not None
        assert kms_row.wrapped_data_key is not None and plain_row.wrapped_data_key is not None
        assert kms_row.wrapped_data_key.startswith(kms.MAGIC + b"\x00")
        assert two_orgs.arn.encode() in kms_row.wrapped_data_key
        assert plain_row.wrapped_data_key.startswith(b"LBY1")  # under the organisation key
        # The organisation key alone cannot open a KMS-wrapped data key: KMS must.
        org_key = crypto.open_sealed(
            rt.vault._master,
            two_orgs.kms_org.org.wrapped_key,
            crypto.org_aad(two_orgs.kms_org.org.id),
        )
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(
                org_key, kms_row.wrapped_data_key, crypto.import_aad(kms_row.org_id, kms_import)
            )
    expected = (
        "full_name,email,phone,country,signup_date,amount\n"
        "Ada Lovelace,ada@example.com,,,,\nGrace Hopper,grace@example.com,,,,\n"
    )
    assert _csv(rt, kms_import) == expected
    assert _csv(rt, plain_import) == expected


def test_the_encryption_context_binds_a_wrapped_key_to_its_import(
    two_orgs: TwoOrgs,
) -> None:
    vault = two_orgs.rt.vault
    org = two_orgs.kms_org.org
    wrapped = vault.new_data_key(org.id, org.wrapped_key, "imp_1", kms_key_arn=two_orgs.arn)
    assert len(vault.data_key(org.id, org.wrapped_key, "imp_1", wrapped)) == 32
    with pytest.raises(KeyRefused, match="InvalidCiphertextException"):
        vault.data_key(org.id, org.wrapped_key, "imp_2", wrapped)
    with pytest.raises(KeyRefused):
        vault.data_key("org_other", org.wrapped_key, "imp_1", wrapped)
    damaged = wrapped[: len(kms.MAGIC) + 2] + b"\xff" + wrapped[len(kms.MAGIC) + 3 :]
    with pytest.raises(KeyRefused, match="damaged"):
        vault.data_key(org.id, org.wrapped_key, "imp_1", damaged)


def test_a_disabled_key_seals_that_organisation_only_until_enabled(
    two_orgs: TwoOrgs, batch_factory: BatchFactory, kms_client: Any, receiver: Receiver
) -> None:
    rt = two_orgs.rt
    body = batch_factory(CSV)
    kms_import, [kms_delivery] = _import(rt, two_orgs.kms_org, body)
    plain_import, [plain_delivery] = _import(rt, two_orgs.plain_org, body)
    kms_client.disable_key(KeyId=_key_id(two_orgs.arn))

    with pytest.raises(KeyRefused) as refused:
        _csv(rt, kms_import)
    assert refused.value.message.startswith("The organisation's KMS key refused to unwrap")
    assert "DisabledException" in refused.value.message
    assert refused.value.retry_after == kms.RETRY_AFTER
    # A new import cannot start either: no data key can be generated.
    with pytest.raises(KeyRefused, match="refused to generate a data key"):
        _import(rt, two_orgs.kms_org, body)

    # The delivery fails with that reason and stays on its retry schedule.
    assert deliveries.deliver(rt, kms_delivery).startswith("retry in ")
    with rt.sessions() as session:
        row = session.get(db.Delivery, kms_delivery)
        assert row is not None
        assert row.status == db.Delivery.Status.PENDING
        assert row.attempts == 1 and row.next_attempt_at is not None
        assert row.last_error is not None
        assert row.last_error.startswith("The organisation's KMS key refused to unwrap")
        [attempt] = session.query(db.DeliveryAttempt).filter_by(delivery_id=kms_delivery).all()
        assert attempt.outcome == "retry"
        assert attempt.error == row.last_error

    # The other organisation is untouched.
    assert "Grace Hopper" in _csv(rt, plain_import)
    assert deliveries.deliver(rt, plain_delivery) == "delivered"
    assert len(receiver.requests) == 1

    kms_client.enable_key(KeyId=_key_id(two_orgs.arn))
    assert "Ada Lovelace" in _csv(rt, kms_import)
    with rt.sessions.begin() as session:  # the retry is due now
        session.execute(
            update(db.Delivery)
            .where(db.Delivery.id == kms_delivery)
            .values(next_attempt_at=db.utcnow())
        )
    assert deliveries.deliver(rt, kms_delivery) == "delivered"
    assert len(receiver.requests) == 2
    assert b"Ada Lovelace" in receiver.requests[1].body


def test_uploading_to_an_import_whose_key_was_disabled_is_a_503(
    two_orgs: TwoOrgs, batch_factory: BatchFactory, kms_client: Any
) -> None:
    rt = two_orgs.rt
    with rt.sessions() as session:
        org = session.get(db.Organisation, two_orgs.kms_org.org.id)
    assert org is not None
    created = imports.create_import(rt, org, two_orgs.kms_org.template.id, "c.csv")
    kms_client.disable_key(KeyId=_key_id(two_orgs.arn))
    try:
        with TestClient(create_app(rt), base_url=BASE) as client:
            body = batch_factory(CSV)
            answer = client.put(
                f"/api/v1/imports/{created.import_id}/batches/0",
                params={"first_row": 2},
                content=body,
                headers={
                    "authorization": f"Bearer {created.upload_token}",
                    "origin": BASE,
                    "content-type": "application/vnd.apache.arrow.stream",
                    "content-digest": content_digest_header(body),
                },
            )
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == str(kms.RETRY_AFTER)
        error = answer.json()["error"]
        assert error["code"] == "kms-key-refused"
        assert error["message"].startswith("The organisation's KMS key refused to unwrap")
    finally:
        kms_client.enable_key(KeyId=_key_id(two_orgs.arn))


# --- setting the key over the management API --------------------------------------------


@pytest.fixture
def api(runtime: Runtime, demo_org: DemoOrgFactory, kms_client: Any) -> Iterator[TestClient]:
    setup = demo_org(runtime)
    secret = keys.create_key(runtime, setup.org.id, "tests").secret
    with TestClient(create_app(runtime), base_url=BASE) as client:
        client.headers["authorization"] = f"Bearer {secret}"
        yield client


def test_the_api_saves_a_key_kms_lets_loadbay_use(api: TestClient, kms_client: Any) -> None:
    arn = _new_key(kms_client)
    assert api.get("/api/v1/organisation").json()["kms_key_arn"] is None
    changed = api.patch("/api/v1/organisation", json={"kms_key_arn": arn})
    assert changed.status_code == 200, changed.text
    assert changed.json()["kms_key_arn"] == arn
    assert api.get("/api/v1/organisation").json()["kms_key_arn"] == arn


@pytest.mark.parametrize(
    ("arn", "said"),
    [
        ("not-an-arn", "is not an AWS KMS key ARN"),
        ("arn:aws:s3:::bucket", "is not an AWS KMS key ARN"),
        ("arn:aws:kms:eu-west-1:123:key/abc", "is not an AWS KMS key ARN"),
        (
            "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000",
            "refused to generate a data key (NotFoundException",
        ),
        ("disabled", "refused to generate a data key (DisabledException"),
    ],
)
def test_the_api_refuses_a_key_it_cannot_use(
    api: TestClient, kms_client: Any, arn: str, said: str
) -> None:
    if arn == "disabled":
        arn = _new_key(kms_client)
        kms_client.disable_key(KeyId=_key_id(arn))
    answer = api.patch("/api/v1/organisation", json={"kms_key_arn": arn})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "kms-key-unusable"
    assert said in body["detail"]
    assert api.get("/api/v1/organisation").json()["kms_key_arn"] is None


def test_checked_arn_accepts_keys_and_aliases() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    alias = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/loadbay/prod"
    assert kms.checked_arn(f" {key} ") == key
    assert kms.checked_arn(alias) == alias
    with pytest.raises(UnusableKey):
        kms.checked_arn(key + "\nx")


def test_offboarding_a_kms_organisation_whose_key_is_disabled_writes_nothing(
    two_orgs: TwoOrgs, batch_factory: BatchFactory, kms_client: Any, tmp_path: Path
) -> None:
    rt = two_orgs.rt
    _import(rt, two_orgs.kms_org, batch_factory(CSV))
    kms_client.disable_key(KeyId=_key_id(two_orgs.arn))
    try:
        with pytest.raises(KeyRefused, match="refused to unwrap a data key"):
            offboarding.export_organisation(rt, two_orgs.kms_org.org.id, tmp_path / "out")
        assert not [p for p in tmp_path.iterdir() if p.name == "out" or ".partial-" in p.name]
    finally:
        kms_client.enable_key(KeyId=_key_id(two_orgs.arn))
    done = offboarding.export_organisation(rt, two_orgs.kms_org.org.id, tmp_path / "out")
    assert (done.imports, done.rows) == (1, 2)
