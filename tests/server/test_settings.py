import pytest
from pydantic import ValidationError

from server.settings import Settings


def test_placeholder_admin_tokens_are_refused():
    for token in ("changeme", "admin", "short"):
        with pytest.raises(ValidationError, match="MPO_ADMIN_TOKEN"):
            Settings(admin_token=token)


def test_empty_values_mean_unset(monkeypatch):
    monkeypatch.setenv("MPO_ADMIN_TOKEN", "")
    monkeypatch.setenv("MPO_MANIFEST", "")
    settings = Settings()
    assert settings.admin_token is None and settings.manifest is None


def test_api_keys_are_a_comma_separated_list_without_empty_keys():
    assert Settings(api_keys=None).api_key_list == []
    assert Settings(api_keys="  ").api_key_list == []
    assert Settings(api_keys="key-a, key-b").api_key_list == ["key-a", "key-b"]
    with pytest.raises(ValueError, match="MPO_API_KEYS"):
        Settings(api_keys="key-a,,key-b")
