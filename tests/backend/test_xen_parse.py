"""The Xen output parsers against recorded real outputs, and against damaged ones.

Every file under tests/data/xen/ is a literal capture published by someone else (its first
line, ``# source: ...``, says where from; ``load`` skips it). Each has a test asserting
values read in the file by hand; the property tests then cut, damage and replace those
texts: the parsers must never raise and never report a value the text does not hold.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovmtui.backend.xen_parse import (
    Parsed,
    ParseIssue,
    SxpValue,
    TableRow,
    XenDomain,
    _Issues,
    _read_sxp,
    _scan_xen_domains,
    _SxpDomainReader,
    merge_table_rows,
    parse_info,
    parse_info_fields,
    parse_list_table,
    parse_sxp,
    parse_vm_cfg,
    parse_xl_list_long,
    parse_xm_list_long,
    state_from_flags,
    vm_config,
)
from ovmtui.model import Disk, HostFacts, Nic, VmState

DATA = Path(__file__).resolve().parent.parent / "data" / "xen"
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(name: str) -> str:
    """A recorded output without its ``# source:`` line."""
    text = (DATA / name).read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    assert first.startswith("# source:"), name
    return rest


def names(domains: Parsed[tuple[XenDomain, ...]]) -> list[str]:
    return [domain.vm.name for domain in domains.value]


def reasons(parsed: Parsed[object]) -> list[tuple[int, str]]:
    return [(issue.line, issue.reason) for issue in parsed.issues]


def row(rows: Parsed[tuple[TableRow, ...]], name: str) -> TableRow:
    (found,) = [r for r in rows.value if r.name == name]
    return found


# --------------------------------------------------------------------------- state flags


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        ("r-----", VmState.RUNNING),
        ("-b----", VmState.BLOCKED),
        ("--p---", VmState.PAUSED),
        ("---s--", VmState.SHUTTING_DOWN),
        ("----c-", VmState.CRASHED),
        ("-----d", VmState.DYING),
        ("------", VmState.RUNNING),  # runnable, waiting for a physical CPU
        ("", VmState.SHUTOFF),  # blank: an inactive domain xend manages
        ("   ", VmState.SHUTOFF),
        ("--p--d", VmState.DYING),  # the (null) zombie of freebsd-xen
        ("---sc-", VmState.CRASHED),  # xl: shutdown, reason crash
        ("---sr-", VmState.SHUTTING_DOWN),  # xl: shutdown, reason reboot (not "running")
        ("---ss-", VmState.SHUTTING_DOWN),  # xl: shutdown, reason suspend
        ("--ps--", VmState.SHUTTING_DOWN),  # shutting down beats paused
        ("-b--c-", VmState.CRASHED),
        ("r----", VmState.RUNNING),  # Xen 2: five flags
        ("-b---", VmState.BLOCKED),
        ("-----r", VmState.RUNNING),  # xentop's order: dsbcpr
        ("--b---", VmState.BLOCKED),
        ("d----r", VmState.DYING),
        ("----p-", VmState.PAUSED),  # xentop paused
        ("rb", VmState.UNKNOWN),
        ("xyzxyz", VmState.UNKNOWN),
        ("rrrrrr", VmState.UNKNOWN),
    ],
)
def test_state_from_flags(flags: str, state: VmState) -> None:
    assert state_from_flags(flags) is state


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "xentop/exabox-clucontrol-XENTOP_CMD_OP.txt",
            {"c2214-vkge": ("-----r", VmState.RUNNING), "Domain-0": ("-----r", VmState.RUNNING)},
        ),
        (
            "xentop/fragment-name-with-spaces-and-net-line.txt",
            {"BB - backup2": ("--b---", VmState.BLOCKED)},
        ),
        (
            "xentop/py-script-xentop-b-8-iterations-old-columns.txt",
            {"Domain-0": ("-----r", VmState.RUNNING)},
        ),
        (
            "xentop/ubuntuforums-xm-top-xen-4.1.2.txt",
            {"Domain-0": ("-----r", VmState.RUNNING), "virtual1": ("--b---", VmState.BLOCKED)},
        ),
    ],
)
def test_xentop_state_column_in_xentop_order(
    name: str, expected: dict[str, tuple[str, VmState]]
) -> None:
    text = load(name)
    for domain, (flags, state) in expected.items():
        found = set(re.findall(rf"^\s*{re.escape(domain)} (\S+) ", text, re.MULTILINE))
        assert found == {flags}
        assert state_from_flags(flags) is state


# --------------------------------------------------------------------------- xm list / xl list


def test_xm_list_irregular_spacing() -> None:
    rows = parse_list_table(load("xm_list/book-of-xen-caliban-irregular-spacing.txt"))
    assert rows.issues == ()
    assert rows.value == (
        TableRow("Domain-0", 0, 1024, 8, VmState.RUNNING, 76770.8),
        TableRow("caliban", 72, 256, 1, VmState.BLOCKED, 4768.3),
    )
    assert rows.value[0].is_dom0 and not rows.value[1].is_dom0


def test_xm_list_domain_n_names_from_a_broken_xenstore() -> None:
    rows = parse_list_table(load("xm_list/book-of-xen-xenstore-corrupt-Domain-N-names.txt"))
    assert rows.issues == ()
    assert [r.name for r in rows.value] == [
        "Domain-0",
        "Domain-10",
        "Domain-11",
        "Domain-14",
        "Domain-15",
        "Domain-16",
        "Domain-6",
        "Domain-7",
        "Domain-9",
    ]
    assert row(rows, "Domain-6") == TableRow("Domain-6", 6, 94, 1, VmState.BLOCKED, 5454.2)
    assert row(rows, "Domain-0").memory_mib == 2554
    assert [r.is_dom0 for r in rows.value].count(True) == 1  # Domain-10 is no dom0


def test_xm_list_cloud_atlas() -> None:
    rows = parse_list_table(load("xm_list/cloud-atlas-draft-hypervisor-md.txt"))
    assert rows.issues == ()
    assert row(rows, "Domain-0").vcpus == 24
    assert row(rows, "My-PV-VM") == TableRow("My-PV-VM", 7, 10240, 4, VmState.BLOCKED, 18018883.9)


def test_xm_list_fqdn_row_misaligned() -> None:
    rows = parse_list_table(load("xm_list/exabox-healthcheck-misaligned.txt"))
    assert rows.issues == ()
    assert row(rows, "scaqab10client01vm08.us.oracle.com") == TableRow(
        "scaqab10client01vm08.us.oracle.com", 61, 65539, 8, VmState.RUNNING, 623704.6
    )
    assert row(rows, "Domain-0").memory_mib == 8951


def test_xm_list_fqdn_eating_the_column_gap() -> None:
    rows = parse_list_table(load("xm_list/exabox-xencpumgr-long-name.txt"))
    assert rows.issues == ()
    assert row(rows, "slcs16adm03vm04-v303.us.oracle.com") == TableRow(
        "slcs16adm03vm04-v303.us.oracle.com", 1, 30723, 16, VmState.BLOCKED, 514410.6
    )
    assert row(rows, "Domain-0") == TableRow("Domain-0", 0, 9135, 4, VmState.RUNNING, 379576.0)


def test_xm_list_indented_copy_with_mem_mib_header() -> None:
    rows = parse_list_table(load("xm_list/ru-notes-indented-mem-mib.txt"))
    assert rows.issues == ()
    assert rows.value == (
        TableRow("Domain-0", 0, 864, 2, VmState.RUNNING, 3995.3),
        TableRow("centos.5-1", 1, 127, 1, VmState.BLOCKED, 82.6),
    )


