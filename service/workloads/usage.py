"""What the process has used so far, measured the way Lambda's REPORT line measures it."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MB (cf. Lambda's "Max Memory Used").

    On Linux this reads ``VmHWM``, the high-water mark of the current address space.
    ``ru_maxrss`` would be wrong in a freshly spawned worker: Linux carries the parent's RSS at
    fork into the child's ``ru_maxrss`` across ``exec``, so a process started by a big parent
    (a test runner, the emulator) would report the parent's footprint. Elsewhere ``ru_maxrss``
    is the best there is (KB on Linux, bytes on macOS).
    """
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
