"""Estate edits on the record, and the estate file followed while ovmtui runs.

``EstateEditor`` (``session.estate_edits``) is the one way the TUI and the shell change the
estate file: each edit is one audited operation (``operations.py``: "started", the edit,
its result), made on the text that was read (``store/estate_file.py``: comments kept,
validated as at start-up, the old version kept, a file changed on disk refused), then applied
to the running session at once (``apply``: backends, pollers and the repository follow).

Edits by another process (an editor, another ovmtui) are picked up by ``check_file``: a
``stat`` on each refresh tick, and a read only when the file's time, size or inode changed.
A file that became invalid is said once and the running estate kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused, ConfigError, OvmError
from ovmtui.model import EstateSnapshot, HostKey
from ovmtui.operations import Operation, Operations
from ovmtui.store.estate_file import (
    EstateEdit,
    EstateFile,
    FileStamp,
    Promote,
    RemoveHost,
    old_master,
)

NO_FILE = "no file to edit: the demo estate is built in"


@dataclass(frozen=True, slots=True)
class EditOutcome:
    """An edit written and applied."""

    edit: EstateEdit
    backup: Path  # the previous version of the file
    detail: str  # what the journal's result says
    differences: tuple[str, ...] = ()  # what the repository saw change
    unrecorded: str | None = None  # why the journal lacks the result, or None


class EstateEditor:
    """See the module docstring."""

    def __init__(
        self,
        file: EstateFile | None,
        *,
        operations: Operations,
        snapshot: Callable[[], EstateSnapshot],
        apply: Callable[[EstateConfig], Awaitable[tuple[str, ...]]],
        tell: Callable[[str, bool], object],
    ) -> None:
        """``apply``: the session taking a new estate (returns the repository's
        differences); ``tell(text, is_error)``: a notice for the operator."""
        self._file = file
        self._operations = operations
        self._snapshot = snapshot
        self._apply = apply
        self._tell = tell
        self._lock = asyncio.Lock()
        self._bad_stamp: FileStamp | None = None  # an invalid version already reported

    @property
    def file(self) -> EstateFile | None:
        return self._file

    @property
    def path(self) -> Path | None:
        return None if self._file is None else self._file.path

    def refusal(self) -> str | None:
        """Why no edit can be made at all now, or None."""
        if self._file is None:
            return NO_FILE
        try:
            self._operations.check(Operation("estate-edit", "", changes=True))
        except OvmError as exc:
            return exc.message
        return None

    def active_vms(self, name: str) -> tuple[str, ...]:
        """The VMs the repository or the last poll says run on host ``name``."""
        for host in self._snapshot().hosts:
            if host.name == name:
                return tuple(vm.name for vm in host.vms if vm.state.is_active)
        return ()

    def removal_refusal(self, name: str, force: str | None) -> str | None:
        """Why host ``name`` may not be removed: it runs VMs (per the last-known state) and
        its removal was not forced with its own name typed."""
        running = self.active_vms(name)
        if not running or force == name:
            return None
        shown = ", ".join(running[:5]) + (
            f" and {len(running) - 5} more" if len(running) > 5 else ""
        )
        if force is not None:
            return f"--force {force!r} is not the host's name: type {name!r} to remove it"
        return (
            f"{name} runs {len(running)} VM(s) ({shown}): move them first, or force the removal "
            f"with the host's name typed (--force {name})"
        )

    def promotion_refusal(self, name: str) -> str | None:
        """Why ``name`` may not become its pool's master: it must answer now."""
        host = next((h for h in self._snapshot().hosts if h.name == name), None)
        if host is None:
            return f"no host {name!r} in the estate"
        if host.reachable is not True or host.stale:
            return (
                f"{name} does not answer now: a master must be reachable "
                "(promote a host that answers)"
            )
        return None

    async def apply(self, edit: EstateEdit, *, force: str | None = None) -> EditOutcome:
        """Make ``edit`` on the record. Raises ``ConfigError`` (bad input, a file changed on
        disk: nothing written), ``ActionRefused`` (read-only, VMs running, …)."""
        async with self._lock:
            return await self._apply_locked(edit, force)

    async def _apply_locked(self, edit: EstateEdit, force: str | None) -> EditOutcome:
        pool, host = edit.target()
        operation = Operation(edit.operation, edit.command, pool=pool, host=host)

        def check() -> None:
            if self._file is None:
                raise ActionRefused(NO_FILE)
            why: str | None = None
            if isinstance(edit, RemoveHost):
                why = self.removal_refusal(edit.name, force)
            elif isinstance(edit, Promote):
                why = self.promotion_refusal(edit.name)
            if why is not None:
                raise ActionRefused(why)

        async def work() -> EditOutcome:
            file = self._file
            assert file is not None  # check() refused otherwise
            detail = _detail(edit, file.estate)
            text = file.edited(edit)
            written, backup = await asyncio.to_thread(file.write, text)
            self._file = written
            differences = await self._apply(written.estate)
            return EditOutcome(edit, backup, detail, differences)

        done = await self._operations.run(
            operation, work, check=check, outcome=lambda out: (True, out.detail)
        )
        outcome = done.value
        if done.unrecorded is not None:
            outcome = EditOutcome(
                outcome.edit, outcome.backup, outcome.detail, outcome.differences, done.unrecorded
            )
        return outcome

    async def check_file(self) -> bool:
        """Reload the estate file if it changed on disk; True when a new estate was applied.
        Cheap when nothing changed: one ``stat``."""
        file = self._file
        if file is None or self._lock.locked():
            return False
        stamp = await asyncio.to_thread(FileStamp.of, file.path)
        if stamp is None or stamp == file.stamp or stamp == self._bad_stamp:
            return False
        async with self._lock:
            try:
                fresh = await asyncio.to_thread(EstateFile.read, file.path)
            except ConfigError as exc:
                self._bad_stamp = stamp
                self._tell(
                    f"The estate file changed on disk and is not valid now; the running "
                    f"estate is kept until it is fixed.\n{exc}",
                    True,
                )
                return False
            self._bad_stamp = None
            if fresh.digest == file.digest:
                self._file = fresh  # touched, not changed
                return False
            self._file = fresh
            differences = await self._apply(fresh.estate)
            summary = "; ".join(differences) if differences else "no host changed"
            self._tell(f"The estate file changed on disk: reloaded ({summary})", False)
            return True


def _detail(edit: EstateEdit, estate: EstateConfig) -> str:
    if isinstance(edit, Promote):
        before = old_master(estate, edit.name)
        was = f"from {before} " if before else ""
        return f"master of its pool moved {was}to {edit.name}; reason: {edit.reason}"
    return "estate file written"


def host_key(estate: EstateConfig, name: str) -> HostKey | None:
    """The key of host ``name``, if the estate has it."""
    return next((h.key for h in estate.hosts if h.name == name), None)
