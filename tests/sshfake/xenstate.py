"""State, output rendering and command logic of the fake Xen toolstack (``xm``/``xl``).

Standard library only, and no package-relative imports: inside an SSH session the fakes
run this very file as ``python -I -S xenstate.py xm ARGS...``, where neither the venv's
site-packages nor the project is importable. The test side imports it as
``tests.sshfake.xenstate`` to build and inspect the same state.

A host's state dir holds ``state.json`` (the truth) plus every read-only output already
rendered (``xm_list.out``, ``xm_list_l.out``, ``xm_info.out`` and the ``xl_`` ones), so a
poll is answered by ``cat`` without starting Python. Every write re-renders them and
replaces each file by rename, so a concurrent ``cat`` sees the old or the new file, never
half of one.

The output formats are modelled on recorded real outputs (Xen 3.x/4.x xend ``xm``,
Oracle VM 3.3 ``xm list -l``, libxl ``xl``): column widths, tab characters in the ``xl list``
header, Python 2 float/str rendering in the S-expressions, xend's pretty-printer line
breaking, yajl's empty-container layout in ``xl list -l``.
"""

from __future__ import annotations

import fcntl
import json
import json.encoder
import os
import sys
import time
import zlib
from pathlib import Path

# Not `typing.TYPE_CHECKING`: importing typing costs the fakes' Python path ~4 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    Domain = dict[str, Any]
    State = dict[str, Any]
    Sxp = Any

FAULTS = ("hang", "malformed", "error")
TOOLSTACKS = ("xm", "xl", "both")

STATE_FILE = "state.json"
ARGV_LOG = "argv.log"
# What each `xm/xl console` did (xenconsole.py): "<pid> attach NAME DOMID", then how it ended.
CONSOLE_LOG = "console.log"
FAULT_FILE = "fault"
# Exists while a domain is in a timed transition (delayed shutdown): the sh fast path
# then defers to Python, which settles the transition before answering.
PENDING_FILE = "pending"
# "<last step shown> <steps>" of a host whose short listings move (state "cpu_steps").
CPU_STEP_FILE = "cpu_step"
LOCK_FILE = "lock"
# What the host's storage and network show to the fake `test` (bin/test), one a line:
# the state's "paths" plus its domains' disk paths, and its "bridges".
VISIBLE_PATHS_FILE = "visible_paths"
BRIDGES_FILE = "bridges"
DEFAULT_BRIDGES = ("xenbr0", "xenbr1")  # what generate_domains' vifs use
OUTPUT_FILES = {
    "xm_list.out": "xm list",
    "xm_list_l.out": "xm list -l",
    "xm_info.out": "xm info",
    "xl_list.out": "xl list",
    "xl_list_l.out": "xl list -l",
    "xl_info.out": "xl info",
}

# State flags as xm/xl print them ("r-----" running, "-b----" blocked, ...). Shut off is
# "" with domid None: xend prints blank ID and State columns for such a managed domain.
PAUSED = "--p---"
SHUTTING_DOWN = "---s--"
CRASHED = "----c-"

DEFAULT_INFO: dict[str, Any] = {
    "host": "ovs01.example.com",
    "release": "2.6.39-400.264.1.el5uek",
    "version": "#1 SMP Wed Aug 26 16:45:49 PDT 2015",
    "machine": "x86_64",
    "nr_cpus": 16,
    "nr_nodes": 2,
    "cores_per_socket": 4,
    "threads_per_core": 2,
    "cpu_mhz": 2693,
    "hw_caps": "bfebfbff:2c100800:00000000:00007f40:77fefbff:00000000:00000001:00002fbb",
    "virt_caps": "hvm hvm_directio",
    "total_memory": 131059,
    "free_cpus": 0,
    "xen_major": 4,
    "xen_minor": 3,
    "xen_extra": ".0OVM",
    # xend passes the hypervisor's string through, trailing space included.
    "xen_caps": "xen-3.0-x86_64 xen-3.0-x86_32p hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 ",
    "xen_scheduler": "credit",
    "xen_pagesize": 4096,
    "platform_params": "virt_start=0xffff800000000000",
    "xen_changeset": "",
    "xen_commandline": "dom0_mem=2048M dom0_max_vcpus=4 crashkernel=256M@64M",
    "cc_compiler": "gcc (GCC) 4.1.2 20080704 (Red Hat 4.1.2-55)",
    "cc_compile_by": "mockbuild",
    "cc_compile_domain": "us.oracle.com",
    "cc_compile_date": "Fri Jul 24 10:12:31 PDT 2015",
    "build_id": "5bd3c1d1cd4c5d2e8e5c1f0ab1f5bbd4b3a2b3e1",
    "xend_config_format": 4,
}

XM_INFO_KEYS = (
    "host",
    "release",
    "version",
    "machine",
    "nr_cpus",
    "nr_nodes",
    "cores_per_socket",
    "threads_per_core",
    "cpu_mhz",
    "hw_caps",
    "virt_caps",
    "total_memory",
    "free_memory",
    "free_cpus",
    "xen_major",
    "xen_minor",
    "xen_extra",
    "xen_caps",
    "xen_scheduler",
    "xen_pagesize",
    "platform_params",
    "xen_changeset",
    "xen_commandline",
    "cc_compiler",
    "cc_compile_by",
    "cc_compile_domain",
    "cc_compile_date",
    "xend_config_format",
)
XL_INFO_KEYS = (
    "host",
    "release",
    "version",
    "machine",
    "nr_cpus",
    "max_cpu_id",
    "nr_nodes",
    "cores_per_socket",
    "threads_per_core",
    "cpu_mhz",
    "hw_caps",
    "virt_caps",
    "total_memory",
    "free_memory",
    "sharing_freed_memory",
    "sharing_used_memory",
    "outstanding_claims",
    "free_cpus",
    "xen_major",
    "xen_minor",
    "xen_extra",
    "xen_version",
    "xen_caps",
    "xen_scheduler",
    "xen_pagesize",
    "platform_params",
    "xen_changeset",
    "xen_commandline",
    "cc_compiler",
    "cc_compile_by",
    "cc_compile_domain",
    "cc_compile_date",
    "build_id",
    "xend_config_format",
)


# --------------------------------------------------------------------------- state


