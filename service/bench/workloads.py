"""The benchmark's workloads: jobs every policy runs, side by side.

A ``BenchWorkload`` is a job spec without its policy and deadline, plus the workload model that
stands in for its code in simulation: the analytic model of the built-ins (single-threaded CPU
work whose footprint grows with the dataset and the model) or a measured Lambda profile
(multi-threaded, I/O-bound, … whatever shape it was measured with; ``profile_model``).

The built-in families differ where allocation matters:

- HPO by successive halving with eta 2, 3 and 4 and 64, 81 and 243 trials, whose trial shapes
  (the ``hidden`` layer sizes) need from ~60 MB to ~300 MB and take from milliseconds to seconds
  per epoch, so one size cannot fit every shape and every rung;
- data-parallel training with 4, 8 and 16 workers and models of different weight; every worker
  holds the whole dataset (~830 MB) and generates it on a cold start (~3 s of CPU at one vCPU).

Each measured profile adds an HPO (one trial shape: the profiled function; trials differ in
learning rate) and a training job whose workers are the profiled function; a profile is read
as one epoch of one task (``profile_model``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from service.simulation.families import FAMILY_OF_HIDDEN, ModelFamilies
from service.simulation.profile_model import ProfileWorkload
from service.simulation.work import AnalyticWorkload, WorkloadModel
from service.spec import MAX_MEMORY_MB, MIN_MEMORY_MB, JobSpec
from service.workflows.hpo import SHAPE_PARAMS

# The static sizes every workload runs at: Lambda's old default-ish 512, 1 GB, one full vCPU
# (1,769 MB, docs/platform.md) and 3,008 MB, the old maximum and a common "just make it fast" pick.
STATIC_SIZES = (512, 1024, 1769, 3008)

# static-safe: the size the largest trial shape needs — its peak memory with 10 % headroom,
# rounded up to the next 64 MB (how engineers round Lambda sizes), never below Lambda's 128 MB.
SAFE_HEADROOM = 1.1
SAFE_STEP_MB = 64

PROFILES_DIR = Path(__file__).resolve().parent.parent / "platform" / "profiles"
# Three scaling shapes: multi-threaded CPU (keeps speeding up past one vCPU), I/O-bound (flat
# past ~512 MB) and a large-footprint function that flattens at ~1.5 GB. (svm-trial, mostly
# single-threaded CPU like the built-ins, is one --profile away.)
DEFAULT_PROFILES = ("mlp-training", "s3-etl", "image-recognition")

Kind = Literal["hpo", "training"]
MODEL_FAMILIES = "model-families"


def static_safe_mb(peak_mb: float) -> int:
    """``ceil(peak × 1.1 / 64) × 64``, within Lambda's 128–10,240 MB."""
    size = math.ceil(peak_mb * SAFE_HEADROOM / SAFE_STEP_MB - 1e-9) * SAFE_STEP_MB
    return min(MAX_MEMORY_MB, max(MIN_MEMORY_MB, size))


