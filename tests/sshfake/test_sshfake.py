"""The fake Xen hosts behind a real sshd, driven the way the Xen backend will drive
them: asyncssh with host key verification on, ``conn.run("xm ...")`` exec requests."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh
import pytest

from tests.sshfake import xenstate
from tests.sshfake.sshd import SSHD, FakeXenHost, HostSpec, SshdServer

pytestmark = pytest.mark.skipif(not os.path.exists(SSHD), reason=f"{SSHD} not installed")


@asynccontextmanager
async def connect(
    host: FakeXenHost, **overrides: object
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    async with asyncssh.connect(**host.connect_kwargs(**overrides)) as conn:
        yield conn


class Ran:
    """A finished command with text output (asyncssh types stdout as bytes | str | None)."""

    def __init__(self, result: asyncssh.SSHCompletedProcess) -> None:
        self.exit_status = result.exit_status
        self.stdout = str(result.stdout or "")
        self.stderr = str(result.stderr or "")


async def run(conn: asyncssh.SSHClientConnection, command: str, *, check: bool = False) -> Ran:
    return Ran(await conn.run(command, check=check))


def row(listing: str, name: str) -> list[str]:
    """The whitespace-split row of ``name`` in an ``xm list``/``xl list`` table."""
    for line in listing.splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return fields
    raise AssertionError(f"{name} not in:\n{listing}")


def leftovers(pids: set[int]) -> list[int]:
    """Those of ``pids`` still in /proc, zombies included."""
    return sorted(p for p in pids if os.path.exists(f"/proc/{p}"))


def exists(path: Path) -> bool:
    # A stat is harmless in an async test, but ASYNC240 flags pathlib calls made there.
    return path.exists()


# --------------------------------------------------------------------- reaching it


async def test_exec_requests_find_the_fakes_first_on_path(fake_xen_host: FakeXenHost) -> None:
    bin_dir = fake_xen_host.state_dir / "bin"
    async with connect(fake_xen_host) as conn:
        result = await run(conn, 'command -v xm; command -v xl; printf "%s\\n" "$PATH"', check=True)
    assert result.stdout == f"{bin_dir}/xm\n{bin_dir}/xl\n{bin_dir}:/usr/bin:/bin\n"


def test_openssh_client_verifies_the_host_and_finds_the_fakes(fake_xen_host: FakeXenHost) -> None:
    done = subprocess.run(
        fake_xen_host.ssh_argv("command -v xm"), capture_output=True, text=True, timeout=20
    )
    assert (done.returncode, done.stdout) == (0, f"{fake_xen_host.state_dir}/bin/xm\n"), done.stderr


async def test_wrong_known_hosts_is_a_host_key_error(fake_xen_host: FakeXenHost) -> None:
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with connect(fake_xen_host, known_hosts=str(fake_xen_host.wrong_known_hosts)):
            pass


async def test_wrong_user_key_is_permission_denied(fake_xen_host: FakeXenHost) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(fake_xen_host, client_keys=[str(fake_xen_host.wrong_client_key)]):
            pass


async def test_eleventh_concurrent_channel_is_refused(fake_xen_host: FakeXenHost) -> None:
    async with connect(fake_xen_host) as conn:
        # `cat` holds its session open until stdin closes.
        sessions = [await conn.create_process("cat") for _ in range(10)]
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.create_process("cat")
        for process in sessions:
            process.stdin.write_eof()
        await asyncio.gather(*(p.wait() for p in sessions))
        assert (await run(conn, "xm list")).exit_status == 0


# -------------------------------------------------------------- what the fakes say


async def test_xm_list_long_prints_the_state(fake_xen_host: FakeXenHost) -> None:
    async with connect(fake_xen_host) as conn:
        sxp = (await run(conn, "xm list -l", check=True)).stdout
        table = (await run(conn, "xm list", check=True)).stdout
        xl_json = (await run(conn, "xl list -l", check=True)).stdout
    state = fake_xen_host.state()
    assert sxp == xenstate.render_xm_list_long(state)
    assert sxp.count("(domain\n") == 1 + len(state["domains"])  # all managed + Domain-0
    for dom in state["domains"]:
        assert f"    (name {dom['name']})\n" in sxp
        assert f"    (uuid {dom['uuid']})\n" in sxp
        fields = row(table, dom["name"])
        if dom["domid"] is None:
            # xend leaves ID and State blank for a shut-off managed domain.
            assert fields == [dom["name"], str(dom["memory"]), str(dom["vcpus"]), "0.0"]
        else:
            expected = [str(dom["domid"]), str(dom["memory"]), str(dom["vcpus"]), dom["state"]]
            assert fields[1:5] == expected
    running = {d["name"]: d["domid"] for d in state["domains"] if d["domid"] is not None}
    parsed = json.loads(xl_json)
    assert {e["config"]["c_info"]["name"]: e["domid"] for e in parsed} == running


async def test_destroy_changes_the_next_list(fake_xen_host: FakeXenHost) -> None:
    async with connect(fake_xen_host) as conn:
        before = (await run(conn, "xm list", check=True)).stdout
        assert row(before, "web01")[4] == "-b----"
        destroyed = await run(conn, "xm destroy web01")
        after = (await run(conn, "xm list", check=True)).stdout
        xl_after = (await run(conn, "xl list", check=True)).stdout
    assert (destroyed.exit_status, destroyed.stdout, destroyed.stderr) == (0, "", "")
    assert len(row(after, "web01")) == 4  # blank ID and State now
    assert "web01" not in xl_after
    assert fake_xen_host.domain("web01")["domid"] is None
    assert fake_xen_host.argv_log()[-3:] == [
        ["xm", "destroy", "web01"],
        ["xm", "list"],
        ["xl", "list"],
    ]


async def test_cpu_steps_move_running_domains_cpu_time(
    fake_xen_servers: Callable[..., SshdServer],
) -> None:
    server = fake_xen_servers(["xen01"], cpu_steps=3, domains_per_host=12)
    host = server.hosts[0]
    state = host.state()
    rates = {d["name"]: xenstate._cpu_rate(d) for d in state["domains"]}
    moving = [name for name, rate in rates.items() if rate >= 0.1]
    still = [d["name"] for d in state["domains"] if rates[d["name"]] == 0.0]
    assert moving and still  # the generated estate has both kinds
    async with connect(host) as conn:
        tables = [(await run(conn, f"{tool} list", check=True)).stdout for tool in ("xm",) * 4]
        xl = [(await run(conn, "xl list", check=True)).stdout for _ in range(2)]
        await run(conn, f"xm destroy {moving[0]}", check=True)
        after = (await run(conn, "xm list", check=True)).stdout

    def cpu(table: str, name: str) -> float:
        return float(row(table, name)[-1])

    for name in moving:
        steps = [cpu(table, name) for table in tables]
        # Rendering 0, 1, 2, then 0 again: a fourth poll wraps to the first.
        assert steps[0] < steps[1] < steps[2] and steps[3] == steps[0], (name, steps)
        assert abs(steps[1] - steps[0] - rates[name]) < 0.11
    for name in still:
        assert len({cpu(table, name) for table in tables}) == 1
    if any(name in xl[0] for name in moving):
        assert xl[0] != xl[1]
    # A mutation re-renders every step from the new state: the destroyed domain is
    # shut off (blank ID and State) in whichever rendering comes next.
    assert len(row(after, moving[0])) == 4


async def test_argv_is_logged_exactly_and_never_evaluated(fake_xen_host: FakeXenHost) -> None:
    marker = Path(f"/tmp/pwned-{secrets.token_hex(8)}")
    evil = f"x; touch {marker}"
    odd = ["", " lead", "tab\there", "new\nline", "q'uo\"te", f"$(touch {marker})", "ünï", "-l"]
    async with connect(fake_xen_host) as conn:
        xm = await run(conn, f"xm destroy {shlex.quote(evil)}")
        xl = await run(conn, f"xl destroy {shlex.quote(evil)}")
        await run(conn, shlex.join(["xm", "list", *odd]))
    assert (xm.exit_status, xm.stdout, xm.stderr) == (
        1,
        "",
        f"Error: Domain '{evil}' does not exist.\n",
    )
    assert (xl.exit_status, xl.stderr) == (1, f"{evil} is an invalid domain identifier (rc=-6)\n")
    assert fake_xen_host.argv_log() == [
        ["xm", "destroy", evil],
        ["xl", "destroy", evil],
        ["xm", "list", *odd],
    ]
    assert not exists(marker)


async def test_lifecycle_commands(fake_xen_host: FakeXenHost) -> None:
    fake_xen_host.set_shutdown_delay(0.3)
    cfg = fake_xen_host.domain("web01")["config"]
    async with connect(fake_xen_host) as conn:
        paused = await run(conn, "xm pause web01")
        assert row((await run(conn, "xm list")).stdout, "web01")[4] == "--p---"
        await run(conn, "xl unpause web01", check=True)
        assert row((await run(conn, "xl list")).stdout, "web01")[4] == "-b----"
        old_id = fake_xen_host.domain("web01")["domid"]
        await run(conn, "xm reboot web01", check=True)
        assert fake_xen_host.domain("web01")["domid"] not in (None, old_id)
        again = await run(conn, f"xm create {cfg}")
        await run(conn, "xm shutdown web01", check=True)
        assert row((await run(conn, "xm list")).stdout, "web01")[4] == "---s--"
        await asyncio.sleep(0.35)
        assert len(row((await run(conn, "xm list")).stdout, "web01")) == 4
        created = await run(conn, f"xm create {cfg}")
        xl_created = await run(conn, f"xl create {cfg}")
    assert (paused.exit_status, paused.stdout) == (0, "")
    assert again.exit_status == 1
    assert again.stderr.startswith("Error: VM name 'web01' already exists as domain ")
    domid = fake_xen_host.domain("web01")["domid"]
    assert created.stdout == f'Using config file "{cfg}".\nStarted domain web01 (id={domid})\n'
    assert fake_xen_host.domain("web01")["state"] == "r-----"
    assert xl_created.exit_status != 0
    assert xl_created.stderr.startswith(f"Parsing config from {cfg}\n")


async def test_toolstacks_differ_per_host(fake_xen_estate: SshdServer) -> None:
    for host in fake_xen_estate.hosts:
        async with connect(host) as conn:
            has_xm = (await run(conn, "command -v xm")).exit_status == 0
            has_xl = (await run(conn, "command -v xl")).exit_status == 0
            info = await run(conn, "xl info" if has_xl else "xm info", check=True)
            missing = await run(conn, "xm list" if not has_xm else "xl list")
        assert (has_xm, has_xl) == (host.toolstack in ("xm", "both"), host.toolstack != "xm")
        assert info.stdout.startswith(f"host                   : {host.name}\n")
        if host.toolstack != "both":
            assert missing.exit_status == 127


# ------------------------------------------------------------------ faults, stops


async def test_hang_fault_never_answers(fake_xen_host: FakeXenHost) -> None:
    async with connect(fake_xen_host) as conn:
        fake_xen_host.set_fault("hang")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.run("xm list"), 1.0)
        fake_xen_host.set_fault(None)
        assert (await run(conn, "xm list")).exit_status == 0
    assert fake_xen_host.argv_log() == [["xm", "list"], ["xm", "list"]]


async def test_error_and_malformed_faults(fake_xen_host: FakeXenHost) -> None:
    async with connect(fake_xen_host) as conn:
        good = (await run(conn, "xm list -l")).stdout
        fake_xen_host.set_fault("error")
        xm_error = await run(conn, "xm list -l")
        xl_error = await run(conn, "xl list")
        fake_xen_host.set_fault("malformed")
        garbled = await run(conn, "xm list -l")
        fake_xen_host.set_fault(None)
        assert (await run(conn, "xm list -l")).stdout == good
    assert xm_error.exit_status == 1
    assert xm_error.stderr.startswith("Error: ")
    assert xm_error.stdout.startswith("Usage: xm list [options] [Domain, ...]\n")
    assert xl_error.exit_status == 1
    assert xl_error.stdout.startswith("Usage: xl [-v] list")
    assert garbled.exit_status == 0
    assert garbled.stdout != good
    assert good.startswith(garbled.stdout.split("\n)) (domain")[0])


async def test_stop_freezes_the_host_and_cont_restores_it(fake_xen_host: FakeXenHost) -> None:
    async with connect(fake_xen_host) as conn:
        assert (await run(conn, "xm list")).exit_status == 0
        fake_xen_host.stop()
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.run("xm list"), 1.0)
            with pytest.raises(TimeoutError):  # TCP connects; no banner ever comes
                await asyncio.wait_for(asyncssh.connect(**fake_xen_host.connect_kwargs()), 0.5)
        finally:
            fake_xen_host.cont()
        result = await asyncio.wait_for(conn.run("xm list"), 10)
    assert result.exit_status == 0


async def test_hosts_can_share_one_sshd_by_port(
    fake_xen_servers: Callable[..., SshdServer],
) -> None:
    server = fake_xen_servers(17, ports_per_sshd=16, domains_per_host=2)
    assert len(server.sshd_pids) == 2  # sshd listens on at most 16 sockets
    for host in (server.hosts[0], server.hosts[15], server.hosts[16]):
        async with connect(host) as conn:
            info = await run(conn, "xm info", check=True)
        assert info.stdout.startswith(f"host                   : {host.name}\n")
    first, second = server.hosts[:2]
    async with connect(first) as frozen, connect(second) as live:
        first.stop()
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(run(frozen, "xm list"), 1.0)
            assert (await asyncio.wait_for(run(live, "xm list"), 5)).exit_status == 0
        finally:
            first.cont()
        assert (await asyncio.wait_for(run(frozen, "xm list"), 10)).exit_status == 0


async def test_teardown_leaves_no_process_and_no_file() -> None:
    server = SshdServer.start([HostSpec("xen01")])
    host = server.hosts[0]
    try:
        conn = await asyncssh.connect(**host.connect_kwargs())
        idle = await conn.create_process("cat")
        host.set_fault("hang")
        hung = await conn.create_process("xm list")
        for _ in range(100):  # until the hung helper runs
            if len(host.argv_log()) == 1 and len(server.all_pids()) >= 4:
                break
            await asyncio.sleep(0.02)
        host.stop()  # teardown must also cope with frozen processes
        pids = server.all_pids()
        assert len(pids) >= 4  # listener, connection, 2 sessions at least
    finally:
        server.close()
    assert leftovers(pids) == []
    assert not exists(server.root)
    conn.abort()
    del idle, hung


# ---------------------------------------------------------------- pure rendering


def test_table_headers_match_the_real_tools() -> None:
    state = xenstate.new_state("h", [])
    # Recorded: xm (Xen 3.2, Ubuntu 8.04) and xl (tabs in the header, Xen 4.x).
    assert xenstate.render_xm_list(state).splitlines()[0] == (
        "Name                                        ID   Mem VCPUs      State   Time(s)"
    )
    assert xenstate.render_xl_list(state).splitlines()[0] == (
        "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    )


def test_sxp_layout_matches_xend_prettyprint() -> None:
    # Domain-0 of a recorded Oracle VM 3.3 `xm list -l` (s-garbuzov/PyOVM tmp1.py).
    recorded = """(domain
    (domid 0)
    (cpu_weight 65535)
    (cpu_cap 0)
    (pool_name Pool-0)
    (bootloader '')
    (vcpus 2)
    (cpus ((0 1 2 3 4 5 6 7) (0 1 2 3 4 5 6 7)))
    (on_poweroff destroy)
    (on_crash restart)
    (uuid 00000000-0000-0000-0000-000000000000)
    (bootloader_args '')
    (name Domain-0)
    (on_reboot restart)
    (maxmem 1104)
    (memory 1098)
    (shadow_memory 0)
    (features '')
    (on_xend_start ignore)
    (on_xend_stop ignore)
    (cpu_time 105443.858723)
    (online_vcpus 2)
    (image
        (linux
            (kernel '')
            (expose_host_uuid 0)
            (superpages 0)
            (nomigrate 0)
            (tsc_mode 0)
        )
    )
    (status 2)
    (state r-----)
)
"""
    state = xenstate.new_state("h", [], info={"nr_cpus": 8})
    state["dom0"].update(memory=1098, maxmem=1104, vcpus=2, cpu_time=105443.858723)
    assert xenstate.sxp_pretty(xenstate.dom0_sxp(state)) == recorded
    long_uname = ["uname", "file:/OVS/Repositories/" + "0" * 32 + "/VirtualDisks/" + "1" * 36]
    assert xenstate.sxp_pretty(["vbd", long_uname], width=80).splitlines()[1:3] == [
        "    (uname",
        "        " + long_uname[1],
    ]
    assert xenstate.sxp_atom("x; touch /tmp/p") == "'x; touch /tmp/p'"
    assert xenstate.sxp_atom(1467059760.94) == "1467059760.94"
    assert xenstate.sxp_atom(2.0) == "2.0"


def test_argv_log_skips_a_record_still_being_written(tmp_path: Path) -> None:
    (tmp_path / xenstate.ARGV_LOG).write_bytes(b"2\0xm\0list\0003\0xm\0destroy\0we")
    assert xenstate.read_argv_log(tmp_path) == [["xm", "list"]]
