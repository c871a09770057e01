"""`ovmtui migrate` and `ovmtui evacuate` on two fake Xen dom0s behind a real sshd: the plan
with its checks, the move journaled, refusals with exit 2 and nothing journaled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec, SshdServer
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture

WEB = "/OVS/running_pool/web01"
WEB01 = make_domain(
    "web01",
    uuid="0004fb00-0006-0000-cccc-000000000001",
    domid=7,
    memory=1024,
    disks=[{"uname": f"file:{WEB}/System.img", "dev": "xvda", "mode": "w"}],
    vifs=[{"mac": "00:16:3e:00:00:01", "bridge": "xenbr0"}],
)
LOCAL = make_domain(
    "local01",
    uuid="0004fb00-0006-0000-cccc-000000000002",
    domid=8,
    memory=512,
    disks=[{"uname": "file:/var/lib/xen/local.img", "dev": "xvda", "mode": "w"}],
)


@pytest.fixture
def pool(
    fake_xen_servers: Callable[..., SshdServer], tmp_path: Path
) -> tuple[Path, FakeXenHost, FakeXenHost]:
    server = fake_xen_servers(
        [
            HostSpec("xen-a", address="127.0.0.2", domains=[WEB01, LOCAL], toolstack="xm"),
            HostSpec("xen-b", address="127.0.0.3", domains=[], toolstack="xm"),
        ]
    )
    a, b = server.hosts
    a.set_migrate_delay(0.1)
    for host in (a, b):
        host.set_paths([f"{WEB}/System.img", "/var/lib/xen/local.img"])
        host.set_bridges(["xenbr0"])
    hosts = "".join(
        f'\n  [[pools.hosts]]\n  name = "{h.name}"\n  ssh = "{h.ssh_target}"\n'
        f'  identity = "{h.client_key}"\n  known_hosts = "{h.known_hosts}"\n  toolstack = "xm"\n'
        for h in (a, b)
    )
    config = tmp_path / "estate.toml"
    config.write_text(f'[[pools]]\nname = "prod"\nshared_storage = "/OVS"\n{hosts}')
    return config, a, b


def ovmtui(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ovmtui", "--config", str(config)]
    argv += ["--repository", str(config.parent / "r.sqlite"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=os.environ
    )


def journal(config: Path) -> list[dict[str, object]]:
    done = ovmtui(config, "audit", "--json")
    assert done.returncode == 0, done.stderr
    return [r for r in json.loads(done.stdout) if r["operation"] == "migrate"]


def test_a_dry_run_shows_every_check_and_changes_nothing(
    pool: tuple[Path, FakeXenHost, FakeXenHost],
) -> None:
    config, a, _b = pool
    done = ovmtui(config, "migrate", "web01", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["vm"], plan["source"], plan["best"]) == ("web01", "xen-a", "xen-b")
    (target,) = plan["targets"]
    assert target["go"] is True
    assert [c["name"] for c in target["checks"]] == [
        "reachable",
        "hypervisor",
        "state",
        "memory",
        "cpu",
        "storage",
        "networks",
        "host-local",
    ]
    local = json.loads(ovmtui(config, "migrate", "local01", "--dry-run", "--json").stdout)
    (storage,) = [c for c in local["targets"][0]["checks"] if c["name"] == "storage"]
    assert storage["ok"] is False and "outside /OVS: /var/lib/xen/local.img" in storage["detail"]
    assert ovmtui(config, "migrate", "local01", "--dry-run").returncode == 1
    assert not [argv for argv in a.argv_log() if "migrate" in argv]
    assert journal(config) == []


def test_a_move_runs_checked_asked_and_journaled(
    pool: tuple[Path, FakeXenHost, FakeXenHost],
) -> None:
    config, a, b = pool
    done = ovmtui(config, "migrate", "web01", "xen-b", "--yes")
    assert done.returncode == 0, done.stderr
    assert "$ xm migrate --live web01 127.0.0.3" in done.stdout
    assert "web01: moved: on xen-b after" in done.stdout
    assert ["xm", "migrate", "--live", "web01", "127.0.0.3"] in a.argv_log()
    assert any(d["name"] == "web01" for d in b.domains())
    (record,) = journal(config)
    assert record["ok"] is True and record["host"] == "xen-a"
    assert "checks passed" in str(record["command"])


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("nosuch",), "no VM 'nosuch' in the estate"),
        (("web01", "xen-a"), "already runs on xen-a"),
        (("web01", "nohost"), "no host 'nohost'"),
        (("local01", "xen-b"), "no go for local01"),
    ],
)
def test_bad_input_exits_2_and_journals_nothing(
    pool: tuple[Path, FakeXenHost, FakeXenHost], args: tuple[str, ...], said: str
) -> None:
    config, a, _b = pool
    done = ovmtui(config, "migrate", *args, "--yes")
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert not [argv for argv in a.argv_log() if "migrate" in argv]
    assert journal(config) == []


def test_an_override_moves_a_no_go_vm_and_the_journal_keeps_why(
    pool: tuple[Path, FakeXenHost, FakeXenHost],
) -> None:
    config, _a, b = pool
    done = ovmtui(
        config, "migrate", "local01", "xen-b", "--yes", "--override", "disk synced by hand, T-9"
    )
    assert done.returncode == 0, done.stderr
    (record,) = journal(config)
    assert "OVERRIDE (disk synced by hand, T-9)" in str(record["command"])
    assert "storage" in str(record["command"])
    assert any(d["name"] == "local01" for d in b.domains())


def test_evacuate_plans_then_moves_every_running_vm(
    pool: tuple[Path, FakeXenHost, FakeXenHost],
) -> None:
    config, a, b = pool
    plan = json.loads(ovmtui(config, "evacuate", "xen-a", "--dry-run", "--json").stdout)
    moves = {m["vm"]: m["target"] for m in plan["moves"]}
    assert moves == {"web01": "xen-b", "local01": None}  # local01's disk cannot move
    assert plan["complete"] is False
    done = ovmtui(config, "evacuate", "xen-a", "--yes")
    assert done.returncode == 1, done.stderr  # partial: local01 stays
    assert "evacuated 1 of 2 VM(s) from xen-a" in done.stdout
    assert any(d["name"] == "web01" for d in b.domains())
    assert not any(d["name"] == "web01" for d in a.domains())


def test_a_host_of_another_pool_and_a_name_held_twice_exit_2(
    pool: tuple[Path, FakeXenHost, FakeXenHost],
) -> None:
    config, a, b = pool
    # The same two hosts, each a pool of its own: xen-b is no target for xen-a's VMs.
    text = config.read_text()
    first = text.index("[[pools.hosts]]")
    second = text.index("[[pools.hosts]]", first + 1)
    config.write_text(
        text[:second] + '[[pools]]\nname = "other"\nshared_storage = "/OVS"\n' + text[second:]
    )
    done = ovmtui(config, "migrate", "web01", "xen-b", "--yes")
    assert done.returncode == 2 and "not in web01's pool (prod)" in done.stderr, done.stderr
    # A name two hosts hold: which one is asked for.
    b.set_domains([make_domain("web01", uuid="0004fb00-0006-0000-cccc-0000000000ff", domid=3)])
    done = ovmtui(config, "migrate", "web01", "--yes")
    assert done.returncode == 2 and "2 VMs are named 'web01'" in done.stderr, done.stderr
    assert journal(config) == []
    assert not [argv for argv in a.argv_log() if "migrate" in argv]
