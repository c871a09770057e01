"""A pool whose master does not answer, on the dashboard: the header and the tree say so
("master ovs01 unreachable for 4 min"), and every other host of the pool is still driven."""

from __future__ import annotations

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostKey, HostRole, VmAction
from ovmtui.widgets.estate_header import EstateHeader
from tests.ui.conftest import dashboard, fixed_demo_estate, make_app, wait_until

M, U, V = HostRole.MASTER, HostRole.UTILITY, HostRole.VM


def estate_with_dead_master() -> EstateConfig:
    live = fixed_demo_estate().pools[0].hosts[1]  # ovs02, a VM host
    return EstateConfig(
        pools=(
            PoolConfig(
                "prod",
                (
                    # Nothing listens on port 1: refused at once, on loopback only.
                    HostConfig(
                        "prod", "ovs01", libvirt="qemu+tcp://127.0.0.1:1/system", roles=(M, U, V)
                    ),
                    live,
                ),
            ),
        ),
        source="test",
    )


async def test_a_dead_master_is_said_and_the_other_hosts_are_still_driven() -> None:
    app = make_app(estate_with_dead_master(), interval_s=3600.0)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(
            pilot,
            lambda: all(h.reachable is not None for h in app.snapshot.hosts),
            what="both hosts answered",
        )
        # The clock of the app is fixed; the master went down "4 minutes" before it.
        down = app.snapshot.host(HostKey("prod", "ovs01"))
        assert down is not None and down.reachable is False and down.failed_at is not None
        app._clock = lambda: down.failed_at + 4 * 60 + 1  # type: ignore[method-assign,operator]
        board = dashboard(app)
        board.estate_tree._now = app._clock  # type: ignore[method-assign]
        board.header._clock = app._clock  # type: ignore[method-assign]
        board.show_estate(app.snapshot)
        await pilot.pause()
        header = str(board.query_one(EstateHeader).render())
        assert "prod: master ovs01 unreachable for 4 min" in header
        labels = board.estate_tree.labels()
        assert labels[1].endswith("· master ovs01 unreachable for 4 min")
        # ovs02 is driven directly: its running VMs pause as ever.
        running = next(
            p
            for p in app.snapshot.placed_vms()
            if p.host == "ovs02" and p.vm.state.value == "running"
        )
        assert app.session.refusal(running, VmAction.PAUSE) is None
        (result,) = await app.session.run_actions([running], VmAction.PAUSE)
        assert result.ok, result.error
