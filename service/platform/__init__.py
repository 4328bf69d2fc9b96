"""The serverless platform layer: one interface, two implementations (emulator and AWS).

Only light, standard-library modules are imported here: the emulator's worker processes import
this package, and whatever it pulls in would count towards each function's memory footprint.
Build a platform with `service.platform.factory.build_platform(settings)`.
"""

from service.platform.clock import Clock, VirtualClock, WallClock
from service.platform.interface import (
    MAX_MEMORY_MB,
    MIN_MEMORY_MB,
    ErrorKind,
    FunctionMetrics,
    FunctionNotFoundError,
    FunctionSpec,
    InvocationHandle,
    InvokeResult,
    Platform,
    PlatformError,
    Report,
    Traits,
    UpdateFailedError,
    VariantNotFoundError,
    variant_alias,
)

__all__ = [
    "MAX_MEMORY_MB",
    "MIN_MEMORY_MB",
    "Clock",
    "ErrorKind",
    "FunctionMetrics",
    "FunctionNotFoundError",
    "FunctionSpec",
    "InvocationHandle",
    "InvokeResult",
    "Platform",
    "PlatformError",
    "Report",
    "Traits",
    "UpdateFailedError",
    "VariantNotFoundError",
    "VirtualClock",
    "WallClock",
    "variant_alias",
]
