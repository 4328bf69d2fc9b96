"""Webhooks on job end: set per tenant over the API; ended jobs are POSTed to a real local HTTP
receiver once, HMAC-signed, retried with back-off, and every delivery is listed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.database import Database, commit
from service.events.webhooks import WebhookDispatcher, backoff
from service.models import Webhook, WebhookDelivery
from tests.api.helpers import assert_problem
from tests.api.ledger_seed import seed_job
from tests.conftest import make_tenant, truncate_all

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


class Receiver:
    """A local HTTP endpoint that records what it gets and answers the statuses it is given."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"nope")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cescale"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_webhook_is_set_read_and_removed_per_tenant(client, alice, bob):
    assert_problem(client.get("/v1/webhook", headers=alice.headers), 404)
    created = client.put(
        "/v1/webhook", json={"url": "https://example.com/hook"}, headers=alice.headers
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    read = client.get("/v1/webhook", headers=alice.headers).json()
    assert read["url"] == "https://example.com/hook" and read["secret"] is None
    changed = client.put(
        "/v1/webhook", json={"url": "https://example.com/v2"}, headers=alice.headers
    )
    assert changed.status_code == 200 and changed.json()["secret"] is None
    rotated = client.put(
        "/v1/webhook",
        json={"url": "https://example.com/v2", "rotate_secret": True},
        headers=alice.headers,
    ).json()
    assert rotated["secret"] not in (None, secret)
    assert_problem(client.get("/v1/webhook", headers=bob.headers), 404)
    assert client.get("/v1/webhook/deliveries", headers=bob.headers).json()["items"] == []
    for bad in (
        {"url": "ftp://example.com"},
        {"url": "not a url"},
        {},
        {"url": "https://x.io", "x": 1},
    ):
        assert_problem(client.put("/v1/webhook", json=bad, headers=alice.headers), 422)
    assert client.delete("/v1/webhook", headers=alice.headers).status_code == 204
    assert_problem(client.delete("/v1/webhook", headers=alice.headers), 404)
    assert_problem(client.put("/v1/webhook", json={"url": "https://x.io"}), 401)


def test_ended_jobs_are_posted_signed_retried_and_recorded(pg_engine, settings, receiver):
    database = Database(settings, engine=pg_engine)
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    try:
        tenant = make_tenant(database, f"hooks-{uuid.uuid4().hex[:6]}")
        other = make_tenant(database, f"other-{uuid.uuid4().hex[:6]}")
        with database.session() as session:
            before = seed_job(session, tenant.tenant_id, T0 - timedelta(days=1), [(512, [100])])
            commit(session)
        with TestClient(create_app(settings, database)) as client:
            secret = client.put(
                "/v1/webhook", json={"url": receiver.url}, headers=tenant.headers
            ).json()["secret"]
            with database.session() as session:
                # set after `before` ended: only jobs ending from now on are sent
                session.get(Webhook, session.query(Webhook.id).scalar()).created_at = T0
                ended = seed_job(
                    session, tenant.tenant_id, T0, [(512, [1000, 1000]), (1024, [800])]
                )
                running = seed_job(session, tenant.tenant_id, T0, [(512, [100])], status="running")
                seed_job(session, other.tenant_id, T0, [(512, [100])])  # no webhook
                commit(session)

            dispatcher = WebhookDispatcher(database, backoff_s=10, max_attempts=3)
            receiver.statuses = [500]  # the first attempt fails
            now = T0 + timedelta(minutes=10)
            first = dispatcher.run_once(now)
            assert (first.enqueued, first.delivered, first.retried) == (1, 0, 1)
            assert dispatcher.run_once(now + timedelta(seconds=5)).delivered == 0  # backing off
            second = dispatcher.run_once(now + timedelta(seconds=10))
            assert (second.enqueued, second.delivered) == (0, 1)
            assert dispatcher.run_once(now + timedelta(hours=1)).delivered == 0  # once only
            dispatcher.close()

            assert len(receiver.requests) == 2
            request = receiver.requests[-1]
            body = json.loads(request["body"])
            assert body["event"] == "job.finished"
            assert body["job"]["id"] == str(ended.job_id) and body["job"]["status"] == "succeeded"
            assert body["cost"]["invocations"] == 3
            assert body["cost"]["total_usd"] == pytest.approx(float(ended.total))
            headers = {k.lower(): v for k, v in request["headers"].items()}
            expected = hmac.new(
                secret.encode(),
                f"{headers['x-cescale-timestamp']}.".encode() + request["body"],
                hashlib.sha256,
            ).hexdigest()
            assert headers["x-cescale-signature"] == f"sha256={expected}"
            assert headers["x-cescale-delivery"] == body["delivery_id"]
            assert receiver.requests[0]["body"] == request["body"]  # same delivery, same body

            listed = client.get("/v1/webhook/deliveries", headers=tenant.headers).json()
            (delivery,) = listed["items"]
            assert delivery["job_id"] == str(ended.job_id) and delivery["state"] == "delivered"
            assert delivery["attempts"] == 2 and delivery["last_status"] == 200
            assert delivery["last_error"] is None and delivery["delivered_at"]
            assert str(running.job_id) not in json.dumps(listed)
            assert str(before.job_id) not in json.dumps(listed)
            assert client.get("/v1/webhook/deliveries", headers=other.headers).json()["items"] == []
    finally:
        truncate_all(pg_engine)


def test_a_receiver_that_keeps_failing_ends_failed_after_the_attempts(
    pg_engine, settings, receiver
):
    database = Database(settings, engine=pg_engine)
    try:
        tenant = make_tenant(database, f"fail-{uuid.uuid4().hex[:6]}")
        with database.session() as session:
            session.add(
                Webhook(tenant_id=tenant.tenant_id, url=receiver.url, secret="s", created_at=T0)
            )
            seed_job(session, tenant.tenant_id, T0, [(512, [100])])
            commit(session)
        receiver.statuses = [503] * 10
        dispatcher = WebhookDispatcher(database, backoff_s=10, max_attempts=3)
        now = T0 + timedelta(minutes=5)
        waits = []
        for _ in range(3):
            dispatcher.run_once(now)
            with database.session() as session:
                delivery = session.query(WebhookDelivery).one()
                waits.append((delivery.next_attempt_at - now).total_seconds())
                now = delivery.next_attempt_at
        dispatcher.close()
        with database.session() as session:
            delivery = session.query(WebhookDelivery).one()
            assert delivery.state == "failed" and delivery.attempts == 3
            assert delivery.last_status == 503 and "HTTP 503" in delivery.last_error
        assert waits[:2] == [backoff(1, 10), backoff(2, 10)] == [10, 20]
        assert len(receiver.requests) == 3

        # an unreachable receiver is an error too, recorded, not a crash
        with database.session() as session:
            session.query(Webhook).one().url = "http://127.0.0.1:9/unreachable"
            seed_job(session, tenant.tenant_id, T0 + timedelta(minutes=1), [(512, [100])])
            commit(session)
        report = WebhookDispatcher(database, timeout_s=2).run_once(now)
        assert report.retried == 1
        with database.session() as session:
            pending = session.query(WebhookDelivery).filter_by(state="pending").one()
            assert pending.last_status is None and "ConnectError" in pending.last_error
    finally:
        truncate_all(pg_engine)


def test_the_dispatcher_works_on_sqlite(tmp_path, receiver):
    from service.migrate import upgrade
    from service.models import Tenant
    from service.settings import Settings

    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    upgrade(url)
    database = Database(Settings(database_url=url, state_dir=tmp_path, controller_enabled=False))
    try:
        with database.session() as session:
            tenant = Tenant(name="lite")
            session.add(tenant)
            session.flush()
            session.add(Webhook(tenant_id=tenant.id, url=receiver.url, secret="k", created_at=T0))
            ended = seed_job(session, tenant.id, T0, [(512, [100, 200])])
            commit(session)
        dispatcher = WebhookDispatcher(database)
        report = dispatcher.run_once(T0 + timedelta(minutes=5))
        again = dispatcher.run_once(T0 + timedelta(minutes=6))
        dispatcher.close()
        assert (report.enqueued, report.delivered, again.enqueued, again.delivered) == (1, 1, 0, 0)
        (request,) = receiver.requests
        assert json.loads(request["body"])["job"]["id"] == str(ended.job_id)
    finally:
        database.dispose()
