"""The HTTP side of `cescale jobs`: where the service and the API key are, and API errors as one
line.

The key comes from ``--api-key``, else ``CESCALE_API_KEY``, else the file ``cescale bootstrap``
writes (``<CESCALE_STATE_DIR>/api-key``). Every failure is a :class:`CliError` carrying the exit
status: 1 when the service refused or could not be reached, 2 for bad usage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
REFUSED = 1  # the service said no, or could not be reached
USAGE = 2  # bad input on our side: no key, no spec file, invalid JSON


class CliError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class ApiKey:
    value: str
    source: str  # where it came from, for the 401 hint


def resolve_api_key(explicit: str | None) -> ApiKey:
    """``--api-key``/``CESCALE_API_KEY`` (typer passes either as ``explicit``), else the
    bootstrap key file."""
    from service.settings import get_settings

    if explicit:
        return ApiKey(explicit.strip(), "--api-key/CESCALE_API_KEY")
    path = get_settings().api_key_file
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    except OSError as error:
        raise CliError(f"cannot read the API key file {path.resolve()}: {error}", USAGE) from None
    if not value:
        raise CliError(
            "no API key: pass --api-key, set CESCALE_API_KEY, or run 'cescale bootstrap' "
            f"(looked for the key file {path.resolve()}; its directory is CESCALE_STATE_DIR)",
            USAGE,
        )
    return ApiKey(value, str(path))


def problem_line(response: httpx.Response) -> str:
    """An error response as one line: status, title, detail (or each listed error)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = " ".join(response.text.split())[:300]
        return f"HTTP {response.status_code}: {text or response.reason_phrase}"
    title = body.get("title") or response.reason_phrase
    detail = body.get("detail")
    if not detail and isinstance(body.get("errors"), list):
        detail = "; ".join(
            f"{'.'.join(map(str, e.get('loc', [])[1:])) or '?'}: {e.get('msg', '')}"
            for e in body["errors"]
            if isinstance(e, dict)
        )
    line = f"{body.get('status', response.status_code)} {title}"
    if detail:
        line += f": {detail}"
    return " ".join(str(line).split())


class ApiClient:
    """A thin httpx client for /v1/jobs that raises :class:`CliError` on every failure."""

    def __init__(self, url: str, key: ApiKey, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.key = key
        import httpx  # here, not for every `cescale` command

        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key.value}", "Accept": "application/json"},
            timeout=timeout_s,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(f"the service at {self.url} did not answer in time", REFUSED) from None
        except httpx.TransportError as error:
            raise CliError(
                f"cannot reach the service at {self.url} ({error or type(error).__name__}); "
                "is 'cescale serve' running? Set --url or CESCALE_URL to point elsewhere",
                REFUSED,
            ) from None
        if response.is_error:
            line = problem_line(response)
            if response.status_code == 401:
                line += f" (API key from {self.key.source})"
            raise CliError(line, REFUSED)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    # -- the endpoints ------------------------------------------------------------------
    def submit(self, spec: Any, idempotency_key: str | None) -> tuple[dict, bool]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.request("POST", "/v1/jobs", json=spec, headers=headers)
        return response.json(), response.headers.get("Idempotent-Replayed") == "true"

    def jobs(self, statuses: list[str], kinds: list[str], limit: int | None) -> list[dict]:
        """Every matching job, newest first, following the cursors (at most ``limit``)."""
        items: list[dict] = []
        cursor = None
        while limit is None or len(items) < limit:
            params: dict[str, Any] = {"status": statuses, "kind": kinds}
            if limit is not None:
                params["limit"] = min(limit - len(items), 1000)
            if cursor:
                params["cursor"] = cursor
            page = self.get("/v1/jobs", **params)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor or not page["items"]:
                break
        return items if limit is None else items[:limit]

    def job(self, job_id: str) -> dict:
        return self.get(f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict:
        return self.request("POST", f"/v1/jobs/{job_id}/cancel").json()

    def cost(self, job_id: str) -> dict:
        return self.get(f"/v1/jobs/{job_id}/cost")

    def timeline(self, job_id: str) -> dict:
        return self.get(f"/v1/jobs/{job_id}/timeline")


def read_spec(path: str) -> Any:
    """The job spec from a file (``-`` for stdin) as JSON; bad usage on a missing file or
    invalid JSON."""
    import sys

    if path == "-":
        text, name = sys.stdin.read(), "standard input"
    else:
        file = Path(path)
        name = str(file)
        try:
            text = file.read_text()
        except FileNotFoundError:
            raise CliError(f"spec file not found: {file}", USAGE) from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
            raise CliError(f"cannot read the spec file {file}: {error}", USAGE) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(
            f"{name} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
            USAGE,
        ) from None
