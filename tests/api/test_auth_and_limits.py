"""401 versus 403, and the request body limits, through the app on the real Postgres."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.api.app import create_app
from service.api.limits import RequestLimits
from service.database import commit
from service.models import Job
from service.tenants.service import TenantService
from tests.api.helpers import HPO_SPEC, assert_problem

ROUTES = [
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000"),
    ("POST", "/v1/jobs/00000000-0000-0000-0000-000000000000/cancel"),
    ("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000/cost"),
    ("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000/timeline"),
]


def job_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Job))


def set_tenant(database, name: str, *, disabled: bool | None = None, revoke: bool = False):
    with database.session() as session:
        tenants = TenantService(session)
        if disabled is not None:
            tenants.set_disabled(name, disabled)
        if revoke:
            tenants.revoke_keys(name)
        commit(session)


def test_a_valid_key_of_a_disabled_tenant_is_403_on_every_route_even_with_bad_input(
    client, alice, database, session
):
    set_tenant(database, "alice", disabled=True)
    for method, path in ROUTES:
        response = client.request(method, path, json=HPO_SPEC, headers=alice.headers)
        body = assert_problem(response, 403)
        assert "disabled" in body["detail"]
        assert "www-authenticate" not in response.headers
    bad = client.post(
        "/v1/jobs",
        content=b'{"kind": ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert_problem(bad, 403)  # who you are is settled before what you sent
    assert job_count(session) == 0
    set_tenant(database, "alice", disabled=False)
    assert client.post("/v1/jobs", json=HPO_SPEC, headers=alice.headers).status_code == 201


def test_a_revoked_key_is_401_like_an_unknown_one_even_for_a_disabled_tenant(
    client, alice, database
):
    set_tenant(database, "alice", disabled=True, revoke=True)
    for method, path in ROUTES:
        response = client.request(method, path, headers=alice.headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


def test_openapi_documents_401_and_403_on_every_job_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for method, path in ROUTES:
        template = path.replace("00000000-0000-0000-0000-000000000000", "{job_id}")
        responses = paths[template][method.lower()]["responses"]
        assert {"401", "403", "422"} <= set(responses), (method, template)
        assert "disabled tenant" in responses["403"]["description"]
        assert "unknown or revoked" in responses["401"]["description"]
    submit = paths["/v1/jobs"]["post"]["responses"]
    assert {"408", "413"} <= set(submit)


@pytest.fixture
def small_client(database, settings):
    """The app with a 4 KiB body limit."""
    app = create_app(settings.model_copy(update={"max_body_bytes": 4096}), database)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_declared_body_over_the_limit_is_413_before_anything_else(small_client, alice, session):
    document = {**HPO_SPEC, "name": "x" * 5000}
    for headers in (alice.headers, {}):  # not even the key is looked up
        response = small_client.post("/v1/jobs", json=document, headers=headers)
        body = assert_problem(response, 413)
        assert body["type"] == "urn:cescale:problem:body-too-large"
        assert "4096 bytes" in body["detail"] and "CESCALE_MAX_BODY_BYTES" in body["detail"]
        assert response.headers["connection"] == "close"
    assert job_count(session) == 0
    fits = small_client.post("/v1/jobs", json=HPO_SPEC, headers=alice.headers)
    assert fits.status_code == 201, fits.text


def test_a_chunked_body_is_counted_as_it_streams_and_stopped_past_the_limit(
    small_client, alice, session
):
    def chunks():  # no Content-Length: only counting can tell (the live server test shows
        for _ in range(1000):  # that the server stops reading, tests/api/test_live_server.py)
            yield b" " * 1024

    response = small_client.post(
        "/v1/jobs", content=chunks(), headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert_problem(response, 413)
    assert response.headers["connection"] == "close"
    assert job_count(session) == 0
    small = json.dumps(HPO_SPEC).encode()
    streamed = small_client.post(
        "/v1/jobs",
        content=iter([small[:100], small[100:]]),
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 201, streamed.text


def test_a_body_that_does_not_arrive_in_time_is_408_and_closes():
    """The middleware alone: the client sends 9 bytes of a declared megabyte, then nothing."""
    sent: list[dict] = []
    reached_app = asyncio.Event()

    async def app(scope, receive, send):
        reached_app.set()
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("the body never completes")

    async def scenario():
        first = {"type": "http.request", "body": b"123456789", "more_body": True}
        queue = [first]

        async def receive():
            if queue:
                return queue.pop()
            await asyncio.Event().wait()  # the client stalls

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/jobs",
            "headers": [(b"content-length", b"1000000")],
        }
        await RequestLimits(app, max_body_bytes=1 << 20, timeout_s=0.2)(scope, receive, send)

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert reached_app.is_set()
    start, body = sent
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert (b"content-type", b"application/problem+json") in start["headers"]
    problem = json.loads(body["body"])
    assert problem["status"] == 408 and "CESCALE_REQUEST_TIMEOUT_S" in problem["detail"]


def test_a_response_sent_before_the_body_is_read_closes_the_connection(client):
    """/healthz never reads a body: the server must not drain one it was sent."""
    response = client.request("GET", "/healthz", content=b"x" * 1000)
    assert response.status_code == 200
    assert response.headers["connection"] == "close"
    assert "connection" not in client.get("/healthz").headers