def test_xm_list_ubuntu_forums() -> None:
    rows = parse_list_table(load("xm_list/ubuntuforums-migrate-failure-before.txt"))
    assert rows.issues == ()
    assert [(r.name, r.domid, r.memory_mib) for r in rows.value] == [
        ("Domain-0", 0, 4737),
        ("highlander", 8, 768),
        ("pbx", 3, 512),
        ("tundra", 6, 1024),
    ]
    assert row(rows, "tundra").cpu_time_s == 22172.6


@pytest.mark.parametrize(
    ("name", "memory", "seconds"),
    [
        ("xm_list/xen-user-manual-2005-domain_mgmt.txt", 63, 3.0),
        ("xm_list/xen-user-manual-2005-memory_management.txt", 31, 4.3),
    ],
)
def test_xen2_list_has_a_cpu_column_not_vcpus(name: str, memory: int, seconds: float) -> None:
    rows = parse_list_table(load(name))
    assert rows.issues == ()
    # "CPU" is where the domain runs; the VCPU count is not in this table.
    assert rows.value == (
        TableRow("Domain-0", 0, 251, None, VmState.RUNNING, 172.2),
        TableRow("ttylinux", 5, memory, None, VmState.BLOCKED, seconds),
    )


def test_xl_list_narrow_name_column() -> None:
    rows = parse_list_table(load("xl_list/agilex5-narrow-name-column.txt"), "xl list")
    assert rows.issues == ()
    assert rows.value == (
        TableRow("Domain-0", 0, 2048, 2, VmState.RUNNING, 45.0),
        TableRow("DomU1", 1, 1024, 1, VmState.BLOCKED, 23.7),
        TableRow("DomU2", 2, 1024, 1, VmState.RUNNING, 15.7),
    )


def test_xl_list_headerless_null_zombie() -> None:
    rows = parse_list_table(load("xl_list/freebsd-xen-null-name-dying.txt"), "xl list")
    assert rows.issues == ()
    assert rows.value == (TableRow("(null)", 20, 0, 1, VmState.DYING, 2083.7),)


@pytest.mark.parametrize(
    ("name", "guest", "expected"),
    [
        (
            "xl_list/lia-lab2-migration-target.txt",
            "guest1",
            TableRow("guest1", 4, 1024, 1, VmState.BLOCKED, 0.3),
        ),
        (
            "xl_list/rumprun-redis-tabs.txt",
            "redis",
            TableRow("redis", 20, 64, 1, VmState.BLOCKED, 0.1),
        ),
        (
            "xl_list/unik-aws-test-paused-tabs.txt",
            "aws-test",
            TableRow("aws-test", 3, 1024, 1, VmState.PAUSED, 0.0),
        ),
        (
            "xl_list/yocto-qemuarm64-xl-list.txt",
            "xen-guest",
            TableRow("xen-guest", 1, 512, 1, VmState.BLOCKED, 153.0),
        ),
    ],
)
def test_xl_list_tab_headers(name: str, guest: str, expected: TableRow) -> None:
    rows = parse_list_table(load(name), "xl list")
    assert rows.issues == ()
    assert len(rows.value) == 2
    assert rows.value[0].name == "Domain-0" and rows.value[0].state is VmState.RUNNING
    assert row(rows, guest) == expected


def test_xl_list_dom0_values_of_the_tab_captures() -> None:
    assert row(parse_list_table(load("xl_list/rumprun-redis-tabs.txt")), "Domain-0") == (
        TableRow("Domain-0", 0, 4096, 12, VmState.RUNNING, 16052.1)
    )
    unik = parse_list_table(load("xl_list/unik-aws-test-paused-tabs.txt"))
    assert row(unik, "Domain-0").memory_mib == 837
    yocto = parse_list_table(load("xl_list/yocto-qemuarm64-xl-list.txt"))
    assert row(yocto, "Domain-0") == TableRow("Domain-0", 0, 192, 4, VmState.RUNNING, 696.2)


def test_xl_list_claims_column() -> None:
    rows = parse_list_table(load("xl_list/xen-man-xl-pod-list-claims.txt"), "xl list")
    assert rows.issues == ()
    assert rows.value == (
        TableRow("Domain-0", 0, 2047, 4, VmState.RUNNING, 19.7),
        TableRow("OL5", 2, 2048, 1, VmState.PAUSED, 0.0),
        TableRow("OL6", 3, 1024, 4, VmState.RUNNING, 5.9),
        TableRow("Windows_XP", 4, 2047, 1, VmState.PAUSED, 0.0),
    )


XM_LIST_WITH_INACTIVE = """\
Name                                        ID   Mem VCPUs      State   Time(s)
Domain-0                                     0   983     2     r-----   2466.2
web01                                             512     1                0.0
db01                                         7  2048     2     ------     31.5
"""


def test_inactive_managed_domain_has_no_id_and_is_shut_off() -> None:
    rows = parse_list_table(XM_LIST_WITH_INACTIVE)
    assert rows.issues == ()
    assert row(rows, "web01") == TableRow("web01", None, 512, 1, VmState.SHUTOFF, 0.0)
    assert row(rows, "db01").state is VmState.RUNNING  # "------" with an id: runnable


def test_xl_list_verbose_gives_uuids() -> None:
    text = (
        "Name                                        ID   Mem VCPUs\tState\tTime(s)"
        "   UUID                            Reason-Code\tSecurity Label\n"
        "Domain-0                                     0  2047     4     r-----      19.7"
        " 00000000-0000-0000-0000-000000000000        -                -\n"
        "guest                                        3  1024     1     ---sc-       5.9"
        " 4d3c2b1a-0000-4000-8000-123456789abc        3                -\n"
    )
    rows = parse_list_table(text, "xl list -v")
    assert rows.issues == ()
    assert row(rows, "guest").uuid == "4d3c2b1a-0000-4000-8000-123456789abc"
    assert row(rows, "guest").state is VmState.CRASHED


def test_error_output_is_one_issue_and_no_rows() -> None:
    text = (
        "Error: Unable to connect to xend: No such file or directory. Is xend running?\n"
        "Usage: xm list [options] [Domain, ...]\n"
        "\n"
        "List information about all/some domains.\n"
        "  -l, --long                     Output all VM details in SXP\n"
    )
    rows = parse_list_table(text)
    assert rows.value == ()
    assert reasons(rows) == [(1, "the command reported an error")]
    assert str(rows.issues[0]) == (
        "xm list, line 1: the command reported an error: Error: Unable to connect to xend: "
        "No such file or directory. Is xend running?"
    )


def test_rows_that_are_not_domains_are_reported_with_their_line() -> None:
    text = (
        "Name                                        ID   Mem VCPUs      State   Time(s)\n"
        "Domain-0                                     0  4737     2     r-----  40349.4\n"
        "WARNING: something odd\n"
        "pbx                                          3  lots     1     -b----  13597.7\n"
        "pbx2                                         3   512     1     -b----    797.7\n"
    )
    rows = parse_list_table(text)
    assert [r.name for r in rows.value] == ["Domain-0", "pbx", "pbx2"]
    assert row(rows, "pbx").memory_mib is None
    assert reasons(rows) == [
        (3, "not a domain row"),
        (4, "memory is not a number"),
        (5, "domain id 3 appears twice"),
    ]
    assert rows.issues[0].text == "WARNING: something odd"


