"""A host whose libvirtd dies: unreachable on the dashboard, back when the daemon is."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.e2e.lab.conftest import Lab
from tests.e2e.lab.screen import SIZE, host_status, lab_app, loaded, shown_state, tree_labels
from tests.ui.conftest import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

BINARY = Path(sys.executable).with_name("ovmtui")
INTERVAL_S = 1.0


async def inventory(lab: Lab) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = await asyncio.create_subprocess_exec(
        str(BINARY),
        "--config",
        str(lab.estate_path),
        "inventory",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, json.loads(out)


async def test_killed_libvirtd_turns_its_host_unreachable_until_restarted(lab: Lab) -> None:
    app = lab_app(lab, interval_s=INTERVAL_S)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await asyncio.to_thread(lab.kill_libvirtd, "h2")
        await wait_until(
            pilot,
            lambda: host_status(app, "h2").reachable is False,
            limit_s=15,
            what="h2 to turn unreachable",
        )
        h2 = host_status(app, "h2")
        assert h2.error, "an unreachable host says why"
        assert any(label.startswith("✖ h2") for label in tree_labels(app)), tree_labels(app)
        assert "1/2 up" in tree_labels(app)[0]
        assert host_status(app, "h1").reachable is True  # the other host is not affected
        # Its guest is still known, from the last good poll.
        assert shown_state(app, "vm3") == "running"

        code, seen = await inventory(lab)
        assert code == 1, "inventory exits 1 while a host is unreachable"
        assert [(h["name"], h["reachable"]) for h in seen["hosts"]] == [
            ("h1", True),
            ("h2", False),
        ]

        # The guest outlived its daemon (QEMU does); the restarted daemon finds it again.
        await asyncio.to_thread(lab.start_libvirtd, "h2")
        await wait_until(
            pilot,
            lambda: host_status(app, "h2").reachable is True,
            # The poller backs off after failures (1, 2, 4 ... s at this interval).
            limit_s=30,
            what="h2 to come back",
        )
        assert any(label.startswith("● h2") for label in tree_labels(app)), tree_labels(app)
        assert "2/2 up" in tree_labels(app)[0]
        assert shown_state(app, "vm3") == "running"
    assert lab.domstate("h2", "vm3") == "running"