@dataclass(frozen=True)
class BenchWorkload:
    id: str
    kind: Kind
    description: str
    document: dict[str, Any] = field(repr=False)  # a job spec without "qos" and "policy"
    profile: Path | None = None  # measured profile driving durations; None: the analytic model
    # or a named simulation model: "model-families" (``service.simulation.families``)
    simulated_by: str | None = None

    @property
    def family(self) -> str:
        """Where the workload came from: ``builtin``, ``model-families`` or
        ``profile:<the profile's name>``."""
        if self.simulated_by is not None:
            return self.simulated_by
        if self.profile is None:
            return "builtin"
        model = _model(str(self.profile))
        assert isinstance(model, ProfileWorkload)
        return f"profile:{profile_slug(model.name)}"

    def model(self) -> WorkloadModel:
        if self.simulated_by is not None:
            return _named_model(self.simulated_by)
        return _model(str(self.profile) if self.profile is not None else None)

    def spec(self, policy: dict[str, Any], deadline_s: float, seed: int = 0) -> JobSpec:
        """The job at one seed: an HPO samples its trials with it, so seeds cover different
        trial populations while every policy at one seed tunes the same trials."""
        document = self.document | {"qos": {"deadline_s": deadline_s}, "policy": policy}
        if self.kind == "hpo":
            document["hpo"] = self.document["hpo"] | {"seed": seed}
        return JobSpec.model_validate(document)

    def shapes(self) -> list[dict[str, Any]]:
        """Parameters of every trial shape (HPO: each combination of the search space's
        shape-defining choices) or of the workers (training)."""
        if self.kind == "training":
            return [dict(self.document["training"]["params"])]
        space = self.document["hpo"]["search_space"]
        names = [name for name in SHAPE_PARAMS if name in space]
        for name in names:
            if "choice" not in space[name]:
                raise ValueError(f"{self.id}: shape parameter {name!r} must be a choice")
        values = [space[name]["choice"] for name in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]

    def shard(self) -> int:
        return self.document["training"]["workers"] if self.kind == "training" else 1

    def largest_peak_mb(self) -> float:
        """Peak memory of the largest shape, from the workload model (the simulator's truth)."""
        workload = self.document["workload"]
        return max(
            self.model().peak_mb(workload["function"], workload["dataset"], params, self.shard())
            for params in self.shapes()
        )

    def static_safe_mb(self) -> int:
        return static_safe_mb(self.largest_peak_mb())


@cache
def _model(profile: str | None) -> WorkloadModel:
    return ProfileWorkload.load(profile) if profile is not None else AnalyticWorkload()


@cache
def _named_model(name: str) -> WorkloadModel:
    if name == MODEL_FAMILIES:
        return ModelFamilies()
    raise ValueError(f"unknown simulation model {name!r}")


def _hpo(
    function: str,
    dataset: str,
    hidden: list[Any] | None,
    trials: int,
    eta: int,
    max_epochs: int,
) -> dict[str, Any]:
    space: dict[str, Any] = {"lr": {"log_uniform": [0.0001, 0.1]}}
    if hidden is not None:
        space["hidden"] = {"choice": hidden}
    return {
        "name": "bench-hpo",
        "kind": "hpo",
        "workload": {"function": function, "dataset": dataset, "timeout_s": 900},
        "hpo": {
            "search_space": space,
            "trials": trials,
            "eta": eta,
            "min_epochs": 1,
            "max_epochs": max_epochs,
            "seed": 0,
        },
    }


def _training(
    dataset: str,
    params: dict[str, Any],
    workers: int,
    max_epochs: int,
    epochs_per_round: int,
    target_loss: float,
) -> dict[str, Any]:
    return {
        "name": "bench-training",
        "kind": "training",
        "workload": {"function": "builtin:mlp", "dataset": dataset, "timeout_s": 900},
        "training": {
            "workers": workers,
            "max_epochs": max_epochs,
            "epochs_per_round": epochs_per_round,
            "target_loss": target_loss,
            "params": params,
        },
    }


