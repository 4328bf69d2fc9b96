"""Every response carries an X-Request-Id, the client's own when it sent a sane one."""

from __future__ import annotations

import logging


def test_a_request_id_is_returned_and_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="service.api.requests"):
        generated = client.get("/healthz")
        echoed = client.get("/healthz", headers={"X-Request-Id": "trace-42.a:b"})
        refused = client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
        missing = client.get("/v1/jobs")  # a problem response (401) carries one too
    assert len(generated.headers["x-request-id"]) == 32
    assert echoed.headers["x-request-id"] == "trace-42.a:b"
    assert refused.headers["x-request-id"] != "bad id\twith spaces"
    assert missing.status_code == 401 and len(missing.headers["x-request-id"]) == 32
    lines = [r.getMessage() for r in caplog.records if r.name == "service.api.requests"]
    assert "GET /healthz 200" in lines[1] and lines[1].endswith("request_id=trace-42.a:b")
    assert any("GET /v1/jobs 401" in line for line in lines)


def test_a_body_over_the_limit_gets_an_id_too(client):
    response = client.post(
        "/v1/jobs", content=b"x" * 10, headers={"Content-Length": str(50 * 2**20)}
    )
    assert response.status_code == 413 and response.headers["x-request-id"]
