"""The tomlkit side of the estate file's edits (``estate_file.py``): where a pool or a host
is in the document, and how a table is added or removed with the comments around it kept.
Imported only when an edit is made: tomlkit costs the TUI's start ~10 ms it does not need."""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.items import AoT, Comment, Item, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from ovmtui.errors import ConfigError


class Blocks:
    """The document's tables in file order: the top-level keys, then each pool followed by
    its hosts. Each block's own lines end where its nested [[pools.hosts]] begin."""

    def __init__(self, doc: TOMLDocument) -> None:
        self.doc = doc

    def _pools(self) -> AoT:
        pools = self.doc.get("pools")
        if not isinstance(pools, AoT):
            raise ConfigError(
                "the estate file's pools are not written as [[pools]] tables: edit it by hand"
            )
        return pools

    def _pool_table(self, name: str) -> Table:
        for table in self._pools():
            if isinstance(table, Table) and table.get("name") == name:
                return table
        raise ConfigError(f"no pool {name!r} in the estate file")

    def _hosts(self, pool: Table) -> AoT | None:
        hosts = pool.get("hosts")
        if hosts is None:
            return None
        if not isinstance(hosts, AoT):
            raise ConfigError(
                "the pool's hosts are not written as [[pools.hosts]] tables: edit it by hand"
            )
        return hosts

    def host_table(self, pool: str, name: str) -> Table:
        hosts = self._hosts(self._pool_table(pool))
        for table in hosts or ():
            if isinstance(table, Table) and table.get("name") == name:
                return table
        raise ConfigError(f"no host {name!r} in pool {pool!r} of the estate file")

    def _order(self) -> list[list[tuple[Any, Item]]]:
        """Every block's body, in file order (the document's own first)."""
        bodies: list[list[tuple[Any, Item]]] = [self.doc.body]
        for pool in self._pools():
            bodies.append(pool.value.body)
            for host in self._hosts(pool) or ():
                bodies.append(host.value.body)
        return bodies

    # -- adding

    def add_pool(self, table: Table) -> None:
        pools = self._pools()
        before = self._order()[-1]
        _indent_like(table, pools[0] if len(pools) else None)
        pools.append(table)
        _carry_tail(before, table)

    def add_host(self, pool_name: str, table: Table) -> None:
        pool = self._pool_table(pool_name)
        hosts = self._hosts(pool)
        sibling = next(iter(hosts), None) if hosts else self._any_host()
        _indent_like(table, sibling, default="  ")
        before = hosts[-1].value.body if hosts else pool.value.body
        if hosts is None:
            new = tomlkit.aot()
            new.append(table)
            pool.append("hosts", new)
        else:
            hosts.append(table)
        _carry_tail(before, table)

    def _any_host(self) -> Table | None:
        for pool in self._pools():
            for host in self._hosts(pool) or ():
                if isinstance(host, Table):
                    return host
        return None

    # -- removing

    def remove_pool(self, name: str) -> None:
        pools = self._pools()
        index = next(i for i, t in enumerate(pools) if t.get("name") == name)
        self._remove(pools, index)

    def remove_host(self, pool_name: str, name: str) -> None:
        pool = self._pool_table(pool_name)
        hosts = self._hosts(pool)
        assert hosts is not None  # host_table found it
        index = next(i for i, t in enumerate(hosts) if t.get("name") == name)
        self._remove(hosts, index)
        if not len(hosts):
            # Not `del pool["hosts"]`: the body was edited in place, past tomlkit's index.
            body = pool.value.body
            del body[next(i for i, (_k, item) in enumerate(body) if item is hosts)]

    def _remove(self, aot: AoT, index: int) -> None:
        """The table at ``index`` of ``aot`` removed with the comments above it; those at its
        end (about what follows it) stay. tomlkit's own edits first, then the bodies' (which
        leave its key index behind: nothing is looked up by key afterwards)."""
        table = aot[index]
        order = self._order()
        first = next(i for i, body in enumerate(order) if body is table.value.body)
        last = first
        for host in self._hosts(table) or ():
            last = next(i for i, body in enumerate(order) if body is host.value.body)
        before, end = order[first - 1], order[last]
        end_stop = _own_end(end)
        tail = end[_tail_start(end, end_stop) : end_stop]
        del aot[index]
        stop = _own_end(before)
        # Above the removed table: the comments about it go with it; what was at its end is
        # now above what followed it.
        before[_tail_start(before, stop) : stop] = tail

    # -- values

    def set_key(self, table: Table, key: str, value: Any) -> None:
        """Set (or with None remove) ``key`` of a host's table, keeping its comments: a new
        key goes after the table's last key, above the comments about what follows."""
        if value is None:
            if key in table:
                del table[key]
            return
        if key in table:
            table[key] = value
            return
        body = table.value.body
        indent = next((item.trivia.indent for k, item in body if k is not None), "")
        start = _tail_start(body, _own_end(body))
        tail = body[start:]
        del body[start:]
        table[key] = value
        body[-1][1].trivia.indent = indent
        body.extend(tail)


def _carry_tail(before: list[tuple[Any, Item]], table: Table) -> None:
    """A table was added after ``before``: the comments at the end of ``before`` are about
    what follows it, so they move to the end of ``table``; a blank line separates the two."""
    stop = _own_end(before)
    start = _tail_start(before, stop)
    tail = before[start:stop]
    before[start:stop] = [(None, Whitespace("\n"))]
    table.value.body.extend(tail)


def _own_end(body: list[tuple[Any, Item]]) -> int:
    """Where a block's own lines end: before its first nested array of tables."""
    return next((i for i, (_k, item) in enumerate(body) if isinstance(item, AoT)), len(body))


def _tail_start(body: list[tuple[Any, Item]], stop: int) -> int:
    start = stop
    while start > 0 and body[start - 1][0] is None and _loose(body[start - 1][1]):
        start -= 1
    return start


def _loose(item: Item) -> bool:
    return isinstance(item, (Comment, Whitespace))


def _indent_like(table: Table, sibling: Table | None, default: str = "") -> None:
    """Indent a new table and its keys as its siblings are (README: hosts by two spaces)."""
    indent = default
    if sibling is not None:
        indent = sibling.trivia.indent.rsplit("\n", 1)[-1]
    if indent.strip(" \t"):
        indent = default
    table.trivia.indent = indent
    for _key, item in table.value.body:
        if not isinstance(item, Whitespace):
            item.trivia.indent = indent


# -- reading and writing ---------------------------------------------------------------------