# --------------------------------------------------------------------------- xm list -l (SXP)


def test_sxp_reader() -> None:
    values, issues = parse_sxp("(domain (domid 3) (name 'web 01') (cpus (() ())) (args ''))")
    assert issues == ()
    assert values == [
        ["domain", ["domid", "3"], ["name", "web 01"], ["cpus", [[], []]], ["args", ""]]
    ]


def test_sxp_reader_keeps_what_closed_and_reports_the_rest() -> None:
    values, issues = parse_sxp("a (b c)) d\n)\n(e 'f\n(g (h i) (j k", "test")
    assert values == ["a", ["b", "c"], "d", ["e", ["g", ["h", "i"], ["j"]]]]  # "k" was cut
    assert [(issue.line, issue.reason) for issue in issues] == [
        (1, "unbalanced parenthesis: ')' without '('"),
        (2, "unbalanced parenthesis: ')' without '('"),
        (3, "unterminated quoted string"),
        (3, "unbalanced parenthesis: 3 list(s) still open at the end (truncated?)"),
    ]


def test_sxp_quotes_escapes_and_apostrophes_in_atoms() -> None:
    values, issues = parse_sxp(r"""(a 'it\'s' "x\"y" don't (b'c) 'a\nb')""")
    assert issues == ()
    assert values == [["a", "it's", 'x"y', "don't", ["b'c"], "a\nb"]]


def test_xm_list_long_oracle_vm_33_host() -> None:
    parsed = parse_xm_list_long(load("xm_list_long/pyovm-ovm33-three-domains.txt"))
    assert parsed.issues == ()
    pv, hvm, dom0 = parsed.value
    assert not pv.is_dom0 and not hvm.is_dom0 and dom0.is_dom0
    assert pv.vm.name == "0004fb0000060000236e45007b980aa1"
    assert pv.vm.uuid == "0004fb00-0006-0000-236e-45007b980aa1"
    assert pv.vm.domain_id == 1
    assert pv.vm.state is VmState.BLOCKED
    assert (pv.vm.vcpus, pv.vm.memory_mib, pv.vm.max_memory_mib) == (2, 2048, 2048)
    assert pv.vm.os_type == "xen"
    assert pv.vm.cpu_time_ns == 266_840_330_081
    assert pv.vm.started_at == 1467059760.94
    assert pv.vm.config_path is None  # xend does not say which vm.cfg it started from
    # The uname is wrapped onto a line of its own.
    assert pv.vm.disks == (
        Disk(
            "xvda",
            "/OVS/Repositories/0004fb0000030000a5c9b5cf920f93e3/VirtualDisks/"
            "0004fb0000120000e77ab5d916c6c3c2.img",
        ),
    )
    assert pv.vm.nics == (Nic("00:21:f6:00:08:b8", "10e69b4de3"),)
    assert hvm.vm.name == "0004fb00000600007c522c7d71072a52"
    assert hvm.vm.uuid == "0004fb00-0006-0000-7c52-2c7d71072a52"
    assert (hvm.vm.domain_id, hvm.vm.os_type, hvm.vm.state) == (11, "hvm", VmState.BLOCKED)
    assert (hvm.vm.vcpus, hvm.vm.memory_mib, hvm.vm.max_memory_mib) == (1, 1030, 1032)
    assert hvm.vm.disks[0].source == (
        "/OVS/Repositories/0004fb00000300002160f6433014d23a/VirtualDisks/"
        "0004fb00001200006a75694a0a25bea8.img"
    )
    assert hvm.vm.nics == (Nic("00:21:f6:00:08:b5", "10e69b4de3"),)
    assert dom0.vm.name == "Domain-0"
    assert dom0.vm.uuid == "00000000-0000-0000-0000-000000000000"
    assert (dom0.vm.domain_id, dom0.vm.state, dom0.vm.memory_mib) == (0, VmState.RUNNING, 1098)
    assert dom0.vm.started_at is None  # dom0 has no start_time
    assert dom0.vm.disks == () and dom0.vm.nics == ()


def test_xm_list_long_truncated_hvm() -> None:
    parsed = parse_xm_list_long(load("xm_list_long/cloud-atlas-draft-hvm-truncated.txt"))
    (domain,) = parsed.value
    vm = domain.vm
    assert (vm.name, vm.uuid) == ("My-HVM-VM", "43f8cbea-5295-418a-bf26-f887a6d4623d")
    assert (vm.domain_id, vm.vcpus, vm.memory_mib, vm.max_memory_mib) == (11, 8, 16384, 16384)
    assert (vm.state, vm.os_type) == (VmState.BLOCKED, "hvm")
    assert vm.started_at == 1438052640.27
    assert vm.cpu_time_ns == 8_921_790_786_680_000
    assert reasons(parsed) == [
        (1, "unbalanced parenthesis: 1 list(s) still open at the end (truncated?)"),
        (63, "text outside a (key value) pair in (domain ...)"),
    ]
    assert parsed.issues[1].text == "......"


def test_xm_list_long_one_line_missing_its_last_parenthesis() -> None:
    parsed = parse_xm_list_long(
        load("xm_list_long/libvirt-sexpr2xml-bridge-ipaddr-oneline-unbalanced.txt")
    )
    (domain,) = parsed.value
    vm = domain.vm
    assert vm.name == "pvtest"
    assert vm.uuid == "596a5d21-71f4-8fb2-e068-e2386a5c413e"  # written without dashes
    assert (vm.domain_id, vm.vcpus, vm.memory_mib, vm.max_memory_mib) == (6, 2, 420, 420)
    assert vm.os_type == "xen"
    assert vm.state is VmState.UNKNOWN  # no (state ...) in it
    assert vm.disks == (Disk("xvda", "/root/some.img"),)
    assert vm.nics == (Nic("00:11:22:33:44:55", "xenbr2"),)
    assert reasons(parsed) == [
        (1, "unbalanced parenthesis: 1 list(s) still open at the end (truncated?)")
    ]


def test_xm_list_long_one_line_hvm() -> None:
    parsed = parse_xm_list_long(load("xm_list_long/libvirt-sexpr2xml-fv-oneline.txt"))
    assert parsed.issues == ()
    (domain,) = parsed.value
    vm = domain.vm
    assert (vm.name, vm.uuid) == ("fvtest", "b5d70dd2-75cd-aca5-1776-9660b059d8bc")
    assert (vm.domain_id, vm.vcpus, vm.memory_mib, vm.os_type) == (3, 1, 400, "hvm")
    assert vm.disks == (Disk("hda", "/root/foo.img"),)  # dev was "ioemu:hda"
    assert vm.nics == (Nic("00:16:3e:1b:b1:47", "xenbr0", "ioemu"),)


def test_xm_list_long_cdrom_without_source() -> None:
    parsed = parse_xm_list_long(load("xm_list_long/libvirt-sexpr2xml-no-source-cdrom-hvm.txt"))
    assert parsed.issues == ()
    (domain,) = parsed.value
    vm = domain.vm
    assert (vm.name, vm.uuid) == ("test", "cc2315e7-d26a-307a-438c-6d188ec4c09c")
    assert (vm.memory_mib, vm.max_memory_mib, vm.vcpus, vm.os_type) == (350, 382, 1, "hvm")
    assert vm.cpu_time_ns == 956_663_338
    assert vm.started_at == 1175165307.38
    assert vm.disks == (
        Disk("hda", "/dev/sda8"),
        Disk("hdc", None, device="cdrom", read_only=True),
    )
    assert vm.nics == (Nic("00:16:3e:0a:7b:39", "xenbr0", "ioemu"),)


