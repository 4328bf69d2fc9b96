"""`cescale serve` under slow and oversized requests: raw sockets against a real server process.

Each server runs on its own Postgres database with the control loop off. No assertion depends
on the machine's speed: waits are bounded by generous timeouts (10 s to answer while under
attack, 30 s for a deadline of 1 s to be enforced), never by a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.database import Database, commit
from service.migrate import upgrade
from service.settings import Settings
from service.tenants.service import TenantService
from tests import postgres
from tests.api.helpers import HPO_SPEC

ROOT = Path(__file__).resolve().parents[2]
SLOW_CONNECTIONS = 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, port: int, api_key: str, log: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.log = log

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)


@contextlib.contextmanager
def serve(tmp_path: Path, name: str, **settings: str) -> Iterator[Server]:
    database = f"cescale_live_{os.getpid()}_{name}"
    postgres.recreate_database(database)
    url = postgres.url(database)
    upgrade(url)
    db = Database(Settings(database_url=url))
    with db.session() as session:
        api_key = TenantService(session).create("acme").api_key
        commit(session)
    db.dispose()
    env = os.environ | {
        "CESCALE_DATABASE_URL": url,
        "CESCALE_STATE_DIR": str(tmp_path / name),
        "CESCALE_CONTROLLER_ENABLED": "false",
        **{f"CESCALE_{key.upper()}": value for key, value in settings.items()},
    }
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli.main", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(port, api_key, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)  # polling for readiness, not synchronising on time
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        postgres.drop_database(database)


@pytest.fixture(scope="module")
def room_for_sockets():
    """This process opens ~600 sockets: raise the soft open-file limit if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the open-file hard limit is {hard}; these tests need {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory, room_for_sockets) -> Iterator[Server]:
    """Slow requests are held (600 s timeout) so that they are all open during the checks."""
    tmp = tmp_path_factory.mktemp("patient")
    with serve(tmp, "patient", request_timeout_s="600", max_connections="700") as server:
        yield server


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory) -> Iterator[Server]:
    """A request must arrive within 1 s."""
    tmp = tmp_path_factory.mktemp("strict")
    with serve(tmp, "strict", request_timeout_s="1") as server:
        yield server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory) -> Iterator[Server]:
    """At most 20 connections, held patiently."""
    tmp = tmp_path_factory.mktemp("small")
    with serve(tmp, "small", request_timeout_s="600", max_connections="20") as server:
        yield server


def partial_head(server: Server) -> socket.socket:
    sock = server.connect()
    sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl")
    return sock


def partial_body(server: Server) -> socket.socket:
    sock = server.connect()
    sock.sendall(
        b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n123456789"
    )
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float = 30) -> bytes:
    """Everything the server sends until it closes the connection (fails after timeout_s)."""
    sock.settimeout(timeout_s)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def still_open(sock: socket.socket) -> bool:
    """Open and silent: nothing to read and no close from the server."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def problem_of(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, json.loads(body)


def test_500_slow_connections_do_not_stop_health_or_a_submission(patient_server):
    server = patient_server
    attackers = [(partial_head if i % 2 else partial_body)(server) for i in range(SLOW_CONNECTIONS)]
    try:
        health = httpx.get(f"{server.base}/healthz", timeout=10)
        assert health.status_code == 200
        created = httpx.post(
            f"{server.base}/v1/jobs", json=HPO_SPEC, headers=server.auth, timeout=10
        )
        assert created.status_code == 201, created.text
        fetched = httpx.get(
            f"{server.base}{created.headers['location']}", headers=server.auth, timeout=10
        )
        assert fetched.json()["id"] == created.json()["id"]
        # The server answered while holding every slow connection (it did not shed them).
        assert sum(still_open(sock) for sock in attackers) == SLOW_CONNECTIONS
    finally:
        for sock in attackers:
            sock.close()


def test_past_the_connection_cap_a_new_connection_is_503_and_closed(small_server):
    server = small_server
    held = [partial_head(server) for _ in range(20)]
    try:
        extra = server.connect()
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body = problem_of(read_until_closed(extra))
        assert status == 503 and body["status"] == 503
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        assert "retry later" in body["detail"]
    finally:
        for sock in held:
            sock.close()
    # Once the held connections are gone, the server serves again.
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.base}/healthz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the server did not recover from the cap"


def test_a_slow_body_gets_a_408_problem_and_is_closed(strict_server):
    raw = read_until_closed(partial_body(strict_server))
    status, headers, body = problem_of(raw)
    assert status == 408 and body["type"] == "urn:cescale:problem:request-timeout"
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert "1 s" in body["detail"] and "CESCALE_REQUEST_TIMEOUT_S" in body["detail"]


def test_a_partial_head_gets_a_408_and_is_closed(strict_server):
    status, headers, body = problem_of(read_until_closed(partial_head(strict_server)))
    assert status == 408 and headers["connection"] == "close"
    assert "request head" in body["detail"]


def test_a_head_sent_one_byte_at_a_time_is_cut_off_too(strict_server):
    """The deadline is for the whole head, not between bytes."""
    sock = strict_server.connect()
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"X-Drip: " + b"a" * 10_000
    deadline = time.monotonic() + 60
    for byte in request:
        if not still_open(sock):
            break
        assert time.monotonic() < deadline, "the server never cut the drip off"
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.05)  # the client's pace, the scenario itself
    else:
        pytest.fail("the whole drip was accepted")
    raw = read_until_closed(sock)
    assert raw == b"" or raw.startswith(b"HTTP/1.1 408")


def test_an_idle_connection_is_closed_silently_and_keep_alive_is_guarded_too(strict_server):
    assert read_until_closed(strict_server.connect()) == b""
    sock = strict_server.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    first = b""
    while b'{"status":"ok"}' not in first:
        chunk = sock.recv(65536)
        assert chunk, "closed before answering"
        first += chunk
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: loc")  # the next request stalls
    assert read_until_closed(sock).startswith(b"HTTP/1.1 408")


def test_a_declared_huge_body_is_413_without_sending_it(strict_server):
    sock = strict_server.connect()
    sock.sendall(
        b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 52428800\r\n\r\n"
    )
    status, headers, body = problem_of(read_until_closed(sock))
    assert status == 413 and headers["connection"] == "close"
    assert body["type"] == "urn:cescale:problem:body-too-large"
    assert "1048576 bytes" in body["detail"]


def test_a_chunked_body_is_stopped_soon_after_the_limit(strict_server):
    """No Content-Length: the server counts, answers 413 and stops reading long before 50 MB."""
    sock = strict_server.connect()
    sock.sendall(
        b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent = 0
    answer = b""
    sock.settimeout(30)
    while sent < 50 * 1024 * 1024:
        readable, writable, _ = select.select([sock], [sock], [], 30)
        if readable:
            with contextlib.suppress(OSError):
                answer = read_until_closed(sock)
            break
        assert writable, "the server neither read nor answered for 30 s"
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 65536
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes of a 1 MiB-limited body"
    if answer:  # the answer can be lost to a reset when the server closes on unread data
        status, headers, _ = problem_of(answer)
        assert status == 413 and headers["connection"] == "close"
