"""Where candidate evaluations run: in this process, or in a pool of one-thread worker processes.

A candidate evaluation is a pure function of (configuration, choice vector), so where it runs changes
nothing: executors only decide how fast results come back. ``map_unordered`` yields ``(index, result)``
as each finishes; the search loop logs in completion order and tells the optimizer in proposal order.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

from coexplore.models.ir import CoexploreError


def _init_worker() -> None:
    """One torch thread per worker: two one-thread workers beat one two-thread process here (DESIGN.md)."""
    from coexplore.models.threads import one_thread

    one_thread()


class SerialExecutor:
    """Evaluates in this process, one candidate after the other."""

    name = "serial"
    workers = 1

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            yield i, fn(item)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` one-thread processes, kept for the whole run."""

    name = "process"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise CoexploreError(f"--workers {workers}: expected a positive integer")
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker)

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        futures: dict[Future, int] = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: futures[f]):
                yield futures[fut], fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(name: str, workers: int) -> SerialExecutor | ProcessExecutor:
    """``serial``, or ``process`` (the default when ``workers > 1``)."""
    if name == "auto":
        name = "process" if workers > 1 else "serial"
    if name == "serial":
        return SerialExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    raise CoexploreError(f"unknown executor {name!r} (expected serial or process)")
