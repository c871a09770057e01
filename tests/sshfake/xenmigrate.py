"""``xm migrate`` / ``xl migrate`` of the fake dom0s: the domain's state moves to another
fake host of the same server.

Standard library only, and run inside an SSH session like ``xenstate.py`` (whose ``main``
hands ``migrate`` here): ``import xenstate`` finds the helper's copy beside this file.
Every host of one ``SshdServer`` has its state dir under the same root
(``<root>/hosts/<name>``), so the target is found there: ``HOST`` is matched against each
host's name, then its address (``HostSpec.address``; a host's address shared by several
hosts names none of them: the fake then refuses, as no real network would be that
ambiguous).

What the real tools do, and this one imitates:

- ``xm migrate [-l|--live] DOM HOST`` asks xend, which checks the domain (``Error: Domain
  'X' does not exist.``; one that is not running: xend's ``VMBadState``), connects to the
  target's relocation server (``can't connect: ...`` when the name does not resolve or no
  xend listens), and sends the domain; the target's xend refuses a domain it has no memory
  for with balloon.py's ``I need N KiB, but dom0_min_mem is ...`` (relayed as ``... (from
  HOST)``). xm prints ``Error: ...`` then its usage text, exit 1; on success nothing at all.
- ``xl migrate DOM HOST`` (always live) runs ``ssh HOST xl migrate-receive`` itself and
  prints both sides' progress lines on stderr (a recorded Xen 4.9 transcript:
  ``migration target: Ready to receive domain.`` ... ``Migration successful.``); a target
  without the memory fails at the domain's creation (``failed to free memory for the
  domain``, ``migration target: Domain creation failed (code -3).``), exit 1. xl knows only
  existing domains: an unknown or shut-off one is ``X is an invalid domain identifier
  (rc=-6)``.

The transfer takes ``migrate_delay`` seconds (``state.json`` of the *source*, 0.3 if unset),
during which the domain keeps running on the source and nothing is locked; then both hosts
are locked (in path order), everything is checked again, and the domain moves: a new
domain id on the target, the same name, uuid, memory, disks, vifs and vm.cfg path. The
source forgets it (a managed xend domain too: an approximation).

``$XENFAKE_STATE/migrate.log`` of the source says what each migration did, one
``<pid> <what>`` a line: ``start NAME HOST``, then ``moved TARGET DOMID`` or ``failed WHY``.
The process ignores SIGHUP and a closed output (as xend does: the migration goes on when
the client that asked for it goes away), so a cancelled migration still completes.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import xenstate  # the helper's copy, beside this file

# Not `typing.TYPE_CHECKING`: importing typing costs the fakes' Python path ~4 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Domain = dict[str, Any]
    State = dict[str, Any]

DEFAULT_DELAY_S = 0.3
MIGRATE_LOG = "migrate.log"
DOM0_MIN_MEM_KIB = 262144  # xend-config.sxp's usual (dom0-min-mem 256)

XM_USAGE = (
    "Usage: xm migrate <Domain> <Host>\n\n"
    "Migrate a domain to another machine.\n\n"
    "Options:\n\n"
    "-h, --help           Print this help.\n"
    "-l, --live           Use live migration.\n"
    "-p=portnum, --port=portnum\n"
    "                     Use specified port for migration.\n"
    "-n=nodenum, --node=nodenum\n"
    "                     Use specified NUMA node on target.\n"
    "-s, --ssl            Use ssl connection for migration.\n"
)
XL_USAGE = (
    "Usage: xl [-v] migrate [options] <Domain> <host>\n\n"
    "Migrate a domain to another host.\n\n"
    "Options:\n\n"
    "-h              Print this help.\n"
    "-C <config>     Send <config> instead of config file from creation.\n"
    "-s <sshcommand> Use <sshcommand> instead of ssh.  String will be passed\n"
    "                to sh. If empty, run <host> instead of ssh <host> xl\n"
    "                migrate-receive [-d -e]\n"
    "-e              Do not wait in the background (on <host>) for the death\n"
    "                of the domain.\n"
    "--debug         Print huge (!) amount of debug during the migration process.\n"
)
_XM_VALUED = ("-p", "--port", "-n", "--node")
_XL_VALUED = ("-s", "-C")


class _Failed(Exception):
    def __init__(self, stderr: str, stdout: str = "", why: str = "") -> None:
        super().__init__(why or stderr.strip())
        self.stderr = stderr
        self.stdout = stdout
        self.why = why or stderr.strip().splitlines()[-1]


def main(tool: str, args: list[str], state_dir: Path) -> int:
    # xend goes on when xm's client goes away, and a real xl would die of its next write:
    # the fake completes what it started either way (a cancel cannot abort a Xen migration).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    live, positional, usage_error = _options(tool, args)
    if usage_error:
        stderr, stdout = usage_error
        return _finish(state_dir, stdout, stderr, "usage", 1 if tool == "xm" else 2)
    ident, host = positional
    log = state_dir / MIGRATE_LOG
    _log(log, f"start {ident} {host}")
    try:
        return _migrate(tool, ident, host, live, state_dir, log)
    except _Failed as failed:
        _log(log, f"failed {failed.why}")
        _say(failed.stdout, failed.stderr)
        return 1


def _options(tool: str, args: list[str]) -> tuple[bool, list[str], tuple[str, str] | None]:
    """(live, [DOM, HOST], None) or (.., .., (stderr, stdout)) for a usage error."""
    live = tool == "xl"  # xl migrates live, always
    positional: list[str] = []
    valued = _XM_VALUED if tool == "xm" else _XL_VALUED
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-l", "--live") and tool == "xm":
            live = True
        elif arg in valued:
            skip = True
        elif arg.startswith("-") and arg != "-":
            continue  # --port=N, --debug, -e, -s (xm ssl): nothing the fake does differently
        else:
            positional.append(arg)
    if len(positional) != 2:
        if tool == "xm":
            return live, positional, ("Error: 'xm migrate' requires 2 arguments.\n\n", XM_USAGE)
        return live, positional, ("", XL_USAGE)
    return live, positional, None


def _migrate(tool: str, ident: str, host: str, live: bool, state_dir: Path, log: Path) -> int:
    state = xenstate.update_state(state_dir)
    dom = _source_domain(tool, ident, state)
    target_dir = _target(tool, host, state_dir)
    _check_target(tool, host, dom, target_dir, state)
    pv = dom["type"] == "PV"
    kind = "PV" if pv else "HVM"
    if tool == "xl":
        _say(err="".join(_XL_START) + f"xc: info: Saving domain {dom['domid']}, type x86 {kind}\n")
    time.sleep(float(state.get("migrate_delay", DEFAULT_DELAY_S)))
    domid = _move(tool, ident, host, state_dir, target_dir)
    _log(log, f"moved {target_dir.name} {domid}")
    if tool == "xl":
        minor = state["info"].get("xen_minor", 9)
        end = (
            f"xc: info: Found x86 {kind} domain from Xen 4.{minor}\n"
            "xc: info: Restoring domain\n"
            "xc: info: Restore successful\n"
            f"xc: info: XenStore: mfn {0x328657 - 2 * domid:#x}, dom 0, evt 1\n"
            f"xc: info: Console: mfn {0x328656 - 2 * domid:#x}, dom 0, evt 2\n"
            "migration target: Transfer complete, requesting permission to start domain.\n"
            "migration sender: Target has acknowledged transfer.\n"
            "migration sender: Giving target permission to start.\n"
            "migration target: Got permission, starting domain.\n"
            "migration target: Domain started successsfully.\n"  # sic: xl's own spelling
            "migration sender: Target reports successful startup.\n"
            "Migration successful.\n"
        )
        _say(err=end)
    return 0


_XL_START = (
    "migration target: Ready to receive domain.\n",
    "Saving to migration stream new xl format (info 0x3/0x0/1411)\n",
    "Loading new save file <incoming migration stream> (new xl fmt info 0x3/0x0/1411)\n",
    " Savefile contains xl domain config in JSON format\n",
    "Parsing config from <saved>\n",
)


def _source_domain(tool: str, ident: str, state: State) -> Domain:
    if xenstate._is_dom0(ident):
        if tool == "xm":
            raise _Failed("Error: Cannot migrate privileged domain 0\n", XM_USAGE)
        raise _Failed("xl: cannot migrate domain 0\n")  # approximation
    dom = xenstate.find_domain(state, tool, ident)
    if dom is None:
        not_found = xenstate._not_found(tool, ident)
        raise _Failed(not_found.stderr, why="unknown domain")
    if tool == "xm" and (dom["domid"] is None or "p" in dom["state"]):
        # xend's VMBadState("Domain is not running", ...), as xm prints a fault.
        raise _Failed("Error: Domain is not running\n", XM_USAGE, why="not running")
    return dom


def _hosts_root(state_dir: Path) -> Path:
    return state_dir.parent


def _target(tool: str, host: str, state_dir: Path) -> Path:
    """The state dir of the fake host that ``host`` names, or the tool's failure."""
    hosts = sorted(p for p in _hosts_root(state_dir).iterdir() if (p / "state.json").exists())
    by_name = [p for p in hosts if p.name == host]
    if by_name:
        return by_name[0]
    by_address = [p for p in hosts if xenstate.load_state(p).get("address") == host]
    if len(by_address) == 1:
        return by_address[0]
    if by_address:
        names = ", ".join(p.name for p in by_address)
        raise _Failed(
            f"fake: {host} is the address of several fake hosts ({names}): give them "
            "addresses of their own (HostSpec.address)\n",
            why="ambiguous target",
        )
    if tool == "xm":
        raise _Failed(
            "Error: can't connect: [Errno -2] Name or service not known\n",
            XM_USAGE,
            why="unknown target",
        )
    raise _Failed(
        f"ssh: Could not resolve hostname {host}: Name or service not known\n"
        "libxl: error: libxl_utils.c:508:libxl_read_exactly: file/stream truncated reading "
        "banner from migration receiver stream\n"
        f"migration transport process [{os.getpid() + 1}] exited with error status 255\n",
        why="unknown target",
    )