def new_state(
    name: str,
    domains: Sequence[Domain],
    *,
    toolstack: str = "both",
    info: dict[str, Any] | None = None,
    shutdown_delay: float = 0.0,
    cpu_steps: int = 0,
    address: str = "127.0.0.1",
    paths: Sequence[str] = (),
    bridges: Sequence[str] = DEFAULT_BRIDGES,
) -> State:
    """A host's complete state; ``domains`` as built by :func:`make_domain`.

    ``address`` is where its sshd listens (``xm/xl migrate DOM HOST`` finds a target by
    name or address); ``paths`` and ``bridges`` are what the host's storage and network
    show to ``test -e PATH`` and ``test -d /sys/class/net/BRIDGE/bridge`` (bin/test),
    besides its own domains' disks.

    ``cpu_steps`` > 0: the short listings (``xm list``, ``xl list``) answered by the fast
    path cycle through that many renderings in which running domains' CPU time advances,
    as on a live host (see :func:`render_cpu_steps`).
    """
    if toolstack not in TOOLSTACKS:
        raise ValueError(f"toolstack must be one of {TOOLSTACKS}, not {toolstack!r}")
    host_info = dict(DEFAULT_INFO)
    host_info["host"] = name
    host_info.update(info or {})
    doms = [dict(d) for d in domains]
    names = [d["name"] for d in doms]
    if len(set(names)) != len(names):
        raise ValueError("domain names must be unique on a host")
    dom0_mem = 2048
    needed = dom0_mem + sum(d["maxmem"] for d in doms) + 1024
    # A host that could not hold its own domains would make free_memory negative.
    host_info["total_memory"] = max(int(host_info["total_memory"]), needed)
    domids = [d["domid"] for d in doms if d["domid"] is not None]
    return {
        "version": 1,
        "name": name,
        "toolstack": toolstack,
        "shutdown_delay": float(shutdown_delay),
        "cpu_steps": int(cpu_steps),
        "address": address,
        "paths": list(paths),
        "bridges": list(bridges),
        "next_domid": max(domids, default=0) + 1,
        "info": host_info,
        "dom0": {"memory": dom0_mem, "maxmem": dom0_mem, "vcpus": 4, "cpu_time": 105443.858723},
        "domains": doms,
    }


def make_domain(
    name: str,
    *,
    uuid: str,
    domid: int | None,
    state: str = "-b----",
    memory: int = 2048,
    maxmem: int | None = None,
    vcpus: int = 2,
    cpu_time: float = 0.0,
    start_time: float | None = None,
    kind: str = "PV",
    disks: Sequence[dict[str, str]] | None = None,
    vifs: Sequence[dict[str, str]] | None = None,
    config: str | None = None,
    managed: bool = True,
) -> Domain:
    """One domain of ``state.json``. ``domid`` None means shut off (then ``state`` is "")."""
    if kind not in ("PV", "HVM"):
        raise ValueError(f"kind must be PV or HVM, not {kind!r}")
    if (domid is None) != (state == ""):
        raise ValueError("a shut-off domain has domid None and state ''")
    return {
        "name": name,
        "uuid": uuid,
        "domid": domid,
        "state": state,
        "memory": memory,
        "maxmem": maxmem if maxmem is not None else memory,
        "vcpus": vcpus,
        "cpu_time": cpu_time if domid is not None else 0.0,
        "start_time": (start_time or time.time() - 3600.0) if domid is not None else None,
        "type": kind,
        "disks": [dict(d) for d in disks]
        if disks is not None
        else [{"uname": f"file:/OVS/running_pool/{name}/System.img", "dev": "xvda", "mode": "w"}],
        "vifs": [dict(v) for v in vifs]
        if vifs is not None
        else [{"mac": "00:16:3e:00:00:01", "bridge": "xenbr0"}],
        "config": config or f"/OVS/running_pool/{name}/vm.cfg",
        # xend keeps a managed domain listed while shut off; an unmanaged one (started
        # with plain `xm create`) vanishes from `xm list` when it stops.
        "managed": managed,
        "shutdown_at": None,
    }


_PREFIXES = ("web", "db", "app", "mail", "ldap", "build", "cache", "proxy")


def generate_domains(
    n: int, seed: int | str = 0, *, start_time: float | None = None
) -> list[Domain]:
    """``n`` realistic, reproducible domains: web01, db01, app01, ..., web02, ...

    Mostly running (blocked, some running), a few paused and shut off, PV and HVM, one or
    two disks and vifs, Oracle VM style uuids and MACs. The first (web01) always runs.
    """
    import random  # only the test side generates; keeps the fakes' start-up small

    rng = random.Random(f"sshfake-domains/{seed}")
    now = start_time if start_time is not None else 1_700_000_000.0
    counters: dict[str, int] = {}
    domains: list[Domain] = []
    next_domid = 1
    for i in range(n):
        prefix = _PREFIXES[i % len(_PREFIXES)]
        counters[prefix] = counters.get(prefix, 0) + 1
        name = f"{prefix}{counters[prefix]:02d}"
        roll = rng.random()
        if i == 0:
            state = "-b----"  # web01 is always up: tests get a known live target
        elif roll < 0.12:
            state = ""
        elif roll < 0.18:
            state = PAUSED
        elif roll < 0.40:
            state = "r-----"
        else:
            state = "-b----"
        domid: int | None = None
        if state:
            next_domid += rng.randint(1, 4)
            domid = next_domid
        memory = rng.choice((512, 1024, 2048, 4096, 8192))
        tail = "".join(rng.choice("0123456789abcdef") for _ in range(16))
        uuid = f"0004fb00-0006-0000-{tail[:4]}-{tail[4:]}"
        disks = [{"uname": f"file:/OVS/running_pool/{name}/System.img", "dev": "xvda", "mode": "w"}]
        if rng.random() < 0.4:
            disks.append(
                {"uname": f"file:/OVS/running_pool/{name}/data.img", "dev": "xvdb", "mode": "w"}
            )
        vifs = []
        for v in range(1 if rng.random() < 0.6 else 2):
            mac = "00:21:f6:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
            vifs.append({"mac": mac, "bridge": f"xenbr{v}"})
        domains.append(
            make_domain(
                name,
                uuid=uuid,
                domid=domid,
                state=state,
                memory=memory,
                maxmem=memory * rng.choice((1, 1, 2)),
                vcpus=rng.choice((1, 1, 2, 2, 4, 8)),
                cpu_time=round(rng.uniform(1.0, 500000.0), 6) if state else 0.0,
                start_time=round(now - rng.uniform(600.0, 90 * 86400.0), 2) if state else None,
                kind="HVM" if rng.random() < 0.3 else "PV",
                disks=disks,
                vifs=vifs,
            )
        )
    return domains


def load_state(state_dir: Path) -> State:
    state: State = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    return state


