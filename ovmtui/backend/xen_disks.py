"""Shared disks on Xen hosts over SSH: the file work of the pool's storage and ``vm.cfg`` edits.

Everything runs through the backend's ``run_command`` (``base.CommandRunner``): one argv a
command, quoted with ``shlex.join``, every path an argument of ``sh -c`` and never written
into its script, so a name that came from the storage (``x; touch /tmp/pwned``) stays one
argument.

- Create: ``<shared_storage>/sharedDisk/NAME.img`` made empty with the shell's noclobber
  (``set -C``: an existing file is never overwritten, even one that appears meanwhile),
  then sized: sparse with ``qemu-img create -f raw`` where the host has it, else ``truncate
  -s``; allocated with ``fallocate``, else ``dd`` from ``/dev/zero``. A failure removes the
  file it made.
- Attach and detach: a powered-off VM's ``vm.cfg`` is read, its disk list edited
  (``xen_parse.vm_cfg_write``), and written back by one script that checks the file is still
  the one read (its SHA-256), keeps it as ``vm.cfg.<UTC time>.bak``, writes the new one
  beside it and renames it into place, then prints it: the action counts as done once what
  it prints parses to the disk list intended. A running VM (a hot-plug, asked for
  explicitly) gets ``xm/xl block-attach`` / ``block-detach`` first, then the same edit, so
  that the disk is still there at its next start.
"""

from __future__ import annotations

import datetime
import hashlib
import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ovmtui.backend.base import CommandOutput, CommandRunner, DiskChange
from ovmtui.backend.xen_parse.common import toolstack_error
from ovmtui.backend.xen_parse.vm_cfg_write import (
    CfgEditRefused,
    disk_entries,
    with_disk_added,
    with_disk_removed,
    xen_disk_entry,
)
from ovmtui.errors import ActionFailed, ActionRefused
from ovmtui.model import Disk, Vm

CREATE_TIMEOUT_S = 3600.0  # dd of a large allocated disk writes every byte
COMMAND_TIMEOUT_S = 120.0
NEW_SUFFIX = ".ovmtui-new"

_CREATE_SCRIPT = r"""
p=$1 size=$2 how=$3
if [ -e "$p" ]; then echo "$p exists already: not overwritten" >&2; exit 3; fi
mkdir -p -- "${p%/*}" || exit 1
set -C
( : > "$p" ) 2>/dev/null || { echo "$p exists already: not overwritten" >&2; exit 3; }
set +C
fail() { rm -f -- "$p"; exit 1; }
if [ "$how" = allocate ]; then
    if fallocate -l "$size" -- "$p" 2>/dev/null; then echo fallocate; exit 0; fi
    dd if=/dev/zero of="$p" bs=1048576 count=$((size / 1048576)) conv=notrunc 2>/dev/null \
        || fail
    truncate -s "$size" -- "$p" || fail
    [ "$(stat -c %s -- "$p")" = "$size" ] || fail
    echo dd; exit 0
fi
if command -v qemu-img >/dev/null 2>&1; then
    qemu-img create -q -f raw "$p" "$size" || fail
    echo qemu-img; exit 0
fi
truncate -s "$size" -- "$p" || fail
echo truncate
"""

_WRITE_SCRIPT = r"""
cfg=$1 bak=$2 new=$3 want=$4
now=$(sha256sum < "$cfg") || exit 1
if [ "${now%% *}" != "$want" ]; then
    echo "$cfg changed since it was read: nothing written" >&2; exit 3
fi
base=${bak%.bak} n=1
while [ -e "$bak" ]; do bak="$base-$n.bak" n=$((n + 1)); done
cp -p -- "$cfg" "$bak" || exit 1
printf '%s\n' "$bak"
trap 'rm -f -- "$new"' EXIT
cat > "$new" || exit 1
mv -f -- "$new" "$cfg" || exit 1
cat -- "$cfg"
"""


def create_argv(path: str, size_bytes: int, *, allocate: bool) -> list[str]:
    return [
        "sh",
        "-c",
        _CREATE_SCRIPT,
        "sh",
        path,
        str(size_bytes),
        "allocate" if allocate else "sparse",
    ]


def create_command(path: str, size_bytes: int, *, allocate: bool) -> str:
    """What an operator would type (the script does it without ever overwriting)."""
    if allocate:
        return shlex.join(["fallocate", "-l", str(size_bytes), "--", path]) + (
            "  # or dd if=/dev/zero; never over an existing file"
        )
    return shlex.join(["qemu-img", "create", "-f", "raw", path, str(size_bytes)]) + (
        "  # or truncate -s; never over an existing file"
    )


def delete_argv(path: str) -> list[str]:
    return ["rm", "--", path]


