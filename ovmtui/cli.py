"""Command line: the TUI by default, headless subcommands for scripts and jump hosts.

Configuration errors are reported here, before any screen is drawn, with exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import select
import shlex
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ovmtui import __version__
from ovmtui.config import (
    MAX_WAITING_RANGE,
    EstateConfig,
    default_config_path,
    default_repository_path,
    load_estate,
)
from ovmtui.errors import ActionRefused, ConfigError, OvmError, RepositoryError
from ovmtui.model import VmAction

if TYPE_CHECKING:
    from ovmtui.services.consoles import ConsoleRequest
    from ovmtui.store.estate_file import EstateFile

EXIT_CONFIG = 2
EXIT_READER_LEFT = 128 + 13  # what a shell shows for a process killed by SIGPIPE


def _estate_options(*, in_subcommand: bool = False) -> argparse.ArgumentParser:
    # A subcommand's copy of these options must not reset what was given before the
    # subcommand ("ovmtui --demo inventory"): argparse would apply the subparser's defaults.
    parent = argparse.ArgumentParser(
        add_help=False, argument_default=argparse.SUPPRESS if in_subcommand else None
    )
    source = parent.add_mutually_exclusive_group()
    source.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="estate file (default: $XDG_CONFIG_HOME/ovmtui/estate.toml)",
    )
    source.add_argument(
        "--demo",
        action="store_true",
        help="use the bundled demo estate (libvirt test driver: no hosts, no network, no root)",
    )
    parent.add_argument(
        "--repository",
        metavar="PATH",
        type=Path,
        help="the SQLite repository (default: repository = in the estate file, else "
        "$XDG_DATA_HOME/ovmtui/repository.sqlite; the demo keeps its own)",
    )
    parent.add_argument(
        "--console-log",
        metavar="DIR",
        type=Path,
        help="where consoles' session logs go (default: $XDG_STATE_HOME/ovmtui/consoles)",
    )
    parent.add_argument(
        "--max-waiting",
        metavar="N",
        type=_max_waiting,
        help="hosts waited on at once: connects and commands in flight "
        "(default: max_waiting = in the estate file, else 64)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovmtui",
        description="Keyboard-driven console for pools of libvirt and Xen hosts.",
        parents=[_estate_options()],
    )
    estate = _estate_options(in_subcommand=True)
    parser.add_argument("--version", action="version", version=f"ovmtui {__version__}")
    parser.add_argument(
        "--interval",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="refresh interval (default: 5)",
    )
    parser.add_argument("--read-only", action="store_true", help="show everything, change nothing")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    inventory = commands.add_parser(
        "inventory", parents=[estate], help="print the whole estate once and exit"
    )
    inventory.add_argument("--json", action="store_true", help="one JSON object")
    backup = commands.add_parser(
        "backup", parents=[estate], help="an online backup of the repository; prints its path"
    )
    backup.add_argument("--to", metavar="DIR", type=Path, help="default: backups/ beside it")
    backup.add_argument(
        "--keep", type=int, default=30, metavar="N", help="keep the newest N there (0: all)"
    )
    backups = commands.add_parser(
        "backups", parents=[estate], help="list backups with what they hold and if they verify"
    )
    backups.add_argument("--dir", metavar="DIR", type=Path, help="default: backups/ beside it")
    backups.add_argument("--json", action="store_true", help="a JSON list")
    restore = commands.add_parser(
        "restore",
        parents=[estate],
        help="replace the repository with a backup (verified first; the current one is backed up)",
    )
    restore.add_argument("file", metavar="FILE", type=Path, help="the backup to restore")
    restore.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")
    restore.add_argument(
        "--from-other-repository",
        action="store_true",
        help="restore a backup of another repository (or of unknown origin): refused otherwise",
    )
    drift = commands.add_parser(
        "drift", parents=[estate], help="VMs recorded as active that no host reports (exit 1)"
    )
    drift.add_argument("--json", action="store_true", help="a JSON list")
    reconcile = commands.add_parser(
        "reconcile",
        parents=[estate],
        help="forget VMs in drift (all, or the UUIDs given), after a backup; journaled",
    )
    reconcile.add_argument("uuids", nargs="*", metavar="UUID", help="default: every one")
    reconcile.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")
    jobs = commands.add_parser(
        "jobs", parents=[estate], help="long-running work (bulk actions, exports) and its state"
    )
    jobs.add_argument("--json", action="store_true", help="a JSON list")
    audit = commands.add_parser(
        "audit", parents=[estate], help="the audit journal; 'audit verify' checks its chain"
    )
    audit.add_argument("verify", nargs="?", choices=["verify"], help="check the hash chain")
    audit.add_argument("--json", action="store_true", help="a JSON list")
    audit.add_argument("--host", help="only this host")
    audit.add_argument("--vm", help="only this VM")
    audit.add_argument("--user", help="only this user")
    audit.add_argument("--result", choices=["ok", "failed", "unfinished"])
    export = commands.add_parser(
        "export-definitions",
        parents=[estate],
        help="save every VM's definition into one verified archive; prints its path",
    )
    export.add_argument(
        "--to", metavar="DIR", type=Path, help="default: definitions/ beside the repository"
    )
    define = commands.add_parser(
        "import-definition",
        parents=[estate],
        help="define a VM again from an archive (refused while it exists anywhere)",
    )
    define.add_argument("archive", metavar="ARCHIVE", type=Path, help="from export-definitions")
    define.add_argument("vm", metavar="VM", help="its name or UUID in the archive")
    define.add_argument(
        "--host", required=True, metavar="HOST", help="where to define it: name or pool/name"
    )
    define.add_argument(
        "--trust-archive",
        action="store_true",
        help="import even if the archive is not verified as this repository's (signed by "
        "another one, unsigned, or changed since); the journal records it",
    )
    migrate = commands.add_parser(
        "migrate",
        parents=[estate],
        help="check every target, then move a VM to another host of its pool",
    )
    migrate.add_argument("vm", metavar="VM", help="its name or UUID")
    migrate.add_argument("target", metavar="HOST", nargs="?", help="default: the best go host")
    migrate.add_argument("--host", metavar="HOST", help="where the VM runs (a name held twice)")
    migrate.add_argument("--dry-run", action="store_true", help="the checks only; change nothing")
    migrate.add_argument("--json", action="store_true", help="the plan (and result) as JSON")
    migrate.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")
    migrate.add_argument(
        "--offline", action="store_true", help="a shut-off VM: move its definition only"
    )
    migrate.add_argument(
        "--override",
        metavar="REASON",
        help="move to a target that is no go; the failed checks and REASON are journaled",
    )
    evacuate = commands.add_parser(
        "evacuate",
        parents=[estate],
        help="move every running VM of a host to the others of its pool",
    )
    evacuate.add_argument("host", metavar="HOST", help="name or pool/name")
    evacuate.add_argument("--dry-run", action="store_true", help="the plan only; change nothing")
    evacuate.add_argument("--json", action="store_true", help="the plan as JSON")
    evacuate.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")
    evacuate.add_argument(
        "--parallel", type=int, default=1, metavar="N", help="migrations at once (default: 1)"
    )
    console = commands.add_parser(
        "console",
        parents=[estate],
        help="a VM's serial console, full screen (Ctrl+] ends it), as virsh console",
    )
    console.add_argument("vm", metavar="VM", help="its name or UUID")
    console.add_argument("--host", metavar="HOST", help="where it runs (a name held twice)")
    console.add_argument(
        "--force",
        action="store_true",
        help="take the console from another client (libvirt hosts); never the default",
    )
    console.add_argument(
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS,
        help="watch only: no key is sent to the guest",
    )
    from ovmtui.headless_disks import add_disk_parser

    add_disk_parser(commands, estate)
    show = commands.add_parser(
        "show",
        parents=[estate],
        help="one VM: state, sizes, disks, NICs and definition, as its screen shows them",
    )
    show.add_argument("vm", metavar="VM", help="its name or UUID")
    show.add_argument("--host", metavar="HOST", help="where it runs (a name held twice)")
    show.add_argument("--json", action="store_true", help="one JSON object")
    storage = commands.add_parser(
        "storage",
        parents=[estate],
        help="a pool's shared storage (Oracle VM's layout) with its library and users",
    )
    storage.add_argument("--pool", metavar="POOL", help="default: the only pool")
    storage.add_argument("--json", action="store_true", help="one JSON object")
    resource = commands.add_parser(
        "resource",
        parents=[estate],
        help="the library of a pool's storage: register, approve, delete (journaled)",
    )
    resource_verbs = resource.add_subparsers(dest="verb", required=True, metavar="VERB")
    register = resource_verbs.add_parser("register", help="files of the storage into the library")
    register.add_argument("path", nargs="?", metavar="PATH", help="a path or a name")
    register.add_argument("--all", action="store_true", help="every unregistered entry")
    approve = resource_verbs.add_parser("approve", help="a pending resource, as the OS user")
    approve.add_argument("path", metavar="NAME", help="a name or path")
    delete = resource_verbs.add_parser("delete", help="a resource's files and its record")
    delete.add_argument("path", metavar="NAME", help="a name or path")
    delete.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")
    resource_import = resource_verbs.add_parser(
        "import",
        help="fetch a resource from an http://, https:// or ftp:// URL into the pool's storage",
    )
    resource_import.add_argument("url", metavar="URL")
    resource_import.add_argument(
        "--kind", required=True, choices=("iso", "template", "image"), help="what it is"
    )
    resource_import.add_argument("--name", help="its name (default: from the URL)")
    resource_import.add_argument("--sha256", metavar="HEX", help="refuse it unless it matches")
    resource_import.add_argument("--pool", help="into which pool (default: the only one)")
    for verb_parser in (register, approve, delete):
        verb_parser.add_argument(
            "--pool", metavar="POOL", help="default: from the path, or the only pool"
        )
    verbs_of = _restore_commands(commands, estate)
    _estate_commands(verbs_of, estate)
    test = verbs_of["host"].add_parser(
        "test",
        parents=[estate],
        help="test the connection to a host: every check with its result and time",
    )
    test.add_argument(
        "name", metavar="NAME", nargs="?", help="a host of the estate: name or pool/name"
    )
    adhoc = test.add_mutually_exclusive_group()
    adhoc.add_argument("--libvirt", metavar="URI", help="a host in no estate file: its libvirt URI")
    adhoc.add_argument(
        "--ssh", metavar="TARGET", help="a Xen host in no estate file: user@host[:port]"
    )
    test.add_argument("--identity", metavar="FILE", help="with --ssh: the private key")
    test.add_argument(
        "--known-hosts", metavar="FILE", help="with --ssh: default ~/.ssh/known_hosts"
    )
    test.add_argument(
        "--pool", metavar="POOL", help="with --libvirt/--ssh: check that pool's shared storage"
    )
    test.add_argument("--json", action="store_true", help='{"host", "checks": [...]}')
    test.add_argument(
        "--accept-new-key",
        action="store_true",
        help="an unknown host key: show its fingerprint, ask on a terminal, add it to "
        "known_hosts and test again (a changed key is never accepted)",
    )
    for action in VmAction:
        verb = commands.add_parser(
            action.value,
            parents=[estate],
            help=f"{action.label.lower()} VMs, as the TUI does: checked, asked, journaled",
        )
        verb.add_argument("vms", nargs="+", metavar="VM", help="a VM's name or UUID")
        verb.add_argument("--host", metavar="HOST", help="where: name or pool/name")
        verb.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")
        verb.add_argument("--json", action="store_true", help="one result per VM, as JSON")
        verb.add_argument(
            "--read-only", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


# The verbs of `ovmtui pool` and `ovmtui host` that edit the estate file.
ESTATE_VERBS = {"pool": ("add", "remove"), "host": ("add", "edit", "remove", "roles", "promote")}


def _estate_commands(verbs_of: dict[str, Any], estate: argparse.ArgumentParser) -> None:
    """`pool add|remove` and `host add|edit|remove|roles|promote`: the estate file edited
    (verbs of the `pool` and `host` commands, beside their others: test, restore)."""
    pools, hosts = verbs_of["pool"], verbs_of["host"]
    add = pools.add_parser("add", parents=[estate], help="a new pool, with no host yet")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--shared-storage", metavar="PATH", help="where its hosts mount the pool's storage"
    )
    remove = pools.add_parser("remove", parents=[estate], help="a pool with no host left")
    remove.add_argument("name", metavar="NAME")
    add = hosts.add_parser("add", parents=[estate], help="a new host in a pool")
    add.add_argument("pool", metavar="POOL")
    add.add_argument("name", metavar="NAME")
    _connection_options(add)
    edit = hosts.add_parser(
        "edit", parents=[estate], help="a host's connection and roles, replaced whole"
    )
    edit.add_argument("name", metavar="NAME")
    _connection_options(edit)
    remove = hosts.add_parser(
        "remove", parents=[estate], help="a host out of the estate (refused while it runs VMs)"
    )
    remove.add_argument("name", metavar="NAME")
    remove.add_argument(
        "--force",
        metavar="NAME",
        help="remove it although it runs VMs: its name, typed again",
    )
    roles = hosts.add_parser("roles", parents=[estate], help="set a host's pool roles")
    roles.add_argument("name", metavar="NAME")
    roles.add_argument("roles", metavar="ROLES", help="master,utility,vm (any of them; '' none)")
    promote = hosts.add_parser(
        "promote", parents=[estate], help="make a reachable host its pool's master"
    )
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("--reason", required=True, metavar="TEXT", help="journaled with it")
    for noun, verbs in (("pool", pools), ("host", hosts)):
        for verb in ESTATE_VERBS[noun]:
            verbs.choices[verb].add_argument(
                "--read-only",
                action="store_true",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )


def _connection_options(parser: argparse.ArgumentParser) -> None:
    way = parser.add_mutually_exclusive_group(required=True)
    way.add_argument("--libvirt", metavar="URI", help="a libvirt URI (qemu+ssh://root@h1/system)")
    way.add_argument("--ssh", metavar="USER@HOST[:PORT]", help="a Xen host: xm/xl over SSH")
    parser.add_argument("--identity", metavar="FILE", help="the SSH key (with --ssh)")
    parser.add_argument("--toolstack", metavar="auto|xm|xl", help="with --ssh (default: auto)")
    parser.add_argument("--jump", metavar="USER@HOST", help="a bastion, like ssh -J (with --ssh)")
    parser.add_argument("--roles", metavar="ROLES", help="master,utility,vm (any of them)")


def _estate_edit(args: argparse.Namespace) -> int:
    from ovmtui.headless_estate import estate_edit_report
    from ovmtui.store import estate_file as ef

    if args.demo:
        raise ConfigError("the demo estate is built in: there is no file to edit")
    path = args.config if args.config is not None else default_config_path()
    force: str | None = None
    edit: ef.EstateEdit
    if args.command == "pool":
        if args.verb == "add":
            edit = ef.AddPool(args.name, args.shared_storage)
        else:
            edit = ef.RemovePool(args.name)
    elif args.verb in ("add", "edit"):
        if args.libvirt is not None and (args.identity or args.toolstack or args.jump):
            raise ConfigError(
                "--identity, --toolstack and --jump go with --ssh: a libvirt URI carries its "
                "own way in (qemu+ssh://user@host/system?keyfile=…)"
            )
        spec = ef.HostSpec(
            libvirt=args.libvirt,
            ssh=args.ssh,
            identity=args.identity,
            toolstack=args.toolstack,
            jump=args.jump,
            roles=None if args.roles is None else ef.parse_roles(args.roles),
        )
        if args.verb == "add":
            edit = ef.AddHost(args.pool, args.name, spec)
        else:
            edit = ef.EditHost(args.name, spec)
    elif args.verb == "remove":
        force = args.force
        edit = ef.RemoveHost(args.name, forced=force is not None)
    elif args.verb == "roles":
        edit = ef.SetRoles(args.name, ef.parse_roles(args.roles))
    else:
        edit = ef.Promote(args.name, args.reason)
    # Where every other command records: --repository, else the file's, else the default.
    repository = resolve_repository(args, load_estate(path))
    return asyncio.run(
        estate_edit_report(
            path,
            repository,
            edit,
            sys.stdout,
            force=force,
            read_only=getattr(args, "read_only", False),
            warn=sys.stderr,
        )
    )


def _restore_commands(commands: Any, estate: argparse.ArgumentParser) -> dict[str, Any]:
    """``history``, ``host restore`` and ``pool restore``: the kept definitions. Returns the
    ``host`` and ``pool`` commands' verbs, for their other verbs."""
    verbs_of: dict[str, Any] = {}
    history = commands.add_parser(
        "history",
        parents=[estate],
        help="the recorded versions of a VM's definition (when, where, SHA-256)",
    )
    history.add_argument("vm", metavar="VM", help="its name or UUID")
    history.add_argument(
        "--diff",
        nargs="*",
        metavar="VERSION",
        help="show what changed: each version against the one before, or between two "
        "versions (their numbers or SHA-256 prefixes)",
    )
    history.add_argument("--json", action="store_true", help="one JSON object")
    for noun, what in (("host", "a host"), ("pool", "every host of a pool, masters first,")):
        group = commands.add_parser(noun, parents=[estate], help=f"{noun} administration")
        verbs = verbs_of[noun] = group.add_subparsers(dest="verb", metavar="VERB", required=True)
        restore = verbs.add_parser(
            "restore",
            parents=[estate],
            help=f"define again on {what} what the repository last saw there (after a "
            "reinstall): networks and storage pools first, then VMs",
        )
        restore.add_argument("name", metavar=noun.upper(), help="its name (a host: or pool/name)")
        restore.add_argument(
            "--dry-run", action="store_true", help="what would be defined, skipped, refused"
        )
        restore.add_argument(
            "--start", action="store_true", help="start again the VMs that were running"
        )
        restore.add_argument("--json", action="store_true", help="the plan (and result) as JSON")
        restore.add_argument(
            "--yes", action="store_true", help="do not ask (needed off a terminal)"
        )
    return verbs_of


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0.2 <= value <= 3600:
        raise argparse.ArgumentTypeError("expected between 0.2 and 3600 seconds")
    return value


