"""The embedded Lambda emulator (docs/platform.md). Import `EmulatorPlatform` from `.backend`.

This package's `__init__` stays empty on purpose: worker processes import
`service.platform.emulator.worker`, and anything imported here would count towards every
function's measured memory footprint.
"""
