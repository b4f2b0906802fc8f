"""Where candidate evaluations run: in this process, in a pool of one-thread worker processes, or on a
Ray cluster.

A candidate evaluation is a pure function of (configuration, choice vector), so where it runs changes
nothing: executors only decide how fast results come back. The search loop maps two kinds of items
(``coexplore.codesign.loop``): a candidate's hardware search, then one training per task.
``map_unordered`` yields ``(index, result)`` as each finishes; the search loop logs in completion order
and tells the optimizer in proposal order.

The caller may append items to the (list) ``items`` while it iterates over ``map_unordered``: the
executor picks them up after the result it just yielded (a candidate's trainings start as soon as its
own hardware search ends). ``gpu`` is a bool, or a function of the item, saying whether it asks for a GPU.

Worker loss: an item whose worker process dies is retried (at most ``retries`` times, so
``retries + 1`` attempts), then yielded as :class:`Failed` with the reason, and the run goes on. An
exception raised by the function itself is not a worker loss: it propagates (a bug or bad input fails
the same way on every attempt).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from coexplore.models.ir import CoexploreError

RETRIES = 2  # a dead worker's candidate is tried at most 1 + RETRIES times
CLUSTER_HINT = "pip install 'coexplore[cluster]'"


GpuRule = bool | Callable[[Any], bool]  # does an item ask for a GPU share (a constant or per item)


@dataclass(frozen=True, slots=True)
class Failed:
    """An item whose every attempt lost its worker: ``reason`` says how, ``attempts`` how often."""

    reason: str
    attempts: int


def _exit_with_parent(parent: int) -> None:
    """A worker whose search process died (killed: no pool shutdown) exits instead of lingering."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _init_worker() -> None:
    """One torch thread per worker: two one-thread workers beat one two-thread process here
    (docs/design.md); and the worker ends with its parent."""
    import threading

    from coexplore.models.threads import one_thread

    one_thread()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


class SerialExecutor:
    """Evaluates in this process, one candidate after the other (a crash here ends the run)."""

    name = "serial"
    workers = 1

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any], gpu: GpuRule = True
    ) -> Iterator[tuple[int, Any]]:
        i = 0
        while i < len(items):  # the caller may append items between results
            yield i, fn(items[i])
            i += 1

    def close(self) -> None:
        pass


def _mp_context() -> Any:
    """``spawn`` when this process has initialized CUDA (a forked child cannot use it), else the default."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        import multiprocessing

        return multiprocessing.get_context("spawn")
    return None


class ProcessExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` one-thread processes, kept for the whole run.

    At most ``workers`` items are in flight, so when a worker dies (the pool breaks: every unfinished
    future fails with ``BrokenProcessPool``) the suspects are the few items that were running. The pool
    is recreated and each suspect is rerun *alone*, so a crash in isolation is charged to the one item
    that caused it and an innocent neighbour is never failed for it; then parallel work resumes."""

    name = "process"

    def __init__(self, workers: int, retries: int = RETRIES) -> None:
        if workers < 1:
            raise CoexploreError(f"--workers {workers}: expected a positive integer")
        self.workers = workers
        self.retries = retries
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, initializer=_init_worker, mp_context=_mp_context())

    def _renew_pool(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any], gpu: GpuRule = True
    ) -> Iterator[tuple[int, Any]]:
        attempts: list[int] = []
        queue: deque[int] = deque()
        suspects: deque[int] = deque()  # rerun one at a time after the pool broke
        running: dict[Future, int] = {}
        while queue or suspects or running or len(attempts) < len(items):
            while len(attempts) < len(items):  # items the caller appended since the last result
                queue.append(len(attempts))
                attempts.append(0)
            if suspects:
                if not running:
                    i = suspects.popleft()
                    running[self._pool.submit(fn, items[i])] = i
            else:
                while queue and len(running) < self.workers:
                    i = queue.popleft()
                    running[self._pool.submit(fn, items[i])] = i
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            if not any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                for fut in sorted(done, key=running.__getitem__):
                    yield running.pop(fut), fut.result()
                continue
            wait(running)  # a broken pool fails every unfinished future at once
            lost: list[int] = []
            for fut, i in sorted(running.items(), key=lambda kv: kv[1]):
                exc = fut.exception()
                if exc is None:
                    yield i, fut.result()
                elif isinstance(exc, BrokenProcessPool):
                    attempts[i] += 1
                    lost.append(i)
                else:
                    raise exc
            running.clear()
            self._renew_pool()
            for i in lost:
                if attempts[i] > self.retries:
                    yield i, Failed(f"worker process died on each of {attempts[i]} attempts", attempts[i])
                else:
                    suspects.append(i)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# ---- Ray ---------------------------------------------------------------------------------------
