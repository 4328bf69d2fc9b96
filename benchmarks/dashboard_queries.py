"""Latency of the dashboard queries on Postgres at 10,000 jobs and 1,000,000 invocations
(the dashboard part of ``cescale bench-control``, alone).

    .venv/bin/python benchmarks/dashboard_queries.py [--jobs 10000] [--repeat 20]

Uses a private database on 127.0.0.1:5432 (trust auth), dropped afterwards. Wall time: the
machine may be shared.
"""

from __future__ import annotations

import argparse

from service.bench.control import dashboards
from service.bench.control.postgres import bench_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with bench_database("cescale_dashperf") as url:
        state = dashboards.populate(url, args.jobs)
        print(f"{state['jobs']} jobs, {state['invocations']} invocations ({state['setup_s']} s)")
        print("| query | p50 ms | p95 ms |\n|---|---|---|")
        for name, figures in dashboards.measure(url, args.jobs, args.repeat).items():
            print(f"| {name} | {figures['p50_ms']} | {figures['p95_ms']} |")


if __name__ == "__main__":
    main()
