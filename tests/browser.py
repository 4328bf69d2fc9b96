"""The test suite's browser: Debian's Chromium, installed with apt-get when it is missing (no
browser download by a test tool), driven by Playwright through ``executable_path``."""

from __future__ import annotations

import os
import shutil
import subprocess

CHROMIUM = os.environ.get("CESCALE_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless in a sandboxed machine with a closed network: no sandbox (root), no GPU, and no
# background connections (they are refused here, many at a time).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def ensure_chromium() -> str | None:
    """None when Chromium is there (installing Debian's package if needed); else why not."""
    if os.path.exists(CHROMIUM):
        return None
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and apt-get is not available to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # a stale package index: refresh it once
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if os.path.exists(CHROMIUM):
        return None
    return f"could not install Debian's chromium: {done.stderr.strip()[-500:]}"
