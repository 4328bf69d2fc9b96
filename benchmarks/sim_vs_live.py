"""The simulator against the live product, side by side, on the sample jobs.

For each example spec this runs

- **sim**: ``cescale simulate`` (``service.simulation.run.simulate``) at seeds 0..N-1: the
  control loop on the emulator with the analytic workload model and a virtual clock;
- **live**: the embedded default as ``make run`` starts it: ``cescale db upgrade``,
  ``bootstrap`` and ``serve`` (API + in-process controller, SQLite in a temporary state
  directory) on a fresh port, the spec POSTed to /v1/jobs and followed until it ends; the real
  handlers train in the emulator's worker processes, on the wall clock. A fresh service per
  run, so that no run starts with the previous one's warm environments.

and prints, per example: cost, JCT and invocations (and cold starts) of each side (medians over
the runs) and the live/sim ratio. The analytic model's CPU constants come from a quiet
reference machine; a busy or slower host spends more CPU on the same work, which the live side
bills. So the script also measures this host's CPU factor on the sample's own work (a cold
and nine warm digits trials in a fresh process, BLAS on one thread, as the emulator's workers
run them, against the model) before and after the live runs, and simulates a second time with
the model's CPU scaled by it ("sim@host"). The live controller ticks every ``--interval``
seconds, the simulated one every 0.1 s. Live, the real code runs on this machine, at most one
invocation per CPU at a time, and every cold start starts a process: the live JCT includes that
work, so compare JCT on a quiet machine with cores to spare.

    python benchmarks/sim_vs_live.py [--runs 2] [--seeds 3] [--interval 0.1] [EXAMPLE ...]

Not a test: its figures depend on this machine (real training runs in the live path).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "service.cli.main"]
EXAMPLES = ("examples/hpo-digits.json", "examples/training-digits.json")
JOB_TIMEOUT_S = 600.0


CALIBRATION = "builtin:digits"
# In a fresh process, as the emulator runs a cold start: import the handler (init, not counted),
# then one first invocation (its lazy imports and the dataset load) and warm trials.
_PROBE = """
import json, sys, tempfile, time
from service.workloads.contract import CONTRACT
from service.workloads.handlers import mlp_trial
def event(hidden, epochs, n):
    root = "file://" + tempfile.mkdtemp()
    return {"contract": CONTRACT, "job_id": "probe", "task_id": f"t{n}", "attempt": 1,
            "kind": "hpo", "params": {"hidden": hidden}, "epoch_from": 0, "epoch_to": epochs,
            "checkpoint_in": None, "checkpoint_out": root + "/c", "dataset": sys.argv[1],
            "store": root}
runs = []
calls = [(64, 1)] + [(h, e) for h in (32, 64, 256) for e in (1, 3, 9)]
for n, (hidden, epochs) in enumerate(calls):
    started = time.process_time()
    mlp_trial(event(hidden, epochs, n), None)
    runs.append([hidden, epochs, n == 0, (time.process_time() - started) * 1000.0])
