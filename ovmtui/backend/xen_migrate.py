"""Migration of Xen domains over SSH: ``xm migrate`` / ``xl migrate`` and what the flight
plan's checks weigh (``base.Migrator``).

The backend (``xen_ssh``) runs the commands; this module, which never sees asyncssh, says
which commands (every argument quoted), reads their output into ``MigrationNeeds`` and
``TargetAnswers``, and reads a finished migration's output into success or the tool's words.

What each side is asked, one command each:

- the source, for the needs: ``xm/xl info`` (the CPU's ``hw_caps`` words and Xen's version),
  dom0's ``vendor_id`` from ``/proc/cpuinfo`` (neither tool prints the vendor; a PV dom0
  sees the real one) and the VM's ``vm.cfg`` when known (PCI passthrough and other
  host-bound devices; disks and NICs come from the poll already);
- the target, for its answers: the same CPU facts, then ``env test -e PATH`` per disk path
  and ``env test -d /sys/class/net/BRIDGE/bridge`` per bridge, all in one ``sh -c`` whose
  arguments are the quoted paths and bridges. ``env``: an external ``test``, which a fake
  dom0 can answer for storage and bridges it does not have; ``/usr/bin/test`` on a real one.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ovmtui.backend.xen_parse.common import output_text
from ovmtui.backend.xen_parse.hw_caps import cpu_flags, featureset_layout
from ovmtui.backend.xen_parse.info import parse_info_fields
from ovmtui.backend.xen_parse.vm_cfg import parse_vm_cfg
from ovmtui.errors import ActionFailed, ActionRefused
from ovmtui.model import MigrationNeeds, TargetAnswers, Vm

# What is kept of a migration's output for the error message: xl prints a line or two a
# phase, xm nothing until it fails; the tail says what went wrong.
OUTPUT_TAIL_BYTES = 8192
_SYSFS_NET = "/sys/class/net"
# Lines of a failed migration's output that say why (xm: "Error: ..."; xl: libxl errors,
# "failed to free memory", "Domain creation failed", "Migration failed ..."; ssh's own).
_FAILURE = re.compile(
    r"error|fail|cannot|can't|could not|not found|invalid domain|refused|denied|no such",
    re.IGNORECASE,
)
_USAGE = re.compile(r"^(usage:|options:|-\w|--\w)", re.IGNORECASE)
_CPU_DEFINITION = re.compile(r"xen (?P<major>\d+)\.(?P<minor>\d+) hw_caps (?P<caps>\S+)")
# vm.cfg settings that bind a VM to its host: devices of the host given to the guest.
_PASSTHROUGH = {
    "pci": "PCI passthrough",
    "ioports": "I/O ports passthrough",
    "irqs": "IRQ passthrough",
    "iomem": "I/O memory passthrough",
    "vscsi": "SCSI passthrough",
    "usbdev": "USB passthrough",
    "usbctrl": "USB controller",
    "vtpm": "virtual TPM",
}


def migration_argv(tool: str, vm: Vm, target_address: str, *, live: bool) -> list[str]:
    """``xm migrate [--live] NAME ADDRESS`` / ``xl migrate NAME ADDRESS``.

    The name, not the domain id: names are unique on a host and stay, while an id read at
    the last poll may name nothing (or, once reused, another domain) after a reboot. xl has
    no offline migration (it always migrates live): ``live=False`` is refused there.
    """
    if tool == "xl":
        if not live:
            raise ActionRefused(
                f"{vm.name}: xl has no offline migration (`xl migrate` is always live); "
                "migrate it live, or shut it down and start it on the target"
            )
        return ["xl", "migrate", vm.name, target_address]
    return ["xm", "migrate", *(["--live"] if live else []), vm.name, target_address]


def migration_command(tool: str, vm: Vm, target_address: str, *, live: bool) -> str:
    """The quoted shell command of ``migration_argv``."""
    return shlex.join(migration_argv(tool, vm, target_address, live=live))


# -- sectioned commands ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Script:
    """A shell command printing several outputs, each after a marker line of its own."""

    command: str
    marker: str


def _script(parts: Sequence[tuple[str, str]]) -> Script:
    """``parts`` (name, shell code) in order, each section's output after ``MARKER name``."""
    marker = f"@@ovmtui-{secrets.token_hex(8)}"
    lines = [
        f"printf '%s\\n' {shlex.quote(f'{marker} {name}')}; {{ {code}; }} 2>&1"
        for name, code in parts
    ]
    return Script("; ".join(lines), marker)


