"""The pure half of Xen migration (``xen_migrate``, ``xen_parse.hw_caps``): the commands,
the CPU comparison, the ties to a host, and a failed migration's words, on recorded
outputs where there are some (tests/data/xen)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from ovmtui.backend.xen_migrate import (
    CpuFacts,
    compare_cpus,
    host_local,
    migration_argv,
    migration_failure,
    read_answers,
    target_script,
)
from ovmtui.backend.xen_parse.hw_caps import cpu_flags, featureset_layout
from ovmtui.backend.xen_parse.info import parse_info_fields
from ovmtui.errors import ActionRefused
from ovmtui.model import Disk, MigrationNeeds, Vm, VmState

DATA = Path(__file__).resolve().parent.parent / "data" / "xen"
VM = Vm(uuid="0004fb00-0006-0000-aaaa-000000000001", name="web01", state=VmState.RUNNING)


def _info(path: str) -> CpuFacts:
    text = (DATA / path).read_text().split("\n", 1)[1]  # line 1: the source
    fields = parse_info_fields(text).value
    return CpuFacts(
        "GenuineIntel", fields["hw_caps"], int(fields["xen_major"]), int(fields["xen_minor"])
    )


def test_hw_caps_of_oracle_vm_4_4_in_the_old_layout() -> None:
    cpu = _info("xm_info/exabox-ovm-4.4.4OVM-scaqak01adm04.txt")
    assert featureset_layout(cpu.xen_major, cpu.xen_minor) is False
    flags = cpu.flags
    assert flags is not None
    # 1.EDX, 0x80000001.EDX, 1.ECX, 7.0.EBX, all named; word 3 (Linux-synthetic) left out.
    for name in ("fpu", "sse2", "lm", "nx", "syscall", "sse4_2", "aes", "avx", "avx2", "bmi2"):
        assert name in flags
    assert not any(flag.startswith("cpuid 3 ") for flag in flags)


def test_hw_caps_of_xen_4_19_in_the_featureset_layout() -> None:
    cpu = _info("xl_info/alpine-xen-4.19.1-saphir.txt")
    flags = cpu.flags
    assert flags is not None
    for name in ("sse2", "avx", "lm", "xsaveopt", "avx2", "rdseed"):
        assert name in flags


def test_hw_caps_that_cannot_be_read() -> None:
    assert cpu_flags("bfebfbff:zz", featureset=True) is None
    assert cpu_flags("bfebfbff", featureset=None) is None  # no version: no layout
    assert cpu_flags("00000000:00000000", featureset=True) == ()  # ARM: nothing set


def _needs(cpu: CpuFacts, **more: object) -> MigrationNeeds:
    return MigrationNeeds(
        memory_mib=1024,
        cpu_definition=cpu.definition,
        cpu_vendor=cpu.vendor,
        cpu_flags=cpu.flags or (),
        **more,  # type: ignore[arg-type]
    )


def test_cpus_compared_by_vendor_then_flags() -> None:
    source = _info("xm_info/exabox-ovm-4.4.4OVM-scaqak01adm04.txt")
    assert compare_cpus(_needs(source), source)[0] is True
    amd = CpuFacts("AuthenticAMD", source.hw_caps, source.xen_major, source.xen_minor)
    assert compare_cpus(_needs(source), amd) == (
        False,
        "CPU vendor differs: GenuineIntel here, AuthenticAMD there",
    )
    assert source.hw_caps is not None
    older = CpuFacts("GenuineIntel", source.hw_caps.replace("77fefbff", "67fefbfe"), 4, 4)
    assert compare_cpus(_needs(source), older) == (False, "the target's CPU lacks pni avx")
    unknown = CpuFacts(None, source.hw_caps, 4, 4)
    assert compare_cpus(_needs(source), unknown)[0] is None
    assert compare_cpus(_needs(source), CpuFacts("GenuineIntel", None, 4, 4))[0] is None


def test_cpus_of_two_layouts_compared_by_name() -> None:
    """Oracle VM 3 (Xen 4.4) to Xen 4.19: the same flags sit in other words."""
    old = _info("xm_info/exabox-ovm-4.4.4OVM-scaqak01adm04.txt")
    new = _info("xl_info/alpine-xen-4.19.1-saphir.txt")
    compatible, detail = compare_cpus(_needs(old), new)
    assert not any(word.startswith("cpuid") for word in detail.split())
    assert compatible is False or "every CPU flag" in detail


def test_xl_refuses_offline_migration_and_xm_quotes() -> None:
    with pytest.raises(ActionRefused, match="always live"):
        migration_argv("xl", VM, "xen02", live=False)
    hostile = Vm(uuid=VM.uuid, name="a'b; rm -rf /", state=VmState.RUNNING)
    argv = migration_argv("xm", hostile, "10.0.0.2", live=True)
    assert argv == ["xm", "migrate", "--live", "a'b; rm -rf /", "10.0.0.2"]
    assert shlex.split(shlex.join(argv)) == argv


def test_the_target_script_quotes_every_path_and_bridge(tmp_path: Path) -> None:
    """Run here by bash, as sshd would run it: hostile paths stay paths."""
    there = tmp_path / "a b 'c'.img"
    there.write_bytes(b"")
    pwned = tmp_path / "pwned"
    needs = MigrationNeeds(
        memory_mib=1,
        disk_paths=(str(there), f"{tmp_path}/$(touch {pwned})", "drbd:r0"),
        networks=("lo", "br;touch pwned", "a/b"),
    )
    script = target_script("xm", needs)
    ran = subprocess.run(
        ["bash", "-c", script.command], capture_output=True, check=False, cwd=tmp_path
    )
    answers = read_answers(needs, "xm", ran.stdout, script.marker)
    assert not pwned.exists()
    assert dict(answers.paths_visible) == {
        str(there): True,
        f"{tmp_path}/$(touch {pwned})": False,
        "drbd:r0": None,  # names storage, not a path: unknown, never passed
    }
    # No bridge here ("lo" is an interface, not a bridge); "a/b" can name no interface.
    assert dict(answers.networks_present) == {"lo": False, "br;touch pwned": False, "a/b": None}
    cut = read_answers(needs, "xm", f"{script.marker} checks\ny\n", script.marker)
    assert set(cut.paths_visible.values()) == {None}  # cut short: nothing trusted


def test_host_local_ties() -> None:
    vm = Vm(
        uuid=VM.uuid,
        name="web01",
        state=VmState.RUNNING,
        disks=(
            Disk("xvda", "/OVS/Repositories/r/VirtualDisks/a.img"),
            Disk("hdc", "/root/install.iso", device="cdrom", read_only=True),
            Disk("xvdb", "/dev/mapper/lun7"),
        ),
    )
    config = {
        "pci": ["0000:03:00.0", "0000:03:00.1"],
        "usbdevice": "tablet",  # emulated: no tie
        "usb": ["host:046d:c016"],
        "nomigrate": 1,
    }
    assert host_local(vm, config, shared_storage="/OVS") == (
        "PCI passthrough 0000:03:00.0",
        "PCI passthrough 0000:03:00.1",
        "USB passthrough host:046d:c016",
        "nomigrate is set in its vm.cfg",
        "cdrom hdc: /root/install.iso (not on the pool's shared storage /OVS)",
    )
    assert host_local(vm, {"usbdevice": "tablet", "pci": []}) == ()


def test_a_failed_migration_in_the_tools_words() -> None:
    xm = (
        b"Usage: xm migrate <Domain> <Host>\n\nMigrate a domain to another machine.\n\n"
        b"Options:\n\n-h, --help           Print this help.\n"
        b"Error: /usr/lib/xen/bin/xc_save 4 3 0 0 1 failed\n"
    )
    failed = migration_failure("xen01", "xm migrate --live 3 sienna", 1, xm)
    assert str(failed) == (
        "xen01: `xm migrate --live 3 sienna` exited with status 1: "
        "Error: /usr/lib/xen/bin/xc_save 4 3 0 0 1 failed"
    )
    assert failed.title == "Migration failed"
    silent = migration_failure("xen01", "xl migrate a b", None, b"")
    assert str(silent).endswith("ended without an exit status: no output")
