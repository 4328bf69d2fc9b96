"""A template process that forks the emulator's workers, so that a cold start costs the host a
fork instead of a new interpreter.

Lambda runs a burst of cold starts side by side; this machine has a few CPUs. Starting each
worker as a new ``python`` process costs the host ~60 ms of CPU, and importing the handler in
it as much again: on the sample HPO job (25 cold trials in one rung, 2 CPUs) that host work
queued the rung for ~1.5 s that Lambda does not spend, and the live job took 1.4x the
simulated one. The fork server is started once per worker pool with the worker module
imported; the parent asks it for a worker over a Unix socket, passing the worker's two pipe
ends with SCM_RIGHTS, and it forks one.

What a cold start measures stays what it was:

- The first cold start of a handler module runs in a child that imports it: its import time
  is measured there, as before (the emulator keeps the first measurement of each module and
  bills it as part of Init Duration on every cold start). Only after that first successful
  import does the pool ask the fork server to import the module too (``preload``), so later
  children start with it imported.
- The handler's first invocation (its lazy imports, the dataset it loads) runs in the child,
  on its own CPU, as before. Nothing the handler does is preloaded.
- The fork server refuses to fork once it has more than one thread (a module that starts
  threads on import); the pool then starts plain processes, as it did without it.

Linux only (fork, SCM_RIGHTS, /proc); elsewhere the pool starts plain processes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

_BOOT = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from service.platform.emulator.forkserver import serve; serve(int(sys.argv[2]))"
)
_MAX_MESSAGE = 1 << 16


class ForkServerError(RuntimeError):
    """The fork server cannot fork a worker (gone, or no longer safe to fork)."""


class ForkServer:
    """The parent's side: start the server, ask it for workers, stop it."""

    def __init__(self, env: dict[str, str]) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(child.fileno())],
                pass_fds=(child.fileno(),),
                close_fds=True,
                env=env,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self._socket = parent
        self._buffer = b""
        self._lock = threading.Lock()
        hello = self._read()
        if not hello.get("ready"):
            self.close()
            raise ForkServerError("the fork server did not start")

    def fork(self, task_read: int, reply_write: int, preload: list[str]) -> int:
        """A new worker process running ``worker.main(task_read, reply_write)``: its pid. The
        caller keeps (and must close) its own copies of the two descriptors."""
        with self._lock:
            try:
                socket.send_fds(
                    self._socket,
                    [json.dumps({"preload": preload}).encode() + b"\n"],
                    [task_read, reply_write],
                )
                answer = self._read()
            except OSError as error:
                raise ForkServerError(f"the fork server is gone: {error}") from error
        if "pid" not in answer:
            raise ForkServerError(answer.get("error", "the fork server did not fork"))
        return int(answer["pid"])

    def wait(self, pid: int, timeout_s: float | None = None) -> int | None:
        """Reap a worker the server forked: its exit code (negative: the signal that ended it;
        None if it was reaped before). Raises TimeoutError if it still runs after
        ``timeout_s`` (None: wait as long as it takes)."""
        with self._lock:
            try:
                self._socket.sendall(
                    json.dumps({"wait": pid, "timeout_s": timeout_s}).encode() + b"\n"
                )
                answer = self._read()
            except OSError as error:
                raise ForkServerError(f"the fork server is gone: {error}") from error
        if answer.get("running"):
            raise TimeoutError(f"worker {pid} still runs after {timeout_s} s")
        return answer.get("code")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = self._socket.recv(_MAX_MESSAGE)
            if not chunk:
                raise ForkServerError("the fork server exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)


def serve(fd: int) -> None:
    """The fork server's loop: one fork per request, until the parent closes the socket."""
    from service.platform.emulator import worker

    sock = socket.socket(fileno=fd)
    sock.sendall(b'{"ready": true}\n')
    preloaded: set[str] = set()
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(sock, _MAX_MESSAGE, 2)
        except OSError:
            return
        if not message:
            return
        request = json.loads(message)
        if "wait" in request:
            reaped = _reap(int(request["wait"]), request.get("timeout_s"))
            sock.sendall(json.dumps(reaped).encode() + b"\n")
            continue
        for module in request.get("preload", ()):
            if module not in preloaded:
                preloaded.add(module)
                with contextlib.suppress(BaseException):
                    importlib.import_module(module)
        if len(fds) != 2 or _threads() > 1:
            for descriptor in fds:
                os.close(descriptor)
            reason = "more than one thread: unsafe to fork" if len(fds) == 2 else "bad request"
            sock.sendall(json.dumps({"error": reason}).encode() + b"\n")
            continue
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                sock.close()
                worker.main(fds[0], fds[1])
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        for descriptor in fds:
            os.close(descriptor)
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _reap(pid: int, timeout_s: float | None) -> dict[str, Any]:
    """waitpid for one child, polling up to ``timeout_s``: its exit code, or that it is still
    running (or was reaped before: no code)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            done, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
        except ChildProcessError:
            return {"code": None}
        if done:
            return {"code": os.waitstatus_to_exitcode(status)}
        if deadline is not None and time.monotonic() >= deadline:
            return {"running": True}
        time.sleep(0.005)


def _threads() -> int:
    """Threads of this process, native ones included (a BLAS pool is not a Python thread)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()
