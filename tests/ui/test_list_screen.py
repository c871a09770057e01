"""The list screens' base: rows updated in place by key, in the items' order, the cursor
kept on its item. Driven through a bare screen of (key, text) items, no estate."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from textual.app import App

from ovmtui.screens._list_screen import Cells, KeyedTable, ListScreen

Item = tuple[str, str]


class ItemsScreen(ListScreen[Item]):
    TABLE_ID = "items"
    COLUMNS = ("key", "text")

    def key_of(self, item: Item) -> str:
        return item[0]

    def cells_of(self, item: Item) -> Cells:
        return item

    def title_of(self, items: Sequence[Item]) -> str:
        return f"{len(items)} items"


class ItemsApp(App[None]):
    def on_mount(self) -> None:
        self.push_screen(ItemsScreen())


def rows(screen: ItemsScreen) -> list[list[str]]:
    table = screen.table
    return [list(table.get_row_at(i)) for i in range(table.row_count)]


def items(*keys: str, text: str = "") -> list[Item]:
    return [(key, text or key.upper()) for key in keys]


@pytest.fixture(autouse=True)
def no_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("clear() loses the cursor and the scroll")

    monkeypatch.setattr(KeyedTable, "clear", refuse)


async def test_rows_follow_the_items_in_order_and_in_place() -> None:
    app = ItemsApp()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ItemsScreen)
        screen.show(items("a", "b", "c"))
        await pilot.pause()
        assert rows(screen) == [["a", "A"], ["b", "B"], ["c", "C"]]
        first_rows = dict(screen.table.rows)
        # New first (newest first, as the journal and the log), one gone, one changed.
        screen.show([("z", "Z"), ("a", "A"), ("c", "see")])
        await pilot.pause()
        assert rows(screen) == [["z", "Z"], ["a", "A"], ["c", "see"]]
        assert screen.table.rows["a"] is first_rows["a"]  # the same row, not a new one
        assert screen.items == (("z", "Z"), ("a", "A"), ("c", "see"))
        assert "3 items" in str(screen.query_one("#items-title").render())
        screen.show([])
        await pilot.pause()
        assert rows(screen) == [] and screen.selected is None


async def test_the_cursor_stays_on_its_item() -> None:
    app = ItemsApp()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ItemsScreen)
        screen.show(items("a", "b", "c", "d"))
        await pilot.press("down", "down")
        assert screen.selected == ("c", "C")
        screen.show(items("b", "c", "d"))  # one above it gone
        await pilot.pause()
        assert screen.selected == ("c", "C") and screen.table.cursor_row == 1
        screen.show(items("x", "y", "b", "c", "d"))  # two above it added
        await pilot.pause()
        assert screen.selected == ("c", "C") and screen.table.cursor_row == 3
        screen.show(items("d", "c", "b"))  # order turned round
        await pilot.pause()
        assert screen.selected == ("c", "C") and screen.table.cursor_row == 1


async def test_the_cursor_goes_to_the_nearest_item_when_its_own_goes() -> None:
    app = ItemsApp()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ItemsScreen)
        screen.show(items("a", "b", "c", "d"))
        await pilot.press("down")
        screen.show(items("a", "c", "d"))  # the next one below takes its place
        await pilot.pause()
        assert screen.selected == ("c", "C")
        await pilot.press("down")
        screen.show(items("a", "c"))  # nothing below: the one above
        await pilot.pause()
        assert screen.selected == ("c", "C")
