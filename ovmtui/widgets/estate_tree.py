"""The pool → host tree. Selecting a node scopes the VM table to that pool or host."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ovmtui.model import EstateSnapshot, HostKey, HostRole, HostStatus


@dataclass(frozen=True, slots=True)
class Scope:
    """What a tree node stands for: the estate, a pool or one host."""

    pool: str | None = None
    host: str | None = None

    @property
    def host_key(self) -> HostKey | None:
        if self.pool is None or self.host is None:
            return None
        return HostKey(self.pool, self.host)


_ROLE_TAGS = {HostRole.MASTER: "M", HostRole.UTILITY: "U", HostRole.VM: "V"}


class EstateTree(Tree[Scope]):
    """Pools and their hosts, with reachability and VM counts, updated in place."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Show", show=False, id="tree-select"),
    ]

    class ScopeChanged(Message):
        def __init__(self, scope: Scope) -> None:
            super().__init__()
            self.scope = scope

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Estate", data=Scope(), id=id)
        self.guide_depth = 2
        self.show_root = True
        self._pools: dict[str, TreeNode[Scope]] = {}
        self._hosts: dict[HostKey, TreeNode[Scope]] = {}
        self._signatures: dict[HostKey, tuple[bool | None, bool, int]] = {}
        self._pool_counts: dict[str, tuple[int, int, int]] = {}

    def show_estate(self, snapshot: EstateSnapshot) -> None:
        """Update labels in place; only the nodes whose text changed are touched."""
        theme = self.app.theme_variables
        pool_counts: dict[str, tuple[int, int, int]] = {}
        added = False
        for host in snapshot.hosts:
            up, total, vms = pool_counts.get(host.pool, (0, 0, 0))
            pool_counts[host.pool] = (up + (host.reachable is True), total + 1, vms + len(host.vms))
            pool_node = self._pools.get(host.pool)
            if pool_node is None:
                pool_node = self.root.add(host.pool, data=Scope(host.pool), expand=True)
                self._pools[host.pool] = pool_node
                added = True
            signature = (host.reachable, host.stale, len(host.vms))
            node = self._hosts.get(host.key)
            if node is None:
                node = pool_node.add_leaf(
                    _host_label(host, theme), data=Scope(host.pool, host.name)
                )
                self._hosts[host.key] = node
                added = True
            elif self._signatures.get(host.key) != signature:
                node.set_label(_host_label(host, theme))
            self._signatures[host.key] = signature
        for pool, counts in pool_counts.items():
            if self._pool_counts.get(pool) != counts:
                self._pool_counts[pool] = counts
                up, total, vms = counts
                self._pools[pool].set_label(
                    Text.assemble((pool, "bold"), (f"  {up}/{total} up · {vms} VMs", "dim"))
                )
        if added:
            self.root.expand()

    def select_host(self, key: HostKey) -> bool:
        node = self._hosts.get(key)
        if node is None:
            return False
        self.move_cursor(node)
        self.scroll_to_node(node)
        self.post_message(self.ScopeChanged(Scope(key.pool, key.name)))
        return True

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Scope]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.ScopeChanged(event.node.data))


def _host_label(host: HostStatus, theme: Mapping[str, str]) -> Text:
    # Tree labels are Rich Text, which knows no theme variables: resolve them here so the
    # colours still follow the theme.
    if host.reachable is False:
        glyph, style = "✖", f"bold {theme.get('error', 'red')}"
    elif host.stale or host.reachable is None:
        glyph, style = "◌", theme.get("warning", "yellow")
    else:
        glyph, style = "●", theme.get("success", "green")
    roles = "".join(_ROLE_TAGS[r] for r in host.roles)
    parts: list[tuple[str, str]] = [(glyph + " ", style), (host.name, "")]
    if roles:
        parts.append((f" [{roles}]", "dim"))
    parts.append((f" {len(host.vms)}", "dim"))
    return Text.assemble(*parts)