def backup_path(config: str, now: datetime.datetime | None = None) -> str:
    """``vm.cfg.<UTC time>.bak`` beside ``config``."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return f"{config}.{moment.strftime('%Y%m%dT%H%M%SZ')}.bak"


def block_argv(tool: str, vm: Vm, disk: Disk, *, attach: bool) -> list[str]:
    """``xm block-attach DOM file:PATH DEV MODE`` (xl: ``DOM file:PATH,DEV,MODE``, xm's
    legacy spelling xl reads), ``block-detach DOM DEV``."""
    if not attach:
        return [tool, "block-detach", vm.name, disk.target]
    entry = xen_disk_entry(
        disk.source or "", disk.target, read_only=disk.read_only, shareable=disk.shareable
    )
    if tool == "xl":
        return [tool, "block-attach", vm.name, entry]
    uname, dev, mode = entry.rsplit(",", 2)
    return [tool, "block-attach", vm.name, uname, dev, mode]


@dataclass(frozen=True, slots=True)
class XenDisks:
    """The shared-disk work of one Xen host, through its ``run_command``."""

    runner: CommandRunner
    host: str
    tool: str

    async def create(self, path: str, size_bytes: int, *, allocate: bool) -> str:
        argv = create_argv(path, size_bytes, allocate=allocate)
        timeout = CREATE_TIMEOUT_S if allocate else COMMAND_TIMEOUT_S
        result = await self.runner.run_command(argv, timeout=timeout, label=f"create {path}")
        if result.exit_status != 0:
            raise ActionFailed(f"{self.host}: cannot create {path}: {_said(result)}")
        return result.text.strip() or "created"

    async def delete(self, path: str) -> None:
        result = await self.runner.run_command(
            delete_argv(path), timeout=COMMAND_TIMEOUT_S, label=f"rm {path}"
        )
        if result.exit_status != 0:
            raise ActionFailed(f"{self.host}: cannot delete {path}: {_said(result)}")

    async def read_config(self, config: str) -> str:
        result = await self.runner.run_command(
            ["cat", "--", config], timeout=COMMAND_TIMEOUT_S, label=f"cat {config}"
        )
        if result.exit_status != 0:
            raise ActionFailed(f"{self.host}: cannot read {config}: {_said(result)}")
        return result.text

    async def plan(
        self, vm: Vm, disk: Disk, *, config: str | None, attach: bool, live: bool
    ) -> DiskChange:
        path = disk.source or ""
        before = after = None
        if config is not None:
            before = await self.read_config(config)
            try:
                if attach:
                    entry = xen_disk_entry(
                        path, disk.target, read_only=disk.read_only, shareable=disk.shareable
                    )
                    after = with_disk_added(before, entry)
                else:
                    after, _entry = with_disk_removed(before, path)
            except CfgEditRefused as exc:
                raise CfgEditRefused(f"{config}: {exc.message}") from None
        elif not live:
            raise ActionRefused(
                f"{vm.name}: no vm.cfg known for it on {self.host} (and no shared_storage "
                "for its pool): its disk list cannot be edited"
            )
        if live:
            command = shlex.join(block_argv(self.tool, vm, disk, attach=attach))
            if config is not None:
                command += f"  # and {config} edited, so that it stays"
        else:
            assert config is not None
            verb = "disk list +=" if attach else "disk list -="
            command = f"# {config}: {verb} {path} as {disk.target} (old kept as .bak)"
        return DiskChange(vm, disk, attach, live, command, config, before, after)

    async def apply(self, change: DiskChange) -> str:
        done: list[str] = []
        if change.live:
            argv = block_argv(self.tool, change.vm, change.disk, attach=change.attach)
            result = await self.runner.run_command(
                argv, timeout=COMMAND_TIMEOUT_S, label=shlex.join(argv)
            )
            if result.exit_status != 0:
                said = toolstack_error(result.text, result.error_text)
                raise ActionFailed(f"{self.host}: {shlex.join(argv)}: {said}")
            done.append(f"{'attached to' if change.attach else 'detached from'} the running guest")
        if (
            change.config_path is not None
            and change.before is not None
            and change.after is not None
        ):
            try:
                backup = await self.write_config(change.config_path, change.before, change.after)
            except ActionFailed as exc:
                if not done:
                    raise
                raise ActionFailed(
                    f"{done[0]}, but {exc.message}: at its next start it is "
                    + ("gone again" if change.attach else "back")
                ) from None
            done.append(f"{change.config_path} written (old kept as {posixpath.basename(backup)})")
        return "; ".join(done)

    async def write_config(self, config: str, before: str, after: str) -> str:
        """Write ``after`` over ``config`` if it still holds ``before``; returns the backup
        (``vm.cfg.<UTC time>.bak``, ``-1``, ``-2``… after it when one of that second is
        there)."""
        backup = backup_path(config)
        want = hashlib.sha256(before.encode()).hexdigest()
        argv = ["sh", "-c", _WRITE_SCRIPT, "sh", config, backup, config + NEW_SUFFIX, want]
        result = await self.runner.run_command(
            argv, timeout=COMMAND_TIMEOUT_S, label=f"write {config}", input=after.encode()
        )
        if result.exit_status != 0:
            raise ActionFailed(f"{self.host}: {config} not written: {_said(result)}")
        backup, _newline, readback = result.text.partition("\n")
        # Read back and parsed before it counts as done.
        try:
            entries = disk_entries(readback)
        except CfgEditRefused as exc:
            entries = (f"unreadable: {exc.message}",)
        if readback != after or entries != disk_entries(after):
            raise ActionFailed(
                f"{self.host}: {config} does not read back as written "
                f"(the old one is {backup}): check it by hand"
            )
        return backup


def _said(result: CommandOutput) -> str:
    lines: Sequence[str] = [line for line in result.error_text.splitlines() if line.strip()]
    if not lines:
        lines = [line for line in result.text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {result.exit_status}"
