"""The key hierarchy: master key -> organisation keys -> per-import data keys and configs."""

from __future__ import annotations

import pytest

from server import crypto
from server.crypto import DecryptionError
from server.vault import Vault

MASTER = bytes(range(32))


@pytest.fixture
def vault() -> Vault:
    return Vault(MASTER)


def test_org_key_is_wrapped_under_the_master_key(vault: Vault) -> None:
    wrapped = vault.new_org_key("org_a")
    org_key = crypto.open_sealed(MASTER, wrapped, crypto.org_aad("org_a"))
    assert len(org_key) == 32
    assert org_key not in wrapped


def test_each_import_gets_its_own_data_key(vault: Vault) -> None:
    org = vault.new_org_key("org_a")
    wrapped = {i: vault.new_data_key("org_a", org, i) for i in ("imp_1", "imp_2", "imp_3")}
    keys = {i: vault.data_key("org_a", org, i, w) for i, w in wrapped.items()}
    assert {len(k) for k in keys.values()} == {32}
    assert len(set(keys.values())) == 3
    # The same import id asked twice still gets a new key (nothing is derived from ids).
    again = vault.data_key("org_a", org, "imp_1", vault.new_data_key("org_a", org, "imp_1"))
    assert again != keys["imp_1"]


def test_data_key_is_stable_once_wrapped(vault: Vault) -> None:
    org = vault.new_org_key("org_a")
    wrapped = vault.new_data_key("org_a", org, "imp_1")
    assert vault.data_key("org_a", org, "imp_1", wrapped) == vault.data_key(
        "org_a", org, "imp_1", wrapped
    )


def test_wrapped_data_key_cannot_be_opened_for_another_import(vault: Vault) -> None:
    org = vault.new_org_key("org_a")
    wrapped = vault.new_data_key("org_a", org, "imp_1")
    with pytest.raises(DecryptionError):
        vault.data_key("org_a", org, "imp_2", wrapped)


def test_wrapped_data_key_cannot_be_opened_for_another_organisation(vault: Vault) -> None:
    org_a = vault.new_org_key("org_a")
    org_b = vault.new_org_key("org_b")
    wrapped = vault.new_data_key("org_a", org_a, "imp_1")
    with pytest.raises(DecryptionError):
        vault.data_key("org_b", org_b, "imp_1", wrapped)  # B's own key
    with pytest.raises(DecryptionError):
        vault.data_key("org_b", org_a, "imp_1", wrapped)  # A's wrapped key claimed by B


def test_wrapped_org_key_is_bound_to_its_organisation(vault: Vault) -> None:
    org_a = vault.new_org_key("org_a")
    with pytest.raises(DecryptionError):
        vault.new_data_key("org_b", org_a, "imp_1")


def test_another_master_key_opens_nothing() -> None:
    org = Vault(MASTER).new_org_key("org_a")
    with pytest.raises(DecryptionError):
        Vault(bytes(32)).new_data_key("org_a", org, "imp_1")


def test_config_round_trips_and_is_sealed(vault: Vault) -> None:
    org = vault.new_org_key("org_a")
    config = {"url": "https://hooks.example/in", "secret": "whsec_SECRETVALUE", "n": [1, 2]}
    sealed = vault.seal_config("org_a", org, "dst_1", config)
    assert b"SECRETVALUE" not in sealed
    assert b"hooks.example" not in sealed
    assert vault.open_config("org_a", org, "dst_1", sealed) == config


def test_config_cannot_be_moved_to_another_destination(vault: Vault) -> None:
    """The destination id is in the associated data: a sealed webhook configuration copied
    into another destination's row does not open there."""
    org = vault.new_org_key("org_a")
    sealed = vault.seal_config("org_a", org, "dst_1", {"url": "https://a.example"})
    with pytest.raises(DecryptionError):
        vault.open_config("org_a", org, "dst_2", sealed)


def test_config_cannot_be_opened_by_another_organisation(vault: Vault) -> None:
    org_a = vault.new_org_key("org_a")
    org_b = vault.new_org_key("org_b")
    sealed = vault.seal_config("org_a", org_a, "dst_1", {"secret": "s"})
    with pytest.raises(DecryptionError):
        vault.open_config("org_b", org_b, "dst_1", sealed)


def test_config_and_data_keys_are_not_interchangeable(vault: Vault) -> None:
    org = vault.new_org_key("org_a")
    wrapped_data_key = vault.new_data_key("org_a", org, "imp_1")
    with pytest.raises(DecryptionError):
        vault.open_config("org_a", org, "dst_1", wrapped_data_key)


def test_rewrapping_moves_the_org_key_under_a_new_master_unchanged(vault: Vault) -> None:
    wrapped = vault.new_org_key("org_a")
    data_key = vault.new_data_key("org_a", wrapped, "imp_1")
    config = vault.seal_config("org_a", wrapped, "dst_1", {"secret": "s3cret"})
    new_master = bytes(range(1, 33))
    rewrapped = vault.rewrap_org_key("org_a", wrapped, new_master)
    moved = Vault(new_master)
    assert moved.opens("org_a", rewrapped)
    assert not vault.opens("org_a", rewrapped)
    assert not moved.opens("org_a", wrapped)
    assert not moved.opens("org_b", rewrapped)  # still bound to its organisation
    # What the organisation key wrapped opens as before: the key itself did not change.
    assert moved.data_key("org_a", rewrapped, "imp_1", data_key) == vault.data_key(
        "org_a", wrapped, "imp_1", data_key
    )
    assert moved.open_config("org_a", rewrapped, "dst_1", config) == {"secret": "s3cret"}
    assert moved.has_master(new_master) and not moved.has_master(MASTER)
