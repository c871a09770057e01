"""Write the demo estate's node files: ``python -m ovmtui.demo.generate [--check]``.

The estate is described here as data so that it stays consistent (unique UUIDs and MACs,
memory that fits the hosts) and the XML is reproducible byte for byte: no clock, no
randomness. ``--check`` exits 1 when a shipped file differs from what this script writes.
"""

from __future__ import annotations

import hashlib
import posixpath
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ovmtui.demo import DEMO_HOSTS, DEMO_STORAGE, DemoHost
from ovmtui.model import HostRole

# virDomainState, as <test:runstate> expects it.
RUNNING, BLOCKED, PAUSED, SHUTDOWN, SHUTOFF, CRASHED, PMSUSPENDED = range(1, 8)
# The states in which a VM holds its memory (see VmState.is_active).
ACTIVE_STATES = frozenset({RUNNING, BLOCKED, PAUSED, SHUTDOWN, CRASHED})

GIB = 1024

OL6_ISO = "/OVS/iso_pool/OracleLinux-R6-U10-Server-x86_64-dvd.iso"
OL7_ISO = "/OVS/iso_pool/OracleLinux-R7-U9-Server-x86_64-dvd.iso"
OL8_ISO = "/OVS/iso_pool/OracleLinux-R8-U6-x86_64-dvd.iso"
WIN2012_ISO = "/OVS/iso_pool/en_windows_server_2012_r2_x64_dvd.iso"
WIN2016_ISO = "/OVS/iso_pool/en_windows_server_2016_x64_dvd.iso"
EMPTY = ""  # a cdrom drive with no medium

# Shared disks that guests only read: several hosts mount them at once.
READ_ONLY_SHARED = frozenset({"yum_mirror", "oracle_sw_stage"})


@dataclass(frozen=True, slots=True)
class VmSpec:
    name: str
    state: int
    vcpus: int
    memory_mib: int
    current_mib: int | None = None  # ballooned below memory_mib; None: equal
    pv: bool = False  # Xen paravirtualised (pygrub); otherwise HVM
    windows: bool = False
    nics: tuple[str, ...] = ("xenbr0",)  # bridge, or libvirt network of the node
    data_disks: int = 0  # local disks beyond System.img
    shared: tuple[str, ...] = ()  # /OVS/sharedDisk/<name>.img
    iso: str | None = None  # cdrom medium; EMPTY for a drive without one; None: no drive


@dataclass(frozen=True, slots=True)
class NodeSpec:
    cpu_model: str  # at most 31 characters: virNodeInfo.model is char[32]
    sockets: int
    cores: int
    threads: int
    mhz: int
    memory_gib: int
    vms: tuple[VmSpec, ...]
    networks: tuple[tuple[str, str], ...] = ()  # libvirt networks: (name, bridge)


def _rac(name: str, vcpus: int, memory_mib: int) -> VmSpec:
    """A RAC node: both nodes open the same ASM disks at once, hence shareable ones."""
    return VmSpec(
        name,
        RUNNING,
        vcpus,
        memory_mib,
        nics=("xenbr0", "xenbr1"),
        data_disks=1,
        shared=("ocr_vote", "asm_data01", "asm_fra01", "oracle_sw_stage"),
    )


PROD_CPU = "Intel Xeon E5-2690 v3"
PROD_CPU_NEW = "Intel Xeon E5-2680 v4"

