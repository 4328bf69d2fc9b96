"""The web dashboard in a real headless Chromium against a live `cescale serve`: sign in, open a
finished job, and find its figures in the charts and its memory changes in the timeline; the
usage page and a saved dashboard render; /docs renders with no request leaving the machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.database import Database, commit
from service.migrate import upgrade
from service.prediction.forecaster import ROUND_DURATIONS, ForecasterBank
from service.prediction.loss_curve import LossCurve
from service.prediction.memory_curve import MemoryCurve
from service.settings import Settings
from service.tenants.service import TenantService
from tests import browser
from tests.api.ledger_seed import add_state, seed_job

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[dict]:
    """`cescale serve` on a seeded SQLite database: one finished training job that moved
    from 512 to 1024 MB, with its learned curves, and a saved dashboard."""
    state = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{state / 'cescale.db'}"
    upgrade(url)
    database = Database(Settings(database_url=url, state_dir=state, controller_enabled=False))
    with database.session() as session:
        issued = TenantService(session).create("web")
        session.flush()
        seeded = seed_job(
            session,
            issued.tenant.id,
            T0,
            [(512, [2000, 2100]), (1024, [1100, 1000]), (1024, [900, 950]), (1024, [850, 870])],
            losses=[0.9, 0.6, 0.45, 0.4],
        )
        curve = MemoryCurve.fit([512, 512, 1024, 1024], [2000, 2100, 1100, 1000])
        add_state(session, seeded.job_id, "memory-curve:default", "memory-curve", curve.to_state())
        bank = ForecasterBank(1, ROUND_DURATIONS)
        for ratio in (1.0, 0.95, 0.97):
            bank.update(np.array([0]), np.array([ratio]))
        add_state(session, seeded.job_id, "duration:default", "forecaster", bank.series_state(0))
        loss = LossCurve.fit([1, 2, 3, 4], [0.905, 0.605, 0.455, 0.405])
        add_state(session, seeded.job_id, "loss-curve", "loss-curve", loss.to_state())
        commit(session)
        key = issued.api_key
        tenant_id = issued.tenant.id
    database.dispose()

    port = free_port()
    env = {
        **os.environ,
        "CESCALE_DATABASE_URL": url,
        "CESCALE_CONTROLLER_ENABLED": "false",
        "CESCALE_STATE_DIR": str(state),
    }
    cescale = Path(sys.executable).with_name("cescale")
    server = subprocess.Popen(
        [
            str(cescale),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # wait on the server answering, not on a fixed delay
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("cescale serve did not start")
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        dashboard = httpx.post(
            f"{base}/v1/dashboards",
            headers=headers,
            json={
                "name": "Team spend",
                "panels": [
                    {
                        "title": "Cost per day",
                        "chart": "bar",
                        "query": {
                            "kind": "usage",
                            "from": "2026-11-29T00:00:00Z",
                            "to": "2026-12-02T00:00:00Z",
                            "step": "1d",
                            "group_by": "policy",
                        },
                    },
                    {
                        "title": "Cumulative cost",
                        "chart": "line",
                        "query": {"kind": "series", "job_id": str(seeded.job_id)},
                    },
                    {
                        "title": "Spent",
                        "chart": "stat",
                        "query": {"kind": "series", "job_id": str(seeded.job_id)},
                    },
                ],
            },
        ).json()
        yield {
            "base": base,
            "url": url,
            "tenant_id": tenant_id,
            "key": key,
            "headers": headers,
            "job_id": str(seeded.job_id),
            "dashboard_id": dashboard["id"],
            "state": state,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    problem = browser.ensure_chromium()
    if problem:
        pytest.fail(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=browser.CHROMIUM, headless=True, args=browser.ARGS
        )
        yield instance
        instance.close()


def offline_page(chromium, base: str):
    """A page whose requests may only go to the live server: anything else is recorded and
    aborted, so a CDN reference fails the test."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1700})
    page = context.new_page()
    leaked: list[str] = []

    def only_local(route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            leaked.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, leaked, errors


def chart_data(page, canvas_id: str) -> list[list]:
    return page.evaluate(
        "id => Chart.getChart(document.getElementById(id)).data.datasets.map(d => d.data)",
        canvas_id,
    )


def test_sign_in_and_a_finished_jobs_page_renders_its_figures(chromium, live):
    context, page, leaked, errors = offline_page(chromium, live["base"])
    api = {"headers": live["headers"], "timeout": 10}
    job_id = live["job_id"]
    cost = httpx.get(f"{live['base']}/v1/jobs/{job_id}/cost", **api).json()
    series = httpx.get(f"{live['base']}/v1/jobs/{job_id}/series", **api).json()

    page.goto(f"{live['base']}/ui/")
    page.fill("#api-key", live["key"])
    page.click("#sign-in-form button")
    page.click(f"a[href='#/jobs/{job_id}']", timeout=20_000)
    page.wait_for_selector("#chart-loss[data-rendered='true']", timeout=20_000)

    assert page.inner_text("#view h1").startswith("ce-scaling-training")
    assert "succeeded" in page.inner_text("#view h1")
    assert page.inner_text("#stat-invocations") == "8"
    compute, requests = chart_data(page, "chart-cost")
    assert compute == pytest.approx([s["compute_usd"] for s in cost["stages"]])
    assert requests == pytest.approx([s["requests_usd"] for s in cost["stages"]])
    assert chart_data(page, "chart-memory") == [[512, 1024, 1024, 1024]]
    actual, predicted, upper, lower = chart_data(page, "chart-duration")
    assert actual[:4] == [r["slowest_invocation_ms"] for r in series["rounds"]]
    assert predicted[:4] == pytest.approx([r["predicted_ms"] for r in series["rounds"]])
    forecast = series["forecasts"][0]
    assert upper[-1] == pytest.approx(forecast["upper_ms"])
    assert lower[-1] == pytest.approx(forecast["lower_ms"])
    (cumulative,) = chart_data(page, "chart-cumulative")
    assert cumulative[-1] == pytest.approx(cost["total_usd"])
    loss, fitted = chart_data(page, "chart-loss")
    assert loss == pytest.approx([0.905, 0.605, 0.455, 0.405])
    assert all(value is not None for value in fitted)
    change = page.inner_text("#timeline tr.allocation-changed")
    assert "512 → 1024 MB" in change and "needs 1024 MB to meet its deadline share" in change
    assert "deadline-split" in change
    # a screenshot to look at (docs/ui-job.png is one, committed); a test never writes the tree
    screenshot = page.screenshot(path=str(live["state"] / "ui-job.png"), full_page=True)
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n"

    # the key is in this tab's session storage only
    assert page.evaluate("sessionStorage.getItem('cescale.apiKey')") == live["key"]
    assert page.evaluate("localStorage.length") == 0
    assert leaked == [] and errors == []
    context.close()


def test_usage_page_and_a_saved_dashboard_render(chromium, live):
    context, page, leaked, errors = offline_page(chromium, live["base"])
    page.goto(f"{live['base']}/ui/")
    page.evaluate("key => sessionStorage.setItem('cescale.apiKey', key)", live["key"])
    page.goto(
        f"{live['base']}/ui/#/usage?from=2026-11-29T00:00:00Z&to=2026-12-02T00:00:00Z"
        "&step=1d&group_by=policy&metric=invocations"
    )
    page.wait_for_selector("#chart-usage[data-rendered='true']", timeout=20_000)
    assert chart_data(page, "chart-usage") == [[8]]  # one day, one policy, 8 invocations
    assert "ce-scaling" in page.inner_text("#usage-totals")

    page.goto(f"{live['base']}/ui/#/dashboards")
    page.click(f"a[href='#/dashboards/{live['dashboard_id']}']", timeout=20_000)
    page.wait_for_selector("#panel-1[data-rendered='true']", timeout=20_000)
    assert page.inner_text("#view h1") == "Team spend"
    titles = page.locator(".panel h2").all_inner_texts()
    assert titles == ["Cost per day", "Cumulative cost", "Spent"]
    total = httpx.get(
        f"{live['base']}/v1/jobs/{live['job_id']}/cost", headers=live["headers"], timeout=10
    ).json()["total_usd"]
    (cumulative,) = chart_data(page, "panel-1")
    assert cumulative[-1] == pytest.approx(total)
    assert float(page.inner_text(".panel .stat-value")) == pytest.approx(total, rel=1e-3)
    assert leaked == [] and errors == []

    page.click("#sign-out")
    assert page.evaluate("sessionStorage.getItem('cescale.apiKey')") is None
    assert page.is_visible("#sign-in")
    context.close()


def test_docs_render_offline_in_the_browser(chromium, live):
    context, page, leaked, _ = offline_page(chromium, live["base"])
    page.goto(f"{live['base']}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "cescale" in page.inner_text(".swagger-ui .info .title")
    assert leaked == []  # Swagger UI: nothing but the service itself
    page.goto(f"{live['base']}/redoc")
    page.wait_for_selector("h1", timeout=30_000)
    assert "cescale" in page.inner_text("h1")
    # ReDoc renders everything from /ui/vendor; only its "API docs by Redocly" badge image
    # points at Redocly's CDN (built into the bundle), and without it the page is whole
    assert set(leaked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    context.close()


def test_a_running_jobs_page_follows_its_events(chromium, live):
    """The page reads the job's event stream and redraws when the loop records something."""
    from datetime import timedelta

    from service.models import Job, Stage

    database = Database(Settings(database_url=live["url"], controller_enabled=False))
    try:
        with database.session() as session:
            running = seed_job(
                session, live["tenant_id"], T0, [(512, [700, 720])], status="running"
            )
            session.get(Job, running.job_id).name = "still-running"
            commit(session)
        context, page, leaked, errors = offline_page(chromium, live["base"])
        page.goto(f"{live['base']}/ui/")
        page.evaluate("key => sessionStorage.setItem('cescale.apiKey', key)", live["key"])
        page.goto(f"{live['base']}/ui/#/jobs/{running.job_id}")
        page.wait_for_selector("#live", timeout=20_000)
        assert "running" in page.inner_text("#view h1")
        assert page.locator("#timeline tr.stage-started").count() == 1

        with database.session() as session:  # what the loop would write: a round, the end
            job = session.get(Job, running.job_id)
            session.add(
                Stage(
                    job_id=job.id,
                    position=1,
                    name="round-1",
                    kind="round",
                    status="succeeded",
                    started_at=T0 + timedelta(seconds=61),
                    finished_at=T0 + timedelta(seconds=62),
                )
            )
            job.status = "succeeded"
            job.finished_at = T0 + timedelta(seconds=63)
            commit(session)

        page.wait_for_selector("#view h1 .status.succeeded", timeout=30_000)
        assert page.locator("#live").count() == 0  # an ended job is not followed
        assert page.locator("#timeline tr.stage-started").count() == 2
        assert page.locator("#timeline tr.job-succeeded").count() == 1
        assert leaked == [] and errors == []
        context.close()
    finally:
        database.dispose()
