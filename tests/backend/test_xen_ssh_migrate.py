"""Migration of the Xen-over-SSH backend (``base.Migrator``) against the real sshd of
tests/sshfake: two fake dom0s of one server, each on an address of its own, whose
``xm/xl migrate`` move the domain's state from one to the other (tests/sshfake/xenmigrate.py)
and whose ``test`` answers for the paths and bridges each host's state lists.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.base import CAPABILITY_PROTOCOLS, Migrator
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.errors import ActionFailed, ActionRefused
from ovmtui.model import Capability, HostKey, MigrationProgress, Vm, VmAction, VmState
from tests.backend.test_xen_ssh_long import backend_for
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec, SshdServer
from tests.sshfake.xenstate import DEFAULT_INFO, make_domain

__all__ = ["fake_xen_servers"]  # pytest fixture

DATA = Path(__file__).resolve().parent.parent / "data" / "xen"
WEB = "/OVS/running_pool/web01"
WEB01 = make_domain(
    "web01",
    uuid="0004fb00-0006-0000-aaaa-000000000001",
    domid=7,
    memory=1024,
    disks=[
        {"uname": f"file:{WEB}/System.img", "dev": "xvda", "mode": "w"},
        {"uname": f"file:{WEB}/it's data.img", "dev": "xvdb", "mode": "w"},
    ],
    vifs=[
        {"mac": "00:16:3e:00:00:01", "bridge": "xenbr0"},
        {"mac": "00:16:3e:00:00:02", "bridge": "xenbr9"},
    ],
)
DB01 = make_domain("db01", uuid="0004fb00-0006-0000-bbbb-000000000001", domid=3, memory=2048)
# Xen 4.3's layout (Oracle VM 3): word 4 is CPUID 1.ECX, whose bit 28 is avx.
HW_CAPS = DEFAULT_INFO["hw_caps"]
NO_AVX = HW_CAPS.replace("77fefbff", "67fefbff")


def _spec(name: str, address: str, domains: list[dict[str, Any]], **more: Any) -> HostSpec:
    return HostSpec(name, address=address, domains=domains, **more)


@pytest.fixture
def pair(fake_xen_servers: Callable[..., SshdServer]) -> tuple[FakeXenHost, FakeXenHost]:
    """xen-a (127.0.0.2) runs web01, xen-b (127.0.0.3) db01; both toolstacks on each."""
    server = fake_xen_servers(
        [_spec("xen-a", "127.0.0.2", [WEB01]), _spec("xen-b", "127.0.0.3", [DB01])]
    )
    a, b = server.hosts
    a.set_migrate_delay(0.2)
    return a, b


@pytest.fixture
async def backends(
    pair: tuple[FakeXenHost, FakeXenHost], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[XenSshBackend, XenSshBackend]]:
    tool = getattr(request, "param", "auto")
    a = backend_for(pair[0], toolstack=tool, poll_timeout_s=10.0)
    b = backend_for(pair[1], toolstack=tool, poll_timeout_s=10.0)
    yield a, b
    await a.close()
    await b.close()


async def _vm(backend: XenSshBackend, name: str) -> Vm:
    return next(vm for vm in (await backend.poll()).vms if vm.name == name)


def _migrations(host: FakeXenHost) -> list[list[str]]:
    return [argv for argv in host.argv_log() if argv[1:2] == ["migrate"]]


def test_declares_migration() -> None:
    backend = XenSshBackend(HostKey("p", "h"), "root@h")
    assert Capability.MIGRATE in backend.capabilities
    assert CAPABILITY_PROTOCOLS[Capability.MIGRATE] is Migrator
    assert isinstance(backend, Migrator)


@pytest.mark.parametrize(
    ("backends", "argv"),
    [
        ("xm", ["xm", "migrate", "--live", "web01", "127.0.0.3"]),
        ("xl", ["xl", "migrate", "web01", "127.0.0.3"]),
    ],
    indirect=["backends"],
)
async def test_a_running_domain_moves_from_a_to_b(
    backends: tuple[XenSshBackend, XenSshBackend],
    pair: tuple[FakeXenHost, FakeXenHost],
    argv: list[str],
) -> None:
    a, b = backends
    host_a, host_b = pair
    web01 = await _vm(a, "web01")
    assert web01.state.is_active
    assert a.migration_command(web01, b, live=True) == " ".join(argv)
    calls: list[object] = []
    host_a.clear_argv_log()
    host_b.clear_argv_log()

    await a.migrate(web01, b, live=True, progress=calls.append)

    assert _migrations(host_a) == [argv]  # exactly this, once
    assert _migrations(host_b) == []  # the target is named, never asked to migrate
    # No figures are invented: each reading is a line the tool printed, or there is none
    # (xm prints nothing when it succeeds; xl tells its stages).
    assert all(
        isinstance(c, MigrationProgress) and c.note and c.fraction is None and c.bytes_per_s is None
        for c in calls
    )
    if argv[0] == "xl":
        assert "migration target: Ready to receive domain." in [c.note for c in calls]  # type: ignore[attr-defined]
    else:
        assert calls == []
    assert [what.split()[0] for _, what in host_a.migrate_log()] == ["start", "moved"]
    # Then the two hosts were asked: the target runs it, the source no longer does.
    assert [argv[0], "list", "web01"] in host_b.argv_log()
    assert [argv[0], "list", "web01"] in host_a.argv_log()
    on_b = await _vm(b, "web01")
    assert on_b.state.is_active and on_b.uuid == web01.uuid
    assert on_b.domain_id is not None
    assert "web01" not in {vm.name for vm in (await a.poll()).vms}


@pytest.mark.parametrize("backends", ["xm", "xl"], indirect=True)
async def test_a_hostile_name_stays_one_argument(
    backends: tuple[XenSshBackend, XenSshBackend],
    pair: tuple[FakeXenHost, FakeXenHost],
    tmp_path: Path,
) -> None:
    a, b = backends
    pwned = tmp_path / "pwned"
    name = f"x; touch {pwned}"
    vm = Vm(uuid="0004fb00-0006-0000-cccc-000000000001", name=name, state=VmState.RUNNING)
    tool = a.toolstack or "xm"
    pair[0].clear_argv_log()
    with pytest.raises(ActionFailed) as failed:
        await a.migrate(vm, b, live=True)
    expected = [tool, "migrate", *(["--live"] if tool == "xm" else []), name, "127.0.0.3"]
    assert _migrations(pair[0]) == [expected]
    assert not pwned.exists()
    assert "does not exist" in str(failed.value) or "invalid domain identifier" in str(failed.value)


@pytest.mark.parametrize(
    ("backends", "words"),
    [
        ("xm", "Error: I need 1048576 KiB, but dom0_min_mem is 262144"),
        ("xl", "failed to free memory for the domain"),
    ],
    indirect=["backends"],
)
async def test_too_little_memory_on_the_target_fails_in_the_tools_words(
    backends: tuple[XenSshBackend, XenSshBackend],
    pair: tuple[FakeXenHost, FakeXenHost],
    words: str,
) -> None:
    a, b = backends
    host_a, host_b = pair
    # db01's 2048 MiB and dom0's 2048 leave 512 MiB free: web01 needs 1024.
    host_b.update(lambda s: s["info"].__setitem__("total_memory", 2048 + 2048 + 512))
    web01 = await _vm(a, "web01")
    with pytest.raises(ActionFailed) as failed:
        await a.migrate(web01, b, live=True)
    message = str(failed.value)
    assert words in message
    assert "Usage:" not in message and "-l, --live" not in message  # the usage is not news
    assert failed.value.title == "Migration failed"
    assert host_a.domain("web01")["domid"] == 7  # still where it was
    assert "web01" not in {d["name"] for d in host_b.domains()}


@pytest.mark.parametrize("backends", ["xm"], indirect=True)
async def test_an_unknown_target_and_a_shut_off_domain_fail(
    backends: tuple[XenSshBackend, XenSshBackend], pair: tuple[FakeXenHost, FakeXenHost]
) -> None:
    a, b = backends
    web01 = await _vm(a, "web01")
    elsewhere = XenSshBackend(HostKey("xen", "xen-z"), "root@xen-z.example")  # never reached
    assert a.migration_command(web01, elsewhere, live=True).endswith(" web01 xen-z.example")
    with pytest.raises(ActionFailed, match=r"can't connect: .*Name or service not known"):
        await a.migrate(web01, elsewhere, live=True)
    await a.act(web01, VmAction.FORCE_OFF)
    with pytest.raises(ActionFailed, match="Domain is not running"):
        await a.migrate(web01, b, live=True)


@pytest.mark.parametrize("backends", ["xl"], indirect=True)
async def test_xl_has_no_offline_migration(
    backends: tuple[XenSshBackend, XenSshBackend], pair: tuple[FakeXenHost, FakeXenHost]
) -> None:
    a, b = backends
    web01 = await _vm(a, "web01")
    pair[0].clear_argv_log()
    with pytest.raises(ActionRefused, match="always live"):
        await a.migrate(web01, b, live=False)
    with pytest.raises(ActionRefused, match="always live"):
        a.migration_command(web01, b, live=False)
    assert _migrations(pair[0]) == []


@pytest.mark.parametrize("backends", ["xm"], indirect=True)
async def test_xm_offline_migration_has_no_live_flag(
    backends: tuple[XenSshBackend, XenSshBackend], pair: tuple[FakeXenHost, FakeXenHost]
) -> None:
    a, b = backends
    web01 = await _vm(a, "web01")
    pair[0].clear_argv_log()
    await a.migrate(web01, b, live=False)
    assert _migrations(pair[0]) == [["xm", "migrate", "web01", "127.0.0.3"]]
    assert pair[1].domain("web01")["domid"] is not None


async def test_can_host_answers_paths_bridges_and_cpu(
    backends: tuple[XenSshBackend, XenSshBackend], pair: tuple[FakeXenHost, FakeXenHost]
) -> None:
    a, b = backends
    host_b = pair[1]
    host_b.set_paths([f"{WEB}/System.img"])  # shared storage that lacks the data disk
    host_b.set_bridges(["xenbr0"])
    needs = await a.migration_needs(await _vm(a, "web01"))
    assert needs.memory_mib == 1024
    assert needs.disk_paths == (f"{WEB}/System.img", f"{WEB}/it's data.img")
    assert needs.networks == ("xenbr0", "xenbr9")
    assert "avx" in needs.cpu_flags and "lm" in needs.cpu_flags
    assert needs.host_local == ()

    answers = await b.can_host(needs)
    assert dict(answers.paths_visible) == {f"{WEB}/System.img": True, f"{WEB}/it's data.img": False}
    assert dict(answers.networks_present) == {"xenbr0": True, "xenbr9": False}
    # Both fakes are this machine: the same vendor (none on a CPU without vendor_id).
    assert answers.cpu_compatible is (True if needs.cpu_vendor else None)
    assert answers.incoming_mib == 0

    host_b.set_paths([f"{WEB}/System.img", f"{WEB}/it's data.img"])
    host_b.update(lambda s: s["info"].__setitem__("hw_caps", NO_AVX))
    answers = await b.can_host(needs)
    assert all(answers.paths_visible.values())
    assert answers.cpu_compatible is False
    assert answers.cpu_detail == "the target's CPU lacks avx"


async def test_can_host_asks_a_file_the_fixture_made(
    backends: tuple[XenSshBackend, XenSshBackend], tmp_path: Path
) -> None:
    """Paths the host's state does not list are asked of the real `test`."""
    a, b = backends
    made = tmp_path / "shared $(touch x) 'quoted'.img"
    made.write_bytes(b"")
    vm = Vm(uuid="0004fb00-0006-0000-dddd-000000000001", name="v", state=VmState.RUNNING)
    needs = dataclasses.replace(
        await a.migration_needs(vm),
        disk_paths=(str(made), str(tmp_path / "absent.img"), "rbd:pool/img"),
    )
    answers = await b.can_host(needs)
    assert dict(answers.paths_visible) == {
        str(made): True,
        str(tmp_path / "absent.img"): False,
        "rbd:pool/img": None,  # not a path: unknown, never passed
    }
    assert not (Path.cwd() / "x").exists() and not (Path.home() / "x").exists()


