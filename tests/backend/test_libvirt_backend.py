"""The libvirt backend against libvirt's test driver: no daemon, no QEMU."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import libvirt
import pytest

from ovmtui.backend.base import Backend, DefinitionSource
from ovmtui.backend.libvirt import (
    DomainStatic,
    LibvirtBackend,
    _open_uri,
    _python_turn,
    parse_domain_xml,
    vm_from_stats,
)
from ovmtui.errors import ActionFailed, HostTimeout, HostUnreachable, ParseError
from ovmtui.model import Capability, Disk, HostKey, Nic, Vm, VmAction, VmState
from tests.backend import contract
from tests.backend.conftest import DEFAULT_URI, NODE_URI

HOST = HostKey("pool1", "h1")
UNREACHABLE_URI = "qemu+tcp://127.0.0.1:1/system"  # port 1: refused at once
UNREACHABLE_SSH_URI = "qemu+ssh://root@127.0.0.1:1/system"
NODE_DOMAINS = {"web01", "db01", "batch01", "legacy01", "laptop01"}

MakeBackend = Callable[..., LibvirtBackend]


@pytest.fixture
async def make_backend() -> AsyncIterator[MakeBackend]:
    made: list[LibvirtBackend] = []

    def make(uri: str = NODE_URI, *, call_timeout_s: float = 5.0) -> LibvirtBackend:
        backend = LibvirtBackend(HOST, uri, call_timeout_s=call_timeout_s)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


@pytest.fixture
def no_stray_workers() -> Iterator[None]:
    """Worker threads of abandoned connections must end once their call returns."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stray = [t.name for t in threading.enumerate() if t.name.startswith("libvirt-pool1")]
        if not stray:
            return
        time.sleep(0.05)
    pytest.fail(f"worker threads left behind: {stray}")


@pytest.fixture(params=["default", "node"])
async def lifecycle_target(
    request: pytest.FixtureRequest,
    make_backend: MakeBackend,
    scratch_domain: Callable[..., tuple[str, str]],
) -> tuple[LibvirtBackend, str]:
    """A backend and a VM it may change: a scratch domain on the shared default node, or
    a VM of a private copy of the node file."""
    if request.param == "default":
        name, _uuid = scratch_domain(start=True)
        return make_backend(DEFAULT_URI), name
    return make_backend(NODE_URI), "web01"


# ------------------------------------------------------------------------ the contract


@pytest.mark.parametrize("uri", [DEFAULT_URI, NODE_URI], ids=["default", "node"])
async def test_contract_poll_shape(make_backend: MakeBackend, uri: str) -> None:
    poll = await contract.check_poll_shape(make_backend(uri))
    assert poll.vms


async def test_contract_lifecycle_running(lifecycle_target: tuple[LibvirtBackend, str]) -> None:
    backend, name = lifecycle_target
    await contract.check_lifecycle(backend, name)


async def test_contract_lifecycle_shut_off(make_backend: MakeBackend) -> None:
    await contract.check_lifecycle(make_backend(NODE_URI), "batch01")


async def test_contract_lifecycle_paused(make_backend: MakeBackend) -> None:
    await contract.check_lifecycle(make_backend(NODE_URI), "db01")


@pytest.mark.parametrize("uri", [DEFAULT_URI, NODE_URI, "qemu+ssh://root@h1/system"])
async def test_contract_command_quoting(make_backend: MakeBackend, uri: str) -> None:
    await contract.check_command_quoting(make_backend(uri))


@pytest.mark.parametrize("uri", [DEFAULT_URI, NODE_URI], ids=["default", "node"])
async def test_contract_unknown_vm(make_backend: MakeBackend, uri: str) -> None:
    await contract.check_unknown_vm(make_backend(uri))


async def test_contract_definition(make_backend: MakeBackend) -> None:
    text = await contract.check_definition(make_backend(NODE_URI), "web01")
    assert "<domain" in text and "11111111-1111-4111-8111-111111111111" in text


async def test_contract_refused_action(
    make_backend: MakeBackend, capfd: pytest.CaptureFixture[str]
) -> None:
    await contract.check_errors_are_ovm_errors(make_backend(NODE_URI), "web01")
    assert capfd.readouterr().err == ""