_RAY_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage-stats prompt or upload
    "RAY_DEDUP_LOGS": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1",  # a task without GPUs sees none (else it would train on one)
    "RAY_enable_metrics_collection": "0",  # no metrics agent work on a small machine
}


def _import_ray() -> Any:
    """Ray, imported lazily (the core does not need it), or a one-line error saying how to get it."""
    for key, value in _RAY_QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise CoexploreError(f"--executor ray needs Ray, which is not installed: {CLUSTER_HINT}") from None
    return ray


def _check_address(address: str) -> None:
    """A ``HOST:PORT`` that answers, checked in seconds (``ray.init`` would retry for minutes);
    ``auto`` and ``ray://`` addresses go to Ray unchecked."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CoexploreError(f"--ray-address {address!r}: expected HOST:PORT, e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise CoexploreError(
            f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); expected "
            "the HOST:PORT of a running cluster (`ray start --head --port 6379`)"
        ) from None


_TOKEN: list[str] = []


def _local_token() -> str:
    """One random token per process: Ray caches the token it first read, so a second local cluster in
    the same process must use the same one."""
    if not _TOKEN:
        _TOKEN.append(secrets.token_hex(32))
    return _TOKEN[0]


def _ray_call(fn: Callable[[Any], Any], item: Any) -> Any:
    """The Ray task: ``fn(item)`` in a one-thread worker."""
    from coexplore.models.threads import one_thread

    one_thread()
    return fn(item)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class RayExecutor:
    """Items as Ray tasks (``num_cpus=1``; a training item also ``num_gpus=gpus_per_candidate`` when > 0,
    while an item mapped with ``gpu=False``, a hardware search, never asks for a GPU).

    Without ``address`` it starts a local cluster on loopback with ``workers`` CPUs and shuts it down
    in :meth:`close`; with ``address`` (``HOST:PORT`` of ``ray start --head``) it joins that cluster and
    only disconnects. A process already connected to Ray (``ray.is_initialized()``) keeps its
    connection. A task whose worker dies is submitted again (at most ``retries`` times), then
    yielded as :class:`Failed`. ``start_seconds`` / ``stop_seconds`` are the cluster's start and stop overhead."""

    name = "ray"

    def __init__(
        self, workers: int, address: str | None = None, gpus_per_candidate: float = 0.0, retries: int = RETRIES
    ) -> None:
        if workers < 1:
            raise CoexploreError(f"--workers {workers}: expected a positive integer")
        if not gpus_per_candidate >= 0:
            raise CoexploreError(f"--gpus-per-candidate {gpus_per_candidate}: expected a number >= 0")
        if address:
            _check_address(address)
        ray = _import_ray()
        self.workers = workers
        self.retries = retries
        self.address = address
        self.stop_seconds = 0.0
        self._saved_env: dict[str, str | None] = {}
        t0 = time.perf_counter()
        self._connected = not ray.is_initialized()  # we connect (and so disconnect) ourselves
        self._owns_cluster = self._connected and not address
        if self._owns_cluster:
            self._local_auth()
        try:
            if self._owns_cluster:
                ray.init(
                    _node_ip_address="127.0.0.1",
                    include_dashboard=False,
                    num_cpus=workers,
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                    configure_logging=True,
                    object_store_memory=100 * 2**20,
                )
            elif self._connected:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - Ray raises several types for an unreachable cluster
            self._restore_env()
            if address:
                raise CoexploreError(
                    f"--ray-address {address}: could not connect ({_first_line(exc)}); expected "
                    "the HOST:PORT of a running cluster (`ray start --head`)"
                ) from None
            raise CoexploreError(f"could not start a local Ray cluster ({_first_line(exc)})") from None
        self.start_seconds = time.perf_counter() - t0
        # retries are ours: exact attempt counts, and Ray's own print a notice per retry on the driver
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0, "retry_exceptions": False}
        if gpus_per_candidate > 0:
            options["num_gpus"] = float(gpus_per_candidate)
        self._task = ray.remote(_ray_call).options(**options)
        options.pop("num_gpus", None)
        self._cpu_task = ray.remote(_ray_call).options(**options)  # work that never trains (hardware search)
        self._ray = ray

    def _local_auth(self) -> None:
        """Our own loopback cluster gets Ray's default token authentication (on for a local
        ``ray.init`` since Ray 2.59) with a per-run token kept in the environment, instead of Ray
        writing one to ``~/.ray/auth_token``. ``RAY_AUTH_MODE`` or a token of your own take precedence."""
        if not {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & os.environ.keys():
            self._saved_env["RAY_AUTH_MODE"] = None  # ray.init sets it: undone in close()
            self._set_env("RAY_AUTH_TOKEN", _local_token())

    def _set_env(self, key: str, value: str) -> None:
        self._saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any], gpu: GpuRule = True
    ) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        from ray.exceptions import RayError, RayTaskError, TaskCancelledError

        attempts: list[int] = []
        pending: dict[Any, int] = {}

        def submit(i: int) -> None:
            wants_gpu = gpu(items[i]) if callable(gpu) else gpu  # False: never asks for a GPU share
            pending[(self._task if wants_gpu else self._cpu_task).remote(fn, items[i])] = i

        def admit() -> None:  # items the caller appended since the last result
            while len(attempts) < len(items):
                attempts.append(1)
                submit(len(attempts) - 1)

        admit()
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except RayTaskError as exc:  # the function raised: not a worker loss
                        cause = exc.cause if isinstance(exc.cause, BaseException) else None
                        raise (cause or CoexploreError(_first_line(exc))) from None
                    except TaskCancelledError:
                        raise
                    except RayError as exc:  # the worker (or its node) died: retry, then give up
                        if attempts[i] <= self.retries:
                            attempts[i] += 1
                            submit(i)
                            continue
                        result = Failed(
                            f"Ray worker lost on each of {attempts[i]} attempts ({_first_line(exc)})", attempts[i]
                        )
                    yield i, result
                    admit()
        finally:
            for ref in pending:  # an abandoned run (error, Ctrl-C) does not leave work behind
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Shut down the cluster we started, or disconnect from the one we joined."""
        t0 = time.perf_counter()
        if self._connected and self._ray.is_initialized():
            self._ray.shutdown()
        self._restore_env()
        self.stop_seconds = time.perf_counter() - t0


Executor = SerialExecutor | ProcessExecutor | RayExecutor
EXECUTORS = ("auto", "serial", "process", "ray")


def make_executor(
    name: str, workers: int, *, ray_address: str | None = None, gpus_per_candidate: float = 0.0
) -> Executor:
    """``serial``, ``process`` (``auto`` picks it when ``workers > 1``, else serial) or ``ray``."""
    if name not in EXECUTORS:
        raise CoexploreError(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise CoexploreError(f"--workers {workers}: expected a positive integer")
    if name != "ray":
        if ray_address:
            raise CoexploreError(f"--ray-address {ray_address}: only with --executor ray")
        if gpus_per_candidate:
            raise CoexploreError(f"--gpus-per-candidate {gpus_per_candidate:g}: only with --executor ray")
    if name == "auto":
        name = "process" if workers > 1 else "serial"
    if name == "serial":
        return SerialExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    return RayExecutor(workers, address=ray_address, gpus_per_candidate=gpus_per_candidate)
