"""The dashboard in small terminals: a VM name stays readable when panels and columns give
way."""

from __future__ import annotations

from tests.ui.conftest import loaded, make_app, table
from tests.ui.screen_text import screen_lines


async def test_names_stay_readable_at_40x12() -> None:
    app = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await loaded(pilot, app)
        await pilot.pause(0.1)
        lines = screen_lines(app)
        shown = "\n".join(lines)
        by_uuid = {p.vm.uuid: p.vm.name for p in app.snapshot.placed_vms()}
        names = [by_uuid[uuid] for uuid in table(app).shown_uuids()[:4]]  # the top rows
        for name in names:
            assert name[:8] in shown, f"{name!r} not readable in:\n{shown}"
        # The state stays beside the name.
        assert "running" in shown, shown


async def test_header_keeps_hosts_and_freshness_on_its_first_line_at_40_columns() -> None:
    app = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await loaded(pilot, app)
        await pilot.pause(0.1)
        first, second = screen_lines(app)[:2]
        # The memory totals give way; what is up and how fresh it is stay on one line.
        assert "hosts 5 up" in first and "just now" in first, first
        assert second.strip().startswith("43 running"), second


async def test_at_40_columns_t_brings_the_tree_up_in_the_tables_place() -> None:
    app = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await loaded(pilot, app)
        await pilot.press("t")  # the tree is hidden at this width: t must show it
        await pilot.pause(0.1)
        shown = "\n".join(screen_lines(app))
        assert "prod  3/3 up" in shown and "dev01" in shown, shown
        assert "app-batch01" not in shown, shown
        await pilot.press("v")
        await pilot.pause(0.1)
        shown = "\n".join(screen_lines(app))
        assert "app-batch01" in shown and "prod  3/3 up" not in shown, shown


async def test_columns_give_way_uptime_first_host_last() -> None:
    headers = {}
    for width in (140, 100, 80):
        app = make_app()
        async with app.run_test(size=(width, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.pause(0.1)
            headers[width] = next(line for line in screen_lines(app) if "Name" in line)
    assert all(t in headers[140] for t in ("vCPUs", "Memory", "CPU %", "Uptime")), headers
    assert "Memory" in headers[100] and "Host" in headers[100], headers[100]
    assert not any(t in headers[100] for t in ("vCPUs", "CPU %", "Uptime")), headers[100]
    assert "Host" in headers[80] and "Memory" not in headers[80], headers[80]
