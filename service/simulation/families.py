"""Workloads shaped like the paper's, for the benchmark: image classifiers of published sizes.

The built-ins' analytic model (``workload_model``) is small single-threaded NumPy work. The
jobs the CE-scaling paper targets differ in two ways that matter for memory sizing, and this
model has both:

- **HPO over model families** (the trial's shape): footprints
  that differ by more than 10× between the smallest and the largest family, the largest above
  one vCPU's 1,769 MB (so a trial cannot run below ~3 GB), and multi-threaded training
  (intra-op parallelism) that keeps speeding up past 1,769 MB;
- **data-parallel training that exchanges updates through object storage**: after its local
  epochs each worker PUTs its update and GETs the other workers' updates (all-reduce through
  S3, as serverless training systems without a parameter server do), an I/O phase whose length
  depends on the model size and the worker count but not on memory.

Published figures it rests on:

- Parameters and GFLOPs per 224×224 image, forward pass: the torchvision model zoo tables
  (pytorch.org/vision/stable/models.html): MobileNetV3-Small 2.54 M / 0.06, ResNet-18
  11.69 M / 1.81, ResNet-50 25.56 M / 4.09, VGG-16 138.36 M / 15.47.
- Inputs are CIFAR-10 images (32×32×3, 50,000 training images; Krizhevsky 2009): FLOPs scale
  with the pixel count, (32/224)² = 1/49 of the 224×224 figure. A training step costs ~3× the
  forward pass (forward, and a backward pass of about twice its cost).
- vCPU share: 1,769 MB is one vCPU, proportional below and above, up to 6 at 10,240 MB
  (AWS Lambda developer guide; ``platform.emulator.model``).
- S3: a first byte after 100-200 ms for small objects, and about 85-90 MB/s per connection
  ("Best Practices Design Patterns: Optimizing Amazon S3 Performance", AWS whitepaper, 2019).

The job specs stay those of ``builtin:mlp`` (the spec language has no family parameter, and
the bench runs these jobs only in simulation): a task's ``hidden`` width selects its family
through ``FAMILY_OF_HIDDEN``, widths in the families' order of size.

Our assumptions, named: 40 GFLOP/s of FP32 training throughput per vCPU (half an AVX2 core's
FMA peak); a parallel fraction of 0.9 up to 6 threads for the convolutional families and 0 for
the linear one; memory = a 200 MB runtime (Python, a CPU build of the framework) + 16 bytes per
parameter (weights, gradients and two optimiser moments) × 1.25 for activations and workspace,
+ the data the invocation holds; training workers also hold two update buffers; a cold start's
init is 1.5 s (importing the framework) and its first run loads the data it trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.platform.emulator.model import DEFAULT_SIGMA, duration_ms
from service.platform.interface import Traits
from service.simulation.work import Truth, Work


@dataclass(frozen=True)
class Family:
    params_m: float  # parameters, millions (torchvision)
    gflops_224: float  # forward GFLOPs per 224×224 image (torchvision)
    parallel_fraction: float  # of its CPU work that runs in parallel (our assumption)
    max_threads: int


FAMILIES: dict[str, Family] = {
    # a multinomial logistic regression on the raw 3,072 pixels: 30,730 parameters
    "linear": Family(0.0307, 2 * 3072 * 10 / 1e9 * 49, 0.0, 1),
    "mobilenet_v3_small": Family(2.54, 0.06, 0.9, 6),
    "resnet18": Family(11.69, 1.81, 0.9, 6),
    "resnet50": Family(25.56, 4.09, 0.9, 6),
    "vgg16": Family(138.36, 15.47, 0.9, 6),
}
FAMILY_OF_HIDDEN: dict[int, str] = {
    32: "linear",
    128: "mobilenet_v3_small",
    512: "resnet18",
    1024: "resnet50",
    4096: "vgg16",
}
DEFAULT_FAMILY = "resnet18"

PIXEL_SCALE = (32 / 224) ** 2  # CIFAR-10 against the 224×224 figures
TRAIN_FLOPS_PER_FORWARD = 3.0
GFLOPS_PER_VCPU = 40.0
RUNTIME_MB = 200.0
BYTES_PER_PARAM = 16.0 * 1.25
IMAGE_BYTES = 32 * 32 * 3 * 4  # float32 after decoding
CIFAR10_TRAIN = 50_000
INIT_MS = 1500.0
MS_PER_INVOCATION = 50.0  # reading the checkpoint's metadata, writing the result
S3_FIRST_BYTE_MS = 150.0  # middle of the whitepaper's 100-200 ms
S3_MB_PER_S = 85.0  # one connection
LOAD_MB_PER_S = S3_MB_PER_S  # the data comes from S3 too, on a cold start


@dataclass(frozen=True)
class FamilyWork:
    """One invocation: CPU at one vCPU, its parallel part, memory-independent I/O, footprint."""

    cpu_ms: float
    io_ms: float
    peak_mb: float
    cold_ms: float  # the first run in a new environment loads its data (I/O)
    family: Family


class ModelFamilies:
    """A ``WorkloadModel`` (``service.simulation.work``) over ``FAMILIES``.

    HPO trials train on ``images_per_epoch`` CIFAR-10 images per epoch; a training worker
    trains on its 1/W shard of CIFAR-10's 50,000 and, in every round, exchanges its update with
    the other W - 1 workers through S3: one PUT of its update and W - 1 GETs, one at a time."""

    sigma = DEFAULT_SIGMA
    arm64_speed = 1.0  # not modelled: as fast on arm64 (a prior)

    def __init__(self, images_per_epoch: int = 1_000) -> None:
        self.images_per_epoch = images_per_epoch

    @staticmethod
    def family_name(params: dict[str, Any]) -> str:
        hidden = params.get("hidden")
        if hidden is None:
            return DEFAULT_FAMILY
        try:
            return FAMILY_OF_HIDDEN[int(hidden)]
        except (KeyError, TypeError, ValueError):
            widths = ", ".join(f"{w} ({n})" for w, n in FAMILY_OF_HIDDEN.items())
            message = f"hidden {hidden!r} selects no model family; widths: {widths}"
            raise ValueError(message) from None

    def family(self, params: dict[str, Any]) -> Family:
        return FAMILIES[self.family_name(params)]

    def invocation(self, params: dict[str, Any], epochs: int, workers: int) -> FamilyWork:
        family = self.family(params)
        images = CIFAR10_TRAIN // workers if workers > 1 else self.images_per_epoch
        gflop = family.gflops_224 * PIXEL_SCALE * TRAIN_FLOPS_PER_FORWARD * images
        cpu = MS_PER_INVOCATION + max(1, epochs) * gflop / GFLOPS_PER_VCPU * 1000.0
        update_mb = family.params_m * 4.0  # float32 parameters, MB
        data_mb = images * IMAGE_BYTES / 2**20
        peak = RUNTIME_MB + family.params_m * BYTES_PER_PARAM + data_mb
        io = 0.0
        if workers > 1:
            peak += 2 * update_mb  # the update it sends and the sum it accumulates
            io = workers * S3_FIRST_BYTE_MS + workers * update_mb / S3_MB_PER_S * 1000.0
        cold = S3_FIRST_BYTE_MS + (images * 3072 / 2**20) / LOAD_MB_PER_S * 1000.0
        return FamilyWork(cpu, io, peak, cold, family)

    # -- WorkloadModel ---------------------------------------------------------------------
    def work(self, function: str, event: dict[str, Any]) -> Work:
        epochs = max(1, event["epoch_to"] - event["epoch_from"])
        workers = int(event.get("workers", 1))
        run = self.invocation(event["params"], epochs, workers)
        name = self.family_name(event["params"])
        return Work(
            key=f"{name}~{epochs}~{workers}",
            traits=Traits(
                cpu_ms=run.cpu_ms,
                parallel_fraction=run.family.parallel_fraction,
                max_threads=run.family.max_threads,
                # the cold data load is I/O too, but Traits scale cold work as CPU: the load is
                # folded into init instead, which does not scale with memory either
                io_ms=run.io_ms,
                peak_memory_mb=run.peak_mb,
                init_ms=INIT_MS + run.cold_ms,
            ),
        )

    def truth(
        self,
        function: str,
        dataset: str,
        params: dict[str, Any],
        epochs: int,
        shard: int,
        memory_mb: int,
    ) -> Truth:
        run = self.invocation(params, epochs, shard)
        family = run.family
        return Truth(
            duration_ms(
                run.cpu_ms, run.io_ms, memory_mb, family.parallel_fraction, family.max_threads
            ),
            INIT_MS + run.cold_ms,
            run.peak_mb,
        )

    def peak_mb(self, function: str, dataset: str, params: dict[str, Any], shard: int) -> float:
        return self.invocation(params, 1, shard).peak_mb

    def io_ms(self, params: dict[str, Any], shard: int) -> float:
        """The update exchange of one round (0 for an HPO trial): the same at every size."""
        return self.invocation(params, 1, shard).io_ms


def footprint_ratio() -> float:
    """Largest over smallest family footprint (HPO trials)."""
    model = ModelFamilies()
    peaks = [model.invocation({"hidden": width}, 1, 1).peak_mb for width in FAMILY_OF_HIDDEN]
    return max(peaks) / min(peaks)
