"""AWS Lambda's limits and list prices, in one place (docs/platform.md).

- memory: 128 … 10,240 MB in 1 MB steps; the CPU share grows with memory, one full vCPU at
  1,769 MB, up to 6 vCPU at 10,240 MB;
- timeout: at most 900 s;
- on-demand prices in us-east-1 (https://aws.amazon.com/lambda/pricing/): compute per GB-s of
  billed duration by architecture, and $0.20 per million requests.

Standard library only: the emulator's worker processes and the pure layers import it.
"""

from __future__ import annotations

from decimal import Decimal

MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
MB_PER_VCPU = 1_769  # one full vCPU
MAX_VCPUS = 6.0  # at MAX_MEMORY_MB
MAX_TIMEOUT_S = 900

GB_SECOND_USD: dict[str, Decimal] = {
    "x86_64": Decimal("0.0000166667"),
    "arm64": Decimal("0.0000133334"),
}
REQUEST_USD = Decimal("0.20") / Decimal(1_000_000)