def test_xm_list_long_one_line_with_an_extra_parenthesis() -> None:
    parsed = parse_xm_list_long(load("xm_list_long/libvirt-sexpr2xml-pv-vfb-new-oneline.txt"))
    (domain,) = parsed.value
    assert domain.vm.name == "pvtest"
    assert domain.vm.disks == (Disk("xvda", "/root/some.img"),)
    assert domain.vm.nics == ()  # a vfb is no NIC
    assert reasons(parsed) == [(1, "unbalanced parenthesis: ')' without '('")]


def test_xm_list_long_one_line_spice_guest() -> None:
    parsed = parse_xm_list_long(load("xm_list_long/sxt-test-fedora14-hvm-spice-oneline.txt"))
    assert parsed.issues == ()
    (domain,) = parsed.value
    vm = domain.vm
    assert (vm.name, vm.uuid) == ("fedora14", "c0e968c2-4bd0-ceab-bec1-84cbc6d03b76")
    assert (vm.domain_id, vm.state, vm.os_type) == (8, VmState.BLOCKED, "hvm")
    assert (vm.vcpus, vm.memory_mib, vm.max_memory_mib) == (1, 300, 300)
    assert vm.cpu_time_ns == 14_629_698_989
    assert vm.disks == (Disk("hda", "/home/zp/Desktop/fc8/hvm-WinXP/fedora14.img"),)
    assert vm.nics == ()


def test_xm_list_long_error_is_one_issue() -> None:
    text = (
        "Error: Domain 'web01' does not exist.\n"
        "Usage: xm list [options] [Domain, ...]\n"
        "\n"
        "List information about all/some domains.\n"
        "  -l, --long                     Output all VM details in SXP\n"
    )
    parsed = parse_xm_list_long(text)
    assert parsed.value == ()
    assert reasons(parsed) == [(1, "the command reported an error")]


def test_xm_list_long_bad_values_are_reported_with_their_line() -> None:
    text = (
        "(domain\n"
        "    (domid 3)\n"
        "    (uuid 43f8cbea-5295-418a-bf26-f887a6d4623d)\n"
        "    (name web01)\n"
        "    (memory lots)\n"
        "    (device (vbd (uname file:/x.img) (mode w)))\n"
        ")\n"
        "(domain (domid 4) (uuid not-a-uuid) (name web02))\n"
        "(domain (domid 5) (uuid 43f8cbea-5295-418a-bf26-f887a6d4623e))\n"
        "(vm (name x))\n"
    )
    parsed = parse_xm_list_long(text)
    assert names(parsed) == ["web01"]
    assert parsed.value[0].vm.memory_mib is None
    assert parsed.value[0].vm.disks == ()
    assert reasons(parsed) == [
        (5, "memory is not a number"),
        (6, "disk without a device name: left out"),
        (8, "domain without a valid uuid: left out"),
        (9, "domain without a name: left out"),
        (10, "expected (domain ...), found (vm ...)"),
    ]


def test_xm_list_long_truncated_value_is_dropped_not_kept_partial() -> None:
    text = "(domain (domid 3) (uuid 43f8cbea-5295-418a-bf26-f887a6d4623d) (name web01) (memory 10"
    parsed = parse_xm_list_long(text)
    assert parsed.value[0].vm.memory_mib is None  # "10" may have been "1024"


def test_xm_list_long_disk_drivers_and_modes() -> None:
    text = (
        "(domain (domid 2) (uuid 43f8cbea-5295-418a-bf26-f887a6d4623d) (name a)"
        " (device (tap (uname tap:aio:/OVS/a.img) (dev xvda:disk) (mode w!)))"
        " (device (vbd (uname phy:/dev/mapper/lun) (dev xvdb) (mode r)))"
        " (device (vbd (uname file:///EXAVMIMAGES/b.img) (dev xvdc) (mode w)))"
        " (device (vbd (uname drbd:r0) (dev xvdd) (mode w)))"
        " (device (vif (mac 00:16:3E:AA:BB:CC) (bridge xenbr0) (model e1000))))"
    )
    (domain,) = parse_xm_list_long(text).value
    assert domain.vm.disks == (
        Disk("xvda", "/OVS/a.img", shareable=True),
        Disk("xvdb", "/dev/mapper/lun", read_only=True),
        Disk("xvdc", "/EXAVMIMAGES/b.img"),
        Disk("xvdd", "drbd:r0"),  # a block script names the storage itself
    )
    assert domain.vm.nics == (Nic("00:16:3e:aa:bb:cc", "xenbr0", "e1000"),)


def test_inactive_managed_domain_in_sxp_is_shut_off() -> None:
    text = "(domain (uuid 43f8cbea-5295-418a-bf26-f887a6d4623d) (name cold) (memory 512))"
    (domain,) = parse_xm_list_long(text).value
    assert (domain.vm.domain_id, domain.vm.state) == (None, VmState.SHUTOFF)


def test_duplicate_domain_ids_and_uuids_are_kept_and_reported() -> None:
    one = "(domain (domid 3) (uuid 43f8cbea-5295-418a-bf26-f887a6d4623d) (name a))\n"
    parsed = parse_xm_list_long(one + one.replace("(name a)", "(name migrating-a)"))
    assert names(parsed) == ["a", "migrating-a"]
    assert reasons(parsed) == [
        (2, "domain id 3 appears twice"),
        (2, "uuid 43f8cbea-5295-418a-bf26-f887a6d4623d appears twice (a local migration?)"),
    ]


# Old xl (4.1 - 4.4) printed its own SXP for `xl list -l`; no capture of it is recorded, so
# this one is written after tools/xl/xl_sxp.c, unbalanced ")" of a PV image included.
OLD_XL_SXP_PV = """\
(domain
\t(domid 3)
\t(create_info)
\t(hvm 0)
\t(name vm1)
\t(uuid 68d2ff64-7c19-4b1f-9c3e-1d2e3f405162)
\t(xsdata (null))
\t(build_info)
\t(max_vcpus 2)
\t(max_memkb 524288)
\t(target_memkb 262144)
\t(image
\t\t(linux 0)
\t\t\t(kernel )
\t\t\t(cmdline )
\t\t)
\t)
\t(device
\t\t(tap
\t\t\t(physpath /dev/vg/vm1)
\t\t\t(virtpath xvda)
\t\t\t(readwrite 1)
\t\t\t(is_cdrom 0)
\t\t)
\t)
\t(device
\t\t(vif
\t\t\t(model (null))
\t\t\t(mac 00163e5a0b1c)
\t\t)
\t)
)
"""


def test_old_xl_sxp_with_its_unbalanced_pv_image() -> None:
    parsed = parse_xl_list_long(OLD_XL_SXP_PV)
    (domain,) = parsed.value
    vm = domain.vm
    assert (vm.name, vm.uuid, vm.domain_id) == ("vm1", "68d2ff64-7c19-4b1f-9c3e-1d2e3f405162", 3)
    assert (vm.vcpus, vm.memory_mib, vm.max_memory_mib, vm.os_type) == (2, 256, 512, "xen")
    assert vm.state is VmState.UNKNOWN
    assert vm.disks == (Disk("xvda", "/dev/vg/vm1"),)
    assert vm.nics == (Nic("00:16:3e:5a:0b:1c", None),)
    assert reasons(parsed) == [
        (18, "(device ...) after the end of its (domain ...): read as its device"),
        (32, "unbalanced parenthesis: ')' without '('"),
    ]