async def test_contract_events(
    make_backend: MakeBackend,
    scratch_domain: Callable[..., tuple[str, str]],
    libvirt_conn: Any,
) -> None:
    _name, uuid = scratch_domain(start=True)

    async def change_behind_its_back() -> None:
        libvirt_conn.lookupByUUIDString(uuid).suspend()

    await contract.check_events(make_backend(DEFAULT_URI), change_behind_its_back, uuid)


@pytest.mark.parametrize(
    "uri",
    [
        UNREACHABLE_URI,
        pytest.param(
            UNREACHABLE_SSH_URI,
            marks=pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client"),
        ),
    ],
    ids=["tcp", "ssh"],
)
async def test_contract_unreachable(
    make_backend: MakeBackend, capfd: pytest.CaptureFixture[str], uri: str
) -> None:
    error = await contract.check_unreachable(lambda: make_backend(uri), within_s=5)
    # The operator's URI, not the one with no_tty=1 added.
    assert error.message.startswith(uri + ": ")
    assert "refused" in error.message.lower()
    # libvirt's default error handler would have printed over the TUI.
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("uri", [DEFAULT_URI, NODE_URI], ids=["default", "node"])
async def test_contract_close_idempotent(make_backend: MakeBackend, uri: str) -> None:
    await contract.check_close_idempotent(make_backend(uri))


# ------------------------------------------------------------------ what the node says


async def test_node_file_states_and_definitions(make_backend: MakeBackend) -> None:
    poll = await make_backend(NODE_URI).poll()
    states = {vm.name: vm.state for vm in poll.vms}
    assert states == {
        "batch01": VmState.SHUTOFF,
        "db01": VmState.PAUSED,
        "laptop01": VmState.SUSPENDED,
        "legacy01": VmState.CRASHED,
        "web01": VmState.RUNNING,
    }
    assert [vm.name for vm in poll.vms] == sorted(NODE_DOMAINS)
    assert contract.vm_named(poll, "batch01").domain_id is None
    web = contract.vm_named(poll, "web01")
    assert web.uuid == "11111111-1111-4111-8111-111111111111"
    assert isinstance(web.domain_id, int) and web.domain_id > 0
    assert (web.vcpus, web.memory_mib, web.max_memory_mib) == (2, 1024, 2048)
    assert web.os_type == "hvm" and web.persistent is True
    assert web.cpu_time_ns is None  # the test driver reports state only
    assert web.disks == (
        Disk("vda", "/var/lib/images/web01.img", bus="virtio"),
        Disk("vdb", "/shared/quorum.img", shareable=True, bus="virtio"),
        Disk("hdc", None, device="cdrom", read_only=True, bus="ide"),
    )
    assert web.nics == (
        Nic("52:54:00:00:00:01", "default", "virtio"),
        Nic("52:54:00:00:00:02", "br0", None),
    )
    db = contract.vm_named(poll, "db01")
    assert (db.vcpus, db.memory_mib, db.max_memory_mib) == (2, 4096, 4096)


async def test_host_facts(make_backend: MakeBackend) -> None:
    facts = (await make_backend(NODE_URI).poll()).facts
    assert (facts.cpus, facts.sockets, facts.cores_per_socket, facts.threads_per_core) == (
        16,
        2,
        4,
        2,
    )
    assert (facts.mhz, facts.memory_mib) == (2400, 16384)
    assert facts.hypervisor == "TEST"
    assert facts.hypervisor_version is not None
    assert facts.hypervisor_version.count(".") == 2
    assert facts.hostname
    # The test driver's node file says 0 bytes free: unknown, not "full".
    assert facts.free_memory_mib is None


async def test_capabilities_are_what_this_module_implements(make_backend: MakeBackend) -> None:
    withheld = {Capability.CONSOLE, Capability.MIGRATE, Capability.ATTACH_DISK}
    for uri in ("qemu+ssh://root@h1/system", "xen+ssh://root@h2/"):
        assert withheld <= make_backend(uri).capabilities
    test = make_backend(NODE_URI)
    await test.connect()
    # Written, but the test driver has no consoles, no migration and attaches no devices
    # (test_capabilities.py, test_libvirt_migrate.py, test_libvirt_disks.py: withheld).
    assert not withheld & test.capabilities
    assert {action.capability for action in VmAction} <= test.capabilities
    assert {Capability.EVENTS, Capability.DEFINITION, Capability.DEFINE} <= test.capabilities


