"""In-memory, pure scheduler: which queued SMS goes to which relay phone, and when.

No awaits, no I/O: the gateway feeds :class:`Scheduler` events and asks it
for decisions; time comes from an injected clock. See :mod:`scheduler.core`
for the policy and the cost of each decision.
"""

from .core import Scheduler
from .model import (
    RETRYABLE_REASONS,
    SIM_POLICIES,
    DeviceLimits,
    Dispatch,
    Expiry,
    Priority,
    Work,
    is_retryable,
)

__all__ = [
    "RETRYABLE_REASONS",
    "SIM_POLICIES",
    "DeviceLimits",
    "Dispatch",
    "Expiry",
    "Priority",
    "Scheduler",
    "Work",
    "is_retryable",
]
