"""The Xen-over-SSH backend against a real OpenSSH sshd serving fake xm/xl hosts."""

from __future__ import annotations

import asyncio
import time
import uuid as uuid_module
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.xen_ssh import MAX_CHANNELS, XenSshBackend
from ovmtui.errors import HostTimeout, HostUnreachable, VmNotFound
from ovmtui.model import HostKey, Vm, VmAction, VmState
from tests.backend import contract
from tests.sshfake.fixtures import fake_xen_estate, fake_xen_host, fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec
from tests.sshfake.xenstate import generate_domains, make_domain

__all__ = ["fake_xen_estate", "fake_xen_host", "fake_xen_servers"]  # pytest fixtures

PWNED_NAME = "x; touch /tmp/ovmtui-pwned-{}"


def backend_for(host: FakeXenHost, **options: Any) -> XenSshBackend:
    options.setdefault("identity", str(host.client_key))
    options.setdefault("known_hosts", str(host.known_hosts))
    return XenSshBackend(HostKey("xen", host.name), host.ssh_target, **options)


@pytest.fixture
async def backend(fake_xen_host: FakeXenHost) -> Any:
    b = backend_for(fake_xen_host, poll_timeout_s=5.0)
    yield b
    await b.close()


def vms_by_name(vms: tuple[Vm, ...]) -> dict[str, Vm]:
    return {vm.name: vm for vm in vms}


