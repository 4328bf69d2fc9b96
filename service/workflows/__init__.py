"""Workflows as pure state machines: given what has finished, what runs next.

They read no clock and do no I/O, so the real-time and the simulation drivers run the same code,
and a restarted controller recomputes the next stage from the rows it finds.
"""

from service.workflows.registry import workflow_for

__all__ = ["workflow_for"]
