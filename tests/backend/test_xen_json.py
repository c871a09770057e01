"""``xl list -l`` (JSON) against recorded real outputs, merged with the table."""

from __future__ import annotations

from ovmtui.backend.xen_parse.xl_json import parse_xl_list_long
from ovmtui.backend.xen_parse.xm_table import TableRow, merge_table_rows, parse_list_table
from ovmtui.model import Disk, Nic, VmState
from tests.backend.xen_samples import load, reasons

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
    assert vm.disks == (Disk("xvda", "/var/lib/xen/images/test-pv.img", format="raw"),)
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
