"""While the first round runs, the header says how many hosts answered out of how many."""

from __future__ import annotations

from textual.app import App, ComposeResult

from ovmtui.model import EstateSnapshot, HostStatus
from ovmtui.widgets.estate_header import EstateHeader

NOW = 1_700_000_000.0


def estate(answered: int, total: int) -> EstateSnapshot:
    hosts = tuple(
        HostStatus(pool="p", name=f"h{i:03}", address="-", reachable=True, taken_at=NOW)
        if i < answered
        else HostStatus(pool="p", name=f"h{i:03}", address="-", stale=True)
        for i in range(total)
    )
    return EstateSnapshot(hosts=hosts, generation=1)


class HeaderApp(App[None]):
    def compose(self) -> ComposeResult:
        yield EstateHeader(read_only=lambda: False, clock=lambda: NOW)


async def test_the_header_counts_the_hosts_that_answered_during_the_first_round() -> None:
    app = HeaderApp()
    async with app.run_test(size=(160, 10)) as pilot:
        header = app.query_one(EstateHeader)
        header.show_estate(estate(120, 200))
        await pilot.pause()
        assert "(120 of 200 answered)" in header.render_line_content().plain
        header.show_estate(estate(200, 200))
        await pilot.pause()
        assert "answered" not in header.render_line_content().plain