async def test_poll_reads_what_the_host_says(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    poll = await contract.check_poll_shape(backend)
    domains = {d["name"]: d for d in fake_xen_host.domains() if d["name"] != "Domain-0"}
    vms = vms_by_name(poll.vms)
    assert set(vms) == set(domains)  # Domain-0 is the host, not a VM
    for name, dom in domains.items():
        vm = vms[name]
        assert vm.uuid == dom["uuid"]
        assert vm.memory_mib == dom["memory"] and vm.vcpus == dom["vcpus"]
        if dom["state"] == "":
            assert vm.state is VmState.SHUTOFF and vm.domain_id is None
        else:
            assert vm.domain_id == dom["domid"]
            assert vm.state is not VmState.SHUTOFF
        assert [d.target for d in vm.disks] == [d["dev"] for d in dom["disks"]]
        assert [n.mac for n in vm.nics] == [v["mac"] for v in dom["vifs"]]
        assert vm.os_type == ("hvm" if dom["type"] == "HVM" else "xen")
    info = fake_xen_host.state()["info"]
    assert poll.facts.hypervisor == "Xen"
    assert poll.facts.memory_mib == info["total_memory"]
    assert poll.facts.cpus == info["nr_cpus"]
    assert poll.warnings == ()
    assert backend.toolstack == "xm"  # both installed and xend answers: xm
    # One command per poll on the same connection; after the first, the short table.
    fake_xen_host.clear_argv_log()
    await backend.poll()
    lister = backend._lister  # the long-lived `while read; do xm list; done` session
    for _ in range(3):
        await backend.poll()
    assert lister is not None and backend._lister is lister
    assert backend.connections_opened == 1
    assert fake_xen_host.argv_log() == [["xm", "list"]] * 4


async def test_quick_polls_follow_changes_and_full_polls_catch_the_rest(
    fake_xen_host: FakeXenHost,
) -> None:
    from ovmtui.backend.xen_ssh import FULL_POLL_AFTER_S

    now = [1000.0]
    backend = backend_for(fake_xen_host, poll_timeout_s=5.0, clock=lambda: now[0])
    try:
        await _quick_and_full_polls(backend, fake_xen_host, now, FULL_POLL_AFTER_S)
    finally:
        await backend.close()


async def _quick_and_full_polls(
    backend: XenSshBackend, fake_xen_host: FakeXenHost, now: list[float], full_after_s: float
) -> None:
    first = vms_by_name((await backend.poll()).vms)
    fake_xen_host.clear_argv_log()
    # Paused behind our back: the table shows it, no full poll needed.
    fake_xen_host.update(lambda state: _set_state(state, "web01", "--p---"))
    quick = vms_by_name((await backend.poll()).vms)
    assert quick["web01"].state is VmState.PAUSED
    assert quick["web01"].disks == first["web01"].disks  # the long listing's facts kept
    assert quick["web01"].uuid == first["web01"].uuid
    assert fake_xen_host.argv_log() == [["xm", "list"]]
    # A new domain id (destroyed and started again) is something only a full poll reads.
    fake_xen_host.clear_argv_log()
    fake_xen_host.update(lambda state: _set_domid(state, "web01", 999))
    again = vms_by_name((await backend.poll()).vms)
    assert again["web01"].domain_id == 999
    assert fake_xen_host.argv_log() == [["xm", "list"], ["xm", "info"], ["xm", "list", "-l"]]
    # And a full poll comes about every FULL_POLL_AFTER_S (±25 %, to keep hosts apart)
    # whatever happens, however often the host is polled.
    fake_xen_host.clear_argv_log()
    full_at = []
    for step in range(1, 41):
        now[0] += full_after_s / 10
        await backend.poll()
        if fake_xen_host.argv_log()[-1] == ["xm", "list", "-l"]:
            full_at.append(step)
    assert 2 <= len(full_at) <= 5
    gaps = [b - a for a, b in zip([0, *full_at], full_at, strict=False)]
    assert all(7 <= gap <= 13 for gap in gaps), gaps  # 0.75-1.25 x, in tenths


async def test_quick_polls_carry_the_cpu_percent_and_reuse_what_did_not_move(
    fake_xen_servers: Any,
) -> None:
    from ovmtui.services.poller import EstatePoller, PolledHost
    from tests.sshfake.xenstate import _cpu_rate

    host = fake_xen_servers(["xen01"], cpu_steps=8, domains_per_host=12).hosts[0]
    rates = {d["name"]: _cpu_rate(d) for d in host.domains() if d["name"] != "Domain-0"}
    backend = backend_for(host, poll_timeout_s=5.0)
    answers: list[tuple[Vm, ...]] = []
    poll = backend.poll

    async def recorded() -> Any:
        result = await poll()
        answers.append(result.vms)
        return result

    backend.poll = recorded  # type: ignore[method-assign]
    poller = EstatePoller([PolledHost(backend)])
    try:
        for _ in range(4):  # a full poll, then quick ones
            snapshot = await poller.poll_once()
            await asyncio.sleep(0.05)
    finally:
        await poller.close()
    last, before = vms_by_name(answers[-1]), vms_by_name(answers[-2])
    shown = vms_by_name(snapshot.hosts[0].vms)
    for name, vm in last.items():
        # The backend's CPU % is the poller's: it shows the backend's very objects.
        assert shown[name] is vm, name
        if not vm.state.is_active:
            assert vm.cpu_percent is None and vm is before[name], name
        elif rates[name] >= 0.1:
            assert vm.cpu_percent is not None and vm.cpu_percent > 0, name
        elif rates[name] == 0.0:
            assert vm.cpu_percent == 0.0 and vm is before[name], name  # idle: not rebuilt
    assert any(rate >= 0.1 for rate in rates.values())
    assert any(rate == 0.0 and last[name].state.is_active for name, rate in rates.items())


def _set_state(state: dict[str, Any], name: str, flags: str) -> None:
    for dom in state["domains"]:
        if dom["name"] == name:
            dom["state"] = flags


def _set_domid(state: dict[str, Any], name: str, domid: int) -> None:
    for dom in state["domains"]:
        if dom["name"] == name:
            dom["domid"] = domid


async def test_toolstack_detected_per_host(fake_xen_estate: Any) -> None:
    seen = {}
    for host in fake_xen_estate.hosts:
        b = backend_for(host)
        try:
            poll = await b.poll()
            seen[host.name] = b.toolstack
            running = [vm for vm in poll.vms if vm.state is not VmState.SHUTOFF]
            assert running, host.name
            assert all(vm.state is not VmState.UNKNOWN for vm in running), host.name
        finally:
            await b.close()
    assert seen == {"xen01": "xm", "xen02": "xm", "xen03": "xl"}
    xl_log = fake_xen_estate.host("xen03").argv_log()
    assert ["xl", "list", "-l"] in xl_log and ["xl", "list"] in xl_log


async def test_forced_toolstack_is_used(fake_xen_host: FakeXenHost) -> None:
    b = backend_for(fake_xen_host, toolstack="xl")
    try:
        await b.poll()
    finally:
        await b.close()
    assert {argv[0] for argv in fake_xen_host.argv_log()} == {"xl"}


async def test_lifecycle_and_exact_commands(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    await contract.check_lifecycle(backend, "web01")
    web01 = vms_by_name((await backend.poll()).vms)["web01"]
    fake_xen_host.clear_argv_log()
    await backend.act(web01, VmAction.REBOOT)
    await backend.act(web01, VmAction.FORCE_OFF)
    assert fake_xen_host.argv_log() == [["xm", "reboot", "web01"], ["xm", "destroy", "web01"]]
    assert vms_by_name((await backend.poll()).vms).get("web01") is None or (
        vms_by_name((await backend.poll()).vms)["web01"].state is VmState.SHUTOFF
    )
    assert backend.command_for(web01, VmAction.RESUME) == "xm unpause web01"


async def test_a_hostile_vm_name_runs_nothing(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    with_storage = backend_for(fake_xen_host, shared_storage="/OVS")
    await contract.check_command_quoting(with_storage)  # start needs a vm.cfg path
    marker = Path(f"/tmp/ovmtui-pwned-{uuid_module.uuid4().hex}")
    name = f"x; touch {marker}"
    ghost = Vm(str(uuid_module.uuid4()), name, VmState.RUNNING)
    await backend.poll()
    fake_xen_host.clear_argv_log()
    for action in (VmAction.FORCE_OFF, VmAction.PAUSE, VmAction.SHUTDOWN):
        with pytest.raises(VmNotFound):
            await backend.act(ghost, action)
    assert not await asyncio.to_thread(marker.exists)
    assert [argv[2] for argv in fake_xen_host.argv_log()] == [name] * 3


async def test_unknown_vm_is_vm_not_found(backend: XenSshBackend) -> None:
    await contract.check_unknown_vm(backend)


async def test_unknown_and_changed_host_keys_are_refused_with_the_fingerprint(
    fake_xen_host: FakeXenHost, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    error = await contract.check_unreachable(
        lambda: backend_for(fake_xen_host, known_hosts=str(empty))
    )
    assert "unknown host key ssh-ed25519 SHA256:" in error.message
    assert f"ssh-keyscan -p {fake_xen_host.port} 127.0.0.1 >> {empty}" in error.message
    assert error.title == "Host key not trusted"
    error = await contract.check_unreachable(
        lambda: backend_for(fake_xen_host, known_hosts=str(fake_xen_host.wrong_known_hosts))
    )
    assert "CHANGED" in error.message and "SHA256:" in error.message
    assert f"ssh-keygen -R '[127.0.0.1]:{fake_xen_host.port}'" in error.message
    assert fake_xen_host.argv_log() == []  # nothing ran on a host we could not trust
    missing = tmp_path / "nowhere" / "known_hosts"
    error = await contract.check_unreachable(
        lambda: backend_for(fake_xen_host, known_hosts=str(missing))
    )
    assert "does not exist" in error.message


async def test_a_wrong_user_key_is_refused(fake_xen_host: FakeXenHost) -> None:
    error = await contract.check_unreachable(
        lambda: backend_for(fake_xen_host, identity=str(fake_xen_host.wrong_client_key))
    )
    assert "permission denied" in error.message
    assert error.title == "SSH login refused"


async def test_nothing_listening_is_unreachable(fake_xen_host: FakeXenHost) -> None:
    def dead() -> XenSshBackend:
        b = backend_for(fake_xen_host)
        return XenSshBackend(
            b.host,
            "root@127.0.0.1:1",
            identity=str(fake_xen_host.client_key),
            known_hosts=str(fake_xen_host.known_hosts),
        )

    error = await contract.check_unreachable(dead)
    assert "connection refused" in error.message


async def test_a_host_that_stops_answering_mid_poll_times_out_then_recovers(
    fake_xen_host: FakeXenHost,
) -> None:
    b = backend_for(fake_xen_host, poll_timeout_s=1.0, connect_timeout_s=1.0)
    try:
        await b.poll()
        fake_xen_host.stop()  # TCP stays open, nothing answers
        started = time.monotonic()
        with pytest.raises(HostTimeout):
            await b.poll()
        assert time.monotonic() - started < 3.0
        with pytest.raises(HostUnreachable):  # a new connection gets no banner either
            await b.poll()
        fake_xen_host.cont()
        poll = await b.poll()
        assert poll.vms
        assert b.connections_opened == 2
    finally:
        fake_xen_host.cont()
        await b.close()


async def test_a_command_that_hangs_times_out_and_the_host_comes_back(
    fake_xen_host: FakeXenHost,
) -> None:
    b = backend_for(fake_xen_host, poll_timeout_s=1.0)
    try:
        await b.poll()
        fake_xen_host.set_fault("hang")
        with pytest.raises(HostTimeout, match="did not answer within 1 s"):
            await b.poll()
        fake_xen_host.set_fault(None)
        assert (await b.poll()).vms
    finally:
        await b.close()


async def test_malformed_output_keeps_what_it_can_and_says_where(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    full = await backend.poll()
    fake_xen_host.set_fault("malformed")
    poll = await backend.poll()
    assert poll.warnings, "the unreadable part must be reported"
    assert all(w.startswith(f"{fake_xen_host.name}: xm ") for w in poll.warnings)
    assert any("line" in w for w in poll.warnings)
    # What it kept is true: every VM it read is one the host has, with the same facts.
    good = {vm.uuid: vm for vm in full.vms}
    assert poll.vms and len(poll.vms) <= len(full.vms)
    for vm in poll.vms:
        assert vm.uuid in good and vm.name == good[vm.uuid].name


async def test_a_failing_toolstack_is_a_readable_error(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    web01 = vms_by_name((await backend.poll()).vms)["web01"]
    fake_xen_host.set_fault("error")
    with pytest.raises(Exception) as caught:
        await backend.act(web01, VmAction.PAUSE)
    assert "Hotplug scripts not working" in str(caught.value)
    assert "Usage" not in str(caught.value)
    # A listing that fails (xend down) fails the poll: an empty host would be a lie.
    with pytest.raises(HostUnreachable) as failed:
        await backend.poll()
    assert failed.value.title == "Toolstack failed"
    assert "`xm list" in failed.value.message and "Hotplug" in failed.value.message


async def test_start_from_vm_cfg_in_shared_storage(fake_xen_servers: Any, tmp_path: Path) -> None:
    storage = tmp_path / "OVS"
    config = storage / "running_pool" / "vm 7; x" / "vm.cfg"  # a name that needs quoting
    config.parent.mkdir(parents=True)
    uuid = "0004fb00-0006-0000-aaaa-000000000007"
    config.write_text(
        f"name = 'vm7'\nuuid = '{uuid}'\nmemory = 768\nvcpus = 2\n"
        "disk = ['file:/OVS/running_pool/vm7/System.img,xvda,w']\n"
        "vif = ['mac=00:16:3e:00:00:07,bridge=xenbr0']\n"
    )
    domains = [
        *generate_domains(3, seed=1),
        make_domain("vm7", uuid=uuid, domid=None, state="", config=str(config), managed=False),
    ]
    server = fake_xen_servers([HostSpec("xen09", toolstack="xm", domains=domains)])
    host = server.hosts[0]
    b = backend_for(host, shared_storage=str(storage))
    try:
        vm7 = vms_by_name((await b.poll()).vms)["vm7"]
        assert vm7.state is VmState.SHUTOFF and vm7.config_path == str(config)
        assert vm7.memory_mib == 768 and vm7.vcpus == 2
        assert (await b.definition(vm7)).startswith("name = 'vm7'")
        host.clear_argv_log()
        await b.act(vm7, VmAction.START)
        assert host.argv_log() == [["xm", "create", str(config)]]
        started = vms_by_name((await b.poll()).vms)["vm7"]
        assert started.state is not VmState.SHUTOFF and started.config_path == str(config)
    finally:
        await b.close()


async def test_concurrent_commands_stay_within_the_servers_session_limit(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    """OpenSSH refuses an 11th session: 40 commands at once must all succeed."""
    web01 = vms_by_name((await backend.poll()).vms)["web01"]
    texts = await asyncio.gather(*(backend.poll() for _ in range(20)))
    assert all(poll.vms for poll in texts)
    await asyncio.gather(*(backend.act(web01, a) for a in [VmAction.PAUSE, VmAction.RESUME] * 10))
    assert backend.connections_opened == 1
    assert MAX_CHANNELS <= 8


async def test_close_is_idempotent(backend: XenSshBackend) -> None:
    await contract.check_close_idempotent(backend)


async def test_through_a_jump_host(fake_xen_servers: Any) -> None:
    server = fake_xen_servers(["bastion", "xen05"])
    bastion, target = server.hosts
    b = backend_for(target, jump=bastion.ssh_target)
    try:
        poll = await b.poll()
        assert poll.vms and poll.facts.hostname == "xen05"  # the target answered, not the jump
        assert b.connections_opened == 2  # the jump host's, and the one tunnelled through it
        await b.poll()
        assert b.connections_opened == 2
    finally:
        await b.close()
    # The jump host's key is verified too: an unknown one refuses, naming the jump host.
    b = backend_for(target, jump=bastion.ssh_target, known_hosts=str(target.wrong_known_hosts))
    try:
        with pytest.raises(HostUnreachable, match="jump host"):
            await b.poll()
    finally:
        await b.close()


async def test_key_from_the_ssh_agent(
    fake_xen_host: FakeXenHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No identity in the estate file: the agent's key logs in (and none is written down)."""
    socket_path = tmp_path / "agent.sock"
    agent = await asyncio.create_subprocess_exec("ssh-agent", "-D", "-a", str(socket_path))
    try:
        for _ in range(100):
            if await asyncio.to_thread(socket_path.exists):
                break
            await asyncio.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(socket_path), "PATH": "/usr/bin:/bin"}
        add = await asyncio.create_subprocess_exec(
            "ssh-add", str(fake_xen_host.client_key), env=env, stderr=asyncio.subprocess.DEVNULL
        )
        assert await add.wait() == 0
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        monkeypatch.setenv("HOME", str(tmp_path))  # no default keys to fall back on
        b = XenSshBackend(
            HostKey("xen", fake_xen_host.name),
            fake_xen_host.ssh_target,
            known_hosts=str(fake_xen_host.known_hosts),
        )
        try:
            assert (await b.poll()).vms
        finally:
            await b.close()
    finally:
        agent.terminate()
        await agent.wait()


async def test_aes_gcm_is_preferred_and_an_old_server_still_connects(
    fake_xen_host: FakeXenHost, fake_xen_servers: Any
) -> None:
    # GCM costs the event loop a sixth of ChaCha20 per packet in asyncssh.
    backend = backend_for(fake_xen_host)
    try:
        await backend.poll()
        assert backend._conn is not None
        assert backend._conn.get_extra_info("send_cipher") == "aes128-gcm@openssh.com"
    finally:
        await backend.close()
    # A server from before GCM (OpenSSH < 6.2) negotiates what both sides know.
    (old,) = fake_xen_servers(["xen09"], sshd_options=["Ciphers aes128-ctr"]).hosts
    backend = backend_for(old)
    try:
        assert len((await backend.poll()).vms) == 6
        assert backend._conn is not None
        assert backend._conn.get_extra_info("send_cipher") == "aes128-ctr"
    finally:
        await backend.close()


async def test_far_hosts_connect_at_once_not_two_by_two(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    # Issue 13: twelve hosts 20 ms away (a delay proxy), two working slots. The connects
    # and first polls overlap: by the time the first host has answered, the proxy has
    # seen every host's connection open at once. Before, a poll held one of the two slots
    # for its connect too (released after 0.5 s): two at a time.
    from ovmtui.services.poller import EstatePoller, PolledHost
    from tests.sshfake.delayproxy import PROXY_ADDRESS, DelayProxy, known_hosts_for

    server = fake_xen_servers(hosts=12, ports_per_sshd=12, toolstack="xm")
    known = known_hosts_for(server.known_hosts, tmp_path / "known_hosts_proxy")
    async with DelayProxy([(h.address, h.port) for h in server.hosts], 0.01) as proxy:
        open_at_first_answer: list[int] = []

        class Watched(XenSshBackend):
            async def poll(self) -> Any:
                result = await super().poll()
                open_at_first_answer.append(proxy.open)
                return result

        backends = [
            Watched(
                HostKey("xen", h.name),
                f"{h.username}@{PROXY_ADDRESS}:{h.port}",
                identity=str(h.client_key),
                known_hosts=str(known),
            )
            for h in server.hosts
        ]
        poller = EstatePoller([PolledHost(b) for b in backends], max_concurrency=2)
        try:
            snap = await poller.poll_once()
        finally:
            await poller.close()
    assert all(h.reachable for h in snap.hosts), [h.error for h in snap.hosts]
    assert proxy.accepted == 12  # one connection per host
    assert open_at_first_answer[0] == 12, open_at_first_answer


def test_known_hosts_are_read_once_per_change_of_the_file(tmp_path: Path) -> None:
    # Parsed off the loop, once: not by asyncssh on the loop at every connect (issue 13).
    # An entry the operator adds (the ssh-keyscan the refusal suggests) is seen at once.
    import asyncssh

    from ovmtui.backend.xen_ssh import _known_hosts_of

    path = tmp_path / "known_hosts"
    assert _known_hosts_of(str(path)) is None
    keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(2)]
    lines = [
        f"[127.0.0.1]:{2200 + i} {k.export_public_key('openssh').decode().strip()}\n"
        for i, k in enumerate(keys)
    ]
    path.write_text(lines[0])
    first = _known_hosts_of(str(path))
    assert first is not None and _known_hosts_of(str(path)) is first
    with path.open("a") as f:
        f.write(lines[1])
    second = _known_hosts_of(str(path))
    assert second is not None and second is not first
    assert asyncssh.match_known_hosts(second, "127.0.0.1", "127.0.0.1", 2201)[0]