def _max_waiting(text: str) -> int:
    low, high = MAX_WAITING_RANGE
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of hosts, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected from {low} to {high} hosts")
    return value


def resolve_estate(args: argparse.Namespace) -> EstateConfig:
    return _resolve(args)[0]


def _resolve(
    args: argparse.Namespace, *, with_file: bool = False
) -> tuple[EstateConfig, EstateFile | None]:
    """The estate, and with ``with_file`` the file it was read from, as read (the TUI edits
    it and follows it; None: the demo's, built in)."""
    file: EstateFile | None = None
    if args.demo:
        from ovmtui.demo import demo_estate

        estate = demo_estate()
    else:
        path = args.config if args.config is not None else default_config_path()
        estate = load_estate(path)  # its own words for a missing or unreadable file
        if with_file:
            from ovmtui.store.estate_file import EstateFile

            # The text, hash and time edits compare against: the estate is taken from it.
            file = EstateFile.read(path)
            estate = file.estate
    if getattr(args, "max_waiting", None) is not None:
        estate = dataclasses.replace(estate, max_waiting=args.max_waiting)
    return estate, file


def resolve_repository(args: argparse.Namespace, estate: EstateConfig | None) -> Path:
    if args.repository is not None:
        return Path(args.repository).expanduser()
    if estate is not None and estate.repository is not None:
        return estate.repository
    default = default_repository_path()
    if args.demo:
        # The demo's made-up hosts must not mix with a real estate's last-known state.
        from ovmtui.demo import demo_repository_name

        return default.with_name(demo_repository_name())
    return default


