"""A Lambda runtime stand-in for tests: moto in server mode, plus what moto cannot do without
Docker — running the functions' code.

One WSGI server on 127.0.0.1 serves every AWS API from moto (Lambda, IAM, S3, CloudWatch, Logs),
except:

- **Invoke** (``POST /2015-03-31/functions/<name>/invocations``): resolves the qualifier (alias
  → version) in moto's Lambda backend, and runs *that version's deployed code* (its zip, as
  uploaded) with its handler setting, in an execution environment: a worker process on the
  extracted zip, kept warm per version and reused, a cold start measured as the handler
  module's import. It answers what Lambda answers (the payload, ``X-Amz-Function-Error``,
  ``X-Amz-Executed-Version``, and the ``LogType=Tail`` log in ``X-Amz-Log-Result``) and writes
  what Lambda writes: the START/END/REPORT lines to CloudWatch Logs ``/aws/lambda/<name>`` and
  the AWS/Lambda metrics Invocations, Duration and Errors (per function, and per
  ``Resource=<name>:<alias>``) to CloudWatch — all into moto.
- **GetFunction**: ``Code.Location`` is a URL on this server that serves the version's zip
  (Lambda's is a presigned S3 URL; moto's points nowhere).

Every REPORT written is kept in `reports`, so a test can compare a bill with them.
Memory: the REPORT's Max Memory Used is the worker's peak RSS; above the memory size the
invocation is an out-of-memory error, as on Lambda. At most `max_running` invocations run at
once (the rest wait for a slot, like a queue in front of a small account).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/?$")
_CODE = re.compile(r"^/_standin/code/(?P<name>[^/]+)/(?P<version>[^/]+)$")

# The worker: imports the handler once (its init), then runs one event per input line and
# answers one JSON line on the protocol pipe (the handler's prints go to stderr).
_WORKER = r"""
import importlib, json, os, resource, sys, time, traceback
proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr
module_name, _, attribute = sys.argv[1].rpartition(".")
started = time.perf_counter()
try:
    handler = getattr(importlib.import_module(module_name), attribute)
    init_error = None
except Exception as error:
    handler, init_error = None, {"errorType": "Runtime.ImportModuleError",
                                 "errorMessage": f"Unable to import module: {error}"}
proto.write(json.dumps({"init_ms": (time.perf_counter() - started) * 1000}) + "\n")

def peak_rss_mb():
    # VmHWM: this process's own peak. (ru_maxrss would also count the parent's pages this
    # process held between fork and exec: a big test process would look like an OOM.)
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

class Context:
    def __init__(self, request):
        self.aws_request_id = request["request_id"]
        self.function_name = request["function_name"]
        self.function_version = request["version"]
        self.invoked_function_arn = request["arn"]
        self.memory_limit_in_mb = request["memory_mb"]
        self.log_group_name = "/aws/lambda/" + request["function_name"]
        self._deadline = time.monotonic() + request["timeout_s"]
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

for line in sys.stdin:
    request = json.loads(line)
    started = time.perf_counter()
    error = init_error
    payload = None
    if error is None:
        try:
            payload = handler(request["event"], Context(request))
            json.dumps(payload)
        except Exception as exc:
            traceback.print_exc()
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc),
                     "stackTrace": traceback.format_exc().splitlines()}
    duration_ms = (time.perf_counter() - started) * 1000
    peak_mb = peak_rss_mb()
    proto.write(json.dumps({"payload": payload, "error": error, "duration_ms": duration_ms,
                            "peak_mb": peak_mb}) + "\n")