def save_state(state_dir: Path, state: State) -> None:
    """Write state.json and re-render every output, each replaced atomically."""
    # No indent: json's C encoder only runs without one (200 hosts are saved at start).
    _atomic_write(state_dir / STATE_FILE, json.dumps(state, sort_keys=True) + "\n")
    for file_name, command in OUTPUT_FILES.items():
        tool, _, rest = command.partition(" ")
        _atomic_write(state_dir / file_name, render(tool, rest.split(), state))
    render_cpu_steps(state_dir, state)
    own = [_disk_path(disk["uname"]) for dom in state["domains"] for disk in dom["disks"]]
    visible = [*state.get("paths", ()), *own]
    _atomic_write(state_dir / VISIBLE_PATHS_FILE, "".join(f"{p}\n" for p in visible))
    _atomic_write(
        state_dir / BRIDGES_FILE,
        "".join(f"{b}\n" for b in state.get("bridges", DEFAULT_BRIDGES)),
    )
    pending = state_dir / PENDING_FILE
    if any(d.get("shutdown_at") is not None for d in state["domains"]):
        pending.write_text("", encoding="utf-8")
    else:
        pending.unlink(missing_ok=True)


def render_cpu_steps(state_dir: Path, state: State) -> None:
    """The moving short listings of a ``cpu_steps`` host, and their counter (restarted).

    Rendering k advances each running, unpaused domain's CPU time by k times its own rate:
    none for about a third of them (idle), up to two seconds a step for the rest, as
    guests on a live host use it between two polls. The counter file holds
    "<last rendering shown> <count>"; the fakes' fast path advances it.
    """
    steps = int(state.get("cpu_steps", 0))
    counter = state_dir / CPU_STEP_FILE
    if steps <= 0:
        counter.unlink(missing_ok=True)
        return
    rates = {d["name"]: _cpu_rate(d) for d in state["domains"]}
    for step in range(steps):
        moved = dict(state)
        moved["domains"] = [
            {**d, "cpu_time": d["cpu_time"] + step * rates[d["name"]]} for d in state["domains"]
        ]
        for tool in ("xm", "xl") if state["toolstack"] == "both" else (state["toolstack"],):
            _atomic_write(state_dir / f"{tool}_list.{step}.out", render(tool, ["list"], moved))
    _atomic_write(counter, f"{steps - 1} {steps}\n")


def _cpu_rate(dom: Domain) -> float:
    """Seconds of CPU time a domain uses per step: the same in every process."""
    if not _is_running(dom) or "p" in dom["state"]:
        return 0.0
    seed = zlib.crc32(dom["name"].encode())
    return 0.0 if seed % 3 == 0 else 0.05 + (seed >> 8) % 1950 / 1000


def settle(state: State, now: float | None = None) -> bool:
    """Finish timed transitions that are due; True when something changed."""
    now = time.time() if now is None else now
    changed = False
    for dom in state["domains"]:
        due = dom.get("shutdown_at")
        if due is not None and now >= due:
            _power_off(dom)
            changed = True
    return changed


def update_state(state_dir: Path, change: Callable[[State], Any] | None = None) -> State:
    """Load, settle, apply ``change`` and save under the host's lock; returns the state."""
    with _locked(state_dir):
        state = load_state(state_dir)
        changed = settle(state)
        if change is not None:
            change(state)
            changed = True
        if changed:
            save_state(state_dir, state)
        return state


def read_argv_log(state_dir: Path) -> list[list[str]]:
    """Every argv the fakes received, in order; inverse of the sh ``printf '%s\\0'``."""
    try:
        data = (state_dir / ARGV_LOG).read_bytes()
    except FileNotFoundError:
        return []
    fields = data.split(b"\0")
    records: list[list[str]] = []
    i = 0
    # The last field is what follows the final NUL: empty, or a record cut short.
    while i < len(fields) - 1:
        count = int(fields[i])
        if i + count > len(fields) - 2:
            break  # a record still being written
        records.append(
            [a.decode("utf-8", "surrogateescape") for a in fields[i + 1 : i + 1 + count]]
        )
        i += 1 + count
    return records


class _locked:
    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / LOCK_FILE
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)  # closing releases the flock


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _power_off(dom: Domain) -> None:
    dom.update(domid=None, state="", start_time=None, cpu_time=0.0, shutdown_at=None)


def _is_running(dom: Domain) -> bool:
    return dom["domid"] is not None


# ----------------------------------------------------------------------- rendering


def render(tool: str, args: Sequence[str], state: State) -> str:
    """Output of the read-only commands ``list``, ``list -l`` and ``info``."""
    long_form = len(args) > 1 and args[1] in ("-l", "--long")
    if args[0] == "info":
        return render_info(tool, state)
    if tool == "xm":
        return render_xm_list_long(state) if long_form else render_xm_list(state)
    return render_xl_list_long(state) if long_form else render_xl_list(state)


def _dom0(state: State) -> Domain:
    d0 = state["dom0"]
    return {
        "name": "Domain-0",
        "uuid": "00000000-0000-0000-0000-000000000000",
        "domid": 0,
        "state": "r-----",
        "memory": d0["memory"],
        "maxmem": d0["maxmem"],
        "vcpus": d0["vcpus"],
        "cpu_time": d0["cpu_time"],
        "start_time": None,
        "type": "PV",
        "disks": [],
        "vifs": [],
        "managed": True,
    }


def xm_visible(state: State) -> list[Domain]:
    """Domains `xm list` shows, in xend's order: sorted by name, Domain-0 included."""
    doms = [_dom0(state)] + [d for d in state["domains"] if _is_running(d) or d["managed"]]
    return sorted(doms, key=lambda d: d["name"])


def xl_visible(state: State) -> list[Domain]:
    """Domains `xl list` shows: only existing (running) ones, by domid."""
    doms = [_dom0(state)] + [d for d in state["domains"] if _is_running(d)]
    return sorted(doms, key=lambda d: d["domid"])


def render_xm_list(state: State, doms: Iterable[Domain] | None = None) -> str:
    # xm/main.py xm_brief_list: '%-40s %5s %5s %5s %10s %9s' header, then
    # "%(name)-40s %(domid)5s %(mem)5d %(vcpus)5d %(state)10s %(cpu_time)8.1f".
    lines = [f"{'Name':<40} {'ID':>5} {'Mem':>5} {'VCPUs':>5} {'State':>10} {'Time(s)':>9}"]
    for d in xm_visible(state) if doms is None else doms:
        domid = "" if d["domid"] is None else str(d["domid"])
        lines.append(
            f"{d['name']:<40} {domid:>5} {d['memory']:5d} {d['vcpus']:5d} "
            f"{d['state']:>10} {d['cpu_time']:8.1f}"
        )
    return "\n".join(lines) + "\n"