def test_it_is_a_backend_and_a_definition_source() -> None:
    backend = LibvirtBackend(HOST, DEFAULT_URI)
    # Checked by mypy (structurally) as well as at run time.
    as_backend: Backend = backend
    as_source: DefinitionSource = backend
    assert isinstance(as_backend, Backend) and isinstance(as_source, DefinitionSource)
    assert backend.host == HOST and backend.address == DEFAULT_URI


def test_ssh_is_opened_without_a_tty() -> None:
    lab = "qemu+ssh://root@10.200.0.1/system?socket=/run/h1/libvirt-sock&keyfile=/k/id"
    assert _open_uri(lab) == lab + "&no_tty=1"
    assert _open_uri("xen+ssh://root@h2/") == "xen+ssh://root@h2/?no_tty=1"
    assert _open_uri("qemu+ssh://h/system?no_tty=0") == "qemu+ssh://h/system?no_tty=0"
    for untouched in (DEFAULT_URI, NODE_URI, "qemu+tcp://h/system", "qemu:///system"):
        assert _open_uri(untouched) == untouched


def test_command_for_is_shell_quoted() -> None:
    backend = LibvirtBackend(HOST, "qemu+ssh://root@h1/system")
    vm = Vm(uuid="u", name="x; rm -rf /", state=VmState.RUNNING)
    assert (
        backend.command_for(vm, VmAction.FORCE_OFF)
        == "virsh -c qemu+ssh://root@h1/system destroy 'x; rm -rf /'"
    )
    uri = "qemu+unix:///system?socket=/run/h1/libvirt-sock"
    verbs = [shlex.split(LibvirtBackend(HOST, uri).command_for(vm, action)) for action in VmAction]
    assert [words[3] for words in verbs] == [
        "start",
        "shutdown",
        "reboot",
        "suspend",
        "resume",
        "destroy",
    ]
    assert all(words[:3] == ["virsh", "-c", uri] and words[4:] == [vm.name] for words in verbs)
    asleep = Vm(uuid="u", name="n", state=VmState.SUSPENDED)
    assert backend.command_for(asleep, VmAction.START).split()[3] == "dompmwakeup"


# ------------------------------------------------------------------------ end to end


async def test_hostile_name_end_to_end(
    make_backend: MakeBackend, scratch_domain: Callable[..., tuple[str, str]]
) -> None:
    # libvirt refuses '/' in names; everything else a shell cares about is here.
    name = "x; rm -rf ~ $(id) `id` 'q' \"dq\""
    _name, uuid = scratch_domain(name)
    backend = make_backend(DEFAULT_URI)
    vm = contract.vm_named(await backend.poll(), name)
    assert vm.uuid == uuid and vm.state is VmState.SHUTOFF
    assert shlex.split(backend.command_for(vm, VmAction.START))[-1] == name
    await backend.act(vm, VmAction.START)
    vm = contract.vm_named(await backend.poll(), name)
    assert vm.state is VmState.RUNNING
    assert uuid in await backend.definition(vm)
    await backend.act(vm, VmAction.FORCE_OFF)
    assert contract.vm_named(await backend.poll(), name).state is VmState.SHUTOFF


async def test_action_failure_has_the_hosts_words(
    make_backend: MakeBackend, capfd: pytest.CaptureFixture[str]
) -> None:
    backend = make_backend(NODE_URI)
    web = contract.vm_named(await backend.poll(), "web01")
    with pytest.raises(ActionFailed) as caught:
        await backend.act(web, VmAction.START)
    assert caught.value.title == "Start web01 failed"
    assert "already running" in caught.value.message
    assert capfd.readouterr().err == ""


# ------------------------------------------------------------------- the XML cache


async def test_definitions_are_fetched_once_until_an_event(make_backend: MakeBackend) -> None:
    backend = make_backend(NODE_URI)
    events: asyncio.Queue[str | None] = asyncio.Queue()
    backend.set_event_callback(events.put_nowait)
    web = contract.vm_named(await backend.poll(), "web01")
    assert backend.definition_fetches == len(NODE_DOMAINS)
    for _ in range(3):
        await backend.poll()
    assert backend.definition_fetches == len(NODE_DOMAINS)

    await backend.act(web, VmAction.PAUSE)
    async with asyncio.timeout(5):
        assert await events.get() == web.uuid
    poll = await backend.poll()
    assert contract.vm_named(poll, "web01").state is VmState.PAUSED
    assert backend.definition_fetches == len(NODE_DOMAINS) + 1  # web01 only
    await backend.poll()
    assert backend.definition_fetches == len(NODE_DOMAINS) + 1


