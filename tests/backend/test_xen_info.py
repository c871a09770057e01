"""``xm info`` / ``xl info`` against recorded real outputs."""

from __future__ import annotations

from ovmtui.backend.xen_parse.info import parse_info, parse_info_fields
from ovmtui.model import HostFacts
from tests.backend.xen_samples import load, reasons

# --------------------------------------------------------------------------- xm info / xl info


def test_xm_info_exadata_ovm() -> None:
    facts = parse_info(load("xm_info/exabox-ovm-4.4.4OVM-scaqak01adm04.txt"))
    assert facts.issues == ()
    assert facts.value == HostFacts(
        hostname="scaqak01adm04.us.oracle.com",
        cpus=104,
        cores_per_socket=26,
        threads_per_core=2,
        mhz=2693,
        memory_mib=785066,
        free_memory_mib=528187,
        hypervisor="Xen",
        hypervisor_version="4.4.4OVM",
    )


def test_xm_info_partial_subset() -> None:
    facts = parse_info(load("xm_info/exabox-partial-subset-no-trailing-newline.txt"))
    assert facts.issues == ()
    assert facts.value == HostFacts(
        hostname="sea200214exdd003.sea200214exd.adminsea2.oraclevcn.com",
        cpus=96,
        cores_per_socket=24,
        threads_per_core=2,
        memory_mib=785069,
        free_memory_mib=22336,
    )  # no xen_* lines: neither hypervisor nor version is invented


def test_xm_info_man_page_with_wrapped_values() -> None:
    text = load("xm_info/xen-man-xm-pod1-talon.txt")
    facts = parse_info(text)
    assert facts.issues == ()
    assert facts.value == HostFacts(
        hostname="talon",
        cpus=2,
        cores_per_socket=1,
        threads_per_core=1,
        mhz=696,
        memory_mib=767,
        free_memory_mib=37,
        hypervisor="Xen",
        hypervisor_version="3.0-devel",
    )
    fields = parse_info_fields(text).value
    assert fields["xen_changeset"] == "Mon Nov 14 18:13:38 2005 +0100 7793:090e44133d40"
    assert fields["cc_compiler"] == "gcc version 3.4.3 (Mandrakelinux 10.2 3.4.3-7mdk)"
    assert fields["cc_compile_domain"] == "(none)"


def test_xl_info_alpine() -> None:
    text = load("xl_info/alpine-xen-4.19.1-saphir.txt")
    facts = parse_info(text, "xl info")
    assert facts.issues == ()
    assert facts.value == HostFacts(
        hostname="saphir.local",
        cpus=12,
        cores_per_socket=6,
        threads_per_core=2,
        mhz=1690,  # 1689.603
        memory_mib=7933,
        free_memory_mib=2341,
        hypervisor="Xen",
        hypervisor_version="4.19.1",
    )
    fields = parse_info_fields(text).value
    assert fields["xen_changeset"] == "" and fields["cc_compile_domain"] == ""
    assert fields["xen_scheduler"] == "credit2"


def test_xl_info_raspberry_pi() -> None:
    text = load("xl_info/raspi4-arm64-xen-4.15.1-truncated-compiler.txt")
    facts = parse_info(text, "xl info")
    assert facts.issues == ()
    # ARM reports 1 core * 1 thread: sockets are not derived from nr_cpus.
    assert facts.value == HostFacts(
        hostname="raspi4",
        cpus=4,
        cores_per_socket=1,
        threads_per_core=1,
        mhz=54,
        memory_mib=1972,
        free_memory_mib=1173,
        hypervisor="Xen",
        hypervisor_version="4.15.1",
    )
    assert parse_info_fields(text).value["cc_compiler"] == (
        "aarch64-none-linux-gnu-gcc (GNU Toolchain for the A-profile Arc"
    )


def test_xl_info_without_host_line() -> None:
    facts = parse_info(load("xl_info/xen-users-debian-4.11.4-no-host-line.txt"), "xl info")
    assert facts.issues == ()
    assert facts.value == HostFacts(
        cpus=8,
        cores_per_socket=4,
        threads_per_core=2,
        mhz=4018,
        memory_mib=16110,
        free_memory_mib=781,
        hypervisor="Xen",
        hypervisor_version="4.11.4",
    )


def test_xl_info_numa_tables_and_bad_values() -> None:
    text = (
        "host                   : h1\n"
        "nr_cpus                : many\n"
        "cpu_topology           :\n"
        "cpu:    core    socket     node\n"
        "  0:       0        0        0\n"
        "numa_info              :\n"
        "node:    memsize    memfree    distances\n"
        "   0:      7933       2341      10\n"
        "xen_major              : 4\n"
        "xen_minor              : 19\n"
        "xen_extra              : .1\n"
        "garbage without a key\n"
    )
    facts = parse_info(text, "xl info -n")
    assert facts.value.hostname == "h1"
    assert facts.value.cpus is None
    assert facts.value.hypervisor_version == "4.19.1"
    assert reasons(facts) == [(2, "nr_cpus is not a number"), (12, "line without a key")]
    info = parse_info("Error: Unable to connect to xend\n")
    assert info.value == HostFacts()
    assert reasons(info) == [(1, "the command reported an error")]
