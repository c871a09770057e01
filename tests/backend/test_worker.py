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