def _check_target(tool: str, host: str, dom: Domain, target_dir: Path, source: State) -> None:
    target = xenstate.update_state(target_dir)
    if target["toolstack"] not in (tool, "both"):
        if tool == "xm":  # no xend there, so no relocation server listening
            raise _Failed(
                "Error: can't connect: [Errno 111] Connection refused\n",
                XM_USAGE,
                why="no xend on the target",
            )
        raise _Failed(
            "bash: xl: command not found\n"
            "libxl: error: libxl_utils.c:508:libxl_read_exactly: file/stream truncated "
            "reading banner from migration receiver stream\n",
            why="no xl on the target",
        )
    free_mib = xenstate._free_memory(target)
    if target_dir.name != source["name"] and free_mib < int(dom["memory"]):
        _memory_failure(tool, host, dom, free_mib)
    same = next((d for d in target["domains"] if d["name"] == dom["name"]), None)
    if same is not None and same["domid"] is not None and target_dir.name != source["name"]:
        if tool == "xm":
            name, domid = dom["name"], same["domid"]
            msg = f"Error: Domain '{name}' already exists with ID '{domid}' (from {host})\n"
            raise _Failed(msg, XM_USAGE, why="name taken on the target")
        raise _Failed(
            "".join(_XL_START)
            + f"libxl: error: libxl_create.c:651:libxl__domain_make: Domain {same['domid']}:"
            f'domain with name "{dom["name"]}" already exists.\n'
            "migration target: Domain creation failed (code -3).\n"
            "Migration failed, resuming at sender.\n",
            why="name taken on the target",
        )