def render_xl_list(state: State, doms: Iterable[Domain] | None = None) -> str:
    # libxl's xl list: the header has literal TABs before State and Time(s).
    lines = ["Name                                        ID   Mem VCPUs\tState\tTime(s)"]
    for d in xl_visible(state) if doms is None else doms:
        # printf("%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f", ...)
        lines.append(
            f"{d['name']:<40} {d['domid']:5d} {d['memory']:5d} {d['vcpus']:5d}     "
            f"{d['state']}  {d['cpu_time']:8.1f}"
        )
    return "\n".join(lines) + "\n"


def _free_memory(state: State) -> int:
    used = int(state["dom0"]["memory"])
    used += sum(int(d["memory"]) for d in state["domains"] if _is_running(d))
    return max(int(state["info"]["total_memory"]) - used, 0)


def render_info(tool: str, state: State) -> str:
    info = dict(state["info"])
    info["free_memory"] = _free_memory(state)
    nr_cpus = int(info["nr_cpus"])
    info.setdefault("max_cpu_id", nr_cpus - 1)
    info.setdefault("sharing_freed_memory", 0)
    info.setdefault("sharing_used_memory", 0)
    info.setdefault("outstanding_claims", 0)
    info.setdefault("xen_version", f"{info['xen_major']}.{info['xen_minor']}{info['xen_extra']}")
    keys = XM_INFO_KEYS if tool == "xm" else XL_INFO_KEYS
    # Python 2 `print "%-23s:" % k, v` and C "%-23s: %s" agree: one space after the colon,
    # kept even when the value is empty.
    return "".join(f"{k:<23}: {info[k]}\n" for k in keys if k in info)


# --- xm list -l (SXP) ---


def _py2_str_float(x: float) -> str:
    # Python 2 str(float): 12 significant digits, and always looks like a float.
    text = f"{x:.12g}"
    if not any(c in text for c in ".einn"):
        text += ".0"
    return text


_ATOM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:/~")


def _py2_repr(text: str) -> str:
    # repr() of a Python 2 byte string: quotes chosen like CPython 2, bytes escaped.
    raw = text.encode("utf-8", "surrogateescape")
    quote = '"' if b"'" in raw and b'"' not in raw else "'"
    out = []
    for b in raw:
        c = chr(b)
        if c == quote or c == "\\":
            out.append("\\" + c)
        elif c == "\t":
            out.append("\\t")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif b < 0x20 or b >= 0x7F:
            out.append(f"\\x{b:02x}")
        else:
            out.append(c)
    return quote + "".join(out) + quote


