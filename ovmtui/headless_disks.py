"""``ovmtui disk create|attach|detach|delete``: shared disks from a shell.

Through the same core as the TUI (``EstateSession.disks``): the same rules, the same plans
shown before anything runs (the command, or the ``vm.cfg`` diff), the same journal. Exit
status: 0 done; 1 refused (by a rule, which is named; by the operator; by read-only mode) or
failed on the host; 2 bad input (a size like ``10x``, a name with ``/``, ``..`` or shell
characters, an unknown VM or pool).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused, OvmError
from ovmtui.headless import find_vm, host_key_for, session_for
from ovmtui.services.disk_rules import RULE_TITLES, BadInput, disk_name, disk_size
from ovmtui.services.session import EstateSession
from ovmtui.services.shared_disks import DiskPlan, RuleRefused

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


def add_disk_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    estate: argparse.ArgumentParser,
) -> None:
    """``ovmtui disk …`` and its four verbs."""
    disk = commands.add_parser(
        "disk",
        parents=[estate],
        help="shared disks of a pool's sharedDisk folder: create, attach, detach, delete",
    )
    verbs = disk.add_subparsers(dest="disk_command", metavar="ACTION", required=True)
    create = verbs.add_parser(
        "create", parents=[estate], help="a new raw file <shared_storage>/sharedDisk/NAME.img"
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("size", metavar="SIZE", help="like 10G, 512M, 1T")
    create.add_argument("--pool", metavar="P", help="default: the estate's one pool with storage")
    create.add_argument(
        "--shareable", action="store_true", help="several VMs may write it (a cluster's disk)"
    )
    create.add_argument(
        "--allocate", action="store_true", help="write every byte now (default: sparse)"
    )
    attach = verbs.add_parser(
        "attach", parents=[estate], help="attach a shared disk to a VM of its pool"
    )
    attach.add_argument("name", metavar="NAME")
    attach.add_argument("vm", metavar="VM", help="its name or UUID")
    attach.add_argument("--read-only", dest="disk_read_only", action="store_true")
    attach.add_argument(
        "--live", action="store_true", help="hot-plug into a running VM (where the host can)"
    )
    detach = verbs.add_parser("detach", parents=[estate], help="take a shared disk out of a VM")
    detach.add_argument("name", metavar="NAME")
    detach.add_argument("vm", metavar="VM", help="its name or UUID")
    detach.add_argument("--live", action="store_true", help="from a running VM too")
    delete = verbs.add_parser("delete", parents=[estate], help="delete a shared disk no VM holds")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--pool", metavar="P")
    for verb in (create, attach, detach, delete):
        verb.add_argument("--host", metavar="HOST", help=argparse.SUPPRESS)
        verb.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")


def run_disk_command(
    estate: EstateConfig,
    repository: Path,
    args: argparse.Namespace,
    confirm: Callable[[str], bool],
) -> int:
    try:
        name = disk_name(args.name)
        size = disk_size(args.size) if args.disk_command == "create" else None
    except BadInput as exc:
        print(f"ovmtui: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return asyncio.run(
        disk_report(estate, repository, args, name, size, sys.stdout, confirm, sys.stderr)
    )


async def disk_report(
    estate: EstateConfig,
    repository: Path,
    args: argparse.Namespace,
    name: str,
    size: int | None,
    out: TextIO,
    confirm: Callable[[str], bool],
    warn: TextIO,
) -> int:
    """Plan, show, ask, run; see the module docstring for the exit status."""
    if getattr(args, "read_only", False):
        warn.write("ovmtui: Action refused: read-only mode: nothing was done\n")
        return EXIT_REFUSED
    async with session_for(estate, repository, warn) as session:
        await session.poll_once()
        try:
            plan = await _plan(session, estate, args, name, size)
        except BadInput as exc:
            warn.write(f"ovmtui: bad input: {exc}\n")
            return EXIT_BAD_INPUT
        except OvmError as exc:
            return _refused(exc, warn)
        try:
            if not confirm(f"{plan.shown}\n"):
                warn.write("ovmtui: not confirmed: nothing was done\n")
                return EXIT_REFUSED
            done = await session.disks.run(plan)
        except OvmError as exc:
            return _refused(exc, warn)
        out.write(f"{done.value}\n")
        if done.unrecorded:
            warn.write(f"ovmtui: done, but not in the journal: {done.unrecorded}\n")
        return 0


def _refused(exc: OvmError, warn: TextIO) -> int:
    if isinstance(exc, RuleRefused):
        warn.write(f"ovmtui: refused by the rule '{RULE_TITLES[exc.rule]}' ({exc.rule}): ")
        warn.write(f"{exc.message}\n")
    else:
        warn.write(f"ovmtui: {exc.title}: {exc.message}\n")
    # A refusal (a rule, read-only mode) or a failure on the host: nothing, or not all of it,
    # was done; never bad input, which is told before anything is asked of the hosts.
    return EXIT_REFUSED


async def _plan(
    session: EstateSession,
    estate: EstateConfig,
    args: argparse.Namespace,
    name: str,
    size: int | None,
) -> DiskPlan:
    command = args.disk_command
    if command in ("attach", "detach"):
        where = host_key_for(estate, args.host) if args.host else None
        try:
            placed = find_vm(session.snapshot, args.vm, where)
        except ActionRefused as exc:
            raise BadInput(exc.message) from None
        if command == "attach":
            return await session.disks.plan_attach(
                placed.pool, name, placed, read_only=args.disk_read_only, live=args.live
            )
        return await session.disks.plan_detach(placed.pool, name, placed, live=args.live)
    pool = _pool(estate, args.pool)
    if command == "create":
        assert size is not None
        return await session.disks.plan_create(
            pool, name, size, allocate=args.allocate, shareable=args.shareable
        )
    return await session.disks.plan_delete(pool, name)


def _pool(estate: EstateConfig, asked: str | None) -> str:
    with_storage = [p.name for p in estate.pools if p.shared_storage]
    if asked is not None:
        if asked not in {p.name for p in estate.pools}:
            raise BadInput(f"no pool {asked!r} in the estate file")
        return asked
    if len(with_storage) == 1:
        return with_storage[0]
    if not with_storage:
        raise BadInput("no pool of the estate file has a shared_storage")
    raise BadInput(f"several pools have shared storage ({', '.join(with_storage)}): say --pool")
