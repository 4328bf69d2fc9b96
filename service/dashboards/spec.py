"""The dashboard document users save, validated completely before it is stored.

A panel is ``{"title", "chart": line|bar|stat|table, "query": {"kind": …, …}}``; the query's
own parameters are those of the matching route (``usage``: from, to, step, group_by;
``series``: job_id and which series; ``invocations``: job_id, limit; ``functions``: since,
limit). Times are ISO 8601 with a time zone, or relative to when the dashboard is read:
``now``, ``now-7d``, ``now-90m`` (units s, m, h, d, w).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.spec import Text
from service.usage.repository import GROUP_BY
from service.usage.service import parse_step

MAX_PANELS = 50
_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdw]))?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def check_time(value: str) -> str:
    resolve_time(value, datetime(2000, 1, 1, tzinfo=UTC))
    return value


def resolve_time(value: str, now: datetime) -> datetime:
    """``now``, ``now-<n><unit>`` or an ISO 8601 timestamp with a time zone."""
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = match.groups()
        return now - timedelta(seconds=int(amount) * _UNITS[unit]) if amount else now
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither now, now-<n><s|m|h|d|w> nor an ISO 8601 timestamp"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z or +00:00")
    return parsed.astimezone(UTC)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UsageQuery(_Query):
    kind: Literal["usage"]
    from_: str = Field("now-7d", alias="from", max_length=64)
    to: str = Field("now", max_length=64)
    step: str | None = Field(None, max_length=20)
    group_by: Literal["policy", "workload", "status", "architecture", "kind"] | None = None
    metric: Literal[
        "cost_usd",
        "gb_seconds",
        "invocations",
        "active_jobs",
        "jobs_finished",
        "deadline_attainment",
        "saving_usd",
    ] = Field("cost_usd", description="The figure the chart plots.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("from_", "to")
    @classmethod
    def _time(cls, value: str) -> str:
        return check_time(value)

    @field_validator("step")
    @classmethod
    def _step(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_step(value)
            except Exception as error:
                raise ValueError(getattr(error, "detail", str(error))) from None
        return value

    @model_validator(mode="after")
    def _window(self) -> UsageQuery:
        # relative times move together, so comparing them at any instant is enough
        for now in (datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)):
            if resolve_time(self.from_, now) >= resolve_time(self.to, now):
                raise ValueError("from must be before to")
        assert self.group_by is None or self.group_by in GROUP_BY
        return self


class SeriesQuery(_Query):
    kind: Literal["series"]
    job_id: uuid.UUID
    series: Literal["memory", "duration", "cost", "loss"] = "cost"


class InvocationsQuery(_Query):
    kind: Literal["invocations"]
    job_id: uuid.UUID
    limit: int = Field(50, ge=1, le=200)


class FunctionsQuery(_Query):
    kind: Literal["functions"]
    since: str = Field("now-1d", max_length=64)
    limit: int = Field(50, ge=1, le=200)

    @field_validator("since")
    @classmethod
    def _time(cls, value: str) -> str:
        return check_time(value)


PanelQuery = Annotated[
    UsageQuery | SeriesQuery | InvocationsQuery | FunctionsQuery, Field(discriminator="kind")
]


class Panel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[Text, Field(min_length=1, max_length=200)]
    chart: Literal["line", "bar", "stat", "table"]
    query: PanelQuery


class DashboardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    description: str | None = Field(None, max_length=2000)
    panels: list[Panel] = Field(default_factory=list, max_length=MAX_PANELS)

    @field_validator("description")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value
