"""A job's tight and loose deadline, derived from the static runs of the same job.

A deadline only means something relative to how long the job takes, and an HPO job's length
depends on which trials it samples and which survive to the long rungs, so the deadline is
measured on the very job it applies to: at every seed, the static sizes run first (they never
read the deadline), and then

- **loose** = 3 × the JCT of static-1769 (one full vCPU): time enough for a slow, cheap plan;
- **tight** = 1.2 × the JCT of the fastest static size: only 20 % slack over running everything
  as fast as static can.

The deadline-reading policies (ce-scaling, oracle) then run that seed's job — the same trials,
the same learning curve — against each deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

LOOSE_FACTOR = 3.0
LOOSE_REFERENCE = "static-1769"
TIGHT_FACTOR = 1.2
DEADLINES = ("tight", "loose")
# The deadline a deadline-blind policy's spec carries: it is never read, only recorded.
UNREAD_S = 30 * 24 * 3600.0


class NoReference(RuntimeError):
    """No static size finished the job, so there is nothing to derive a deadline from."""


@dataclass(frozen=True)
class Deadlines:
    tight_s: float
    loose_s: float

    def of(self, name: str) -> float:
        return {"tight": self.tight_s, "loose": self.loose_s}[name]


def derive(static_jct_s: dict[str, float]) -> Deadlines:
    """Deadlines from the JCTs of the static runs that succeeded, by label."""
    if not static_jct_s:
        raise NoReference("no static size finished the job")
    fastest = min(static_jct_s.values())
    loose_base = static_jct_s.get(LOOSE_REFERENCE, fastest)
    return Deadlines(
        tight_s=round(TIGHT_FACTOR * fastest, 1), loose_s=round(LOOSE_FACTOR * loose_base, 1)
    )
