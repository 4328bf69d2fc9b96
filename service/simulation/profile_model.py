"""A measured Lambda profile (docs/platform.md) as a simulated workload.

The built-in analytic model is single-threaded CPU work with no I/O; real functions also scale
with threads or wait on I/O, and a measured profile captures whichever shape they have. Here a
profile is read as **one epoch of one task** — one HPO trial's epoch, or one training worker's
epoch over its shard — so an invocation that trains ``k`` epochs takes ``k`` times the profile's
duration at every memory size (its percentiles scale together: the spread, as a log-normal
sigma, is unchanged), starts cold in the profile's ``cold_start_ms`` and uses the profile's
memory, which does not grow with epochs. The emulator does the rest from the scaled profile:
the interpolated curve between measured sizes, noise, cold starts and out-of-memory kills below
the smallest footprint measured.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from service.platform.emulator.model import RUNTIME_INIT_MS
from service.platform.emulator.profiles import MeasuredProfile, ProfileError, parse_profile
from service.simulation.work import Truth, Work

_PERCENTILES = ("p10", "p50", "p90")


class ProfileWorkload:
    def __init__(self, document: dict[str, Any]) -> None:
        profile = parse_profile(document)
        if not isinstance(profile, MeasuredProfile):
            raise ProfileError("a profile-driven workload needs a measured profile ('memory_mb')")
        self.document = document
        self.profile = profile

    @classmethod
    def load(cls, path: str | Path) -> ProfileWorkload:
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return cls(document)
        except (OSError, json.JSONDecodeError) as error:
            raise ProfileError(f"{path}: {error}") from None
        except ProfileError as error:
            raise ProfileError(f"{path}: {error}") from None

    @property
    def name(self) -> str:
        return self.profile.name

    @cached_property
    def sigma(self) -> float:
        return max(point.sigma for point in self.profile.points)

    @property
    def arm64_speed(self) -> float:
        return self.profile.arm64_speed

    @property
    def cold_start_ms(self) -> float:
        cold = self.profile.cold_start_ms
        return cold if cold is not None else RUNTIME_INIT_MS

    @property
    def footprint_mb(self) -> float:
        """Below this the function runs out of memory (the emulator's rule for profiles)."""
        return self.profile.curve.footprint_mb

    def work(self, function: str, event: dict[str, Any]) -> Work:
        epochs = max(1, event["epoch_to"] - event["epoch_from"])
        return Work(key=f"profile~{epochs}", profile=self.scaled(epochs))

    def scaled(self, epochs: int) -> dict[str, Any]:
        """The profile of an invocation that trains ``epochs`` epochs."""
        table = {
            size: {
                key: (value * epochs if key in _PERCENTILES else value)
                for key, value in stats.items()
            }
            for size, stats in self.document["memory_mb"].items()
        }
        scaled: dict[str, Any] = {"name": f"{self.name}x{epochs}", "memory_mb": table}
        for key in ("runtime", "cold_start_ms", "arm64_speed"):
            if self.document.get(key) is not None:
                scaled[key] = self.document[key]
        return scaled

    def truth(
        self,
        function: str,
        dataset: str,
        params: dict[str, Any],
        epochs: int,
        shard: int,
        memory_mb: int,
    ) -> Truth:
        duration = max(1, epochs) * self.profile.curve.p50_ms(memory_mb)
        return Truth(duration, self.cold_start_ms, self.footprint_mb)

    def peak_mb(self, function: str, dataset: str, params: dict[str, Any], shard: int) -> float:
        return max(point.mem_used_mb for point in self.profile.points)