async def test_event_from_another_connection_refreshes_the_definition(
    make_backend: MakeBackend,
    scratch_domain: Callable[..., tuple[str, str]],
    libvirt_conn: Any,
) -> None:
    name, uuid = scratch_domain()
    backend = make_backend(DEFAULT_URI)
    events: asyncio.Queue[str | None] = asyncio.Queue()
    backend.set_event_callback(events.put_nowait)
    assert contract.vm_named(await backend.poll(), name).memory_mib == 256

    dom = libvirt_conn.lookupByUUIDString(uuid)
    libvirt_conn.defineXML(dom.XMLDesc(0).replace(">262144<", ">524288<"))
    async with asyncio.timeout(5):
        while await events.get() != uuid:
            pass
    vm = contract.vm_named(await backend.poll(), name)
    assert (vm.memory_mib, vm.max_memory_mib) == (512, 512)


async def test_vanished_domains_leave_the_poll(
    make_backend: MakeBackend, libvirt_conn: Any, scratch_domain: Callable[..., tuple[str, str]]
) -> None:
    name, uuid = scratch_domain()
    backend = make_backend(DEFAULT_URI)
    assert name in {vm.name for vm in (await backend.poll()).vms}
    libvirt_conn.lookupByUUIDString(uuid).undefine()
    assert uuid not in {vm.uuid for vm in (await backend.poll()).vms}