def sxp_atom(value: object) -> str:
    """One atom the way xend's sxp.show writes it."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _py2_str_float(value)
    text = str(value)
    if text and _ATOM_CHARS.issuperset(text):
        return text
    return _py2_repr(text)


def sxp_flat(sx: Sxp) -> str:
    if isinstance(sx, list):
        return "(" + " ".join(sxp_flat(x) for x in sx) + ")"
    return sxp_atom(sx)


def sxp_pretty(sx: Sxp, width: int = 80, memo: dict[object, str] | None = None) -> str:
    """xend's PrettyPrint layout: a list that fits from its column stays on one line;
    one that does not puts every element after the first on its own line, indented
    four from its "(", and its ")" alone under the "(".

    ``memo`` may be shared by calls whose trees share nodes (the constant ``image``
    sections); keys are object ids, so the caller keeps all those trees alive.
    """
    # Each list's one-line form is computed once (re-flattening at every level made a
    # 50-domain `xm list -l` cost 80 ms); 200 hosts x 50 domains render at start-up.
    memo = {} if memo is None else memo
    atom_chars = _ATOM_CHARS

    def flatten(node: list[Sxp]) -> str:
        key = id(node)
        text = memo.get(key)
        if text is None:
            parts = []
            for x in node:
                if type(x) is list:
                    parts.append(flatten(x))
                elif type(x) is str and x and atom_chars.issuperset(x):
                    parts.append(x)
                else:
                    parts.append(sxp_atom(x))
            text = memo[key] = "(" + " ".join(parts) + ")"
        return text

    def layout(node: Sxp, col: int) -> str:
        if type(node) is not list:
            return sxp_atom(node)
        text = flatten(node)
        if col + len(text) <= width:
            return text
        key = (id(node), col)
        done = memo.get(key)
        if done is None:
            inner = col + 4
            sep = "\n" + " " * inner
            parts = ["(" + layout(node[0], col + 1)] if node else ["("]
            parts.extend([sep + layout(child, inner) for child in node[1:]])
            done = memo[key] = "".join(parts) + "\n" + " " * col + ")"
        return done

    return layout(sx, 0) + "\n"


def _stable_uuid(*parts: object) -> str:
    """A device uuid that is the same in every process that renders the domain (so
    re-rendering after a mutation changes nothing else); crc32 is cheap, md5 was not."""
    seed = "/".join(map(str, parts)).encode()
    a, b, c, d = (zlib.crc32(seed, salt) for salt in (1, 2, 3, 4))
    return f"{a:08x}-{b >> 16:04x}-{b & 0xFFFF:04x}-{c >> 16:04x}-{c & 0xFFFF:04x}{d:08x}"


def _status(dom: Domain) -> int:
    # XendConstants: halted 0, paused 1, running 2, suspended 3, shutdown 4, crashed 5.
    flags = dom["state"]
    if dom["domid"] is None:
        return 0
    if "p" in flags:
        return 1
    if "s" in flags:
        return 4
    if "c" in flags:
        return 5
    return 2


# Shared by every domain (never mutate): lets sxp_pretty's memo render them once.
_LINUX_IMAGE: Sxp = [
    "linux",
    ["kernel", ""],
    ["expose_host_uuid", 0],
    ["superpages", 0],
    ["videoram", 4],
    ["pci", []],
    ["nomigrate", 0],
    ["tsc_mode", 0],
    ["device_model", "/usr/lib/xen/bin/qemu-dm"],
    [
        "notes",
        ["HV_START_LOW", 18446603336221196288],
        ["FEATURES", "!writable_page_tables|pae_pgdir_above_4gb"],
        ["VIRT_BASE", 18446744071562067968],
        ["GUEST_VERSION", 2.6],
        ["PADDR_OFFSET", 0],
        ["GUEST_OS", "linux"],
        ["HYPERCALL_PAGE", 18446744071578849280],
        ["LOADER", "generic"],
        ["SUSPEND_CANCEL", 1],
        ["PAE_MODE", "yes"],
        ["ENTRY", 18446744071584653824],
        ["XEN_VERSION", "xen-3.0"],
    ],
]


def _make_hvm_image() -> Sxp:
    keys: list[tuple[str, object]] = [
        ("kernel", ""),
        ("expose_host_uuid", 0),
        ("superpages", 0),
        ("videoram", 4),
        ("hpet", 0),
        ("stdvga", 0),
        ("vnclisten", "127.0.0.1"),
        ("loader", "/usr/lib/xen/boot/hvmloader"),
        ("xen_platform_pci", 1),
        ("nestedhvm", 0),
        ("rtc_timeoffset", 0),
        ("pci", []),
        ("hap", 1),
        ("localtime", 0),
        ("timer_mode", 1),
        ("pci_msitranslate", 1),
        ("oos", 1),
        ("apic", 1),
        ("usbdevice", "tablet"),
        ("vpt_align", 1),
        ("serial", "pty"),
        ("vncunused", 1),
        ("boot", "c"),
        ("pae", 1),
        ("viridian", 0),
        ("acpi", 1),
        ("vnc", 1),
        ("nographic", 0),
        ("nomigrate", 0),
        ("usb", 0),
        ("tsc_mode", 0),
        ("guest_os_type", "linux"),
        ("device_model", "/usr/lib/xen/bin/qemu-dm"),
        ("keymap", "en-us"),
        ("pci_power_mgmt", 0),
        ("xauthority", "/root/.Xauthority"),
        ("isa", 0),
    ]
    return ["hvm", *([k, v] for k, v in keys), ["notes", ["SUSPEND_CANCEL", 1]]]


_HVM_IMAGE: Sxp = _make_hvm_image()


def domain_sxp(dom: Domain) -> Sxp:
    """One ``(domain ...)`` as xend 4.x writes it, in the order of the Oracle VM 3.3
    capture; runtime-only entries (domid, start_time, state, mfns, ...) only while the
    domain exists."""
    running = _is_running(dom)
    pv = dom["type"] == "PV"
    uuid = dom["uuid"]
    domid = dom["domid"]
    sx: list[Sxp] = ["domain"]
    if running:
        sx.append(["domid", domid])
    sx += [
        ["cpu_weight", 27500],
        ["cpu_cap", 0],
        ["pool_name", "Pool-0"],
        ["bootloader", "/usr/bin/pygrub" if pv else ""],
        ["vcpus", dom["vcpus"]],
        ["cpus", [[] for _ in range(dom["vcpus"])]],
        ["on_poweroff", "destroy"],
        ["description", ""],
        ["on_crash", "restart"],
        ["uuid", uuid],
        ["bootloader_args", "-q" if pv else ""],
        ["name", dom["name"]],
        ["on_reboot", "restart"],
        ["maxmem", dom["maxmem"]],
        ["memory", dom["memory"]],
        ["shadow_memory", 0 if pv else 10],
        ["features", ""],
        ["on_xend_start", "ignore"],
        ["on_xend_stop", "ignore"],
    ]
    if running:
        sx += [
            ["start_time", float(dom["start_time"])],
            ["cpu_time", float(dom["cpu_time"])],
            ["online_vcpus", dom["vcpus"]],
        ]
    sx.append(["image", _LINUX_IMAGE if pv else _HVM_IMAGE])
    sx.append(["status", _status(dom)])
    if running:
        sx.append(["state", dom["state"]])
        sx.append(["store_mfn", 2547788 - 2 * domid])
        if pv:
            sx.append(["console_mfn", 2547787 - 2 * domid])
    for i, vif in enumerate(dom["vifs"]):
        sx.append(
            [
                "device",
                [
                    "vif",
                    ["bridge", vif["bridge"]],
                    ["mac", vif["mac"]],
                    ["script", "/etc/xen/scripts/vif-bridge"],
                    ["uuid", _stable_uuid(uuid, "vif", i)],
                    ["backend", 0],
                ],
            ]
        )
    if pv:
        sx.append(["device", ["vkbd", ["backend", 0]]])
    sx.append(
        [
            "device",
            [
                "console",
                ["protocol", "vt100"],
                ["location", 2 + 2 * (domid or 0)],
                ["uuid", _stable_uuid(uuid, "console")],
            ],
        ]
    )
    for i, disk in enumerate(dom["disks"]):
        sx.append(
            [
                "device",
                [
                    "vbd",
                    ["protocol", "x86_64-abi"],
                    ["uuid", _stable_uuid(uuid, "vbd", i)],
                    ["bootable", 1 if i == 0 else 0],
                    ["dev", f"{disk['dev']}:disk"],
                    ["uname", disk["uname"]],
                    ["mode", disk["mode"]],
                    ["discard-enable", 0],
                    ["backend", 0],
                    ["VDI", ""],
                ],
            ]
        )
    vfb: list[Sxp] = [
        "vfb",
        ["vncunused", 1],
        ["vnc", 1],
        ["uuid", _stable_uuid(uuid, "vfb")],
        ["vnclisten", "127.0.0.1"],
        ["keymap", "en-us"],
    ]
    if running:
        vfb.append(["location", f"127.0.0.1:{5900 + domid}"])
    sx.append(["device", vfb])
    return sx


def dom0_sxp(state: State) -> Sxp:
    d0 = state["dom0"]
    cpus = list(range(int(state["info"]["nr_cpus"])))
    return [
        "domain",
        ["domid", 0],
        ["cpu_weight", 65535],
        ["cpu_cap", 0],
        ["pool_name", "Pool-0"],
        ["bootloader", ""],
        ["vcpus", d0["vcpus"]],
        ["cpus", [list(cpus) for _ in range(d0["vcpus"])]],
        ["on_poweroff", "destroy"],
        ["on_crash", "restart"],
        ["uuid", "00000000-0000-0000-0000-000000000000"],
        ["bootloader_args", ""],
        ["name", "Domain-0"],
        ["on_reboot", "restart"],
        ["maxmem", d0["maxmem"]],
        ["memory", d0["memory"]],
        ["shadow_memory", 0],
        ["features", ""],
        ["on_xend_start", "ignore"],
        ["on_xend_stop", "ignore"],
        ["cpu_time", float(d0["cpu_time"])],
        ["online_vcpus", d0["vcpus"]],
        [
            "image",
            [
                "linux",
                ["kernel", ""],
                ["expose_host_uuid", 0],
                ["superpages", 0],
                ["nomigrate", 0],
                ["tsc_mode", 0],
            ],
        ],
        ["status", 2],
        ["state", "r-----"],
    ]


def render_xm_list_long(state: State, doms: Iterable[Domain] | None = None) -> str:
    memo: dict[object, str] = {}
    trees = [
        dom0_sxp(state) if d["name"] == "Domain-0" else domain_sxp(d)
        for d in (xm_visible(state) if doms is None else doms)
    ]
    # `trees` stays alive until the join, so the memo's object ids stay unique.
    return "".join([sxp_pretty(tree, memo=memo) for tree in trees])


# --- xl list -l (JSON) ---


# json.dumps(str) without dumps' per-call overhead (thousands of calls per host).
_json_str = json.encoder.encode_basestring_ascii


def yajl_dumps(value: object, level: int = 0) -> str:
    """JSON as libxl's yajl generator beautifies it: 4-space indent, ``"key": value``,
    and an empty object or array opened and closed on lines of their own."""
    pad = "    " * level
    inner = pad + "    "
    if type(value) is dict:
        if not value:
            return "{\n\n" + pad + "}"
        items = [inner + _json_str(k) + ": " + yajl_dumps(v, level + 1) for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if type(value) is list:
        if not value:
            return "[\n\n" + pad + "]"
        items = [inner + yajl_dumps(v, level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if type(value) is str:
        return _json_str(value)
    if type(value) is int:
        return str(value)
    return json.dumps(value)


def _disk_path(uname: str) -> str:
    """``file:/img`` -> ``/img``, ``tap:aio:/img`` -> ``/img``, ``phy:/dev/x`` -> ``/dev/x``."""
    for prefix in ("tap:aio:", "tap2:tapdisk:aio:", "file:", "phy:"):
        if uname.startswith(prefix):
            return uname[len(prefix) :]
    return uname


def _xl_disk(disk: dict[str, str]) -> dict[str, object]:
    uname = disk["uname"]
    backend = "qdisk"
    for prefix, be in (("tap:aio:", "tap"), ("file:", "qdisk"), ("phy:", "phy")):
        if uname.startswith(prefix):
            uname, backend = uname[len(prefix) :], be
            break
    entry: dict[str, object] = {
        "pdev_path": uname,
        "vdev": disk["dev"],
        "backend": backend,
        "format": "raw",
    }
    if disk["mode"] == "w":
        entry["readwrite"] = 1  # libxl's JSON leaves out fields at their default (0)
    return entry


def domain_xl_config(dom: Domain) -> dict[str, object]:
    pv = dom["type"] == "PV"
    b_info: dict[str, object] = {
        "max_vcpus": dom["vcpus"],
        "avail_vcpus": list(range(dom["vcpus"])),
        "max_memkb": dom["maxmem"] * 1024,
        "target_memkb": dom["memory"] * 1024,
        "sched_params": {},
    }
    if pv:
        b_info["type.pv"] = {"bootloader": "pygrub"}
    else:
        b_info["shadow_memkb"] = 10240
        b_info["type.hvm"] = {
            "boot": "c",
            "vnc": {"enable": "True", "listen": "127.0.0.1", "findunused": "True"},
            "serial": "pty",
        }
    b_info["arch_arm"] = {}
    return {
        "c_info": {
            "type": "pv" if pv else "hvm",
            "name": dom["name"],
            "uuid": dom["uuid"],
            "run_hotplug_scripts": "True",
        },
        "b_info": b_info,
        "disks": [_xl_disk(d) for d in dom["disks"]],
        "nics": [
            {
                "devid": i,
                "mac": v["mac"],
                "bridge": v["bridge"],
                "script": "/etc/xen/scripts/vif-bridge",
                "nictype": "vif",
            }
            for i, v in enumerate(dom["vifs"])
        ],
        "on_poweroff": "destroy",
        "on_reboot": "restart",
        "on_crash": "restart",
    }


def render_xl_list_long(state: State, doms: Iterable[Domain] | None = None) -> str:
    # Domain-0 has no xl userdata, so xl leaves it out of `xl list -l`.
    entries = [
        {"domid": d["domid"], "config": domain_xl_config(d)}
        for d in (xl_visible(state) if doms is None else doms)
        if d["name"] != "Domain-0"
    ]
    return yajl_dumps(entries) + "\n"


def render_vm_cfg(dom: Domain) -> str:
    """The domain's Oracle VM style ``vm.cfg`` (Python syntax), for tests that want it."""
    lines = [
        f"name = {dom['name']!r}",
        f"uuid = {dom['uuid']!r}",
        f"memory = {dom['memory']}",
        f"maxmem = {dom['maxmem']}",
        f"vcpus = {dom['vcpus']}",
    ]
    if dom["type"] == "PV":
        lines.append("bootloader = '/usr/bin/pygrub'")
    else:
        lines += ["builder = 'hvm'", "kernel = '/usr/lib/xen/boot/hvmloader'", "boot = 'c'"]
    disks = ", ".join(repr(f"{d['uname']},{d['dev']},{d['mode']}") for d in dom["disks"])
    vifs = ", ".join(repr(f"mac={v['mac']},bridge={v['bridge']}") for v in dom["vifs"])
    lines += [f"disk = [{disks}]", f"vif = [{vifs}]", "on_crash = 'restart'"]
    lines.append("on_reboot = 'restart'")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ commands