def _sections(text: str, marker: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in text.split(f"{marker} ")[1:]:
        name, _, body = chunk.partition("\n")
        found[name.strip()] = body
    return found


def _cpu_parts(tool: str) -> list[tuple[str, str]]:
    return [
        ("info", f"{tool} info"),
        # The first vendor_id line: dom0 is a guest on the same CPUs (x86 only: none on ARM).
        ("vendor", "grep -m 1 '^vendor_id' /proc/cpuinfo"),
    ]


def needs_script(tool: str, config_path: str | None) -> Script:
    """The one command the source runs for ``migration_needs``."""
    parts = _cpu_parts(tool)
    if config_path is not None:
        parts.append(("cfg", f"cat -- {shlex.quote(config_path)}"))
    return _script(parts)


def target_script(tool: str, needs: MigrationNeeds) -> Script:
    """The one command a candidate target runs for ``can_host``: its CPU facts, then one
    ``y``/``n`` line per path and per bridge, in the order of ``checked_paths`` and
    ``checked_bridges``. Paths and bridges reach the script as its quoted arguments, never
    inside its text."""
    paths = checked_paths(needs)
    bridges = checked_bridges(needs)
    check = (
        'for p do if [ "$p" = -- ]; then shift; break; fi; '
        'if env test -e "$p"; then echo y; else echo n; fi; shift; done; '
        f'for b do if env test -d "{_SYSFS_NET}/$b/bridge"; then echo y; else echo n; fi; done'
    )
    args = shlex.join(["sh", "-c", check, "sh", *paths, "--", *bridges])
    return _script([*_cpu_parts(tool), ("checks", args)])


def checked_paths(needs: MigrationNeeds) -> tuple[str, ...]:
    """The disk paths a target can be asked about: absolute ones (a ``drbd:`` or ``rbd:``
    resource names storage, not a path: its answer is unknown)."""
    return tuple(dict.fromkeys(p for p in needs.disk_paths if p.startswith("/")))


def checked_bridges(needs: MigrationNeeds) -> tuple[str, ...]:
    """The bridges a target can be asked about: names an interface may have (no ``/``)."""
    names = (n for n in needs.networks if n and "/" not in n and n not in (".", ".."))
    return tuple(dict.fromkeys(names))


# -- reading the answers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuFacts:
    """A host's CPU as ``xm/xl info`` and ``/proc/cpuinfo`` describe it."""

    vendor: str | None
    hw_caps: str | None
    xen_major: int | None
    xen_minor: int | None

    @property
    def flags(self) -> tuple[str, ...] | None:
        if not self.hw_caps:
            return None
        return cpu_flags(self.hw_caps, featureset=featureset_layout(self.xen_major, self.xen_minor))

    @property
    def definition(self) -> str | None:
        if not self.hw_caps or self.xen_major is None or self.xen_minor is None:
            return None
        return f"xen {self.xen_major}.{self.xen_minor} hw_caps {self.hw_caps}"


def _cpu_facts(sections: Mapping[str, str], tool: str) -> CpuFacts:
    fields = parse_info_fields(sections.get("info", ""), f"{tool} info").value

    def number(key: str) -> int | None:
        value = fields.get(key, "").strip()
        return int(value) if value.isdigit() else None

    _, _, vendor = sections.get("vendor", "").partition(":")
    return CpuFacts(
        vendor=vendor.strip() or None,
        hw_caps=fields.get("hw_caps", "").strip() or None,
        xen_major=number("xen_major"),
        xen_minor=number("xen_minor"),
    )


def read_needs(
    vm: Vm,
    tool: str,
    output: str | bytes | None,
    marker: str,
    *,
    shared_storage: str | None = None,
) -> MigrationNeeds:
    """The source's ``needs_script`` output, and what the poll knows of ``vm``, as needs."""
    sections = _sections(output_text(output), marker)
    cpu = _cpu_facts(sections, tool)
    config: Mapping[str, object] = {}
    if "cfg" in sections:
        config = parse_vm_cfg(sections["cfg"], vm.config_path or "vm.cfg").value
    return MigrationNeeds(
        memory_mib=vm.memory_mib if vm.memory_mib is not None else vm.max_memory_mib,
        cpu_definition=cpu.definition,
        cpu_vendor=cpu.vendor,
        cpu_flags=cpu.flags or (),
        disk_paths=tuple(dict.fromkeys(d.source for d in vm.disks if d.source)),
        networks=tuple(dict.fromkeys(n.network for n in vm.nics if n.network)),
        host_local=host_local(vm, config, shared_storage=shared_storage),
        toolstack=tool,
    )


def host_local(
    vm: Vm, config: Mapping[str, object], *, shared_storage: str | None = None
) -> tuple[str, ...]:
    """What ties ``vm`` to its host, in the operator's words: the host's devices its vm.cfg
    gives it (``pci = [...]``, USB, I/O ports, SCSI, a TPM), a ``nomigrate`` setting, and,
    when the pool's shared storage is known, file disks that are not on it."""
    ties: list[str] = []
    for key, what in _PASSTHROUGH.items():
        for item in _entries(config.get(key)):
            ties.append(f"{what} {item}")
    for key in ("usbdevice", "usb"):
        for item in _entries(config.get(key)):
            if item.lower().startswith("host:"):  # usbdevice = 'host:046d:c016'
                ties.append(f"USB passthrough {item}")
    if config.get("gfx_passthru") not in (None, 0, False, "0", ""):
        ties.append("graphics passthrough (gfx_passthru)")
    if config.get("nomigrate") not in (None, 0, False, "0", ""):
        ties.append("nomigrate is set in its vm.cfg")
    if shared_storage:
        shared = shared_storage.rstrip("/") + "/"
        for disk in vm.disks:
            path = disk.source
            if path and path.startswith("/") and not path.startswith(("/dev/", shared)):
                ties.append(
                    f"{disk.device} {disk.target}: {path} (not on the pool's shared storage "
                    f"{shared_storage})"
                )
    return tuple(dict.fromkeys(ties))


def _entries(value: object) -> list[str]:
    if value is None or value == "" or value == [] or value == ():
        return []
    items: Iterable[object] = value if isinstance(value, list | tuple) else [value]
    return [str(item).strip() for item in items if str(item).strip()]


def read_answers(
    needs: MigrationNeeds, tool: str, output: str | bytes | None, marker: str
) -> TargetAnswers:
    """A target's ``target_script`` output as its answers to ``needs``."""
    sections = _sections(output_text(output), marker)
    paths, bridges = checked_paths(needs), checked_bridges(needs)
    lines = [line.strip() for line in sections.get("checks", "").splitlines() if line.strip()]
    answers = [line == "y" if line in ("y", "n") else None for line in lines]
    if len(answers) != len(paths) + len(bridges):
        answers = [None] * (len(paths) + len(bridges))  # cut short: none can be trusted
    seen_paths = dict(zip(paths, answers[: len(paths)], strict=True))
    seen_bridges = dict(zip(bridges, answers[len(paths) :], strict=True))
    compatible, detail = compare_cpus(needs, _cpu_facts(sections, tool))
    return TargetAnswers(
        cpu_compatible=compatible,
        cpu_detail=detail,
        paths_visible={p: seen_paths.get(p) for p in needs.disk_paths},
        networks_present={n: seen_bridges.get(n) for n in needs.networks},
        incoming_mib=0,  # xm and xl say nothing of migrations on their way in
        toolstack=tool,
    )


def compare_cpus(needs: MigrationNeeds, target: CpuFacts) -> tuple[bool | None, str]:
    """(compatible, what differs or how it was compared): same vendor, and every flag of
    the source's CPU on the target's. None when either side cannot tell."""
    if needs.cpu_vendor and target.vendor and needs.cpu_vendor != target.vendor:
        return False, f"CPU vendor differs: {needs.cpu_vendor} here, {target.vendor} there"
    source_flags = needs.cpu_flags if needs.cpu_definition else None
    target_flags = target.flags
    if source_flags is None or target_flags is None:
        side = "the source" if source_flags is None else "the target"
        return None, f"hw_caps unknown on {side}"
    source = _CPU_DEFINITION.fullmatch(needs.cpu_definition or "")
    same_layout = source is not None and featureset_layout(
        int(source["major"]), int(source["minor"])
    ) == featureset_layout(target.xen_major, target.xen_minor)
    have = set(target_flags)
    # Unnamed bits ("cpuid 7 bit 3") mean the same thing only in the same hw_caps layout.
    missing = [
        f for f in source_flags if f not in have and (same_layout or not f.startswith("cpuid "))
    ]
    if missing:
        return False, "the target's CPU lacks " + " ".join(missing)
    if not needs.cpu_vendor or not target.vendor:
        return None, "every CPU flag is there, but the CPU vendor is unknown"
    return True, f"same vendor ({target.vendor}); every CPU flag of the source is there"


def migration_failure(host: str, command: str, status: int | None, output: bytes) -> ActionFailed:
    """A migration that ended badly, in the tool's words: the lines of its output that say
    why (xm: ``Error: ...`` before its usage text; xl: its failure lines), else its last."""
    text = output_text(output[-OUTPUT_TAIL_BYTES:])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if _FAILURE.search(line) and not _USAGE.match(line)]
    why = " / ".join(dict.fromkeys(said[-4:])) or (lines[-1] if lines else "no output")
    how = "ended without an exit status" if status is None else f"exited with status {status}"
    return ActionFailed(f"{host}: `{command}` {how}: {why}", title="Migration failed")
