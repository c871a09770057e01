"""Migration over libvirt where no lab runs: libvirt's test driver (which has no migration),
the shown command, and the pure parts (what a domain's XML says a move needs, a reading of
``jobStats()``).

The move itself (progress, the guest running throughout, abort) is tested between two real
QEMU hosts: tests/e2e/lab/test_migrate.py.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from ovmtui.backend.base import Migrator, withheld
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.backend.libvirt_migrate import migration_flags, progress_from_stats
from ovmtui.backend.libvirt_xml import cpu_is_host, migration_needs
from ovmtui.errors import ActionFailed, ParseError, VmNotFound
from ovmtui.model import Capability, HostKey, MigrationNeeds, Vm, VmState
from tests.backend import contract
from tests.backend.conftest import DEFAULT_URI

H1, H2 = HostKey("pool1", "h1"), HostKey("pool1", "h2")
HOSTILE = "x; touch /tmp/pwned"

DOMAIN = """<domain type='kvm'>
  <name>web01</name>
  <memory unit='GiB'>2</memory>
  <currentMemory unit='MiB'>1024</currentMemory>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram>/OVS/running_pool/web01/VARS.fd</nvram>
  </os>
  <cpu mode='custom' match='exact'>
    <model fallback='forbid'>Haswell-noTSX</model>
    <vendor>Intel</vendor>
    <feature policy='require' name='vmx'/>
    <feature policy='disable' name='hle'/>
  </cpu>
  <devices>
    <disk type='file' device='disk'><source file='/OVS/running_pool/web01/System.img'/>
      <target dev='vda'/></disk>
    <disk type='block' device='disk'><source dev='/dev/mapper/data'/><target dev='vdb'/></disk>
    <disk type='volume' device='disk'><source pool='ovs' volume='data.img'/>
      <target dev='vdc'/></disk>
    <disk type='network' device='disk'><source protocol='rbd' name='pool/image'/>
      <target dev='vdd'/></disk>
    <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>
    <disk type='file' device='cdrom'><source file='/root/local.iso'/><target dev='hdd'/></disk>
    <disk type='file' device='disk'><source file='/OVS/running_pool/web01/System.img'/>
      <target dev='vde'/><shareable/></disk>
    <interface type='network'><source network='default'/></interface>
    <interface type='bridge'><source bridge='xenbr0'/></interface>
    <interface type='direct'><source dev='eth1' mode='bridge'/></interface>
    <interface type='user'/>
    <interface type='bridge'><source bridge='xenbr0'/></interface>
    <interface type='hostdev'><source><address type='pci' domain='0x0000' bus='0x05'
      slot='0x10' function='0x1'/></source></interface>
    <hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x03'
      slot='0x00' function='0x0'/></source></hostdev>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/>
      <product id='0xc52b'/></source></hostdev>
    <filesystem type='mount'><source dir='/srv/share'/><target dir='share'/></filesystem>
    <serial type='dev'><source path='/dev/ttyS1'/><target port='0'/></serial>
    <serial type='pty'><target port='1'/></serial>
  </devices>
</domain>"""

CAPABILITIES = """<capabilities><host><uuid>x</uuid>
  <cpu><arch>x86_64</arch><model>Broadwell-noTSX-IBRS</model><vendor>Intel</vendor>
    <feature name='vme'/><feature name='ss'/></cpu>
