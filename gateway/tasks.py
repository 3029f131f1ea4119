"""Supervision of background tasks: each has a name and a strong reference, and if one dies
the whole gateway stops loudly instead of limping along without it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from gateway.logs import get_logger

__all__ = ["Supervisor"]

log = get_logger("gateway.tasks")


class Supervisor:
    """Owns the gateway's long-running tasks.

    ``failed`` is set when any task ends with an exception (or returns while it should run
    forever); the runtime waits on it next to the stop signal.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None
        self._stopping = False
        self._finishing: set[str] = set()

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start ``coro`` as the task ``name`` (names are unique)."""
        if name in self._tasks:
            raise ValueError(f"task {name!r} already running")
        task = asyncio.create_task(coro, name=name)
        self._tasks[name] = task
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task.get_name(), None)
        if task.cancelled() or self._stopping or task.get_name() in self._finishing:
            return
        exc = task.exception()
        if exc is None:
            exc = RuntimeError(f"task {task.get_name()} returned unexpectedly")
        log.error("task.died", task=task.get_name(), error=repr(exc), exc_info=exc)
        self.failure = exc
        self.failed.set()

    @property
    def names(self) -> list[str]:
        """Names of the running tasks."""
        return sorted(self._tasks)

    async def stop(self, name: str, timeout: float) -> None:
        """Wait up to ``timeout`` for task ``name`` to finish by itself, then cancel it."""
        task = self._tasks.get(name)
        if task is None:
            return
        self._finishing.add(name)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel(msg=f"shutdown: {name} did not finish within {timeout}s")
            await asyncio.gather(task, return_exceptions=True)

    async def cancel_all(self, timeout: float) -> None:
        """Cancel whatever still runs, with a message, and wait for it."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel(msg="shutdown: cancelling remaining tasks")
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