XM_HELP = {
    "create": ("<ConfigFile> [options] [vars]", "Create a domain based on <ConfigFile>."),
    "destroy": ("<Domain>", "Terminate a domain immediately."),
    "info": ("[-c|--config]", "Get information about Xen host."),
    "list": ("[options] [Domain, ...]", "List information about all/some domains."),
    "pause": ("<Domain>", "Pause execution of a domain."),
    "reboot": ("<Domain> [-wa]", "Reboot a domain."),
    "shutdown": ("<Domain> [-waRH]", "Shutdown a domain."),
    "unpause": ("<Domain>", "Unpause a paused domain."),
}
XM_OPTIONS = {
    "list": (
        ("-l, --long", "Output all VM details in SXP"),
        ("--label", "Include security labels"),
        ("--state=<state>", "Select only VMs with the specified state"),
    ),
}
XL_HELP = {
    "create": ("<ConfigFile> [options] [vars]", "Create a domain from config file <filename>"),
    "destroy": ("[options] <Domain>", "Terminate a domain immediately"),
    "info": ("[-n|--numa]", "Get information about Xen host"),
    "list": ("[options] [Domain]", "List information about all/some domains"),
    "pause": ("<Domain>", "Pause execution of a domain"),
    "reboot": ("[options] <-a|Domain>", "Issue a reboot signal to a domain"),
    "shutdown": ("[options] <-a|Domain>", "Issue a shutdown signal to a domain"),
    "unpause": ("<Domain>", "Unpause a paused domain"),
}
XL_OPTIONS = {
    "list": (
        "-l, --long              Output all VM details\n"
        "-v, --verbose           Prints out UUIDs and security context\n"
        "-Z, --context           Prints out security context\n"
        "-c, --cpupool           Prints the cpupool the domain is in\n"
        "-n, --numa              Prints out NUMA node affinity"
    ),
}
MUTATIONS = ("create", "destroy", "pause", "reboot", "shutdown", "unpause")


