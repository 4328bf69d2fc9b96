"""The per-tenant store of curve priors (table ``curve_priors``): what a finished job measured of
each task shape, kept for the tenant's next job on the same work (``service.policies.priors``
says what a prior is worth; this module only reads and writes them).

A prior is keyed so that it is only ever used where it holds:
- the tenant: a job never sees another tenant's measurements;
- the work: the function, its dataset and its code version, and for training the workers and
  parameters (a worker's share of the data, its model) — hashed into ``workload_key``. The
  built-ins' code version is the service's version; the platform interface does not expose a
  user function's code hash (CodeSha256), so a user's function is keyed by its name, and a
  changed function is caught by the job's first runs disagreeing with the prior;
- the architecture and the task shape.

Written when a job ends (``remember``), from its successful runs, merged with the previous
prior where the job's runs agree with it; read when a job's policy decides (``lookup``), handed
over as ``Observations.predictors["prior:<shape>"]`` with the prior's age.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import service
from service.control.lifecycle import SampleRow
from service.models import CurvePrior, Job
from service.policies.base import Sample
from service.policies.priors import PREFIX, Prior, merged, noise_of, points_of
from service.policies.shape_model import first_run_ms, warm_estimates
from service.spec import JobSpec

log = logging.getLogger(__name__)


def code_version(spec: JobSpec) -> str:
    """The built-ins run the service's own code; "" for a user's function (not exposed)."""
    if spec.workload.function.startswith("builtin:"):
        return f"cescale-{service.__version__}"
    return ""


def workload_key(spec: JobSpec) -> str:
    """What, besides tenant, architecture and shape, must match for a prior to apply."""
    key: dict = {
        "function": spec.workload.function,
        "dataset": spec.workload.dataset,
        "code_version": code_version(spec),
        "kind": spec.kind,
    }
    if spec.training is not None:
        key["workers"] = spec.training.workers
        key["params"] = dict(spec.training.params)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def lookup(
    session: Session, tenant_id: uuid.UUID, spec: JobSpec, job_id: uuid.UUID, now: datetime
) -> dict[str, dict]:
    """The tenant's priors for this spec's work, by predictor name ("prior:<shape>"), in the
    shape of ``Observations.predictors``; never the job's own. None for architecture "auto":
    its pilots measure both architectures, which a prior of one does not tell apart."""
    if spec.workload.architecture == "auto":
        return {}
    rows = session.scalars(
        select(CurvePrior).where(
            CurvePrior.tenant_id == tenant_id,
            CurvePrior.workload_key == workload_key(spec),
            CurvePrior.architecture == spec.workload.architecture,
        )
    )
    found = {}
    for row in rows:
        if row.source_job_id == job_id:
            continue
        age = max(0.0, (now - row.learned_at).total_seconds())
        found[PREFIX + row.shape] = {
            "state": row.state | {"age_s": age},
            "observations": row.observations,
        }
    return found


def remember(
    session: Session, job: Job, spec: JobSpec, samples: list[SampleRow], now: datetime
) -> int:
    """Keep what ``job`` measured of each shape for the tenant's next jobs. ``samples``: the
    job's finished runs as ``LoopRepository.samples`` gives them. Returns the shapes kept.
    An "auto" job keeps none: its runs mix architectures (``lookup`` reads none for it)."""
    if spec.workload.architecture == "auto":
        return 0
    runs: dict[str, list[tuple[int, float]]] = {}
    finished: dict[str, list[Sample]] = {}  # for the first runs' own work (training)
    inits: dict[str, list[float]] = {}
    peaks: dict[str, float] = {}
    for row in samples:
        if row.outcome != "ok" or not row.duration_ms or not row.memory_mb:
            continue
        runs.setdefault(row.shape, []).append((int(row.memory_mb), float(row.per_epoch_ms)))
        finished.setdefault(row.shape, []).append(
            Sample(
                row.shape,
                row.stage_position,
                int(row.memory_mb),
                float(row.duration_ms),
                row.init_ms,
                None,
                row.epochs,
                ok=True,
            )
        )
        if row.init_ms:
            inits.setdefault(row.shape, []).append(float(row.init_ms))
        if row.peak_mb is not None:
            peaks[row.shape] = max(peaks.get(row.shape, 0.0), float(row.peak_mb))
    if not runs:
        return 0
    key = workload_key(spec)
    arch = spec.workload.architecture
    existing = {
        row.shape: row
        for row in session.scalars(
            select(CurvePrior).where(
                CurvePrior.tenant_id == job.tenant_id,
                CurvePrior.workload_key == key,
                CurvePrior.architecture == arch,
                CurvePrior.shape.in_(sorted(runs)),
            )
        )
    }
    for shape, shape_runs in sorted(runs.items()):
        if spec.kind == "training":
            # a worker's first run in an environment also loads its data (``first_run_ms``,
            # kept on its own): the curve kept is the warm rounds', which the next job's warm
            # rounds are checked against (else its first round, all first runs, contradicted
            # the mix and dropped the prior every time); a size only first runs measured
            # is kept as their warm estimate, so the next job knows it was measured
            warm = [
                (s.memory_mb, s.duration_ms / max(1, s.epochs))
                for s in finished[shape]
                if not s.init_ms
            ]
            first_run = first_run_ms(finished[shape])
            noise = noise_of(warm or shape_runs)
            if warm:
                shape_runs = warm + warm_estimates(finished[shape], first_run, noise)
        else:
            first_run, noise = None, noise_of(shape_runs)
        measured = Prior(
            points_of(shape_runs),
            init_ms=sum(inits[shape]) / len(inits[shape]) if inits.get(shape) else None,
            peak_mb=peaks.get(shape),
            noise=noise,
            first_run_ms=first_run,
        )
        row = existing.get(shape)
        previous = None
        if row is not None:
            age = max(0.0, (now - row.learned_at).total_seconds())
            previous = Prior.from_state(row.state, age_s=age)
        kept = merged(previous if previous is not None and previous.usable else None, measured)
        observations = sum(n for _, _, n in kept.points)
        if row is None:
            session.add(
                CurvePrior(
                    tenant_id=job.tenant_id,
                    workload_key=key,
                    function=spec.workload.function,
                    dataset=spec.workload.dataset,
                    code_version=code_version(spec),
                    architecture=arch,
                    shape=shape,
                    state=kept.to_state(),
                    observations=observations,
                    source_job_id=job.id,
                    learned_at=now,
                )
            )
        else:
            if kept is measured:
                log.info("prior of %s replaced: job %s measured something else", shape, job.id)
            row.state = kept.to_state()
            row.observations = observations
            row.source_job_id = job.id
            row.learned_at = now
    return len(runs)