# --------------------------------------------------------------------------- xl list -l (JSON)


def test_xl_list_long_libxl_config_json() -> None:
    parsed = parse_xl_list_long(load("xl_list_long/libvirt-libxlxml2domconfig-basic-pv.json.txt"))
    assert parsed.issues == ()
    (domain,) = parsed.value
    vm = domain.vm
    assert (vm.name, vm.uuid) == ("test-pv", "039e9ee6-4a84-3055-4c81-8ba426ae2656")
    assert (vm.vcpus, vm.memory_mib, vm.max_memory_mib, vm.os_type) == (4, 512, 512, "xen")
    assert vm.domain_id is None  # a bare config: no "domid"
    assert vm.state is VmState.UNKNOWN  # xl list -l has no state
    assert vm.disks == (Disk("xvda", "/var/lib/xen/images/test-pv.img"),)
    assert vm.nics == (Nic("00:16:3e:3e:86:60", "br0"),)


def test_xl_list_long_abridged_json_keeps_what_it_can() -> None:
    parsed = parse_xl_list_long(load("xl_list_long/cloud-atlas-draft-xl-list-l-json-abridged.txt"))
    (domain,) = parsed.value
    vm = domain.vm
    assert (vm.name, vm.uuid) == ("My-Virtual-Machine", "12345678-abcd-1234-abcd-12345678abcd")
    assert (vm.domain_id, vm.os_type) == (6, "xen")
    assert (vm.memory_mib, vm.vcpus, vm.disks, vm.nics) == (None, None, (), ())
    assert reasons(parsed) == [(9, "unreadable text '...'"), (11, "unreadable text '...'")]


XL_JSON = """\
[
    {
        "domid": 0,
        "config": {"c_info": {"type": "pv", "name": "Domain-0",
                              "uuid": "00000000-0000-0000-0000-000000000000"},
                   "b_info": {"max_vcpus": 4, "max_memkb": 4194304, "target_memkb": 4194304}}
    },
    {
        "domid": 7,
        "config": {
            "c_info": {"type": "hvm", "name": "win", "uuid": "4d3c2b1a00004000800012345678abcd"},
            "b_info": {"max_vcpus": 2, "max_memkb": 4194304, "target_memkb": 2097152,
                       "type.hvm": {}},
            "disks": [{"pdev_path": "/dev/vg/win", "vdev": "hda", "readwrite": 1},
                      {"pdev_path": "/iso/win.iso", "vdev": "hdc", "is_cdrom": 1}],
            "nics": [{"mac": "00:16:3e:00:00:01", "bridge": "xenbr0", "model": "e1000"}]
        }
    }
]
"""


def test_xl_list_long_merged_with_the_table() -> None:
    parsed = parse_xl_list_long(XL_JSON)
    assert parsed.issues == ()
    dom0, win = parsed.value
    assert dom0.is_dom0 and not win.is_dom0
    assert win.vm.disks == (
        Disk("hda", "/dev/vg/win"),
        Disk("hdc", "/iso/win.iso", device="cdrom", read_only=True),  # no readwrite: 0
    )
    rows = parse_list_table(
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
        "Domain-0                                     0  4096     4     r-----     120.5\n"
        "win                                          7  2048     2     -b----      33.2\n"
        "other                                        9   512     1     -b----       1.0\n"
    )
    merged = merge_table_rows(parsed.value, rows.value)
    assert [d.vm.state for d in merged] == [VmState.RUNNING, VmState.BLOCKED]
    assert merged[1].vm.cpu_time_ns == 33_200_000_000
    assert merged[1].vm.memory_mib == 2048
    assert merged[1].vm.uuid == "4d3c2b1a-0000-4000-8000-12345678abcd"
    # A row whose id was reused by another domain does not lend its state.
    renamed = merge_table_rows(parsed.value, [TableRow("new", 7, 1, 1, VmState.PAUSED, 0.0)])
    assert renamed[1].vm.state is VmState.UNKNOWN


def test_xl_list_long_truncated_and_followed_by_warnings() -> None:
    whole = parse_xl_list_long(XL_JSON + "libxl: warning: something\n")
    assert len(whole.value) == 2
    assert reasons(whole) == [(20, "text after the JSON: ignored")]
    cut = parse_xl_list_long(XL_JSON[: XL_JSON.index('"disks"')])
    assert [d.vm.name for d in cut.value] == ["Domain-0", "win"]
    assert cut.value[1].vm.memory_mib == 2048
    assert reasons(cut) == [(14, "3 JSON object(s) or list(s) still open at the end")]


def test_xl_list_long_error() -> None:
    parsed = parse_xl_list_long("Error: something went wrong\nUsage: xl list ...\n")
    assert parsed.value == ()
    assert reasons(parsed) == [(1, "the command reported an error")]


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


# --------------------------------------------------------------------------- vm.cfg


def test_exadata_vm_cfg_with_unicode_literal() -> None:
    cfg = parse_vm_cfg(load("vm_cfg/exabox-clunetworkreconfig-u-prefix.txt"))
    assert cfg.issues == ()
    assert cfg.value["maxvcpus"] == 96
    assert cfg.value["ib_pkeys"] == [
        {"pf": "3b:00.0", "port": "1", "pkey": ["0x2a34", "0xa342"]},
        {"pf": "3b:00.0", "port": "2", "pkey": ["0x2a34", "0xa342"]},
    ]
    facts = vm_config(cfg.value)
    assert facts.issues == ()
    config = facts.value
    assert config.name == "scaqae08dv0302.usdv1.oraclecloud.com"
    assert config.simple_name == "iad100527ex-342"
    assert config.uuid == "7d5c116d-c1a0-4d87-8630-3338bd8287ed"
    assert (config.vcpus, config.memory_mib, config.max_memory_mib) == (12, 61440, 61440)
    assert config.os_type == "hvm"
    repo = "/OVS/Repositories/7d5c116dc1a04d8786303338bd8287ed/VirtualDisks/"
    assert config.disks == (
        Disk("xvda", repo + "7bffd44b2b864fc78061b31c97cb9956.img"),
        Disk("xvdb", repo + "a12f35939b5c4ad6936b5fb4837ca610.img"),
        Disk("xvdh", repo + "0eca4216c03540bf92ae02a84c3ecc03.img"),
        # u'file:///EXAVMIMAGES/...': the URL spelling of a path
        Disk(
            "xvdi",
            "/EXAVMIMAGES/GuestImages/scaqae08dv0302.usdv1.oraclecloud.com/u02_extra.img",
        ),
    )
    assert config.nics == (
        Nic("00:16:3e:5f:24:db", "vmbondeth0.155", "netfront"),
        Nic("00:16:3e:a7:3b:39", "vmbondeth1.129", "netfront"),
        Nic("00:16:3e:36:de:55", "vmeth104", "netfront"),
    )