def builtin_workloads() -> list[BenchWorkload]:
    """The built-in families (analytic model). Footprints and times per epoch at one vCPU are
    those of ``service.simulation.workload_model``."""
    wide = "builtin:synthetic?n=400000&d=512"
    return [
        BenchWorkload(
            "hpo-mlp-eta2",
            "hpo",
            "64 trials, eta 2, 1→16 epochs (5 rungs); mlp hidden 32 / 512 / 2048×2048 on "
            "synthetic 20k×256: ~60–115 MB, 15 ms–2.8 s per epoch",
            _hpo(
                "builtin:mlp", "builtin:synthetic?n=20000&d=256", [32, 512, "2048,2048"], 64, 2, 16
            ),
        ),
        BenchWorkload(
            "hpo-mlp-eta3",
            "hpo",
            "81 trials, eta 3, 1→27 epochs (4 rungs); mlp hidden 64 / 1024×1024 / 4096×4096 on "
            "synthetic 10k×784: ~70 / 90 / 300 MB, 20 ms / 0.6 s / 6 s per epoch",
            _hpo(
                "builtin:mlp",
                "builtin:synthetic?n=10000&d=784",
                [64, "1024,1024", "4096,4096"],
                81,
                3,
                27,
            ),
        ),
        BenchWorkload(
            "hpo-mlp-eta4",
            "hpo",
            "243 trials, eta 4, 1→64 epochs (4 rungs); mlp hidden 16 / 128 / 1024×1024 on "
            "synthetic 20k×100: ~55–70 MB, 10 ms–0.7 s per epoch",
            _hpo(
                "builtin:mlp",
                "builtin:synthetic?n=20000&d=100",
                [16, 128, "1024,1024"],
                243,
                4,
                64,
            ),
        ),
        BenchWorkload(
            "train-mlp-w4",
            "training",
            "4 workers, mlp 512×512 on synthetic 400k×512 (~830 MB per worker, which holds the "
            "whole dataset), 4 epochs per round (~6.5 s at 1 vCPU), target loss 0.15, at most "
            "10 rounds",
            _training(wide, {"lr": 0.05, "hidden": "512,512", "batch_size": 64}, 4, 40, 4, 0.15),
        ),
        BenchWorkload(
            "train-mlp-w8",
            "training",
            "8 workers, mlp 1024 on synthetic 400k×512 (~830 MB per worker), 4 epochs per round "
            "(~3.3 s at 1 vCPU), target loss 0.15, at most 10 rounds",
            _training(wide, {"lr": 0.05, "hidden": 1024, "batch_size": 64}, 8, 40, 4, 0.15),
        ),
        BenchWorkload(
            "train-mlp-w16",
            "training",
            "16 workers, mlp 2048×2048 on synthetic 400k×512 (~880 MB per worker), 3 epochs per "
            "round (~12 s at 1 vCPU), target loss 0.2, at most 10 rounds",
            _training(wide, {"lr": 0.05, "hidden": "2048,2048", "batch_size": 64}, 16, 30, 3, 0.2),
        ),
    ]


def paper_workloads() -> list[BenchWorkload]:
    """Jobs shaped like the paper's (``service.simulation.families``: published model sizes
    and FLOPs, S3's published latency and throughput): an HPO over image-classifier families
    whose footprints differ 14× (212 MB to 2,979 MB, so the largest trials cannot run below
    ~3 GB) and whose convolutional trials are multi-threaded; and data-parallel training whose
    rounds exchange updates through S3 (5.6 s and 21.6 s a round that no memory size shortens).
    A trial's ``hidden`` width selects its family (``FAMILY_OF_HIDDEN``)."""
    families = ", ".join(f"{name} ({width})" for width, name in FAMILY_OF_HIDDEN.items())
    return [
        BenchWorkload(
            "hpo-families",
            "hpo",
            f"27 trials, eta 3, 1→9 epochs (3 rungs) of 1,000 CIFAR-10 images over model "
            f"families (hidden width → family: {families}): 212 MB–2,979 MB, 0.05–24 s per "
            "epoch at one vCPU, the convolutional ones 90 % parallel up to 6 threads",
            _hpo("builtin:mlp", "builtin:digits", list(FAMILY_OF_HIDDEN), 27, 3, 9),
            simulated_by=MODEL_FAMILIES,
        ),
        BenchWorkload(
            "train-resnet18-s3-w8",
            "training",
            "8 workers, ResNet-18 on CIFAR-10 shards (~600 MB per worker), 1 epoch per round "
            "(17 s at one vCPU, 90 % parallel) then the update exchange through S3 (8 × 47 MB, "
            "5.6 s at every size), target loss 0.3, at most 12 rounds",
            _training("builtin:digits", {"lr": 0.05, "hidden": 512}, 8, 12, 1, 0.3),
            simulated_by=MODEL_FAMILIES,
        ),
        BenchWorkload(
            "train-resnet50-s3-w16",
            "training",
            "16 workers, ResNet-50 on CIFAR-10 shards (~950 MB per worker), 1 epoch per round "
            "(20 s at one vCPU, 90 % parallel) then the update exchange through S3 (16 × 102 MB, "
            "21.6 s at every size: I/O-bound above ~1 vCPU), target loss 0.3, at most 10 rounds",
            _training("builtin:digits", {"lr": 0.05, "hidden": 1024}, 16, 10, 1, 0.3),
            simulated_by=MODEL_FAMILIES,
        ),
    ]