"""


@dataclass
class Report:
    function: str
    alias: str | None
    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int
    init_ms: float | None
    status: str | None
    error_type: str | None
    job_id: str | None = None  # from the event (cescale.handler/1), to tie a bill to its job

    def line(self) -> str:
        parts = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms} ms",
            f"Memory Size: {self.memory_mb} MB",
            f"Max Memory Used: {self.max_memory_used_mb} MB",
        ]
        if self.init_ms is not None:
            parts.append(f"Init Duration: {self.init_ms:.2f} ms")
        if self.status:
            parts.append(f"Status: {self.status}")
        if self.error_type:
            parts.append(f"Error Type: {self.error_type}")
        return "\t".join(parts) + "\t"


class Environment:
    """One execution environment: a worker process on one version's extracted code."""

    def __init__(self, code_dir: Path, handler: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, handler],
            cwd=code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.init_ms: float | None = None  # reported on the first invocation only

    def start(self, timeout_s: float) -> None:
        self.init_ms = float(self._read(timeout_s)["init_ms"])

    def run(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read(timeout_s)

    def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the runtime exited")
        return json.loads(line)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


class LambdaStandIn:
    def __init__(self, *, max_running: int = 4, max_environments: int = 8) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._dir = tempfile.TemporaryDirectory(prefix="lambda-standin-")
        self._slots = threading.Semaphore(max_running)
        self._max_environments = max_environments
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, str], list[Environment]] = {}
        self._alive = 0
        self.reports: list[Report] = []
        self.invocations = 0
        self._cloudwatch = self.client("cloudwatch")
        self._logs = self.client("logs")

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def role(self, name: str = "cescale-test") -> str:
        iam = self.client("iam")
        try:
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            return iam.get_role(RoleName=name)["Role"]["Arn"]

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        with self._lock:
            environments = [e for idle in self._idle.values() for e in idle]
            self._idle.clear()
        for environment in environments:
            environment.kill()
        self._dir.cleanup()

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = urllib.parse.unquote(environ.get("PATH_INFO", ""))
        method = environ["REQUEST_METHOD"]
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        qualifier = (query.get("Qualifier") or [None])[0]
        if method == "POST" and (match := _INVOKE.match(path)):
            function = self._function(match["name"], qualifier)
            if function is not None:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length) if length else b""
                return self._invoke(function, qualifier, body, start_response)
        elif method == "GET" and (match := _CODE.match(path)):
            function = self._function(match["name"], match["version"])
            if function is not None:
                start_response("200 OK", [("Content-Type", "application/zip")])
                return [function.code_bytes]
        elif method == "GET" and (match := _FUNCTION.match(path)):
            return self._get_function(environ, start_response, match["name"], qualifier)
        return self._moto(environ, start_response)

    def _get_function(self, environ: dict, start_response: Any, name: str, qualifier: Any):
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = status, headers

        body = b"".join(self._moto(environ, capture))
        if captured["status"].startswith("200"):
            answer = json.loads(body)
            if "Location" in (answer.get("Code") or {}):
                version = answer["Configuration"].get("Version") or "$LATEST"
                bare = name.split(":function:")[-1].split(":")[0]
                answer["Code"]["Location"] = (
                    f"{self.endpoint}/_standin/code/{bare}/{urllib.parse.quote(version)}"
                )
            body = json.dumps(answer).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    # -- Invoke -------------------------------------------------------------------------------

    @staticmethod
    def _function(name: str, qualifier: str | None) -> Any:
        from moto.awslambda.models import lambda_backends

        try:
            return lambda_backends[ACCOUNT][REGION].get_function(name, qualifier)
        except Exception:
            return None  # moto answers (ResourceNotFound)

    def _invoke(self, function: Any, qualifier: str | None, body: bytes, start_response: Any):
        name = function.function_name
        version = str(function.version)
        memory_mb = int(function.memory_size)
        timeout_s = float(function.timeout)
        named = qualifier and not qualifier.isdigit() and qualifier != "$LATEST"
        alias = qualifier if named else None
        request_id = str(uuid.uuid4())
        event = json.loads(body or b"{}")
        started = datetime.now(UTC)
        with self._slots:
            outcome = self._run(function, version, memory_mb, timeout_s, request_id, event)
        payload, error, duration_ms, peak_mb, init_ms, status, error_type, log = outcome
        used_mb = min(memory_mb, math.ceil(peak_mb))
        report = Report(
            name,
            alias,
            request_id,
            duration_ms,
            max(1, math.ceil(round(duration_ms + (init_ms or 0.0), 3))),
            memory_mb,
            used_mb,
            init_ms,
            status,
            error_type,
            event.get("job_id") if isinstance(event, dict) else None,
        )
        lines = [f"START RequestId: {request_id} Version: {version}", *log]
        lines += [f"END RequestId: {request_id}", report.line()]
        with self._lock:
            self.reports.append(report)
            self.invocations += 1
        self._write_logs(name, version, lines, started)
        self._write_metrics(name, alias, duration_ms, error is not None, started)
        tail = ("\n".join(lines) + "\n").encode()[-4096:]
        answer = json.dumps(error if error is not None else payload).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(answer))),
            ("x-amzn-RequestId", request_id),
            ("X-Amz-Executed-Version", version),
            ("X-Amz-Log-Result", base64.b64encode(tail).decode()),
        ]
        if error is not None:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        start_response("200 OK", headers)
        return [answer]

    def _run(self, function, version, memory_mb, timeout_s, request_id, event):
        key = (function.function_name, version, function.code_sha_256)
        environment, init_ms = self._environment(function, key, memory_mb, timeout_s)
        request = {
            "event": event,
            "request_id": request_id,
            "function_name": function.function_name,
            "version": version,
            "arn": function.function_arn,
            "memory_mb": memory_mb,
            "timeout_s": timeout_s,
        }
        try:
            answer = environment.run(request, timeout_s)
        except TimeoutError:
            environment.kill()
            self._forget(environment)
            message = f"Task timed out after {timeout_s:.2f} seconds"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": f"{request_id} {message}"}
            return None, error, timeout_s * 1000, memory_mb, init_ms, "timeout", None, [message]
        except RuntimeError:
            self._forget(environment)
            message = "Error: Runtime exited with error: signal: killed"
            error = {"errorType": "Runtime.ExitError", "errorMessage": message}
            return None, error, 0.0, memory_mb, init_ms, "error", "Runtime.ExitError", [message]
        peak_mb = float(answer["peak_mb"])
        if peak_mb > memory_mb:  # Lambda would have killed it
            environment.kill()
            self._forget(environment)
            message = "Error: Runtime exited with error: signal: killed"
            error = {"errorType": "Runtime.OutOfMemory", "errorMessage": message}
            return (
                None,
                error,
                float(answer["duration_ms"]),
                memory_mb,
                init_ms,
                "error",
                "Runtime.OutOfMemory",
                [message],
            )
        with self._lock:
            self._idle.setdefault(key, []).append(environment)
        error = answer["error"]
        log = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"] if error else []
        status = "error" if error else None
        return (
            answer["payload"],
            error,
            float(answer["duration_ms"]),
            peak_mb,
            init_ms,
            status,
            None,
            log,
        )

    def _environment(self, function, key, memory_mb, timeout_s):
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), None
            evict = None
            if self._alive >= self._max_environments:
                for other in self._idle.values():
                    if other:
                        evict = other.pop(0)
                        break
            if evict is None:
                self._alive += 1
        if evict is not None:
            evict.kill()
        code_dir = Path(self._dir.name) / f"{key[0]}-{key[1]}-{uuid.uuid4().hex[:6]}"
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            archive.extractall(code_dir)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(code_dir),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": key[1],
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            **CREDENTIALS,
            **(function.environment_vars or {}),
        }
        environment = Environment(code_dir, function.handler, env)
        environment.start(max(timeout_s, 60.0))
        init_ms = environment.init_ms
        return environment, init_ms

    def _forget(self, environment: Environment) -> None:
        with self._lock:
            self._alive -= 1

    # -- what Lambda writes -------------------------------------------------------------------

    def _write_logs(self, name: str, version: str, lines: list[str], at: datetime) -> None:
        group = f"/aws/lambda/{name}"
        stream = f"{at:%Y/%m/%d}/[{version}]standin"
        for create in (
            lambda: self._logs.create_log_group(logGroupName=group),
            lambda: self._logs.create_log_stream(logGroupName=group, logStreamName=stream),
        ):
            with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                create()
        stamp = int(time.time() * 1000)
        self._logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": stamp, "message": line} for line in lines],
        )

    def _write_metrics(
        self, name: str, alias: str | None, duration_ms: float, failed: bool, at: datetime
    ) -> None:
        dimension_sets = [[{"Name": "FunctionName", "Value": name}]]
        if alias is not None:
            dimension_sets.append(
                [
                    {"Name": "FunctionName", "Value": name},
                    {"Name": "Resource", "Value": f"{name}:{alias}"},
                ]
            )
        data = []
        for dimensions in dimension_sets:
            for metric, value, unit in (
                ("Invocations", 1.0, "Count"),
                ("Errors", float(failed), "Count"),
                ("Duration", duration_ms, "Milliseconds"),
            ):
                data.append(
                    {
                        "MetricName": metric,
                        "Dimensions": dimensions,
                        "Timestamp": at,
                        "Value": value,
                        "Unit": unit,
                    }
                )
        self._cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
