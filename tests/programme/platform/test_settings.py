"""Keys: each required with a real server, generated once otherwise, one per purpose."""

from __future__ import annotations

import stat
from dataclasses import replace

import pytest

from programme.app import create_app
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.settings import ConfigurationError, Settings

REAL_SERVER = "postgresql://nobody@127.0.0.1:1/none"
A_KEY = "a key long enough for testing only"


def test_an_app_for_a_real_server_refuses_to_be_built_naming_every_missing_key(tmp_path):
    settings = Settings(database_url=REAL_SERVER, data_dir=tmp_path, secret_key=A_KEY)
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings)
    assert str(refused.value) == (
        "INSPIRE_ENCRYPTION_KEY and INSPIRE_PSEUDONYM_KEY must be set"
        " when DATABASE_URL points at a real server"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_embedded_setup_generates_each_key_once_for_its_owner_only(tmp_path):
    Settings(database_url=None, data_dir=tmp_path, secret_key=None).require_keys()
    kept = {path.name: path for path in tmp_path.iterdir()}
    assert set(kept) == {"secret_key", "encryption_key", "pseudonym_key"}
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in kept.values())
    assert len({path.read_text() for path in kept.values()}) == 3
    again = Settings(database_url=None, data_dir=tmp_path, secret_key=None)
    assert again.pseudonym_key() == kept["pseudonym_key"].read_text()


def test_each_purpose_has_its_own_key_and_none_follows_the_signing_key(tmp_path):
    settings = Settings(
        database_url=REAL_SERVER,
        data_dir=tmp_path,
        secret_key=A_KEY,
        encryption_secret=A_KEY,
        pseudonym_secret="the pseudonym key, long enough",
    )
    keys = {purpose: purpose_key(settings, purpose) for purpose in KeyPurpose}
    assert len(set(keys.values())) == len(KeyPurpose)
    assert A_KEY not in keys.values() and settings.pseudonym_key() not in keys.values()
    new_signing_key = replace(settings, secret_key="a new signing key after a leak")
    assert {p: purpose_key(new_signing_key, p) for p in KeyPurpose} == keys
    new_pseudonym_key = replace(settings, pseudonym_secret="another pseudonym key, long")
    assert all(purpose_key(new_pseudonym_key, p) != keys[p] for p in KeyPurpose)