class Result:
    def __init__(self, stdout: str = "", stderr: str = "", status: int = 0) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.status = status


def usage_text(tool: str, sub: str) -> str:
    if tool == "xm":
        args, desc = XM_HELP.get(sub, ("", ""))
        text = f"Usage: xm {sub} {args}\n\n{desc}\n"
        options = XM_OPTIONS.get(sub)
        if options:
            text += "".join(f"  {opt:<30} {desc:<43}\n" for opt, desc in options) + "\n"
        return text
    args, desc = XL_HELP.get(sub, ("", ""))
    text = f"Usage: xl [-v] {sub} {args}\n\n{desc}.\n\n"
    if sub in XL_OPTIONS:
        text += f"Options:\n\n{XL_OPTIONS[sub]}\n"
    return text


def _not_found(tool: str, name: str) -> Result:
    if tool == "xm":
        return Result(stderr=f"Error: Domain '{name}' does not exist.\n", status=1)
    return Result(stderr=f"{name} is an invalid domain identifier (rc=-6)\n", status=1)


def find_domain(state: State, tool: str, ident: str) -> Domain | None:
    """By name, domid or uuid, as xm/xl accept; xl knows only existing domains."""
    candidates: list[Domain] = [
        d for d in state["domains"] if _is_running(d) or (tool == "xm" and d["managed"])
    ]
    for d in candidates:
        if d["name"] == ident or d["uuid"] == ident:
            return d
    if ident.isdigit():
        for d in candidates:
            if d["domid"] == int(ident):
                return d
    return None


def _is_dom0(ident: str) -> bool:
    return ident in ("Domain-0", "0", "00000000-0000-0000-0000-000000000000")


def _positional(args: Sequence[str]) -> list[str]:
    return [a for a in args if not a.startswith("-")]


def run_command(tool: str, args: Sequence[str], state_dir: Path) -> Result:
    """Everything the sh fast path does not answer; faults were handled by the caller."""
    if not args:
        return Result(stdout=usage_text(tool, "list"), status=1)
    sub, rest = args[0], list(args[1:])
    if sub == "info":
        return Result(stdout=render_info(tool, update_state(state_dir)))
    if sub == "list":
        return _list(tool, rest, update_state(state_dir))
    if sub == "sysrq":
        return _sysrq(tool, rest, update_state(state_dir))
    if sub in ("block-attach", "block-detach"):
        with _locked(state_dir):
            state = load_state(state_dir)
            settle(state)
            result = _block(tool, sub, rest, state)
            save_state(state_dir, state)
        return result
    if sub not in MUTATIONS:
        if tool == "xm":
            return Result(stderr=f"Error: Subcommand {sub} not found!\n", status=1)
        return Result(stderr="command not implemented\n", status=1)
    names = _positional(rest)
    if not names:
        if tool == "xm":
            msg = f"Error: 'xm {sub}' requires 1 argument.\n\n"
            return Result(stdout=usage_text(tool, sub), stderr=msg, status=1)
        return Result(stdout=usage_text(tool, sub), status=2)
    with _locked(state_dir):
        state = load_state(state_dir)
        settled = settle(state)
        result = _mutate(tool, sub, names[0], state)
        if settled or result.status == 0:
            save_state(state_dir, state)
    return result


def _sysrq(tool: str, rest: list[str], state: State) -> Result:
    """`xm/xl sysrq DOM KEY`: silent when it went (the real tools print nothing); the key is
    in the argv log. Errors approximate the tools' (xm: its usage; xl: its own words)."""
    if len(rest) != 2:
        if tool == "xm":
            msg = "Error: 'xm sysrq' requires 2 arguments.\n\n"
            return Result(stdout="Usage: xm sysrq <Domain> <letter>\n", stderr=msg, status=1)
        return Result(stdout="Usage: xl sysrq <Domain> <sysrq letter>\n", status=2)
    ident, key = rest
    dom = _dom0(state) if _is_dom0(ident) else find_domain(state, tool, ident)
    if dom is None:
        return _not_found(tool, ident)
    if not _is_dom0(ident) and not _is_running(dom):
        return Result(stderr=f"Error: Domain '{ident}' is not started\n", status=1)
    if len(key) != 1:
        return Result(stderr="Error: sysrq must be a single character\n", status=1)
    return Result()


def _block(tool: str, sub: str, rest: list[str], state: State) -> Result:
    """`xm block-attach DOM BACKDEV FRONTDEV MODE`, `xl block-attach DOM SPEC...` (the
    components joined by commas: xm's legacy `target,vdev,access`), `block-detach DOM DEV`
    of both: the running domain's disks change as they would. Approximations of the tools'
    texts, not recordings."""
    args = _positional(rest) if sub == "block-detach" else rest
    wanted = 2 if sub == "block-detach" else (4 if tool == "xm" else 2)
    if len(args) < wanted:
        if tool == "xm":
            msg = f"Error: 'xm {sub}' requires between {wanted} and 5 arguments.\n\n"
            return Result(stdout=f"Usage: xm {sub} ...\n", stderr=msg, status=1)
        return Result(stdout=f"Usage: xl {sub} ...\n", status=2)
    ident = args[0]
    dom = find_domain(state, tool, ident)
    if dom is None:
        return _not_found(tool, ident)
    if not _is_running(dom):
        return Result(stderr=f"Error: Domain '{ident}' is not started\n", status=1)
    if sub == "block-detach":
        dev = args[1]
        kept = [d for d in dom["disks"] if d["dev"].split(":")[0] != dev]
        if len(kept) == len(dom["disks"]):
            return Result(stderr=f"Error: Device {dev} not connected\n", status=1)
        dom["disks"] = kept
        return Result()
    if tool == "xm":
        uname, dev, mode = args[1], args[2], args[3]
    else:
        parts = ",".join(args[1:]).split(",")
        if len(parts) < 3:
            return Result(stderr=f"xl: unparsable disk spec: {','.join(args[1:])}\n", status=1)
        uname, dev, mode = ",".join(parts[:-2]), parts[-2], parts[-1]
    if any(d["dev"].split(":")[0] == dev for d in dom["disks"]):
        return Result(stderr=f"Error: Device {dev} is already connected.\n", status=1)
    dom["disks"].append({"uname": uname, "dev": dev, "mode": mode})
    return Result()