NODES: dict[str, NodeSpec] = {
    # The pool master also runs the utility jobs, so it carries the infrastructure VMs.
    "ovs01": NodeSpec(
        cpu_model=PROD_CPU,
        sockets=2,
        cores=12,
        threads=2,
        mhz=2600,
        memory_gib=192,
        vms=(
            VmSpec("web01", RUNNING, 4, 8 * GIB),
            VmSpec("web02", RUNNING, 4, 8 * GIB),
            VmSpec("web03", BLOCKED, 4, 8 * GIB),
            _rac("db01", 16, 32 * GIB),
            VmSpec("app-erp01", RUNNING, 8, 16 * GIB, nics=("xenbr0", "xenbr1"), data_disks=1),
            VmSpec("app-portal01", RUNNING, 4, 8 * GIB),
            VmSpec("ldap01", RUNNING, 2, 4 * GIB, pv=True),
            VmSpec("dns01", BLOCKED, 1, 1 * GIB, pv=True),
            VmSpec("mon-zabbix01", RUNNING, 4, 8 * GIB, data_disks=1),
            VmSpec("mail01", RUNNING, 2, 6 * GIB, current_mib=4 * GIB, pv=True),
            VmSpec("backup-proxy01", SHUTOFF, 2, 4 * GIB, nics=("xenbr1",), iso=OL7_ISO),
            VmSpec("nfs-gw01", PAUSED, 2, 2 * GIB, pv=True, nics=("xenbr0", "xenbr1")),
            VmSpec("sso01", RUNNING, 2, 4 * GIB),
        ),
    ),
    "ovs02": NodeSpec(
        cpu_model=PROD_CPU_NEW,
        sockets=2,
        cores=14,
        threads=2,
        mhz=2400,
        memory_gib=256,
        vms=(
            VmSpec("web04", RUNNING, 4, 8 * GIB),
            VmSpec("web05", RUNNING, 4, 8 * GIB),
            _rac("db02", 16, 32 * GIB),
            VmSpec("app-erp02", RUNNING, 8, 16 * GIB, nics=("xenbr0", "xenbr1"), data_disks=1),
            VmSpec("app-erp03", SHUTDOWN, 8, 16 * GIB, nics=("xenbr0", "xenbr1"), data_disks=1),
            VmSpec("app-portal02", RUNNING, 4, 8 * GIB),
            VmSpec("app-batch01", RUNNING, 12, 24 * GIB, data_disks=2),
            VmSpec("app-batch02", BLOCKED, 12, 24 * GIB, data_disks=2),
            VmSpec("ora-em13c", RUNNING, 8, 16 * GIB, data_disks=1),
            VmSpec("dns02", RUNNING, 1, 1 * GIB, pv=True),
            VmSpec("ldap02", RUNNING, 2, 4 * GIB, pv=True),
            VmSpec("win2012-rds01", CRASHED, 4, 8 * GIB, windows=True, iso=WIN2012_ISO),
            VmSpec("win2016-ad01", RUNNING, 2, 4 * GIB, windows=True, iso=WIN2016_ISO),
            VmSpec("legacy-crm", SHUTOFF, 2, 3 * GIB, pv=True),
        ),
    ),
    "ovs03": NodeSpec(
        cpu_model=PROD_CPU_NEW,
        sockets=2,
        cores=14,
        threads=2,
        mhz=2400,
        memory_gib=256,
        vms=(
            VmSpec("web06", RUNNING, 4, 8 * GIB),
            VmSpec("web07", RUNNING, 4, 8 * GIB),
            VmSpec("web08", PAUSED, 4, 8 * GIB),
            VmSpec("db03-stby", RUNNING, 12, 24 * GIB, nics=("xenbr0", "xenbr1"), data_disks=2),
            VmSpec("app-soa01", RUNNING, 8, 16 * GIB),
            VmSpec("app-soa02", RUNNING, 8, 16 * GIB),
            VmSpec("app-obiee01", RUNNING, 16, 32 * GIB, current_mib=24 * GIB, data_disks=1),
            VmSpec("app-wls-admin", RUNNING, 2, 4 * GIB),
            VmSpec("kafka01", RUNNING, 4, 12 * GIB, data_disks=1),
            VmSpec("kafka02", RUNNING, 4, 12 * GIB, data_disks=1),
            VmSpec("kafka03", BLOCKED, 4, 12 * GIB, data_disks=1),
            VmSpec("elk01", RUNNING, 8, 16 * GIB, data_disks=2),
            VmSpec("proxy01", RUNNING, 2, 2 * GIB, pv=True, nics=("xenbr0", "c0a80a00")),
            VmSpec("template-ol7", SHUTOFF, 1, 1 * GIB, iso=OL7_ISO),
            VmSpec("old-db-clone", SHUTOFF, 8, 16 * GIB, data_disks=1),
        ),
    ),
    "dev01": NodeSpec(
        cpu_model="Intel Xeon E5-2640 v3",
        sockets=2,
        cores=8,
        threads=2,
        mhz=2600,
        memory_gib=128,
        vms=(
            VmSpec("build-ol7-01", RUNNING, 8, 16 * GIB, nics=("dev-net",), shared=("yum_mirror",)),
            VmSpec("build-ol7-02", RUNNING, 8, 16 * GIB, nics=("dev-net",), shared=("yum_mirror",)),
            VmSpec("build-ol8-01", BLOCKED, 8, 16 * GIB, nics=("dev-net",), shared=("yum_mirror",)),
            VmSpec("ci-runner-01", RUNNING, 4, 8 * GIB, nics=("ci-net",)),
            VmSpec("ci-runner-02", RUNNING, 4, 8 * GIB, nics=("ci-net",)),
            VmSpec("ci-runner-03", PMSUSPENDED, 4, 8 * GIB, nics=("ci-net",)),
            VmSpec("dev-db01", RUNNING, 8, 16 * GIB, nics=("dev-net",), data_disks=1),
            VmSpec("dev-app01", RUNNING, 4, 8 * GIB, nics=("dev-net",)),
            VmSpec("dev-web01", RUNNING, 2, 4 * GIB, nics=("dev-net",)),
            VmSpec("qa-selenium01", SHUTOFF, 2, 4 * GIB, nics=("dev-net",), iso=OL8_ISO),
            VmSpec("sandbox-jdoe", CRASHED, 2, 2 * GIB, nics=("dev-net",), iso=OL8_ISO),
            VmSpec("scratch-ol6", SHUTOFF, 1, 512, pv=True, nics=("dev-net",), iso=OL6_ISO),
        ),
        networks=(("dev-net", "devbr0"), ("ci-net", "cibr0")),
    ),
    # A small utility box that has been filled almost to the last gigabyte.
    "dev02": NodeSpec(
        cpu_model="Intel Xeon E5-2630 v3",
        sockets=1,
        cores=8,
        threads=2,
        mhz=2400,
        memory_gib=64,
        vms=(
            VmSpec("ci-runner-04", RUNNING, 4, 8 * GIB, nics=("ci-net",)),
            VmSpec("ci-runner-05", RUNNING, 4, 8 * GIB, nics=("ci-net",)),
            VmSpec("ci-runner-06", RUNNING, 4, 8 * GIB, nics=("ci-net",)),
            VmSpec("build-win01", RUNNING, 8, 16 * GIB, windows=True, nics=("dev-net",), iso=EMPTY),
            VmSpec("dev-db02", RUNNING, 4, 8 * GIB, nics=("dev-net",), data_disks=1),
            VmSpec(
                "artifact-cache01", RUNNING, 2, 6 * GIB, nics=("dev-net", "ci-net"), data_disks=2
            ),
            VmSpec("dev-app02", PAUSED, 2, 4 * GIB, nics=("dev-net",)),
            VmSpec("qa-loadgen01", SHUTDOWN, 4, 4 * GIB, current_mib=3 * GIB, nics=("ci-net",)),
            VmSpec("sandbox-asmith", PMSUSPENDED, 2, 2 * GIB, nics=("dev-net",)),
            VmSpec("dev-web02", SHUTOFF, 2, 2 * GIB, nics=("dev-net",)),
        ),
        networks=(("dev-net", "devbr0"), ("ci-net", "cibr0")),
    ),
}


