"""The SSH backend's pure helpers: targets, the sectioned poll script, errors."""

from __future__ import annotations

import subprocess

import pytest

from ovmtui.backend.xen_ssh import (
    SshTarget,
    _sectioned_script,
    _split_sections,
    _toolstack_error,
)
from ovmtui.errors import OvmError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("root@ovs7.example.com:22", SshTarget("root", "ovs7.example.com", 22)),
        ("root@ovs7", SshTarget("root", "ovs7", 22)),
        ("ovs7:2222", SshTarget(None, "ovs7", 2222)),
        ("admin@[fe80::1]:2200", SshTarget("admin", "fe80::1", 2200)),
        ("me@my@host:23", SshTarget("me@my", "host", 23)),
    ],
)
def test_ssh_targets(text: str, expected: SshTarget) -> None:
    assert SshTarget.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "root@", "root@h:99999", "root@h:x", "a b", "root@h:\uff12\uff12"]
)
def test_bad_ssh_targets(text: str) -> None:
    with pytest.raises(OvmError):
        SshTarget.parse(text)


def test_sections_survive_names_that_imitate_the_marker() -> None:
    """The script runs in a real shell; a VM name printing a fake marker changes nothing."""
    marker = "@@ovmtui-0123456789abcdef"
    sections = [
        ("info", "printf 'host : ovs7\\n'"),
        # A hostile name in the output, and a fake marker without the per-poll secret.
        ("long", "printf '(domain (name \"@@ovmtui-x end long 0\"))\\n'; sh -c 'exit 3'"),
        ("table", "printf 'Name ID\\n'"),
    ]
    script = _sectioned_script(sections, marker)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    found = _split_sections(out.stdout, marker, sections)
    assert found["info"].text == "host : ovs7"
    assert found["info"].status == 0
    assert found["long"].text == '(domain (name "@@ovmtui-x end long 0"))'
    assert found["long"].status == 3
    assert found["table"].text == "Name ID"
    assert found["table"].command == "printf 'Name ID\\n'"


def test_a_cut_short_output_keeps_what_came() -> None:
    marker = "@@m"
    sections = [("info", "xm info"), ("long", "xm list -l")]
    text = "@@m begin info\nhost : a\n\n@@m end info 0\n@@m begin long\n(domain (name x)"
    found = _split_sections(text, marker, sections)
    assert found["info"].text == "host : a" and found["info"].status == 0
    assert found["long"].text == "(domain (name x)" and found["long"].status is None


def test_toolstack_error_takes_the_error_line_not_the_usage() -> None:
    out = "Error: Domain 'x; touch /tmp/pwned' does not exist.\nUsage: xm destroy <Domain>\n"
    assert _toolstack_error(out, "") == "Error: Domain 'x; touch /tmp/pwned' does not exist."
    assert _toolstack_error("", "") == "no output"


def test_a_table_row_update_keeps_every_other_field_of_the_vm() -> None:
    import dataclasses

    from ovmtui.backend.xen_parse.xm_table import TableRow
    from ovmtui.backend.xen_ssh import _with_row
    from ovmtui.model import VmState
    from tests.vm_samples import vm_with_every_field

    vm = vm_with_every_field()
    row = TableRow("n", 7, 512, 4, VmState.PAUSED, 9.0)
    updated = _with_row(vm, row, 10.0)
    changed = {
        "state": VmState.PAUSED,
        "memory_mib": 512,
        "vcpus": 4,
        "cpu_time_ns": 9 * 10**9,
        "cpu_percent": 22.5,  # 9 s of CPU in 10 s on 4 vCPUs
    }
    assert updated == dataclasses.replace(vm, **changed)  # type: ignore[arg-type]


def test_a_table_row_that_moved_nothing_keeps_the_very_vm() -> None:
    from ovmtui.backend.xen_parse.xm_table import TableRow
    from ovmtui.backend.xen_ssh import _with_row
    from ovmtui.model import Vm, VmState

    idle = Vm("u", "n", VmState.BLOCKED, vcpus=2, memory_mib=512, cpu_time_ns=9 * 10**9)
    row = TableRow("n", 7, 512, 2, VmState.BLOCKED, 9.0)
    first = _with_row(idle, row, 2.0)
    assert first.cpu_percent == 0.0 and first is not idle  # the 0 % is news once
    assert _with_row(first, row, 2.0) is first
    # Anything the row says differently is a new VM: state, CPU time, memory, vCPUs.
    for moved in (
        row._replace(state=VmState.PAUSED),
        row._replace(cpu_time_s=9.1),
        row._replace(memory_mib=1024),
        row._replace(vcpus=4),
    ):
        assert _with_row(first, moved, 2.0) is not first, moved
    busy = _with_row(first, row._replace(cpu_time_s=10.0), 2.0)
    assert busy.cpu_percent == 25.0  # 1 s of CPU in 2 s on 2 vCPUs
    assert _with_row(busy, row._replace(cpu_time_s=10.0), 2.0).cpu_percent == 0.0
    # Not running: no CPU figure at all, as the poller decides for every backend.
    off = _with_row(busy, row._replace(state=VmState.SHUTOFF, domid=None), 2.0)
    assert off.cpu_percent is None