async def test_needs_from_a_real_looking_vm_cfg_with_pci_passthrough(
    fake_xen_servers: Callable[..., SshdServer], tmp_path: Path
) -> None:
    """The recorded Oracle VM exhibit vm.cfg (tests/data/xen/vm_cfg), given a PCI device as
    Oracle VM writes one; its `usbdevice = 'tablet'` is emulated, not the host's."""
    recorded = (DATA / "vm_cfg" / "ovm-exam-exhibit-windows-hvm.txt").read_text()
    cfg = tmp_path / "vm.cfg"
    cfg.write_text(recorded.split("\n", 1)[1] + "\npci = ['0000:03:00.0']\n")
    image = "/OVS/Repositories/0004fb0000030000Bded2925b616f88d/VirtualDisks/x.img"
    guest = make_domain(
        "0004fb000006000041b397779495f2aa",
        uuid="0004fb00-0006-0000-41b3-97779495f2aa",
        domid=4,
        memory=2048,
        maxmem=4096,
        kind="HVM",
        disks=[
            {"uname": f"file:{image}", "dev": "xvda", "mode": "w"},
            {"uname": "file:/root/local.img", "dev": "xvdb", "mode": "w"},
        ],
        vifs=[{"mac": "00:21:f6:bb:00:24", "bridge": "192.168.0.0"}],
    )
    host = fake_xen_servers([_spec("xen-a", "127.0.0.2", [guest], toolstack="xm")]).hosts[0]
    backend = backend_for(host, shared_storage="/OVS")
    try:
        vm = dataclasses.replace(await _vm(backend, guest["name"]), config_path=str(cfg))
        needs = await backend.migration_needs(vm)
    finally:
        await backend.close()
    assert needs.memory_mib == 2048
    assert needs.disk_paths == (image, "/root/local.img")
    assert needs.networks == ("192.168.0.0",)
    assert needs.host_local == (
        "PCI passthrough 0000:03:00.0",
        "disk xvdb: /root/local.img (not on the pool's shared storage /OVS)",
    )
    assert needs.cpu_definition == f"xen 4.3 hw_caps {HW_CAPS}"
    assert needs.cpu_vendor == _vendor()


def _vendor() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("vendor_id"):
            return line.partition(":")[2].strip()
    return None


@pytest.mark.parametrize("backends", ["xm", "xl"], indirect=True)
async def test_cancelling_closes_the_channel_and_the_tool_carries_on(
    backends: tuple[XenSshBackend, XenSshBackend], pair: tuple[FakeXenHost, FakeXenHost]
) -> None:
    """What xm/xl do on a real host: no abort. The channel goes, the migration does not."""
    a, b = backends
    host_a = pair[0]
    host_a.set_migrate_delay(1.0)
    web01 = await _vm(a, "web01")
    task = asyncio.ensure_future(a.migrate(web01, b, live=True))
    await _until(lambda: len(host_a.migrate_log()) >= 1)  # under way on the host
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a._long == []  # the long channel is closed and counted out
    await _until(lambda: len(host_a.migrate_log()) >= 2)
    assert host_a.migrate_log()[-1][1].startswith("moved xen-b ")
    assert "web01" in {vm.name for vm in (await b.poll()).vms}


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Until ``condition`` holds (the fakes write their logs as they go: nothing to await)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
