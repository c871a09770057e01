"""The estate's keys on the dashboard: `N` new pool, `A` add a host to the pool under the
tree's cursor, and on a host `e` edit, `X` remove, `G` roles, `P` promote to master.

Each opens its form (screens/estate_dialogs.py); the edit is then made through the core,
on the record (``EstateEditor.apply``), and the dashboard follows from the next snapshot.
A key that cannot be used now is dimmed, and says why.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from textual.binding import ActiveBinding, Binding

from ovmtui.config import HostConfig
from ovmtui.context import AppContext
from ovmtui.errors import ConfigError, OvmError
from ovmtui.roles import master_of
from ovmtui.store.estate_file import EstateEdit
from ovmtui.widgets.estate_tree import Scope

# The forms are imported when one is first opened, not at every start-up (bench/startup.py).
if TYPE_CHECKING:
    from ovmtui.screens.estate_dialogs import EditRequest, TestConnection

ESTATE_BINDINGS = [
    Binding("N", "new_pool", "New pool", show=False, id="estate-new-pool"),
    Binding("A", "add_host", "Add host", show=False, id="estate-add-host"),
    Binding("e", "edit_host", "Edit host", show=False, id="estate-edit-host"),
    Binding("X", "remove_host", "Remove host", show=False, id="estate-remove-host"),
    Binding("G", "host_roles", "Host roles", show=False, id="estate-host-roles"),
    Binding("P", "promote_host", "Promote to master", show=False, id="estate-promote"),
]
ESTATE_ACTIONS = frozenset(b.action for b in ESTATE_BINDINGS)


class EstateKeys:
    """Mixed into the dashboard (a Screen with ``context`` and the tree's ``_scope``)."""

    context: AppContext
    _scope: Scope

    # -- what can be done

    def with_estate_reasons(self, bindings: dict[str, ActiveBinding]) -> dict[str, ActiveBinding]:
        """``bindings`` with the reason of each dimmed estate key as its tooltip (the key
        panel shows it beside the key, as for the VM keys)."""
        for key, active in bindings.items():
            if active.enabled or active.binding.action not in ESTATE_ACTIONS:
                continue
            reason = self.estate_refusal(active.binding.action)
            if reason is not None:
                binding = dataclasses.replace(active.binding, tooltip=reason)
                bindings[key] = active._replace(binding=binding, tooltip=reason)
        return bindings

    def estate_refusal(self, action: str) -> str | None:
        """Why the estate key of ``action`` is dimmed now, or None."""
        edits = self.context.estate_edits
        refusal = edits.refusal()
        if refusal is not None or action == "new_pool":
            return refusal
        if action == "add_host":
            return None if self._scope.pool else "select a pool or a host in the tree"
        host = self._scoped_host()
        if host is None:
            return "select a host in the tree"
        if action == "promote_host":
            if "master" in host.roles:
                return f"{host.name} is the master of {host.pool} already"
            return edits.promotion_refusal(host.name)
        return None

    def _scoped_host(self) -> HostConfig | None:
        name = self._scope.host
        return None if name is None else self._host_config(name)

    def _host_config(self, name: str) -> HostConfig | None:
        file = self.context.estate_edits.file
        if file is None:
            return None
        return next((h for h in file.estate.hosts if h.name == name), None)

    def _validate(self, edit: EstateEdit) -> str | None:
        """The edit made on the file's text and parsed, as at start-up: its problem."""
        file = self.context.estate_edits.file
        if file is None:
            return self.context.estate_edits.refusal()
        try:
            file.edited(edit)
        except ConfigError as exc:
            return exc.message
        return None

    # -- the keys

    def action_new_pool(self) -> None:
        from ovmtui.screens.estate_dialogs import PoolDialog

        self._ask("new_pool", lambda: PoolDialog(self._validate))

    def action_add_host(self) -> None:
        pool = self._scope.pool or ""
        self.add_host(pool)

    def action_edit_host(self) -> None:
        self.edit_host(self._scope.host or "")

    def action_remove_host(self) -> None:
        self.remove_host(self._scope.host or "")

    def action_host_roles(self) -> None:
        self.host_roles(self._scope.host or "")

    def action_promote_host(self) -> None:
        self.promote_host(self._scope.host or "")

    # -- also from the palette, by name

    def new_pool(self) -> None:
        self.action_new_pool()

    def add_host(self, pool: str) -> None:
        from ovmtui.screens.estate_dialogs import HostDialog

        self._ask(
            "add_host",
            lambda: HostDialog(self._validate, pool=pool, test=self._tester(pool)),
            scope=Scope(pool),
        )

    def edit_host(self, name: str) -> None:
        from ovmtui.screens.estate_dialogs import HostDialog

        host = self._host_config(name)
        if host is None:
            self._refused(self.estate_refusal("edit_host") or f"no host {name} in the file")
            return
        self._ask(
            "edit_host",
            lambda: HostDialog(
                self._validate, pool=host.pool, host=host, test=self._tester(host.pool)
            ),
            scope=Scope(host.pool, host.name),
        )

    def remove_host(self, name: str) -> None:
        from ovmtui.screens.estate_dialogs import RemoveHostDialog

        host = self._host_config(name)
        if host is None:
            self._refused(self.estate_refusal("remove_host") or f"no host {name} in the file")
            return
        running = self.context.estate_edits.active_vms(name)
        self._ask(
            "remove_host",
            lambda: RemoveHostDialog(self._validate, host, running),
            scope=Scope(host.pool, host.name),
        )

    def host_roles(self, name: str) -> None:
        from ovmtui.screens.estate_dialogs import RolesDialog

        host = self._host_config(name)
        if host is None:
            self._refused(self.estate_refusal("host_roles") or f"no host {name} in the file")
            return
        self._ask(
            "host_roles",
            lambda: RolesDialog(self._validate, host),
            scope=Scope(host.pool, host.name),
        )

    def promote_host(self, name: str) -> None:
        from ovmtui.screens.estate_dialogs import PromoteDialog

        host = self._host_config(name)
        file = self.context.estate_edits.file
        if host is None or file is None:
            self._refused(self.estate_refusal("promote_host") or f"no host {name} in the file")
            return
        pool = [h for h in file.estate.hosts if h.pool == host.pool]
        master = master_of(pool)
        self._ask(
            "promote_host",
            lambda: PromoteDialog(self._validate, host, master.name if master else None),
            scope=Scope(host.pool, host.name),
        )

    def _tester(self, pool_name: str) -> TestConnection:
        """The form's "Test connection": the connection test's own screen (every check as
        it completes; an unknown host key accepted only when confirmed) for the host as
        typed, in its pool; its outcome in a line."""

        async def test(host: HostConfig) -> str:
            from ovmtui.screens.connection_test import ConnectionTestScreen

            file = self.context.estate_edits.file
            pools = file.estate.pools if file is not None else ()
            pool = next((p for p in pools if p.name == pool_name), None)
            if pool is not None:
                host = dataclasses.replace(host, shared_storage=pool.shared_storage)
            screen = ConnectionTestScreen(self.context, host, pool)
            report = await self.app.push_screen_wait(screen)  # type: ignore[attr-defined]
            if report is None:
                return "Test connection: closed before it ended."
            failed = [f"{c.name} ({c.detail})" for c in report.checks if c.ok is False]
            if report.passed:
                passed = sum(1 for c in report.checks if c.ok)
                return f"Test connection passed: {passed} checks."
            return "Test connection FAILED: " + "; ".join(failed or ["no check passed"])

        return test

    # -- asking, then doing

    def _ask(self, action: str, dialog: object, *, scope: Scope | None = None) -> None:
        saved = self._scope
        if scope is not None:
            self._scope = scope  # the palette names its host: judged as if selected
        try:
            refusal = self.estate_refusal(action)
        finally:
            self._scope = saved
        if refusal is not None:
            self._refused(refusal)
            return
        from ovmtui.screens.estate_dialogs import FormDialog

        assert callable(dialog)
        form = dialog()
        assert isinstance(form, FormDialog)
        self.app.push_screen(form, callback=self._asked)  # type: ignore[attr-defined]

    def _asked(self, request: EditRequest | None) -> None:
        if request is None:
            return
        self.run_worker(  # type: ignore[attr-defined]
            self._make(request), group="estate-edit", description=request.edit.command
        )

    async def _make(self, request: EditRequest) -> None:
        try:
            outcome = await self.context.estate_edits.apply(request.edit, force=request.force)
        except OvmError as exc:
            self.notify(  # type: ignore[attr-defined]
                exc.message, title=exc.title, severity="error", markup=False
            )
            return
        text = f"{request.edit.command}\n{outcome.detail}; previous version: {outcome.backup.name}"
        if outcome.unrecorded is not None:
            text += f"\nNot in the journal: {outcome.unrecorded}"
        self.notify(text, title="Estate file", markup=False)  # type: ignore[attr-defined]

    def _refused(self, why: str) -> None:
        self.notify(why, title="Estate file", severity="warning", markup=False)  # type: ignore[attr-defined]
