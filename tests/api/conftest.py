from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def dispatch_pass(settings) -> list[int]:  # noqa: ANN001
    """One dispatch pass, as a worker's dispatcher loop runs it (the API only asks for passes)."""
    from shared.db import session_scope
    from shared.dispatch import run_pass

    with session_scope(settings.database_url) as s:
        return run_pass(session=s, settings=settings)


@pytest.fixture
def api(embedded_settings):  # noqa: ANN001, ANN201
    """The app on the embedded default, with an admin (alice) and a user (bob)."""
    from api.auth import create_user
    from api.main import create_app
    from shared.db import session_scope

    with session_scope(embedded_settings.database_url) as s:
        _, alice = create_user(session=s, name="alice", admin=True)
        _, bob = create_user(session=s, name="bob")
    client = TestClient(create_app(embedded_settings), raise_server_exceptions=False)
    client.tokens = {"alice": alice, "bob": bob}
    client.as_ = lambda who: {"Authorization": f"Bearer {client.tokens[who]}"}
    client.dispatch = lambda: dispatch_pass(embedded_settings)
    return client


EVALUATE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32}}