def vm_uuid(host: str, vm: str) -> str:
    # Oracle VM Manager's own prefix for VM objects, so the demo reads like a real estate.
    digest = hashlib.sha256(f"ovmtui-demo/{host}/{vm}".encode()).hexdigest()
    return f"0004fb00-0006-0000-{digest[:4]}-{digest[4:16]}"


def network_uuid(host: str, network: str) -> str:
    digest = hashlib.sha256(f"ovmtui-demo/{host}/net/{network}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def mac(host_index: int, vm_index: int, nic_index: int) -> str:
    return f"00:16:3e:{0x10 + host_index:02x}:{vm_index:02x}:{nic_index:02x}"


def committed_mib(node: NodeSpec) -> int:
    return sum(vm.current_mib or vm.memory_mib for vm in node.vms if vm.state in ACTIVE_STATES)


def _attr(value: str) -> str:
    # Single quotes throughout, as libvirt itself writes domain XML.
    return "'" + escape(value, {"'": "&apos;"}) + "'"


def _disk(source: str, target: str, bus: str, *, shareable: bool, read_only: bool) -> list[str]:
    lines = [
        "      <disk type='file' device='disk'>",
        "        <driver name='file'/>",
        f"        <source file={_attr(source)}/>",
        f"        <target dev='{target}' bus='{bus}'/>",
    ]
    if read_only:
        lines.append("        <readonly/>")
    if shareable:
        lines.append("        <shareable/>")
    lines.append("      </disk>")
    return lines


def render_vm(host_index: int, host: str, vm_index: int, vm: VmSpec, node: NodeSpec) -> str:
    networks = {name for name, _ in node.networks}
    current = vm.current_mib or vm.memory_mib
    # Windows guests see emulated IDE and NICs; Linux guests use the Xen PV drivers.
    prefix, bus = ("hd", "ide") if vm.windows else ("xvd", "xen")
    lines = [
        "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>",
        f"    <name>{escape(vm.name)}</name>",
        f"    <uuid>{vm_uuid(host, vm.name)}</uuid>",
        f"    <memory unit='MiB'>{vm.memory_mib}</memory>",
        f"    <currentMemory unit='MiB'>{current}</currentMemory>",
        f"    <vcpu>{vm.vcpus}</vcpu>",
    ]
    if vm.pv:
        lines += [
            "    <bootloader>/usr/bin/pygrub</bootloader>",
            "    <os>",
            "      <type arch='x86_64'>xen</type>",
            "    </os>",
        ]
    else:
        lines += [
            "    <os>",
            "      <type arch='x86_64'>hvm</type>",
            "      <boot dev='hd'/>",
            "    </os>",
        ]
    # A crashed domain only stays visible (and inspectable) when told to be preserved.
    on_crash = "preserve" if vm.state == CRASHED else "restart"
    lines += [
        "    <on_poweroff>destroy</on_poweroff>",
        "    <on_reboot>restart</on_reboot>",
        f"    <on_crash>{on_crash}</on_crash>",
        "    <devices>",
    ]
    letters = iter("abcdefghijklmnop")
    lines += _disk(
        f"/OVS/running_pool/{vm.name}/System.img",
        prefix + next(letters),
        bus,
        shareable=False,
        read_only=False,
    )
    for n in range(1, vm.data_disks + 1):
        lines += _disk(
            f"/OVS/running_pool/{vm.name}/Data{n:02d}.img",
            prefix + next(letters),
            bus,
            shareable=False,
            read_only=False,
        )
    for name in vm.shared:
        lines += _disk(
            f"/OVS/sharedDisk/{name}.img",
            prefix + next(letters),
            bus,
            shareable=True,
            read_only=name in READ_ONLY_SHARED,
        )
    if vm.iso is not None:
        lines.append("      <disk type='file' device='cdrom'>")
        if vm.iso:
            lines.append(f"        <source file={_attr(vm.iso)}/>")
        lines += [
            "        <target dev='hdc' bus='ide'/>",
            "        <readonly/>",
            "      </disk>",
        ]
    for nic_index, source in enumerate(vm.nics):
        kind, attr = ("network", "network") if source in networks else ("bridge", "bridge")
        lines += [
            f"      <interface type='{kind}'>",
            f"        <mac address='{mac(host_index, vm_index, nic_index)}'/>",
            f"        <source {attr}={_attr(source)}/>",
            f"        <model type='{'e1000' if vm.windows else 'netfront'}'/>",
            "      </interface>",
        ]
    lines += [
        "      <console type='pty'/>",
        "      <graphics type='vnc' port='-1' listen='127.0.0.1'/>",
        "    </devices>",
        f"    <test:runstate>{vm.state}</test:runstate>",
        "  </domain>",
    ]
    return "\n".join(lines)


def render(host: DemoHost) -> str:
    host_index = DEMO_HOSTS.index(host) + 1
    node = NODES[host.name]
    cpus = node.sockets * node.cores * node.threads
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<!-- Generated by ovmtui/demo/generate.py: edit the script, not this file. -->",
        f"<!-- {host.pool}/{host.name}: {len(node.vms)} VMs, "
        f"{committed_mib(node) // GIB} of {node.memory_gib} GiB committed -->",
        "<node>",
        "  <cpu>",
        "    <nodes>1</nodes>",
        f"    <sockets>{node.sockets}</sockets>",
        f"    <cores>{node.cores}</cores>",
        f"    <threads>{node.threads}</threads>",
        f"    <active>{cpus}</active>",
        f"    <mhz>{node.mhz}</mhz>",
        f"    <model>{node.cpu_model}</model>",
        "  </cpu>",
        f"  <memory>{node.memory_gib * GIB * 1024}</memory>",  # KiB
    ]
    for name, bridge in node.networks:
        parts += [
            "  <network>",
            f"    <name>{name}</name>",
            f"    <uuid>{network_uuid(host.name, name)}</uuid>",
            f"    <bridge name='{bridge}'/>",
            "    <forward mode='bridge'/>",
            "  </network>",
        ]
    parts += [
        render_vm(host_index, host.name, vm_index, vm, node)
        for vm_index, vm in enumerate(node.vms, start=1)
    ]
    if HostRole.UTILITY in host.roles:
        parts += render_storage(host.pool)
    parts.append("</node>")
    return "\n".join(parts) + "\n"


