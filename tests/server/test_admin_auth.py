"""Admin is refused without a configured token: the real router and dependency, no engine
(authentication is decided before any handler runs)."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api.errors import install_error_handlers
from server.api.routes import admin
from server.settings import Settings


def test_admin_is_refused_when_no_token_is_configured():
    app = FastAPI()
    app.state.settings = Settings(admin_token=None)
    install_error_handlers(app)
    app.include_router(admin.router)
    client = TestClient(app)
    for response in (
        client.get("/admin/mixture", headers={"Authorization": "Bearer anything-at-all"}),
        client.put("/admin/weights", json={"weights": {"a": 1}}),
    ):
        assert response.status_code == 401
        assert "MPO_ADMIN_TOKEN" in response.json()["error"]["message"]