def profile_slug(name: str) -> str:
    """A profile's ``name`` as it appears in workload ids: lower case, runs of anything but
    letters, digits, ``.`` and ``_`` as one ``-``."""
    return re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-") or "profile"


def profile_workloads(path: Path) -> list[BenchWorkload]:
    """An HPO and a training job whose tasks are the function measured in ``path``, named by
    the profile's own ``name`` (not the file's), so ids say which function was measured."""
    model = ProfileWorkload.load(path)  # fails early, with the file's name, on a bad profile
    name = profile_slug(model.name)
    shape = (
        f"{model.name}: {model.profile.points[0].memory_mb}–{model.profile.points[-1].memory_mb}"
        f" MB measured, uses {model.footprint_mb:.0f} MB, cold start {model.cold_start_ms:.0f} ms"
    )
    return [
        BenchWorkload(
            f"hpo-{name}",
            "hpo",
            f"27 trials, eta 3, 1→27 epochs (4 rungs); one trial shape, an epoch as profiled "
            f"({shape})",
            _hpo("builtin:mlp", "builtin:digits", None, 27, 3, 27),
            profile=path,
        ),
        BenchWorkload(
            f"train-{name}",
            "training",
            f"8 workers, 3 epochs per round, an epoch as profiled ({shape}), target loss 0.2, at "
            "most 10 rounds",
            _training("builtin:digits", {"lr": 0.05, "hidden": 256}, 8, 30, 3, 0.2),
            profile=path,
        ),
    ]


def add_profiles(
    chosen: list[BenchWorkload], every: list[BenchWorkload], paths: list[Path] | tuple[Path, ...]
) -> list[BenchWorkload]:
    """``chosen`` plus one HPO and one training workload per profile in ``paths``.

    Workload ids must be unique across ``every`` workload the suite knows (the selected ones and
    those ``--quick`` leaves out): a profile whose ``name`` gives the id of another workload is
    refused with an error naming both, unless it is the same measurement (equal documents), which
    then just joins the selection. So a file named like a built-in profile never shares results
    under the built-in's id."""
    chosen = list(chosen)
    known = {w.id: w for w in every} | {w.id: w for w in chosen}
    for path in paths:
        for workload in profile_workloads(path):
            other = known.get(workload.id)
            if other is None:
                known[workload.id] = workload
                chosen.append(workload)
                continue
            if other.profile is None or _document(other.profile) != _document(path):
                source = "a built-in workload" if other.profile is None else str(other.profile)
                raise ValueError(
                    f"{path}: its profile name gives workload id {workload.id!r}, which "
                    f'{source} already has; give the profile a "name" of its own'
                )
            if all(w.id != other.id for w in chosen):
                chosen.append(other)
    return chosen


def _document(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def default_profiles() -> list[Path]:
    return [PROFILES_DIR / f"{name}.json" for name in DEFAULT_PROFILES]


def describe(workload: BenchWorkload) -> dict[str, Any]:
    """What results.json says about a workload."""
    return {
        "id": workload.id,
        "kind": workload.kind,
        "family": workload.family,
        "description": workload.description,
        "profile": str(workload.profile) if workload.profile is not None else None,
        "largest_peak_mb": round(workload.largest_peak_mb(), 1),
        "static_safe_mb": workload.static_safe_mb(),
        "spec": json.loads(json.dumps(workload.document)),
    }