def check_estate() -> list[str]:
    """The invariants the XML cannot show at a glance; an empty list when all hold."""
    problems: list[str] = []
    uuids: set[str] = set()
    names: set[str] = set()
    for host in DEMO_HOSTS:
        node = NODES[host.name]
        if len(node.cpu_model) > 31:
            problems.append(f"{host.name}: cpu model longer than 31 characters")
        for vm in node.vms:
            uuid = vm_uuid(host.name, vm.name)
            if uuid in uuids or vm.name in names:
                problems.append(f"{host.name}/{vm.name}: duplicate name or UUID")
            uuids.add(uuid)
            names.add(vm.name)
            if vm.windows and 1 + vm.data_disks + len(vm.shared) > 2:
                problems.append(f"{host.name}/{vm.name}: hda and hdb only, hdc is the cdrom")
            if vm.current_mib is not None and vm.current_mib > vm.memory_mib:
                problems.append(f"{host.name}/{vm.name}: currentMemory above memory")
        if committed_mib(node) >= node.memory_gib * GIB:
            problems.append(f"{host.name}: committed memory exceeds the host's")
    if set(NODES) != {host.name for host in DEMO_HOSTS}:
        problems.append("NODES and DEMO_HOSTS name different hosts")
    return problems


# What the demo pools' shared storage holds beyond their VMs' own folders (Oracle VM's
# layout under /OVS): templates, the ISOs the VMs boot from, a published VM.
TEMPLATES = ("OVM_OL7U9_x86_64_PVHVM", "OVM_OL6U10_x86_64_PVM")
PUBLISHED = ("ol7-golden-2024",)


