"""`cescale controller --metrics-port`: the loop's own histograms (and the fleet's figures) on
the controller's port, when the loop runs in its own process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.migrate import upgrade


def test_controller_serves_its_loop_metrics(tmp_path):
    url = f"sqlite:///{tmp_path / 'ctl.db'}"
    upgrade(url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "CESCALE_DATABASE_URL": url,
        "CESCALE_STATE_DIR": str(tmp_path),
        "CESCALE_WEBHOOK_INTERVAL_S": "0.5",
    }
    cescale = Path(sys.executable).with_name("cescale")
    process = subprocess.Popen(
        [str(cescale), "controller", "--interval", "0.1", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ticks, deadline = 0.0, time.monotonic() + 60
        while ticks < 3:  # wait for observed ticks, not for a fixed time
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "no ticks on the metrics port"
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            ticks = samples.get(("cescale_loop_tick_seconds_count", ()), 0.0)
            time.sleep(0.2)
        assert samples[("cescale_loop_ticks_total", (("result", "ok"),))] >= 3
        assert samples[("cescale_loop_step_seconds_count", (("step", "claim"),))] >= 3
        assert samples[("cescale_metrics_database_up", ())] == 1  # the fleet figures too
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
