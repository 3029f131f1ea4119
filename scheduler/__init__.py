"""In-memory, pure scheduler: which queued SMS goes to which relay phone, and when.

No awaits, no I/O: the gateway feeds :class:`Scheduler` events and asks it
for decisions; time comes from an injected clock. See :mod:`scheduler.core`
for the policy and the cost of each decision.
"""

from .core import Scheduler
from .holds import HoldQueue
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
from .send_window import DAYS, SendWindows

__all__ = [
    "DAYS",
    "RETRYABLE_REASONS",
    "SIM_POLICIES",
    "DeviceLimits",
    "Dispatch",
    "Expiry",
    "HoldQueue",
    "Priority",
    "Scheduler",
    "SendWindows",
    "Work",
    "is_retryable",
]