print(json.dumps(runs))
"""


def host_cpu_factor() -> float:
    """CPU this host spends on the sample's own work over what the model says: a cold first
    trial and warm trials on digits (hidden 32/64/256, 1/3/9 epochs), BLAS on one thread as in
    the emulator's workers."""
    from service.platform.emulator.runner import SINGLE_THREAD_ENV
    from service.simulation.workload_model import invocation_cost

    done = subprocess.run(
        [sys.executable, "-c", _PROBE, CALIBRATION],
        env=os.environ | SINGLE_THREAD_ENV,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    measured = modelled = 0.0
    for hidden, epochs, first, cpu_ms in json.loads(done.stdout.strip().splitlines()[-1]):
        cost = invocation_cost("builtin:mlp", CALIBRATION, {"hidden": hidden}, epochs)
        measured += cpu_ms
        modelled += cost.cpu_ms + (cost.cold_cpu_ms if first else 0.0)
    return measured / modelled


def simulated(spec_path: Path, seeds: int, cpu_scale: float = 1.0) -> list[dict[str, Any]]:
    from service.simulation.run import simulate
    from service.simulation.work import AnalyticWorkload
    from service.spec import JobSpec

    spec = JobSpec.model_validate_json(spec_path.read_text())
    runs = []
    for seed in range(seeds):
        result = simulate(spec, seed=seed, workload=AnalyticWorkload(cpu_scale=cpu_scale))
        runs.append(
            {
                "status": result["status"],
                "cost_usd": result["cost_usd"],
                "jct_s": result["jct_s"],
                "invocations": result["invocations"],
                "cold_starts": result["cold_starts"],
            }
        )
    return runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live(spec_path: Path, interval_s: float) -> dict[str, Any]:
    """One run of the spec on a fresh embedded default."""
    with tempfile.TemporaryDirectory(prefix="cescale-live-") as directory:
        state = Path(directory)
        database = state / "cescale.db"
        env = os.environ | {
            "CESCALE_DATABASE_URL": f"sqlite:///{database}",
            "CESCALE_STATE_DIR": str(state / ".cescale"),
            "CESCALE_CONTROLLER_INTERVAL_S": str(interval_s),
        }
        port = _free_port()

        def cli(*args: str) -> None:
            subprocess.run(
                [*CLI, *args], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120
            )

        cli("db", "upgrade")
        cli("bootstrap", "--port", str(port))
        server = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, server)
            key = (state / ".cescale" / "api-key").read_text().strip()
            auth = {"Authorization": f"Bearer {key}"}
            created = httpx.post(
                f"{base}/v1/jobs", json=json.loads(spec_path.read_text()), headers=auth
            )
            created.raise_for_status()
            location = created.headers["location"]
            job = _wait_finished(base, location, auth)
            cost = httpx.get(f"{base}{location}/cost", headers=auth).json()
        finally:
            server.terminate()
            server.wait(timeout=30)
        with sqlite3.connect(database) as connection:
            cold = connection.execute(
                "SELECT count(*) FROM invocations WHERE cold_start = 1"
            ).fetchone()[0]
        started = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
        finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
        return {
            "status": job["status"],
            "cost_usd": float(cost["total_usd"]),
            "jct_s": round((finished - started).total_seconds(), 3),
            "invocations": cost["invocations"],
            "cold_starts": cold,
        }


def _wait_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("cescale serve exited before it was ready")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("cescale serve did not become ready in 120 s")


def _wait_finished(base: str, location: str, auth: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}{location}", headers=auth).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.25)
    raise RuntimeError(f"{location} did not end in {JOB_TIMEOUT_S:.0f} s")


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return median(run[key] for run in runs)


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'example':<22} {'':<14} {'cost $':>10} {'JCT s':>8} {'invocations':>12} {'cold':>6}"
        f"  status"
    ]
    for row in rows:
        for side in ("sim", "sim@host", "live"):
            runs = row[side]
            lines.append(
                f"{row['example']:<22} {side:<14} {_median(runs, 'cost_usd'):>10.6f}"
                f" {_median(runs, 'jct_s'):>8.2f} {_median(runs, 'invocations'):>12.0f}"
                f" {_median(runs, 'cold_starts'):>6.0f}  "
                + ",".join(sorted({run["status"] for run in runs}))
            )
        for side in ("sim", "sim@host"):
            ratios = {
                key: _median(row["live"], key) / max(_median(row[side], key), 1e-12)
                for key in ("cost_usd", "jct_s", "invocations", "cold_starts")
            }
            lines.append(
                f"{row['example']:<22} {'live/' + side:<14} {ratios['cost_usd']:>10.2f}"
                f" {ratios['jct_s']:>8.2f} {ratios['invocations']:>12.2f}"
                f" {ratios['cold_starts']:>6.2f}"
            )
        lines.append(f"{row['example']:<22} host CPU factor {row['cpu_factor']:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", nargs="*", default=list(EXAMPLES))
    parser.add_argument("--runs", type=int, default=2, help="live runs per example (median)")
    parser.add_argument("--seeds", type=int, default=3, help="simulated seeds per example")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="live controller tick, s (sim: 0.1)"
    )
    parser.add_argument("--json", type=Path, help="also write every run here")
    args = parser.parse_args()
    rows = []
    for example in args.examples:
        path = (ROOT / example) if not Path(example).is_absolute() else Path(example)
        sim = simulated(path, args.seeds)
        factors = [host_cpu_factor()]
        runs = []
        for _ in range(args.runs):
            runs.append(live(path, args.interval))
            print(f"{path.name}: live run {len(runs)}: {runs[-1]}", file=sys.stderr, flush=True)
        factors.append(host_cpu_factor())
        factor = median(factors)
        print(f"{path.name}: host CPU factor {factors}", file=sys.stderr, flush=True)
        rows.append(
            {
                "example": path.name,
                "sim": sim,
                "sim@host": simulated(path, args.seeds, cpu_scale=factor),
                "live": runs,
                "cpu_factor": factor,
            }
        )
    print(
        f"sim: median of {args.seeds} seeds; live: median of {args.runs} runs on a fresh "
        f"embedded default, controller tick {args.interval} s; host load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(report(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