def test_oracle_vm_exam_exhibit_vm_cfg() -> None:
    cfg = parse_vm_cfg(load("vm_cfg/ovm-exam-exhibit-windows-hvm.txt"))
    assert cfg.issues == ()
    assert cfg.value["OVM_high_availability"] is False
    facts = vm_config(cfg.value, "/OVS/Repositories/x/VirtualMachines/y/vm.cfg")
    config = facts.value
    assert config.name == "0004fb000006000041b397779495f2aa"
    assert config.simple_name == "guest1"
    assert config.uuid == "0004fb00-0006-0000-41b3-97779495f2aa"
    assert (config.vcpus, config.memory_mib, config.max_memory_mib) == (2, 2048, 4096)
    assert config.os_type == "hvm"
    assert config.disks == (
        Disk(
            "xvda",
            "/OVS/Repositories/0004fb0000030000Bded2925b616f88d/VirtualDisks/"
            "0004fb00001200004a2ae993568910a0.img",
        ),
    )
    # "mac=..,br1": a bridge without "bridge=" is no setting xm knows.
    assert config.nics == (
        Nic("00:21:f6:bb:00:24", "192.168.0.0"),
        Nic("00:21:f6:bb:00:0d", None),
    )
    assert [str(issue) for issue in facts.issues] == [
        "/OVS/Repositories/x/VirtualMachines/y/vm.cfg: vif setting without a key: 'br1' "
        "ignored: mac=00:21:f6:bb:00:0d,br1"
    ]


def test_xm_config_with_a_disk_list_over_several_lines() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/book-of-xen-solaris-domu-multiline-disk.txt"))
    assert cfg.issues == ()
    assert cfg.value["cpu_weight"] == 1024
    config = vm_config(cfg.value).value
    assert (config.name, config.memory_mib, config.os_type) == ("rosaline", 1024, None)
    assert config.disks == (
        Disk("xvdf", "/opt/distros/osol-0811.iso", device="cdrom", read_only=True),
        Disk("xvda", "/dev/verona/rosaline"),
    )
    assert config.nics == (Nic("00:16:3e:59:a7:88", "xenbr0"),)


def test_xl_config_with_rbd_target() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/libvirt-xlconfig-test-rbd-multihost-noauth.txt"))
    assert cfg.issues == ()
    config = vm_config(cfg.value).value
    assert (config.name, config.uuid) == ("XenGuest2", "c7a5fdb2-cdaf-9455-926a-d65c16db1809")
    assert (config.vcpus, config.memory_mib, config.max_memory_mib) == (1, 394, 579)
    assert config.os_type == "hvm"
    assert config.disks == (
        Disk("hda", "/dev/HostVG/XenGuest2"),
        Disk(
            "hdb",
            "rbd:pool/image:auth_supported=none:mon_host=mon1.example.org\\:6321"
            "\\;mon2.example.org\\:6322\\;mon3.example.org\\:6322",
        ),
    )
    assert config.nics == (Nic("00:16:3e:66:92:9c", "xenbr1", "e1000"),)


def test_xl_config_with_qcow_and_cdrom() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/libvirt-xlconfig-test-vif-rate.txt"))
    assert cfg.issues == ()
    config = vm_config(cfg.value).value
    assert config.disks == (
        Disk("hda", "/dev/HostVG/XenGuest2"),
        Disk("hdb", "/var/lib/libvirt/images/XenGuest2-home"),
        Disk("hdc", "/root/boot.iso", device="cdrom", read_only=True),
    )
    assert config.nics == (Nic("00:16:3e:66:92:9c", "xenbr1", "e1000"),)


def test_xm_config_paravirt_with_pygrub() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/libvirt-xmconfig-test-paravirt-new-pvfb.txt"))
    assert cfg.issues == ()
    assert cfg.value["bootloader"] == "/usr/bin/pygrub"
    config = vm_config(cfg.value).value
    assert (config.name, config.uuid) == ("XenGuest1", "c7a5fdb0-cdaf-9455-926a-d65c16db1809")
    assert config.os_type is None  # no builder: xm's default is not written down here
    assert config.disks == (Disk("xvda", "/dev/HostVG/XenGuest1"),)
    assert config.nics == (Nic("00:16:3e:66:94:9c", "br0"),)


def test_xl_config_pvh_with_comments() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/raspi4-pvh-arm64.txt"))
    assert cfg.issues == ()
    assert "ramdisk" not in cfg.value and "maxmem" not in cfg.value  # commented out
    config = vm_config(cfg.value).value
    assert (config.name, config.os_type) == ("ubuntu-20.04", "xenpvh")
    assert (config.memory_mib, config.vcpus, config.max_memory_mib) == (256, 2, None)
    assert config.disks == (Disk("xvda", "/media/domU.img"),)
    assert config.nics == (Nic(None, "xenbr0"),)


def test_xm_config_hvm_from_a_forum() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/ubuntuforums-intrepid-hvm.txt"))
    assert cfg.issues == ()
    assert cfg.value["serial"] == "pty"  # the comment after it is no part of it
    config = vm_config(cfg.value).value
    assert (config.name, config.memory_mib, config.vcpus) == ("InrepidHVM", 1024, 1)
    assert config.disks == (
        Disk("hda", "/dev/sdb7"),
        Disk("hdc", "/etc/xen/isos/IntrepidSRV.iso", device="cdrom", read_only=True),
    )
    assert config.nics == (Nic(None, "eth0"),)


def test_xl_example_hvm() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/xen-tools-examples-xlexample.hvm.txt"))
    assert cfg.issues == ()
    config = vm_config(cfg.value).value
    assert (config.name, config.os_type, config.memory_mib, config.vcpus) == (
        "example.hvm",
        "hvm",
        128,
        2,
    )
    assert config.disks == (Disk("xvda", "/dev/vg/guest-volume"),)  # target,format,vdev,access
    assert config.nics == (Nic(None, None),)  # vif = [ '' ]: one NIC, all defaults


def test_xm_example_hvm() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/xen-tools-examples-xmexample.hvm.txt"))
    assert cfg.issues == ()
    assert cfg.value["vncpasswd"] == ""
    config = vm_config(cfg.value).value
    assert (config.name, config.os_type, config.memory_mib) == ("ExampleHVMDomain", "hvm", 128)
    assert config.disks == (
        Disk("hda", "/var/images/min-el3-i386.img"),
        Disk("hdc", None, device="cdrom", read_only=True),  # ',hdc:cdrom,r'
    )
    assert config.nics == (Nic(None, "xenbr0", "ioemu"),)


def test_xm_example_with_python_code_is_read_never_run() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/xen-tools-examples-xmexample2.txt"))
    assert cfg.value == {
        "kernel": "/boot/vmlinuz-2.6.10-xenU",
        "memory": 64,
        "vcpus": 4,
        "vif": [""],
        "root": "/dev/sda1 ro",
    }
    assert reasons(cfg) == [
        (23, "not a 'name = value' assignment: ignored"),
        (30, "not a 'name = value' assignment: ignored"),
        (35, "not a 'name = value' assignment: ignored"),
        (56, "value is not a literal (xm would run it as Python): ignored"),
        (102, "value is not a literal (xm would run it as Python): ignored"),
        (180, "value is not a literal (xm would run it as Python): ignored"),
    ]
    assert cfg.issues[3].text == 'name = "VM%d" % vmid'
    assert vm_config(cfg.value).value.name is None


def test_broken_config_costs_only_the_broken_assignment() -> None:
    text = (
        "name = 'a'\n"
        "disk = ['file:/x,xvda,w',\n"
        "memory = 512\n"
        "vcpus = 2\n"
        "  indented = 1\n"
        "uuid = 0755\n"
        "maxmem = __import__('os').system('id')\n"
    )
    cfg = parse_vm_cfg(text)
    assert cfg.value == {"name": "a", "memory": 512, "vcpus": 2}
    assert [line for line, _ in reasons(cfg)] == [2, 5, 6, 7]


