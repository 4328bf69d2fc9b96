"""The function code that runs inside AWS Lambda and the emulator: real ML on real data.

- ``contract`` — the handler contract ``cescale.handler/1`` (schemas in ``schema/``).
- ``sdk`` — :class:`~service.workloads.sdk.Workload` and ``make_handler``: bring your own function.
- ``classifiers``/``nn`` — the built-ins ``builtin:logreg`` and ``builtin:mlp`` (NumPy).
- ``handlers`` — their Lambda entry points; ``registry`` maps workloads to handler paths.
- ``datasets``, ``store``, ``checkpoint`` — data, object stores and model averaging.
- ``profiling``, ``packaging`` — ``cescale profile`` and ``cescale package``.

Importing this package is cheap on purpose (no NumPy): the control plane imports ``registry``.
See README.md in this directory for the contract.
"""