def _list(tool: str, rest: list[str], state: State) -> Result:
    long_form = any(a in ("-l", "--long") for a in rest)
    names = _positional(rest)
    doms: list[Domain] | None = None
    if names:
        doms = []
        for name in names:
            if _is_dom0(name):
                doms.append(_dom0(state))
                continue
            dom = find_domain(state, tool, name)
            if dom is None:
                return _not_found(tool, name)
            doms.append(dom)
    if tool == "xm":
        text = render_xm_list_long(state, doms) if long_form else render_xm_list(state, doms)
    else:
        text = render_xl_list_long(state, doms) if long_form else render_xl_list(state, doms)
    return Result(stdout=text)


def _mutate(tool: str, sub: str, ident: str, state: State) -> Result:
    now = time.time()
    if sub == "create":
        return _create(tool, ident, state, now)
    if _is_dom0(ident):
        if tool == "xm":
            return Result(stderr=f"Error: Cannot {sub} privileged domain 0\n", status=1)
        return Result(stderr=f"Not {sub}ing domain 0; use -f to force.\n", status=1)
    dom = find_domain(state, tool, ident)
    if dom is None:
        return _not_found(tool, ident)
    if not _is_running(dom):
        # Only xm can see a shut-off (managed) domain at all.
        return Result(stderr=f"Error: Domain '{ident}' is not started\n", status=1)
    err = ""
    if sub == "destroy":
        _power_off(dom)
    elif sub == "shutdown":
        delay = float(state.get("shutdown_delay", 0.0))
        if delay > 0:
            dom.update(state=SHUTTING_DOWN, shutdown_at=now + delay)
        else:
            _power_off(dom)
        if tool == "xl":
            err = f"Shutting down domain {dom['domid']}\n"
    elif sub == "reboot":
        if tool == "xl":
            err = f"Rebooting domain {dom['domid']}\n"
        # A Xen reboot builds a new domain: new id, fresh clock.
        dom.update(domid=_next_domid(state), state="r-----", start_time=now, cpu_time=0.0)
    elif sub == "pause":
        dom["state"] = PAUSED
    elif sub == "unpause":
        dom["state"] = "-b----"
    return Result(stderr=err)


def _next_domid(state: State) -> int:
    domid = int(state["next_domid"])
    state["next_domid"] = domid + 1
    return domid


def _create(tool: str, path: str, state: State, now: float) -> Result:
    prologue = f"Parsing config from {path}\n" if tool == "xl" else ""
    dom = next((d for d in state["domains"] if d["config"] == path), None)
    if dom is None:
        if tool == "xm":
            msg = f"Error: Unable to open config file: {path}\n"
            return Result(stdout=usage_text("xm", "create"), stderr=msg, status=1)
        msg = f"{prologue}Failed to read config file: {path}: No such file or directory\n"
        return Result(stderr=msg, status=1)
    if _is_running(dom):
        if tool == "xm":
            msg = f"Error: VM name '{dom['name']}' already exists as domain {dom['domid']}\n"
            return Result(stderr=msg, status=1)
        msg = (
            f"{prologue}libxl: error: libxl_create.c:651:libxl__domain_make: "
            f'Domain {dom["domid"]}:domain with name "{dom["name"]}" already exists.\n'
        )
        return Result(stderr=msg, status=3)
    domid = _next_domid(state)
    dom.update(domid=domid, state="r-----", start_time=now, cpu_time=0.0, shutdown_at=None)
    if tool == "xm":
        out = f'Using config file "{path}".\nStarted domain {dom["name"]} (id={domid})\n'
        return Result(stdout=out)
    return Result(stderr=prologue)


# -------------------------------------------------------------------------- faults


def fault_result(kind: str, tool: str, args: Sequence[str], state_dir: Path) -> Result:
    sub = args[0] if args else "list"
    if kind == "error":
        if tool == "xm":
            msg = "Error: Device 0 (vif) could not be connected. Hotplug scripts not working.\n"
        else:
            msg = (
                "libxl: error: libxl_domain.c:1530:devices_destroy_cb: "
                "Domain 20:libxl__devices_destroy failed\n"
            )
        return Result(stdout=usage_text(tool, sub), stderr=msg, status=1)
    # "malformed": a real-looking start that goes wrong, as when xend dies mid-answer.
    text = ""
    if sub in ("list", "info"):
        state = load_state(state_dir)
        text = render(tool, ["list", *args[1:2]] if sub == "list" else ["info"], state)
    head = text[: max(len(text) * 3 // 5, 1)] if text else ""
    garbage = "\n)) (domain (domid ?\x7f} Traceback ...\n\t-b---- NaN MiB ::: {]\n"
    return Result(stdout=head + garbage)


def hang() -> int:
    # Like a wedged xend: never answers. Give up once the SSH session that started us is
    # gone (we get re-parented), so a forgotten hang cannot outlive its connection.
    parent = os.getppid()
    while True:
        time.sleep(0.25)
        if os.getppid() != parent:
            return 1


def main(argv: Sequence[str]) -> int:
    if argv[1] == "--render":
        # Start-up of a large estate: (re-)render the outputs of these state dirs.
        for path in argv[2:]:
            save_state(Path(path), load_state(Path(path)))
        return 0
    tool, args = argv[1], list(argv[2:])
    state_dir = Path(os.environ["XENFAKE_STATE"])
    try:
        kind = (state_dir / FAULT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kind = ""
    if kind == "hang":
        return hang()
    if args[:1] == ["console"] and not kind:
        # A program of its own (a PTY loop), beside this file in the helper dir.
        import xenconsole  # only inside an SSH session, where it lies beside this file

        return int(xenconsole.main(tool, args[1:], state_dir))
    if args[:1] == ["migrate"] and not kind:
        import xenmigrate  # beside this file, as xenconsole

        return int(xenmigrate.main(tool, args[1:], state_dir))
    result = (
        fault_result(kind, tool, args, state_dir) if kind else run_command(tool, args, state_dir)
    )
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    return result.status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