# --------------------------------------------------------------------------- properties

FIXTURES: dict[str, Callable[[str], Parsed[object]]] = {}
for _folder, _parser in [
    ("xm_list", parse_list_table),
    ("xl_list", parse_list_table),
    ("xm_list_long", parse_xm_list_long),
    ("xl_list_long", parse_xl_list_long),
    ("xm_info", parse_info),
    ("xl_info", parse_info),
    ("vm_cfg", parse_vm_cfg),
    ("xen_cfg", parse_vm_cfg),
]:
    for _path in sorted((DATA / _folder).iterdir()):
        FIXTURES[f"{_folder}/{_path.name}"] = _parser

PARSERS: list[Callable[[str], Parsed[object]]] = [
    parse_list_table,
    parse_xm_list_long,
    parse_xl_list_long,
    parse_info,
    parse_vm_cfg,
]


def _squash(text: str) -> str:
    return text.lower().replace("-", "").replace(":", "")


def check(text: str, parsed: Parsed[object]) -> None:
    """Nothing parsed is absent from the text; every issue points into it."""
    line_count = text.count("\n") + 1
    for issue in parsed.issues:
        assert isinstance(issue, ParseIssue)
        assert 0 <= issue.line <= line_count
        assert len(issue.text) <= 200
        assert str(issue)
    squashed = _squash(text)
    value = parsed.value
    if isinstance(value, HostFacts):
        # A value may be wrapped onto the next line: each of its words is in the text.
        assert value.hostname is None or all(w in text for w in value.hostname.split())
        return
    if isinstance(value, dict):
        assert all(key in text for key in value)
        config = vm_config(value)
        assert config.value.uuid is None or _squash(config.value.uuid) in squashed
        return
    assert isinstance(value, tuple)
    for item in value:
        if isinstance(item, TableRow):
            assert item.name and item.name in text
            assert item.uuid is None or _squash(item.uuid) in squashed
            continue
        assert isinstance(item, XenDomain)
        vm = item.vm
        assert vm.name and vm.name in text
        assert _squash(vm.uuid) in squashed
        for disk in vm.disks:
            assert disk.target in text
            assert disk.source is None or disk.source in text
        for nic in vm.nics:
            assert nic.mac is None or _squash(nic.mac) in squashed
            assert nic.network is None or nic.network in text


# Characters the formats give meaning to, and some they do not (no backslash: an escape
# decodes to a value that is not verbatim in the text, which is right but not checkable).
JUNK_CHARS = st.sampled_from(list("()[]{}:,=' \"\t\n-.#0123456789abcdefrspd_xX\x00é"))
FRAGMENTS = st.sampled_from(
    [
        "(domain ",
        "(name ",
        "(uuid ",
        "0004fb00-0006-0000-236e-45007b980aa1",
        "(domid ",
        "(memory ",
        "(state ",
        "-b----",
        "(device (vbd (uname file:/x.img) (dev xvda:disk) (mode w)))",
        "(device (vif (mac 00:16:3e:00:00:01) (bridge xenbr0)))",
        "(image (hvm ",
        ")",
        "(",
        " ",
        "\n",
        "'",
        "web01",
        "12",
        "Error: no\n",
        '{"domid": 3, "config": {"c_info": {"name": "a", "uuid": ',
        '"43f8cbea-5295-418a-bf26-f887a6d4623d"',
        "}}",
        "[",
        "]",
        ",",
        "Name ID Mem VCPUs State Time(s)\n",
        "web01 3 512 1 r----- 1.5\n",
        "host : h\n",
        "nr_cpus : 4\n",
        "name = 'x'\n",
        "disk = ['phy:/dev/x,xvda,w']\n",
        "vif = ['mac=00:16:3e:00:00:01,bridge=br0']\n",
    ]
)


@PROPERTY
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_any_truncation_of_a_real_output(name: str, data: st.DataObject) -> None:
    text = load(name)
    cut = data.draw(st.integers(0, len(text)))
    check(text[:cut], FIXTURES[name](text[:cut]))


@PROPERTY
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_any_deletion_from_a_real_output(name: str, data: st.DataObject) -> None:
    text = load(name)
    spans = data.draw(
        st.lists(st.tuples(st.integers(0, len(text)), st.integers(1, 12)), max_size=6)
    )
    for start, length in spans:
        text = text[:start] + text[start + length :]
    check(text, FIXTURES[name](text))


@PROPERTY
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_lines_of_junk_inside_a_real_output(name: str, data: st.DataObject) -> None:
    lines = load(name).split("\n")
    junk = data.draw(st.lists(st.text(alphabet=JUNK_CHARS, max_size=40), max_size=4))
    for line in junk:
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    text = "\n".join(lines)
    check(text, FIXTURES[name](text))


@PROPERTY
@given(st.sampled_from(PARSERS), st.text(alphabet=JUNK_CHARS, max_size=300))
def test_random_text(parser: Callable[[str], Parsed[object]], text: str) -> None:
    check(text, parser(text))


@PROPERTY
@given(st.sampled_from(PARSERS), st.lists(FRAGMENTS, max_size=40).map("".join))
def test_random_fragments_of_the_formats(
    parser: Callable[[str], Parsed[object]], text: str
) -> None:
    check(text, parser(text))


# Atoms, quoted strings (as ("q", text)) and lists of them, three levels deep.
ATOMS = st.sampled_from(["a", "b1", "xvda:disk", "/x/y.img", "é", "-b----", "0.5", "k=v"])
QUOTED = st.sampled_from(["", "a b", "(x)", " ", 'say "hi"']).map(lambda text: ("q", text))
LEAVES = ATOMS | QUOTED
SXP_TREES = st.lists(
    LEAVES | st.lists(LEAVES | st.lists(LEAVES, max_size=3), max_size=4), max_size=5
)


def _show(value: object) -> str:
    if isinstance(value, list):
        return "(" + " ".join(_show(item) for item in value) + ")"
    if isinstance(value, tuple):
        return "'" + str(value[1]) + "'"
    return str(value)


def _plain(value: object) -> SxpValue:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value[1]) if isinstance(value, tuple) else str(value)


@PROPERTY
@given(st.lists(SXP_TREES, max_size=3), st.booleans())
def test_sxp_reads_back_what_was_written(trees: list[list[object]], pretty: bool) -> None:
    separator = "\n  " if pretty else " "
    text = "\n".join("(" + separator.join(_show(item) for item in tree) + ")" for tree in trees)
    values, issues = parse_sxp(text)
    assert issues == ()
    assert values == [_plain(tree) for tree in trees]


# The SXP domains are read by a fast scanner that gives up, for the tree reader to read and
# report, on anything unusual: wherever it does not give up, both must read the same domains.

SXP_FIXTURES = sorted(name for name in FIXTURES if name.startswith("xm_list_long/"))


def tree_read(text: str) -> tuple[tuple[XenDomain, ...], int]:
    issues = _Issues("test", text)
    domains = _SxpDomainReader(_read_sxp(text, issues), issues).domains()
    return domains, len(issues.items)


def check_scanner(text: str) -> bool:
    scanned = _scan_xen_domains(text)
    if scanned is None:
        return False
    assert (scanned, 0) == tree_read(text)
    return True