def _memory_failure(tool: str, host: str, dom: Domain, free_mib: int) -> None:
    need_kib = int(dom["memory"]) * 1024
    if tool == "xm":
        msg = (
            f"Error: I need {need_kib} KiB, but dom0_min_mem is {DOM0_MIN_MEM_KIB} and "
            f"shrinking to {DOM0_MIN_MEM_KIB} KiB would leave only {free_mib * 1024} KiB "
            f"free. (from {host})\n"
        )
        raise _Failed(msg, XM_USAGE, why="not enough memory on the target")
    raise _Failed(
        "".join(_XL_START) + "failed to free memory for the domain\n"
        "migration target: Domain creation failed (code -3).\n"
        "migration sender: libxl_domain_suspend failed (rc=-3)\n"
        "Migration failed, resuming at sender.\n",
        why="not enough memory on the target",
    )


def _move(tool: str, ident: str, host: str, source_dir: Path, target_dir: Path) -> int:
    """Both hosts locked (in path order: two migrations crossing cannot deadlock), checked
    again after the transfer's time, and the domain moved. Returns its new domain id."""
    first, second = sorted({source_dir, target_dir})
    with xenstate._locked(first), xenstate._locked(second) if second != first else _nothing():
        source = xenstate.load_state(source_dir)
        xenstate.settle(source)
        dom = _source_domain(tool, ident, source)
        if target_dir == source_dir:  # to itself (xl migrate DOM localhost): a new id
            dom["domid"] = xenstate._next_domid(source)
            xenstate.save_state(source_dir, source)
            return int(dom["domid"])
        target = xenstate.load_state(target_dir)
        xenstate.settle(target)
        if xenstate._free_memory(target) < int(dom["memory"]):
            _memory_failure(tool, host, dom, xenstate._free_memory(target))
        source["domains"] = [d for d in source["domains"] if d is not dom]
        target["domains"] = [d for d in target["domains"] if d["name"] != dom["name"]]
        moved = dict(dom, domid=xenstate._next_domid(target), shutdown_at=None)
        target["domains"].append(moved)
        xenstate.save_state(target_dir, target)
        xenstate.save_state(source_dir, source)
        return int(moved["domid"])


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _finish(state_dir: Path, stdout: str, stderr: str, why: str, status: int) -> int:
    _log(state_dir / MIGRATE_LOG, f"failed {why.strip() or 'usage'}")
    _say(stdout, stderr)
    return status


def _say(out: str = "", err: str = "") -> None:
    for stream, text in ((sys.stdout, out), (sys.stderr, err)):
        if text:
            try:
                stream.write(text)
                stream.flush()
            except OSError:
                pass  # the client went away: the migration goes on regardless


def _log(path: Path, what: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {what}\n")