def render_storage(pool: str) -> list[str]:
    """The pool's storage as its utility host's libvirt sees it: a ``dir`` storage pool a
    folder, named as ovmtui names them (``backend/libvirt_storage.pool_name``), so that the
    storage screen (``S``) has something to show."""
    vms = [vm for host in DEMO_HOSTS if host.pool == pool for vm in NODES[host.name].vms]
    isos = sorted({vm.iso for vm in vms if vm.iso})
    shared = sorted({name for vm in vms for name in vm.shared})
    folders: dict[str, list[tuple[str, str, int, str | None]]] = {
        # (name, type, bytes, format)
        "running_pool": [(vm.name, "dir", (20 + 40 * vm.data_disks) << 30, None) for vm in vms],
        "seed_pool": [(name, "dir", 12 << 30, None) for name in TEMPLATES],
        "iso_pool": [(posixpath.basename(iso), "file", 4 << 30, "iso") for iso in isos],
        "sharedDisk": [(f"{name}.img", "file", 50 << 30, "raw") for name in shared],
        "publish_pool": [(name, "dir", 20 << 30, None) for name in PUBLISHED],
    }
    parts: list[str] = []
    for folder, volumes in folders.items():
        path = f"{DEMO_STORAGE}/{folder}"
        parts += [
            "  <pool type='dir'>",
            f"    <name>ovmtui-{pool}-{folder}</name>",
            f"    <uuid>{storage_uuid(pool, folder)}</uuid>",
            f"    <target><path>{path}</path></target>",
        ]
        for name, kind, size, fmt in volumes:
            target = f"<path>{path}/{name}</path>"
            if fmt is not None:
                target += f"<format type='{fmt}'/>"
            parts += [
                f"    <volume type='{kind}'>",
                f"      <name>{escape(name)}</name>",
                f"      <capacity>{size}</capacity>",
                f"      <allocation>{size // 3}</allocation>",
                f"      <target>{target}</target>",
                "    </volume>",
            ]
        parts.append("  </pool>")
    return parts


def storage_uuid(pool: str, folder: str) -> str:
    digest = hashlib.sha256(f"ovmtui-demo/{pool}/storage/{folder}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = args == ["--check"]
    if args and not check:
        print("usage: python -m ovmtui.demo.generate [--check]", file=sys.stderr)
        return 2
    problems = check_estate()
    for host in DEMO_HOSTS:
        text = render(host)
        if check:
            current = host.path.read_text(encoding="utf-8") if host.path.exists() else None
            if current != text:
                problems.append(f"{host.path}: out of date, run python -m ovmtui.demo.generate")
        else:
            host.path.write_text(text, encoding="utf-8", newline="\n")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