def test_scanner_reads_the_clean_captures_and_leaves_the_rest() -> None:
    read = {name: check_scanner(load(name)) for name in SXP_FIXTURES}
    assert read == {
        "xm_list_long/cloud-atlas-draft-hvm-truncated.txt": False,
        "xm_list_long/libvirt-sexpr2xml-bridge-ipaddr-oneline-unbalanced.txt": False,
        "xm_list_long/libvirt-sexpr2xml-fv-oneline.txt": True,
        "xm_list_long/libvirt-sexpr2xml-no-source-cdrom-hvm.txt": True,
        "xm_list_long/libvirt-sexpr2xml-pv-vfb-new-oneline.txt": False,
        "xm_list_long/pyovm-ovm33-three-domains.txt": True,
        "xm_list_long/sxt-test-fedora14-hvm-spice-oneline.txt": True,
    }
    assert not check_scanner(OLD_XL_SXP_PV)  # its extra ")" is for the tree reader
    # A quoted value with spaces has no bare-atom form in the scan: the tree reads it.
    assert not check_scanner(
        "(domain (name a) (uuid 43f8cbea-5295-418a-bf26-f887a6d4623d) (args ' root=/dev/xvda1 '))"
    )


@PROPERTY
@given(st.sampled_from(SXP_FIXTURES), st.data())
def test_scanner_agrees_with_the_tree_reader_on_damaged_outputs(
    name: str, data: st.DataObject
) -> None:
    text = load(name)
    spans = data.draw(
        st.lists(st.tuples(st.integers(0, len(text)), st.integers(1, 12)), max_size=4)
    )
    for start, length in spans:
        text = text[:start] + text[start + length :]
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    check_scanner(text)


@PROPERTY
@given(st.lists(FRAGMENTS | st.sampled_from(["(image ", "(cpus (() ()))", "''"]), max_size=40))
def test_scanner_agrees_with_the_tree_reader_on_fragments(fragments: list[str]) -> None:
    check_scanner("".join(fragments))


# --------------------------------------------------------------------------- speed


def test_fifty_domains_parse_in_a_few_milliseconds() -> None:
    pv, hvm, _dom0 = load("xm_list_long/pyovm-ovm33-three-domains.txt").split("\n(domain")
    hvm = "(domain" + hvm
    domains = []
    for i in range(25):
        domains.append(
            pv.replace("(domid 1)", f"(domid {100 + i})").replace(
                "236e-45007b980aa1", f"236e-{i:012d}"
            )
        )
        domains.append(
            hvm.replace("(domid 11)", f"(domid {200 + i})").replace(
                "7c52-2c7d71072a52", f"7c52-{i:012d}"
            )
        )
    text = "\n".join(domains) + "\n"
    assert len(parse_xm_list_long(text).value) == 50
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        parsed = parse_xm_list_long(text)
        best = min(best, time.perf_counter() - started)
    assert parsed.issues == ()
    # 3.5-4 ms on the project's 2-CPU VM with other jobs running: the bound only catches a
    # pathological regression (a quadratic path, a regex that backtracks) on a busy machine.
    assert best < 0.025, f"{best * 1000:.1f} ms"


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30),
    domid=st.none() | st.integers(0, 70000),  # none: an inactive domain, its ID blank
    mem=st.integers(0, 10**7),
    vcpus=st.integers(0, 512),
    flags=st.text(st.sampled_from("-rbpscdwS?"), min_size=6, max_size=6),
    seconds=st.decimals(0, 10**9, places=1),
    gap=st.sampled_from([" ", "  ", "\t", "    "]),
)
def test_the_fast_row_reader_agrees_with_the_general_one(
    name: str, domid: int | None, mem: int, vcpus: int, flags: str, seconds: object, gap: str
) -> None:
    """Every row the fast path takes reads exactly as the general reader reads it."""
    from ovmtui.backend.xen_parse import (
        _DEFAULT_LAYOUT,
        _PLAIN_INACTIVE_ROW,
        _PLAIN_ROW,
        _Issues,
        _table_row,
    )

    ids = [] if domid is None else [str(domid)]
    line = gap.join([name, *ids, str(mem), str(vcpus), flags, str(seconds)])
    header = "Name ID Mem VCPUs State Time(s)\n"
    fast = parse_list_table(header + line).value
    if "-" not in flags or not (_PLAIN_ROW.fullmatch(line) or _PLAIN_INACTIVE_ROW.fullmatch(line)):
        return
    general = _table_row(line, 2, _DEFAULT_LAYOUT, _Issues("xm list", header + line))
    assert fast == (general,)


def _recorded_table_lines() -> list[str]:
    lines = []
    for folder in ("xm_list", "xl_list"):
        for path in sorted((DATA / folder).iterdir()):
            lines.extend(load(f"{folder}/{path.name}").splitlines())
    return sorted(set(lines))


# Recorded lines, and rows that read with an issue (which names their line number).
TABLE_LINES = [
    *_recorded_table_lines(),
    "web01 3 1024 2 r----- x.y",
    "web01 3 1O24 2 r----- 1.0",
    "web 01 4 1024 2 -b---- 5.0 extra",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(st.sampled_from(TABLE_LINES) | st.text(max_size=60), max_size=12),
        min_size=1,
        max_size=5,
    )
)
def test_a_table_reader_reads_every_poll_as_a_fresh_parse(polls: list[list[str]]) -> None:
    """Lines it remembers from the last poll read exactly as they would be read anew,
    whatever came before them (another header, junk, the same line twice)."""
    from ovmtui.backend.xen_parse import TableReader

    reader = TableReader()
    for lines in polls:
        text = "\n".join(lines)
        assert reader.read(text, "xm list") == parse_list_table(text, "xm list")


def test_a_table_reader_does_not_read_a_line_again() -> None:
    from ovmtui.backend import xen_parse
    from ovmtui.backend.xen_parse import TableReader

    header = "Name                                        ID   Mem VCPUs      State   Time(s)"
    idle = "web01                                        3  1024     2     -b----     12.5"
    busy = "db01                                         4  2048     4     r-----    100.0"
    reader = TableReader()
    first = reader.read("\n".join([header, idle, busy]), "xm list").value
    read: list[str] = []
    plain_row = xen_parse._plain_row

    def counting(line: str) -> xen_parse.TableRow | None:
        read.append(line)
        return plain_row(line)

    xen_parse._plain_row = counting  # type: ignore[assignment]
    try:
        moved = busy.replace("100.0", "101.5")
        second = reader.read("\n".join([header, idle, moved]), "xm list").value
    finally:
        xen_parse._plain_row = plain_row  # type: ignore[assignment]
    assert read == [moved]
    assert second[0] is first[0] and second[1].cpu_time_s == 101.5


def test_fast_row_reader_on_every_recorded_table() -> None:
    from ovmtui.backend.xen_parse import _DEFAULT_LAYOUT, _PLAIN_ROW, _Issues, _table_row

    taken = 0
    for folder in ("xm_list", "xl_list"):
        for path in sorted((DATA / folder).iterdir()):
            text = load(f"{folder}/{path.name}")
            for line in text.splitlines():
                match = _PLAIN_ROW.fullmatch(line)
                if match and "-" in match[5]:
                    taken += 1
                    fast = parse_list_table("Name ID Mem VCPUs State Time(s)\n" + line).value
                    general = _table_row(line, 2, _DEFAULT_LAYOUT, _Issues("t", line))
                    assert fast == (general,), line
    assert taken > 20  # the common shape really is common in real captures
