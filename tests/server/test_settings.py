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
