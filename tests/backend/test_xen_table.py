"""``xm list`` / ``xl list`` tables against recorded real outputs, and the fast row reader."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovmtui.backend.xen_parse import xm_table
from ovmtui.backend.xen_parse.common import _Issues
from ovmtui.backend.xen_parse.xm_table import (
    _DEFAULT_LAYOUT,
    _PLAIN_INACTIVE_ROW,
    _PLAIN_ROW,
    TableReader,
    TableRow,
    _table_row,
    parse_list_table,
)
from ovmtui.model import VmState
from tests.backend.xen_samples import DATA, load, reasons, row

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
    reader = TableReader()
    for lines in polls:
        text = "\n".join(lines)
        assert reader.read(text, "xm list") == parse_list_table(text, "xm list")


def test_a_table_reader_does_not_read_a_line_again() -> None:
    header = "Name                                        ID   Mem VCPUs      State   Time(s)"
    idle = "web01                                        3  1024     2     -b----     12.5"
    busy = "db01                                         4  2048     4     r-----    100.0"
    reader = TableReader()
    first = reader.read("\n".join([header, idle, busy]), "xm list").value
    read: list[str] = []
    plain_row = xm_table._plain_row

    def counting(line: str) -> TableRow | None:
        read.append(line)
        return plain_row(line)

    xm_table._plain_row = counting  # type: ignore[assignment]
    try:
        moved = busy.replace("100.0", "101.5")
        second = reader.read("\n".join([header, idle, moved]), "xm list").value
    finally:
        xm_table._plain_row = plain_row  # type: ignore[assignment]
    assert read == [moved]
    assert second[0] is first[0] and second[1].cpu_time_s == 101.5


def test_fast_row_reader_on_every_recorded_table() -> None:
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
