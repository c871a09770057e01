"""The pure half of the connection test: where a host is reached, and what the probes'
outputs mean (recorded shapes of `stat -f`, `service ... status`, `date +%s.%N`)."""

from __future__ import annotations

import pytest

from ovmtui.config import HostConfig, PoolConfig
from ovmtui.model import HostRole
from ovmtui.services import connection_probes as probes


@pytest.mark.parametrize(
    ("uri", "target", "identity"),
    [
        ("qemu+ssh://root@h1/system", "root@h1:22", None),
        ("qemu+ssh://ops@h1:2222/system?keyfile=/k/id", "ops@h1:2222", "/k/id"),
        ("qemu+ssh://[fd00::1]/system", "[fd00::1]:22", None),
        ("qemu+tcp://h1/system", None, None),
        ("test:///default", None, None),
    ],
)
def test_the_ssh_side_of_a_libvirt_uri(uri: str, target: str | None, identity: str | None) -> None:
    side = probes.ssh_side(HostConfig("p", "h", libvirt=uri))
    assert (side.target if side else None) == target
    assert (side.identity if side else None) == identity


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (HostConfig("p", "h", libvirt="qemu+tcp://h1/system"), ("h1", 16509, "")),
        (HostConfig("p", "h", libvirt="qemu+tls://h1/system"), ("h1", 16514, "")),
        (HostConfig("p", "h", libvirt="qemu://h1/system"), ("h1", 16514, "")),
        (HostConfig("p", "h", libvirt="qemu+ssh://h1:2200/system"), ("h1", 2200, "")),
        (HostConfig("p", "h", ssh="root@ovs1"), ("ovs1", 22, "")),
        (
            HostConfig("p", "h", ssh="root@ovs1", jump="ops@bastion:2022"),
            ("bastion", 2022, "jump host "),
        ),
        (HostConfig("p", "h", libvirt="test:///default"), None),
        (HostConfig("p", "h", libvirt="qemu:///system"), None),
    ],
)
def test_where_tcp_goes(host: HostConfig, expected: tuple[str, int, str] | None) -> None:
    point = probes.endpoint(host, probes.ssh_side(host))
    assert (None if point is None else (point.host, point.port, point.what)) == expected


def test_storage_on_another_file_system_is_mounted() -> None:
    out = (
        "nfs 4096 1000 250\n@@path 0\n"
        "nas:/pool1 4000 3000 1000 75% /var/ovs/mount/0004fb00\n@@mount 0\n"
    )
    ok, detail = probes.storage_result("/OVS", "ovs1", out)
    assert (ok, detail) == (
        True,
        "/OVS: nfs mounted on /var/ovs/mount/0004fb00, 1000 KiB free of 3.9 MiB",
    )


def test_storage_on_the_root_file_system_is_not_mounted() -> None:
    out = "ext2/ext3 4096 10 5\n@@path 0\n/dev/vda 100 50 50 50% /\n@@mount 0\n"
    ok, detail = probes.storage_result("/OVS", "ovs1", out)
    assert ok is False and "root file system" in detail


def test_a_mount_point_with_spaces_and_no_df() -> None:
    out = "ocfs2 4096 10 5\n@@path 0\n/dev/sdb1 100 50 50 50% /mnt/pool a\n@@mount 0\n"
    assert probes.storage_result("/x", "h", out)[1].startswith("/x: ocfs2 mounted on /mnt/pool a")
    out = "ocfs2 4096 10 5\n@@path 0\n\n@@mount 127\n"
    assert probes.storage_result("/x", "h", out) == (True, "/x: ocfs2, 20 KiB free of 40 KiB")


def test_storage_that_does_not_exist() -> None:
    out = (
        "stat: cannot read file system information for '/OVS': No such file or directory\n"
        "@@path 1\n\n@@mount 1\n"
    )
    ok, detail = probes.storage_result("/OVS", "ovs1", out)
    assert (
        ok is False and detail == "/OVS does not exist on ovs1: the shared storage is not mounted"
    )


@pytest.mark.parametrize(
    ("out", "ok", "words"),
    [
        ("ovs-agent (pid 2741) is running...\n@@agent 0\n", True, "running"),
        ("ovs-agent is stopped\n@@agent 3\n", False, "service ovs-agent start"),
        ("ovs-agent: unrecognized service\n@@agent 1\n", None, "not an Oracle VM server"),
        ("Unit ovs-agent.service could not be found.\n@@agent 4\n", None, "not an Oracle VM"),
        ("@@agent 127\n", None, "not an Oracle VM server"),
    ],
)
def test_the_agent_status(out: str, ok: bool | None, words: str) -> None:
    said = probes.agent_result(out)
    assert said[0] is ok and words in said[1]


def test_clock_skew_is_corrected_by_half_the_round_trip() -> None:
    # Sent at 100, received at 102: the host read its clock about 101.
    ok, detail = probes.clock_result("101.500000000\n", 100.0, 102.0)
    assert ok is True and detail == "0.500 s ahead of this machine (±1.000 s)"
    ok, detail = probes.clock_result("91.0\n", 100.0, 102.0)
    assert ok is False and detail.startswith("10.000 s behind this machine")
    ok, detail = probes.clock_result("101.N\n", 100.0, 102.0)  # busybox date: no %N
    assert ok is True and "in step" in detail
    assert probes.clock_result("garbage", 1.0, 2.0)[0] is False


def test_the_marker() -> None:
    assert probes.marker_read("@@marker none\n") is None
    assert probes.marker_read("abc-123\n@@marker 0\n") == "abc-123"
    with pytest.raises(ValueError, match="Permission denied"):
        probes.marker_read("cat: /OVS/.ovmtui-pool: Permission denied\n@@marker 1\n")


def test_who_writes_the_marker() -> None:
    def pool(*roles: tuple[str, ...]) -> PoolConfig:
        hosts = tuple(
            HostConfig("p", f"h{i}", ssh=f"root@h{i}", roles=tuple(HostRole(n) for n in r))
            for i, r in enumerate(roles)
        )
        return PoolConfig("p", hosts, "/OVS")

    assert probes.marker_writer(pool(("vm",), ("utility", "vm"), ("master",))) == "h1"
    assert probes.marker_writer(pool(("vm",), ("master",))) == "h1"
    assert probes.marker_writer(pool(("vm",), ("vm",))) == "h0"
    assert probes.marker_writer(PoolConfig("p", (), "/OVS")) is None


def test_paths_reach_the_shell_as_arguments_only() -> None:
    path = "/OVS/it's; rm -rf /"
    command = probes.storage_script(path)
    assert command.endswith(" sh '/OVS/it'\"'\"'s; rm -rf /'")
    assert "rm -rf" not in command.split(" sh ")[0]
    assert probes.write_marker_command(path, "id").endswith(
        "'/OVS/it'\"'\"'s; rm -rf /.ovmtui-pool' id"
    )


def test_the_toolstack_found() -> None:
    ok, detail = probes.toolstack_result(
        "host : ovs1\nnr_cpus : 8\ntotal_memory : 16384\nxen_major : 4\nxen_minor : 4\n"
        "xen_extra : .4OVM\n@@toolstack xm 0\n"
    )
    assert ok is True and detail.startswith("xm: Xen 4.4.4OVM, 8 CPUs")
    assert probes.toolstack_result("@@toolstack none 127\n") == (
        False,
        "neither xm nor xl answers on this host",
    )
    ok, detail = probes.toolstack_result("Error: Unable to connect to xend\n@@toolstack xm 1\n")
    assert ok is False and "Unable to connect to xend" in detail