# Libraries whose warnings speak to their own developers, not to an operator: asyncssh
# touches cryptography's deprecated DSA when it is imported, ten lines on every run with an
# SSH host. Matched on the module the warning is attributed to, so ovmtui's own still show.
LIBRARY_WARNINGS = r"(asyncssh|cryptography)(\.|$)"


def quiet_library_warnings() -> None:
    """Hide the libraries' warnings, unless warnings were asked for (-W, PYTHONWARNINGS, -X dev)."""
    if sys.warnoptions or sys.flags.dev_mode:
        return
    warnings.filterwarnings("ignore", module=LIBRARY_WARNINGS)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_library_warnings()
    try:
        try:
            return _main(argv)
        finally:
            # A reader that left after the last write is only seen here; at exit, Python
            # would print "Exception ignored ... BrokenPipeError" about it.
            sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # a socket or a pipe of our own broke: a bug to see, not a reader leaving
        return _reader_left()


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader has closed it (`ovmtui … | head`)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real file: not a closed pipe
        return False


def _reader_left() -> int:
    """Exit as git and grep do when their reader leaves: no message, killed by SIGPIPE.

    A shell then sees 141, like every other command of the pipeline, and a script with
    `set -o pipefail` treats ovmtui as it treats them.
    """
    # Whatever runs before the process ends must not meet the closed pipe again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    return EXIT_READER_LEFT  # no SIGPIPE on this system: the status a shell would show


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "audit":
            return _audit(args)
        if args.command == "drift":
            from ovmtui.headless import drift_report

            return asyncio.run(
                drift_report(_existing_repository(args), sys.stdout, as_json=args.json)
            )
        if args.command == "reconcile":
            return _reconcile(args)
        if args.command == "jobs":
            from ovmtui.headless import jobs_report

            return asyncio.run(
                jobs_report(_existing_repository(args), sys.stdout, as_json=args.json)
            )
        if args.command in ("backup", "backups"):
            return _backups(args)
        if args.command == "restore":
            return _restore(args)
        if args.command in ("pool", "host") and args.verb in ESTATE_VERBS[args.command]:
            return _estate_edit(args)
        if args.command == "history":
            from ovmtui.headless_restore import history_report

            return asyncio.run(
                history_report(
                    _existing_repository(args),
                    args.vm,
                    sys.stdout,
                    diff=args.diff,
                    as_json=args.json,
                )
            )
        if args.command == "host" and args.verb == "test" and args.name is None:
            # An ad-hoc target needs no estate file; one that is there names the pools.
            estate, estate_file = _estate_if_any(args), None
        else:
            estate, estate_file = _resolve(args, with_file=args.command is None)
        repository = resolve_repository(args, estate)
        if args.command == "inventory":
            return _inventory(estate, repository, as_json=args.json)
        if args.command == "export-definitions":
            return _export_definitions(estate, repository, args.to)
        if args.command == "import-definition":
            return _import_definition(estate, repository, args)
        if args.command in {action.value for action in VmAction}:
            return _vm_action(estate, repository, VmAction(args.command), args)
        if args.command == "console":
            return _console(estate, repository, args)
        if args.command == "show":
            return _show(estate, repository, args)
        if args.command == "migrate":
            return _migrate(estate, repository, args)
        if args.command == "evacuate":
            return _evacuate(estate, repository, args)
        if args.command == "storage":
            from ovmtui.headless_storage import storage_report

            return asyncio.run(
                storage_report(
                    estate, repository, args.pool, sys.stdout, as_json=args.json, warn=sys.stderr
                )
            )
        if args.command == "resource":
            return _resource(estate, repository, args)
        if args.command == "disk":
            from ovmtui.headless_disks import run_disk_command

            return run_disk_command(
                estate, repository, args, _confirmer(args, f"{args.disk_command.title()}?")
            )
        if args.command == "host" and args.verb == "test":
            return _host_test(estate, repository, args)
        if args.command in ("host", "pool") and args.verb == "restore":
            return _restore_host(estate, repository, args)
        return _run_tui(
            estate,
            repository,
            interval_s=args.interval,
            read_only=args.read_only,
            console_log_dir=args.console_log,
            estate_file=estate_file,
        )
    except OvmError as exc:
        print(f"ovmtui: {exc.title}: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _repository_only(args: argparse.Namespace) -> Path:
    """Where the repository is, for commands that need nothing else of the estate file."""
    # The estate file only matters for where the repository is; a missing one is fine here.
    estate = None
    if not args.demo and args.repository is None:
        with contextlib.suppress(ConfigError):
            estate = resolve_estate(args)
    return resolve_repository(args, estate)


def _existing_repository(args: argparse.Namespace) -> Path:
    repository = _repository_only(args)
    if not repository.exists():
        raise RepositoryError(f"{repository}: no repository there yet (nothing recorded)")
    return repository


def _backups(args: argparse.Namespace) -> int:
    from ovmtui.headless import backup, list_backups_report

    repository = _existing_repository(args)
    if args.command == "backup":
        return asyncio.run(backup(repository, args.to, args.keep, sys.stdout))
    return asyncio.run(list_backups_report(repository, args.dir, sys.stdout, as_json=args.json))


def _confirmer(args: argparse.Namespace, prompt: str) -> Callable[[str], bool]:
    """Shows what will change; asks on a terminal unless --yes; refuses elsewhere."""

    def confirm(question: str) -> bool:
        print(question)
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise ActionRefused(
                "not on a terminal: pass --yes to go on without asking", title="Not confirmed"
            )
        try:
            answer = input(f"{prompt} Type 'yes' to go on: ")
        except EOFError:
            return False
        return answer.strip().lower() == "yes"

    return confirm


def _reconcile(args: argparse.Namespace) -> int:
    from ovmtui.headless import reconcile_report
    from ovmtui.identity import current_user

    return asyncio.run(
        reconcile_report(
            _existing_repository(args),
            args.uuids,
            sys.stdout,
            confirm=_confirmer(args, "Reconcile?"),
            user=current_user(),
        )
    )


def _restore(args: argparse.Namespace) -> int:
    from ovmtui.headless import restore
    from ovmtui.identity import current_user

    repository = _repository_only(args)
    confirm = _confirmer(args, "Restore?")
    return asyncio.run(
        restore(
            repository,
            args.file,
            sys.stdout,
            confirm=confirm,
            user=current_user(),
            from_other_repository=args.from_other_repository,
        )
    )


def _audit(args: argparse.Namespace) -> int:
    from ovmtui.headless import audit, audit_verify

    repository = _existing_repository(args)
    if args.verify:
        return asyncio.run(audit_verify(repository, sys.stdout))
    return asyncio.run(
        audit(
            repository,
            sys.stdout,
            as_json=args.json,
            host=args.host,
            vm=args.vm,
            user=args.user,
            result=args.result,
        )
    )


def _inventory(estate: EstateConfig, repository: Path, *, as_json: bool) -> int:
    from ovmtui.headless import poll_estate_once, print_inventory

    snapshot = asyncio.run(poll_estate_once(estate, repository, warn=sys.stderr))
    return print_inventory(snapshot, sys.stdout, as_json=as_json)


def _export_definitions(estate: EstateConfig, repository: Path, directory: Path | None) -> int:
    from ovmtui.headless import export_definitions_report

    return asyncio.run(
        export_definitions_report(estate, repository, directory, sys.stdout, warn=sys.stderr)
    )


def _import_definition(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless import import_definition_report

    # The journal records the command as typed, every argument quoted.
    words = ["ovmtui", "import-definition", str(args.archive), args.vm, "--host", args.host]
    command = shlex.join([*words, "--trust-archive"] if args.trust_archive else words)
    return asyncio.run(
        import_definition_report(
            estate,
            repository,
            args.archive,
            args.vm,
            args.host,
            sys.stdout,
            command=command,
            warn=sys.stderr,
            trust_archive=args.trust_archive,
        )
    )


def _vm_action(
    estate: EstateConfig, repository: Path, action: VmAction, args: argparse.Namespace
) -> int:
    from ovmtui.headless import vm_action_report

    return asyncio.run(
        vm_action_report(
            estate,
            repository,
            action,
            args.vms,
            sys.stdout,
            host=args.host,
            confirm=_confirmer(args, f"{action.label}?"),
            as_json=args.json,
            read_only=args.read_only,
            warn=sys.stderr,
        )
    )


def _show(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless import show_vm_report

    return asyncio.run(
        show_vm_report(
            estate,
            repository,
            args.vm,
            sys.stdout,
            host=args.host,
            as_json=args.json,
            warn=sys.stderr,
        )
    )


def _migrate(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless_migration import migrate_report

    if args.read_only and not args.dry_run:
        raise ActionRefused("read-only mode: a migration moves a VM; nothing was done")
    return asyncio.run(
        migrate_report(
            estate,
            repository,
            args.vm,
            args.target,
            sys.stdout,
            vm_host=args.host,
            dry_run=args.dry_run,
            as_json=args.json,
            offline=args.offline,
            override=args.override,
            confirm=_confirmer(args, "Migrate?"),
            warn=sys.stderr,
        )
    )


def _resource_import(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless_import import import_report

    if args.read_only:
        print(
            "ovmtui: read-only mode: an import writes to the storage; nothing was done",
            file=sys.stderr,
        )
        return 1
    return asyncio.run(
        import_report(
            estate,
            repository,
            args.url,
            args.kind,
            sys.stdout,
            sys.stderr,
            name=args.name,
            sha256=args.sha256,
            pool=args.pool,
        )
    )


def _resource(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    if args.verb == "import":
        return _resource_import(estate, repository, args)
    from ovmtui.headless_storage import resource_report

    if args.verb == "register" and (args.all == (args.path is not None)):
        raise ConfigError("register takes a PATH or --all (one of them)")
    if args.read_only:
        print(f"ovmtui: read-only mode: {args.verb} changes the library; nothing was done")
        return 1
    return asyncio.run(
        resource_report(
            estate,
            repository,
            args.verb,
            [args.path] if args.path is not None else [],
            sys.stdout,
            pool=args.pool,
            confirm=_confirmer(args, "Delete?") if args.verb == "delete" else None,
            warn=sys.stderr,
        )
    )


def _evacuate(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless_migration import evacuate_report

    if args.read_only and not args.dry_run:
        raise ActionRefused("read-only mode: an evacuation moves VMs; nothing was done")
    return asyncio.run(
        evacuate_report(
            estate,
            repository,
            args.host,
            sys.stdout,
            dry_run=args.dry_run,
            as_json=args.json,
            parallel=args.parallel,
            confirm=_confirmer(args, "Evacuate?"),
            warn=sys.stderr,
        )
    )


def _estate_if_any(args: argparse.Namespace) -> EstateConfig:
    if args.demo or args.config is not None:
        return resolve_estate(args)
    if not default_config_path().exists():
        return EstateConfig((), "no estate file")
    return resolve_estate(args)


def _host_test(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless_conntest import host_test_report, target_of

    if args.name is not None and (args.libvirt or args.ssh):
        raise ActionRefused("give a host's NAME or --libvirt/--ssh, not both")
    host, pool = target_of(
        estate,
        args.name,
        libvirt=args.libvirt,
        ssh=args.ssh,
        identity=args.identity,
        known_hosts=args.known_hosts,
        pool=args.pool,
    )

    def confirm_key(offer: object) -> bool:
        # The flag was given; on a terminal the fingerprint is asked about too, since
        # checking it is the whole point (off a terminal, the flag is the operator's word).
        if not sys.stdin.isatty():
            return True
        try:
            answer = input("Is that the host's key? Type 'yes' to add it: ")
        except EOFError:
            return False
        return answer.strip().lower() == "yes"

    return asyncio.run(
        host_test_report(
            estate,
            repository,
            host,
            pool,
            sys.stdout,
            as_json=args.json,
            accept_new_key=args.accept_new_key,
            confirm_key=confirm_key,
            warn=sys.stderr,
        )
    )


def _restore_host(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless_restore import restore_report

    if args.read_only and not args.dry_run:
        raise ActionRefused("read-only mode: a restore defines on the host; nothing was done")
    return asyncio.run(
        restore_report(
            estate,
            repository,
            args.name,
            sys.stdout,
            whole_pool=args.command == "pool",
            dry_run=args.dry_run,
            start=args.start,
            as_json=args.json,
            confirm=_confirmer(args, "Restore?"),
            warn=sys.stderr,
        )
    )


def _console(estate: EstateConfig, repository: Path, args: argparse.Namespace) -> int:
    from ovmtui.headless import console_target

    try:
        request = asyncio.run(
            console_target(
                estate, repository, args.vm, host=args.host, force=args.force, warn=sys.stderr
            )
        )
    except OvmError as exc:
        # As virsh console: an unknown VM, one that is off, or no console to be had: 1.
        print(f"ovmtui: {exc.title}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    return _run_tui(
        estate,
        repository,
        interval_s=args.interval,
        read_only=args.read_only,
        console_log_dir=args.console_log,
        console=request,
    )


def _run_tui(
    estate: EstateConfig,
    repository: Path,
    *,
    interval_s: float,
    read_only: bool,
    console_log_dir: Path | None = None,
    console: ConsoleRequest | None = None,
    estate_file: EstateFile | None = None,
) -> int:
    from ovmtui.app import OvmApp, tune_process_for_ui
    from ovmtui.headless import check_repository

    # A repository that cannot be read is said here, before any screen is drawn (exit 2);
    # one that can be read but not written makes the whole run read-only, saying why.
    try:
        cannot_write = asyncio.run(check_repository(repository))
    except KeyboardInterrupt:
        # Ctrl+C while waiting for another process's lock on the repository: no screen
        # was drawn, nothing was written; a traceback would only hide that.
        print("ovmtui: interrupted before start-up; nothing was changed", file=sys.stderr)
        return 128 + signal.SIGINT
    tune_process_for_ui()
    app = OvmApp(
        estate,
        interval_s=interval_s,
        read_only=read_only,
        repository=repository,
        read_only_reason=cannot_write,
        console_log_dir=console_log_dir,
        console=console,
        estate_file=estate_file,
    )
    from ovmtui.terminal import prepare_terminal

    prepare_terminal(app)  # TERM=dumb or unset: refused here, before any escape is written
    app.run()
    if app.exit_reason is not None:
        print(f"ovmtui: {app.exit_reason}", file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    raise SystemExit(main())