async def test_unreadable_definitions_are_retried_and_vanished_domains_skipped(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend(NODE_URI)
    await backend.connect()
    conn = backend._session.conn  # type: ignore[union-attr]
    real_stats = conn.getAllDomainStats
    turn_free: list[bool] = []

    def refused(_flags: int) -> str:
        conn.setKeepAlive(5, 3)  # the test driver's genuine VIR_ERR_NO_SUPPORT
        raise AssertionError("unreachable")

    def undefined(_flags: int) -> str:
        conn.lookupByName("no-such-domain")  # VIR_ERR_NO_DOMAIN
        raise AssertionError("unreachable")

    def checked(real: Callable[[int], str]) -> Callable[[int], str]:
        def xml_desc(flags: int) -> str:
            # A call to the host: other hosts' workers may run their Python meanwhile.
            free = _python_turn.acquire(blocking=False)
            if free:
                _python_turn.release()
            turn_free.append(free)
            return real(flags)

        return xml_desc

    def stats(*args: Any) -> Any:
        records = real_stats(*args)
        for dom, _stats in records:
            name = dom.name()
            dom.XMLDesc = {"db01": refused, "batch01": undefined}.get(name) or checked(dom.XMLDesc)
        return records

    conn.getAllDomainStats = stats
    poll = await backend.poll()
    assert {vm.name for vm in poll.vms} == NODE_DOMAINS - {"batch01"}
    db = contract.vm_named(poll, "db01")
    assert db.state is VmState.PAUSED and db.persistent is None and db.memory_mib is None
    assert turn_free and all(turn_free)
    assert backend.definition_fetches == len(NODE_DOMAINS) - 1

    conn.getAllDomainStats = real_stats
    poll = await backend.poll()  # db01 is asked again; batch01 is new
    assert {vm.name for vm in poll.vms} == NODE_DOMAINS
    assert contract.vm_named(poll, "db01").persistent is True
    assert backend.definition_fetches == len(NODE_DOMAINS) + 1


async def test_falls_back_without_get_all_domain_stats(make_backend: MakeBackend) -> None:
    backend = make_backend(NODE_URI)
    expected = {vm.name: vm.state for vm in (await backend.poll()).vms}
    conn = backend._session.conn  # type: ignore[union-attr]

    def unsupported(*_args: object, **_kwargs: object) -> None:
        conn.setKeepAlive(5, 3)  # the test driver's genuine VIR_ERR_NO_SUPPORT

    conn.getAllDomainStats = unsupported
    assert {vm.name: vm.state for vm in (await backend.poll()).vms} == expected


async def test_old_daemons_are_asked_without_nowait(make_backend: MakeBackend) -> None:
    backend = make_backend(NODE_URI)
    expected = {vm.name: vm.state for vm in (await backend.poll()).vms}
    session = backend._session
    assert session is not None and session.stats_flags != 0
    nowait = session.stats_flags
    conn = session.conn
    original = conn.getAllDomainStats
    calls: list[int] = []

    def like_libvirt_4_4(stats: int, flags: int = 0) -> Any:
        calls.append(flags)
        if flags:
            conn.lookupByUUIDString("x")  # a genuine VIR_ERR_INVALID_ARG
        return original(stats, flags)

    conn.getAllDomainStats = like_libvirt_4_4
    assert {vm.name: vm.state for vm in (await backend.poll()).vms} == expected
    assert {vm.name: vm.state for vm in (await backend.poll()).vms} == expected
    assert calls == [nowait, 0, 0]
    assert session.stats_flags == 0


# ------------------------------------------------------- timeouts and lost connections


async def test_a_stuck_call_times_out_and_the_next_poll_reconnects(
    make_backend: MakeBackend, no_stray_workers: None
) -> None:
    backend = make_backend(NODE_URI, call_timeout_s=0.3)
    web = contract.vm_named(await backend.poll(), "web01")
    stuck = backend._session
    assert stuck is not None
    release = threading.Event()
    entered = threading.Event()

    def hang(*_args: object, **_kwargs: object) -> None:
        entered.set()
        release.wait(10)
        raise RuntimeError("unreachable")

    stuck.conn.getAllDomainStats = hang
    try:
        polling = asyncio.create_task(backend.poll())
        await asyncio.to_thread(entered.wait, 2)
        # Queued behind the stuck poll: must be cancelled, not run late.
        acting = asyncio.create_task(backend.act(web, VmAction.FORCE_OFF))
        started = time.monotonic()
        with pytest.raises(HostTimeout) as caught:
            await polling
        assert time.monotonic() - started < 2
        assert "0.3 s" in caught.value.message
        with pytest.raises(HostUnreachable):
            await acting
        assert not backend.connected

        started = time.monotonic()
        poll = await backend.poll()  # a fresh connection on a fresh worker
        assert time.monotonic() - started < 2
        assert backend._session is not stuck
        assert contract.vm_named(poll, "web01").state is VmState.RUNNING
    finally:
        release.set()
    await asyncio.wait_for(asyncio.wrap_future(stuck.torn_down), 5)
    await backend.close()


async def test_a_silent_server_times_out(
    make_backend: MakeBackend, capfd: pytest.CaptureFixture[str], no_stray_workers: None
) -> None:
    """A host that accepts and never answers (a hung sshd, a half-dead daemon)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = make_backend(f"qemu+tcp://127.0.0.1:{port}/system", call_timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(HostTimeout):
            await backend.poll()
        assert time.monotonic() - started < 3
        assert not backend.connected
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()
    assert capfd.readouterr().err == ""


async def test_a_closed_connection_is_reported_and_reopened(make_backend: MakeBackend) -> None:
    backend = make_backend(NODE_URI)
    events: asyncio.Queue[str | None] = asyncio.Queue()
    backend.set_event_callback(events.put_nowait)
    await backend.poll()
    session = backend._session
    assert session is not None
    # What libvirt's close callback does, from a thread that is not the loop's.
    await asyncio.to_thread(session.loop.call_soon_threadsafe, backend._on_closed, session)
    async with asyncio.timeout(5):
        assert await events.get() is None
    assert not backend.connected
    await backend.poll()
    assert backend.connected and backend._session is not session


async def test_close_releases_the_connection(make_backend: MakeBackend) -> None:
    backend = make_backend(NODE_URI)
    await backend.poll()
    session = backend._session
    assert session is not None
    await backend.close()
    assert session.torn_down.done()
    assert session.conn._o is None  # libvirt-python clears it on close()
    await backend.close()


# -------------------------------------------------------------------------- parsing

_RICH_XML = """<domain type='kvm'>
  <name>rich</name>
  <uuid>aaaaaaaa-0000-4000-8000-000000000001</uuid>
  <memory unit='GiB'>4</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>8</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg0/rich'/>
      <target dev='sda' bus='scsi'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='ovs' volume='rich-data.img'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <disk type='network' device='lun'>
      <source protocol='iscsi' name='iqn.2024-01.example:lun/1'/>
      <target dev='sdb' bus='scsi'/>
      <shareable/>
    </disk>
    <interface type='direct'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source dev='eth0' mode='bridge'/>
      <model type='e1000'/>
    </interface>
    <interface type='user'/>
  </devices>
</domain>"""


def test_parse_domain_xml() -> None:
    static = parse_domain_xml(_RICH_XML)
    assert static == DomainStatic(
        vcpus=8,
        memory_mib=2048,
        max_memory_mib=4096,
        os_type="hvm",
        disks=(
            # The format from <driver type=…>, the bus from <target bus=…>; neither is
            # guessed where the XML does not say (the lun has no driver).
            Disk("sda", "/dev/vg0/rich", format="raw", bus="scsi"),
            Disk("vdb", "ovs/rich-data.img", read_only=True, format="qcow2", bus="virtio"),
            Disk("sdb", "iqn.2024-01.example:lun/1", device="lun", shareable=True, bus="scsi"),
        ),
        nics=(Nic("52:54:00:aa:bb:cc", "eth0", "e1000"), Nic(None, None, None)),
    )


def test_parse_domain_xml_minimal_and_broken() -> None:
    assert parse_domain_xml("<domain><name>n</name></domain>") == DomainStatic()
    with pytest.raises(ParseError):
        parse_domain_xml("<domain><name>")
    with pytest.raises(ParseError):
        parse_domain_xml("<network/>")


def test_stats_override_the_definition() -> None:
    static = DomainStatic(vcpus=4, memory_mib=1024, max_memory_mib=2048, persistent=True)
    live = vm_from_stats(
        "u",
        "n",
        7,
        static,
        {
            "state.state": libvirt.VIR_DOMAIN_RUNNING,
            "cpu.time": 123_456_789,
            "balloon.current": 524288,
            "vcpu.current": 2,
        },
    )
    assert (live.state, live.cpu_time_ns, live.memory_mib, live.vcpus) == (
        VmState.RUNNING,
        123_456_789,
        512,
        2,
    )
    assert (live.max_memory_mib, live.persistent, live.domain_id) == (2048, True, 7)
    off = vm_from_stats("u", "n", -1, static, {"state.state": libvirt.VIR_DOMAIN_SHUTOFF})
    assert (off.state, off.vcpus, off.memory_mib, off.domain_id) == (
        VmState.SHUTOFF,
        4,
        1024,
        None,
    )
    assert vm_from_stats("u", "n", 1, static, {"state.state": 99}).state is VmState.UNKNOWN
    assert vm_from_stats("u", "n", 1, static, {}).state is VmState.UNKNOWN


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        (libvirt.VIR_DOMAIN_NOSTATE, VmState.UNKNOWN),
        (libvirt.VIR_DOMAIN_RUNNING, VmState.RUNNING),
        (libvirt.VIR_DOMAIN_BLOCKED, VmState.BLOCKED),
        (libvirt.VIR_DOMAIN_PAUSED, VmState.PAUSED),
        (libvirt.VIR_DOMAIN_SHUTDOWN, VmState.SHUTTING_DOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, VmState.SHUTOFF),
        (libvirt.VIR_DOMAIN_CRASHED, VmState.CRASHED),
        (libvirt.VIR_DOMAIN_PMSUSPENDED, VmState.SUSPENDED),
    ],
)
def test_state_mapping(raw: int, state: VmState) -> None:
    assert vm_from_stats("u", "n", 1, DomainStatic(), {"state.state": raw}).state is state


async def test_event_during_a_poll_does_not_blank_the_vms(make_backend: MakeBackend) -> None:
    """An event that drops a cached definition while a poll runs must not leave that poll
    building VMs from nothing (no vCPUs, no memory, no disks)."""
    backend = make_backend(NODE_URI)
    first = await backend.poll()
    original = backend._poll_in_worker

    def racing(session: Any, cache: Any, *flags: Any) -> Any:
        raw = original(session, cache, *flags)
        fired = threading.Event()

        def events() -> None:
            for vm in first.vms:
                backend._on_domain_event(session, vm.uuid)
            fired.set()

        session.loop.call_soon_threadsafe(events)
        assert fired.wait(5)
        return raw

    backend._poll_in_worker = racing  # type: ignore[method-assign]
    second = await backend.poll()
    assert [(vm.vcpus, vm.memory_mib, vm.disks) for vm in second.vms] == [
        (vm.vcpus, vm.memory_mib, vm.disks) for vm in first.vms
    ]
    assert all(vm.vcpus for vm in second.vms)


async def test_unchanged_vms_are_the_same_objects(make_backend: MakeBackend) -> None:
    backend = make_backend(NODE_URI)
    first = await backend.poll()
    second = await backend.poll()
    assert all(a is b for a, b in zip(first.vms, second.vms, strict=True))
    web = next(vm for vm in second.vms if vm.name == "web01")
    await backend.act(web, VmAction.PAUSE)
    third = await backend.poll()
    changed = [vm.name for vm, old in zip(third.vms, second.vms, strict=True) if vm is not old]
    assert changed == ["web01"]


async def test_an_idle_poll_asks_no_domain_and_still_sees_stats_that_moved(
    make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(NODE_URI)
    await backend.poll()
    second = await backend.poll()  # every definition cached, every VM as it was
    asked: list[str] = []
    real_uuid = libvirt.virDomain.UUID

    def uuid(dom: Any) -> Any:
        asked.append("UUID")
        return real_uuid(dom)

    monkeypatch.setattr(libvirt.virDomain, "UUID", uuid)
    third = await backend.poll()
    # The same stats, in the same order, and no event since: the last poll's VMs.
    assert third.vms is second.vms
    assert asked == []
    # Stats that moved without an event (a live host's CPU time): the whole pass, at once.
    conn = backend._session.conn  # type: ignore[union-attr]
    real_stats = conn.getAllDomainStats

    def moving(*args: Any) -> Any:
        records = real_stats(*args)
        for _dom, stats in records:
            stats["cpu.time"] = 42
        return records

    monkeypatch.setattr(conn, "getAllDomainStats", moving)
    fourth = await backend.poll()
    assert asked
    assert [vm.cpu_time_ns for vm in fourth.vms] == [42] * len(second.vms)


async def test_a_restart_or_a_rename_between_polls_is_seen(
    make_backend: MakeBackend,
    scratch_domain: Callable[..., tuple[str, str]],
    libvirt_conn: Any,
) -> None:
    """The test driver's counters do not move, so a restarted domain's stats can be what
    they were: the new ID (and a new name) must still be read."""
    name, uuid = scratch_domain(start=True)
    backend = make_backend(DEFAULT_URI)
    backend.set_event_callback(lambda _uuid: None)
    before = contract.vm_named(await backend.poll(), name)
    assert contract.vm_named(await backend.poll(), name) is before  # nothing moved

    async def polled_until(check: Callable[[Vm], bool]) -> Vm:
        # The events that tell the backend reach it on libvirt's event thread, a little
        # after the change: poll until they have (without them it would never see it).
        async with asyncio.timeout(5):
            while True:
                vm = {vm.uuid: vm for vm in (await backend.poll()).vms}[uuid]
                if check(vm):
                    return vm
                await asyncio.sleep(0.02)

    dom = libvirt_conn.lookupByUUIDString(uuid)
    dom.destroy()
    dom.create()
    restarted = await polled_until(lambda vm: vm.domain_id != before.domain_id)
    assert restarted.domain_id is not None and restarted.state is VmState.RUNNING

    dom.destroy()
    dom.rename(f"{name}-renamed", 0)
    renamed = await polled_until(lambda vm: vm.name == f"{name}-renamed")
    assert renamed.state is VmState.SHUTOFF


async def test_opens_of_far_hosts_do_not_queue_behind_one_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 13: a qemu+ssh open costs several round trips. Eight hosts whose opens take
    # 0.2 s each, two working slots: the opens run at once (each on its connection's
    # worker), not two by two behind the working slots as before.
    from ovmtui.services.poller import EstatePoller, PolledHost

    real_open = libvirt.open
    lock = threading.Lock()
    opening = [0, 0]  # now, most at once

    def slow_open(uri: str) -> Any:
        assert uri.startswith("qemu+ssh://far")  # far hosts, played by the test driver
        with lock:
            opening[0] += 1
            opening[1] = max(opening[1], opening[0])
        try:
            time.sleep(0.2)  # the network: libvirt releases the GIL
            return real_open(DEFAULT_URI)
        finally:
            with lock:
                opening[0] -= 1

    monkeypatch.setattr(libvirt, "open", slow_open)
    backends = [
        LibvirtBackend(HostKey("p", f"far{i}"), f"qemu+ssh://far{i}/system") for i in range(8)
    ]
    poller = EstatePoller([PolledHost(b) for b in backends], max_concurrency=2)
    try:
        snap = await poller.poll_once()
    finally:
        await poller.close()
    assert all(h.reachable for h in snap.hosts), [h.error for h in snap.hosts]
    assert opening[1] == 8
