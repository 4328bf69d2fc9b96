"""A closed-loop HTTP load generator, run as its own process so that it does not share the
server's interpreter: ``threads`` clients, each with a keep-alive connection, send one request
after another for ``seconds``; prints one JSON object (requests, rps, latency percentiles).

    python -m service.bench.control.loadgen --url URL --key KEY [--method POST --body FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx


def run(
    url: str, key: str, method: str, body: bytes | None, seconds: float, threads: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(threads)]
    statuses: list[Counter[int]] = [Counter() for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        with httpx.Client(headers=headers, timeout=10.0) as http:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                began = time.perf_counter()
                try:
                    response = http.request(method, url, content=body)
                except httpx.HTTPError:
                    errors[index] += 1
                    continue
                latencies[index].append(time.perf_counter() - began)
                statuses[index][response.status_code] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    merged = sorted(x for own in latencies for x in own)
    status = sum(statuses, Counter())
    ok = sum(n for code, n in status.items() if 200 <= code < 300)
    return {
        "method": method,
        "threads": threads,
        "seconds": round(elapsed, 2),
        "requests": len(merged),
        "ok": ok,
        "status_counts": {str(code): n for code, n in sorted(status.items())},
        "transport_errors": sum(errors),
        "rps": round(len(merged) / elapsed, 1),
        "ok_rps": round(ok / elapsed, 1),
        "p50_ms": round(_percentile(merged, 0.50) * 1000, 2) if merged else None,
        "p99_ms": round(_percentile(merged, 0.99) * 1000, 2) if merged else None,
        "max_ms": round(merged[-1] * 1000, 2) if merged else None,
    }


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", type=Path)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    body = args.body.read_bytes() if args.body is not None else None
    print(json.dumps(run(args.url, args.key, args.method, body, args.seconds, args.threads)))


if __name__ == "__main__":
    main()
