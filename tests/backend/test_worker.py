from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from ovmtui.backend._worker import DaemonWorker


def test_runs_calls_in_order_on_one_thread() -> None:
    worker = DaemonWorker("t")
    names = [worker.submit(lambda: threading.current_thread().name).result(5) for _ in range(3)]
    assert names == ["t", "t", "t"]
    assert worker.submit(lambda x: x * 2, 21).result(5) == 42
    worker.shutdown()
    with pytest.raises(RuntimeError):
        worker.submit(lambda: None)


def test_exceptions_reach_the_caller() -> None:
    worker = DaemonWorker("t")
    with pytest.raises(ZeroDivisionError):
        worker.submit(lambda: 1 / 0).result(5)
    worker.shutdown()


def test_shutdown_cancels_queued_calls() -> None:
    worker = DaemonWorker("t")
    gate = threading.Event()
    started = threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait(5)

    running = worker.submit(hold)
    assert started.wait(5)
    queued = worker.submit(lambda: "late")
    worker.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(5) is True
    assert queued.cancelled()


def test_a_stuck_call_does_not_hold_the_process_exit() -> None:
    code = (
        "import time\n"
        "from ovmtui.backend._worker import DaemonWorker\n"
        "DaemonWorker('stuck').submit(time.sleep, 60)\n"
        "time.sleep(0.1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=15, capture_output=True)
    assert proc.returncode == 0


def test_shutdown_right_after_creation_waits_for_the_thread() -> None:
    # The thread is started by a launcher thread: it may not have started yet.
    worker = DaemonWorker("t")
    future = worker.submit(lambda: "ran")
    worker.shutdown(wait=True)
    assert future.result(0) == "ran"
    assert not worker._thread.is_alive()


def test_a_thread_that_cannot_start_fails_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name != "doomed":
            real_start(thread)
            return
        gate.wait(5)  # so that a call is queued before the start fails
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", start)
    worker = DaemonWorker("doomed")
    queued = worker.submit(lambda: "never")
    gate.set()
    with pytest.raises(RuntimeError, match="can't start new thread"):
        queued.result(5)
    with pytest.raises(RuntimeError):
        worker.submit(lambda: None)
    worker.shutdown(wait=True)
