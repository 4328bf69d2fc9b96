"""How long a tick of the live loop takes on the embedded default (SQLite file, the emulator on
the wall clock running the real handler code), with the two sample jobs running side by side:
the figure behind "no tick may block" (an audit once saw a 17.65 s tick there)."""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from service.control.loop import Controller
from service.database import Database, commit, make_engine
from service.jobs.service import JobService
from service.migrate import upgrade_engine
from service.models import Job, Tenant
from service.platform.factory import build_platform
from service.settings import Settings
from service.spec import JobSpec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SAMPLES = ("hpo-digits", "training-digits")
INTERVAL_S = 1.0  # the service's default tick interval


def measure(limit_s: float = 600.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cescale-ticks-") as directory:
        state = Path(directory)
        settings = Settings(
            database_url=f"sqlite:///{state / 'cescale.db'}",
            controller_enabled=False,
            store_url=(state / "store").as_uri(),
            state_dir=state,
        )
        engine = make_engine(settings.database_url)
        upgrade_engine(engine)
        database = Database(settings, engine=engine)
        platform = build_platform(settings)
        try:
            with database.session() as session:
                tenant = Tenant(name="bench")
                session.add(tenant)
                session.flush()
                service = JobService(session)
                ids = [
                    service.submit(
                        tenant,
                        JobSpec.model_validate(json.loads((EXAMPLES / f"{name}.json").read_text())),
                        lambda job: {},
                    ).job_id
                    for name in SAMPLES
                ]
                commit(session)
            controller = Controller(database, platform, settings, owner="bench-ticks")
            ticks: list[float] = []
            slowest: tuple[float, dict[str, float]] = (0.0, {})
            started = time.monotonic()
            while time.monotonic() - started < limit_s:
                begun = time.monotonic()
                report = controller.run_once(datetime.now(UTC))
                took = time.monotonic() - begun
                ticks.append(took)
                if took > slowest[0]:
                    slowest = (took, dict(report.timings))
                with database.session() as session:
                    statuses = [session.get(Job, i) for i in ids]
                    if all(job.status in ("succeeded", "failed", "cancelled") for job in statuses):
                        jct = {
                            job.name: round((job.finished_at - job.started_at).total_seconds(), 1)
                            for job in statuses
                        }
                        break
                time.sleep(max(0.0, INTERVAL_S - took))
            else:
                jct = {}
        finally:
            platform.close()
            engine.dispose()
    ordered = sorted(ticks)
    return {
        "jobs": list(SAMPLES),
        "ticks": len(ticks),
        "interval_s": INTERVAL_S,
        "tick_s": {
            "median": round(median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
            "max": round(ordered[-1], 3),
        },
        "slowest_tick_steps_s": {k: round(v, 3) for k, v in slowest[1].items() if v >= 0.001},
        "jct_s": jct,
    }
