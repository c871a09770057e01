"""A one-thread executor whose thread never holds up the process's exit.

``ThreadPoolExecutor`` joins its threads at interpreter exit, so one libvirt call stuck on a
dead host would keep ``q`` from quitting until the call gave up. Blocking host calls run here
instead, on a daemon thread: at exit a stuck call is simply abandoned with the process.

The thread is started by a launcher thread, not by the caller: ``Thread.start()`` waits until
the new thread runs, which takes the GIL, and with a dozen busy workers that wait held the
asyncio loop up for tens of milliseconds per new connection. Calls submitted meanwhile queue.
One of the latency measures gathered in docs/latency.md.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

_Job = tuple[concurrent.futures.Future[Any], Callable[[], Any]]


class DaemonWorker(concurrent.futures.Executor):
    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shutdown = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._launched = threading.Event()  # start() returned (or failed)
        _launch(self)

    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> concurrent.futures.Future[_T]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new calls after shutdown")
            future: concurrent.futures.Future[_T] = concurrent.futures.Future()
            self._jobs.put((future, lambda: fn(*args, **kwargs)))
            return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if not self._shutdown:
                self._shutdown = True
                if cancel_futures:
                    self._cancel_queued()
                self._jobs.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._launched.wait()
            if self._thread.ident is not None:  # it did start
                self._thread.join()

    def _start(self) -> None:
        """On the launcher thread."""
        try:
            self._thread.start()
        except BaseException as exc:  # no thread: fail the calls rather than lose them
            with self._lock:
                self._shutdown = True
            self._fail_queued(exc)
        finally:
            self._launched.set()

    def _cancel_queued(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job[0].cancel()

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job[0].set_running_or_notify_cancel():
                job[0].set_exception(exc)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)


_launch_lock = threading.Lock()
_launch_queue: queue.SimpleQueue[DaemonWorker] = queue.SimpleQueue()
_launcher: threading.Thread | None = None


def _launch(worker: DaemonWorker) -> None:
    """Have ``worker``'s thread started without waiting for it."""
    global _launcher
    _launch_queue.put(worker)
    with _launch_lock:
        if _launcher is None:
            # Started once, by the first worker, when no other worker competes for the GIL.
            _launcher = threading.Thread(target=_run_launcher, name="worker-launcher", daemon=True)
            _launcher.start()


def _run_launcher() -> None:
    while True:
        _launch_queue.get()._start()