</host></capabilities>"""


# --------------------------------------------------------------------------- capability


@pytest.mark.parametrize("uri", [DEFAULT_URI, "test+ssh://root@h1/abs/node.xml"])
async def test_the_test_driver_withholds_migration_saying_why(uri: str) -> None:
    backend = LibvirtBackend(H1, uri)
    try:
        assert isinstance(backend, Migrator)  # implemented ...
        for _ in ("before connecting", "connected"):
            assert Capability.MIGRATE not in backend.capabilities  # ... not declared
            assert "test driver has no migration" in withheld(backend)[Capability.MIGRATE]
            contract.check_capabilities(backend)
            if uri != DEFAULT_URI:
                break  # no daemon to connect to: the URI alone tells
            await backend.connect()
    finally:
        await backend.close()


@pytest.mark.parametrize("uri", ["qemu+ssh://root@h1/system", "xen+ssh://root@h2/"])
def test_real_drivers_declare_migration(uri: str) -> None:
    backend = LibvirtBackend(H1, uri)
    assert Capability.MIGRATE in backend.capabilities
    assert Capability.MIGRATE not in withheld(backend)
    contract.check_capabilities(backend)


async def test_migrating_on_the_test_driver_is_refused_with_the_reason() -> None:
    source, target = LibvirtBackend(H1, DEFAULT_URI), LibvirtBackend(H2, DEFAULT_URI)
    try:
        vm = contract.vm_named(await source.poll(), "test")
        with pytest.raises(ActionFailed, match="test driver has no migration") as refused:
            await source.migrate(vm, target, live=True)
        assert refused.value.title == "Migrating test to h2 failed"
        # Refused before anything moved: the VM still runs where it was.
        assert contract.vm_named(await source.poll(), "test").state is VmState.RUNNING
    finally:
        await source.close()
        await target.close()


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize("name", ["web01", HOSTILE, "-x --force"])
@pytest.mark.parametrize(
    ("state", "live", "mode"),
    [
        (VmState.RUNNING, True, ["--live"]),
        (VmState.PAUSED, True, ["--live"]),
        (VmState.RUNNING, False, []),  # paused while copied: neither flag
        (VmState.SHUTOFF, False, ["--offline"]),
    ],
)
def test_the_command_is_virsh_migrate_quoted(
    name: str, state: VmState, live: bool, mode: list[str]
) -> None:
    source_uri = "qemu+ssh://root@h1/system?socket=/run/libvirt dir/sock"
    target_uri = "qemu+ssh://root@h2/system?keyfile=/root/my key"
    vm = Vm(uuid=str(uuid.uuid4()), name=name, state=state)
    target = LibvirtBackend(H2, target_uri)
    command = LibvirtBackend(H1, source_uri).migration_command(vm, target, live=live)
    # One word each, and named: a name starting with "-" is not an option to virsh.
    assert shlex.split(command) == [
        "virsh",
        "-c",
        source_uri,
        "migrate",
        *mode,
        "--persistent",
        "--undefinesource",
        "--unsafe",
        "--domain",
        name,
        "--desturi",
        target_uri,
    ]
    assert "touch" not in shlex.split(command)


def test_the_flags_are_the_commands() -> None:
    import libvirt

    always = (
        libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        | libvirt.VIR_MIGRATE_UNSAFE
    )
    assert migration_flags(live=True, running=True) == always | libvirt.VIR_MIGRATE_LIVE
    assert migration_flags(live=False, running=True) == always
    assert migration_flags(live=False, running=False) == always | libvirt.VIR_MIGRATE_OFFLINE
    assert migration_flags(live=True, running=False) == always | libvirt.VIR_MIGRATE_OFFLINE


# --------------------------------------------------------------------------- what a move needs


def test_needs_from_a_domain_xml() -> None:
    needs = migration_needs(DOMAIN, CAPABILITIES)
    assert needs.memory_mib == 2048  # <memory>: what the guest may grow to on the target
    assert needs.virt_type == "kvm" and needs.arch == "x86_64"
    assert needs.cpu_definition is not None
    assert "Haswell-noTSX" in needs.cpu_definition and not cpu_is_host(needs.cpu_definition)
    assert needs.cpu_vendor == "Intel"
    assert needs.cpu_flags == ("vmx",)  # required ones, not the disabled
    assert needs.disk_paths == (
        "/OVS/running_pool/web01/System.img",  # once, though two disks name it
        "/dev/mapper/data",
        "ovs/data.img",
        "rbd:pool/image",
        "/root/local.iso",  # not decided here whether it is on shared storage
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/OVS/running_pool/web01/VARS.fd",
    )
    assert needs.networks == ("default", "xenbr0", "eth1")
    assert needs.host_local == (
        "PCI passthrough 0000:03:00.0",
        "USB passthrough 0x046d:0xc52b",
        "NIC passthrough (PCI 0000:05:10.1)",
        "host directory /srv/share shared into the guest as share",
        "host device /dev/ttyS1 as serial port 0",
    )


@pytest.mark.parametrize("mode", ["host-model", "host-passthrough"])
def test_a_guest_with_the_hosts_cpu_is_compared_by_the_hosts_cpu(mode: str) -> None:
    xml = DOMAIN.replace(
        DOMAIN[DOMAIN.index("<cpu ") : DOMAIN.index("</cpu>") + 6], f"<cpu mode='{mode}'/>"
    )
    needs = migration_needs(xml, CAPABILITIES)
    assert needs.cpu_definition is not None
    assert "Broadwell-noTSX-IBRS" in needs.cpu_definition
    assert cpu_is_host(needs.cpu_definition)
    assert needs.cpu_flags == ("vme", "ss")


def test_a_guest_without_a_cpu_model_has_nothing_to_compare() -> None:
    plain = "<domain type='qemu'><memory>196608</memory><os><type>hvm</type></os></domain>"
    needs = migration_needs(plain)
    assert needs == MigrationNeeds(memory_mib=192, virt_type="qemu")
    topology = plain.replace("</os>", "</os><cpu><topology sockets='1' cores='2'/></cpu>")
    assert migration_needs(topology).cpu_definition is None


@pytest.mark.parametrize("text", ["<domain", "<capabilities/>"])
def test_unreadable_xml_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        migration_needs(text)


async def test_needs_are_read_from_the_host(
    libvirt_conn: Any, scratch_domain: Callable[..., tuple[str, str]]
) -> None:
    name, vm_uuid = scratch_domain()
    backend = LibvirtBackend(H1, DEFAULT_URI)
    try:
        vm = contract.vm_named(await backend.poll(), name)
        needs = await backend.migration_needs(vm)
        assert needs.memory_mib == 256
        assert needs.disk_paths == (f"/images/{vm_uuid}.img",)
        assert needs.virt_type == "test"
        ghost = Vm(uuid=str(uuid.uuid4()), name="ghost", state=VmState.RUNNING)
        with pytest.raises(VmNotFound):
            await backend.migration_needs(ghost)
    finally:
        await backend.close()


# --------------------------------------------------------------------------- a target's answers


async def test_a_target_answers_networks_volumes_and_what_it_cannot_tell(
    libvirt_conn: Any,
) -> None:
    pool = libvirt_conn.storagePoolLookupByName("default-pool")
    volume = pool.createXML("<volume><name>mig.img</name><capacity>1048576</capacity></volume>", 0)
    backend = LibvirtBackend(H2, DEFAULT_URI)
    try:
        needs = MigrationNeeds(
            memory_mib=256,
            cpu_definition="<cpu><model>qemu64</model></cpu>",
            virt_type="test",
            disk_paths=(
                "default-pool/mig.img",
                "default-pool/missing.img",
                "no-such-pool/mig.img",
                "rbd:pool/image",
                "/dev/sdz",
            ),
            networks=("default", "eth1", "no-such-net"),
        )
        answers = await backend.can_host(needs)
        assert answers.paths_visible == {
            "default-pool/mig.img": True,
            "default-pool/missing.img": False,
            "no-such-pool/mig.img": False,
            "rbd:pool/image": None,  # a network disk: libvirt cannot say
            "/dev/sdz": None,  # a device no pool lists: unknown, not missing
        }
        # A libvirt network, a host interface (a bridge's place), neither.
        assert answers.networks_present == {"default": True, "eth1": True, "no-such-net": False}
        # The test driver compares no CPUs: unknown, with libvirt's words, never "passed".
        assert answers.cpu_compatible is None
        assert answers.cpu_detail is not None and "not supported" in answers.cpu_detail
        assert answers.incoming_mib == 0
    finally:
        await backend.close()
        volume.delete(0)


# --------------------------------------------------------------------------- progress


def test_a_job_reading_becomes_progress() -> None:
    # One reading of the lab's vm1 migrating at 2 MiB/s (trimmed).
    stats = {
        "type": 2,
        "operation": 5,
        "time_elapsed": 3021,
        "data_total": 201859072,
        "data_processed": 5973702,
        "data_remaining": 194920448,
        "memory_total": 201859072,
        "memory_processed": 5973702,
        "memory_remaining": 194920448,
        "memory_bps": 2134260,
        "memory_dirty_rate": 0,
    }
    reading = progress_from_stats(stats, elapsed_s=9.0)
    assert reading is not None
    assert reading.elapsed_s == pytest.approx(3.021)  # libvirt's clock when it has one
    assert (reading.processed_bytes, reading.remaining_bytes) == (5973702, 194920448)
    assert reading.fraction == pytest.approx(1 - 194920448 / 201859072)
    assert reading.eta_s == pytest.approx(194920448 / 2134260)
    assert reading.dirty_pages_per_s == 0.0
    bare = progress_from_stats({"type": 2}, elapsed_s=1.5)
    assert bare is not None and bare.elapsed_s == 1.5 and bare.fraction is None


@pytest.mark.parametrize("stats", [{}, {"type": 0}, {"type": 0, "memory_total": 5}])
def test_no_job_no_reading(stats: dict[str, int]) -> None:
    assert progress_from_stats(stats, elapsed_s=1.0) is None
