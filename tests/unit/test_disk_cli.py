"""`ovmtui disk …` on a fake Xen dom0 behind a real sshd: exit 0 done, 1 refused by a rule
(named), 2 bad input; what it does is shown first and journaled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.backend.test_xen_ssh_disks import write_cfg
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec, SshdServer
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture

UUIDS = {
    "vm7": "0004fb00-0006-0000-aaaa-000000000007",
    "vm8": "0004fb00-0006-0000-aaaa-000000000008",
}


@pytest.fixture
def estate(fake_xen_servers: Callable[..., SshdServer], tmp_path: Path) -> Path:
    storage = tmp_path / "OVS"
    domains = []
    for name, uuid in UUIDS.items():
        config = write_cfg(storage, name, uuid)
        domains.append(
            make_domain(name, uuid=uuid, domid=None, state="", config=str(config), managed=False)
        )
    h = fake_xen_servers([HostSpec("xen-a", toolstack="xm", domains=domains)]).hosts[0]
    config = tmp_path / "estate.toml"
    config.write_text(
        f'[[pools]]\nname = "prod"\nshared_storage = "{storage}"\n'
        f'  [[pools.hosts]]\n  name = "xen-a"\n  ssh = "{h.ssh_target}"\n'
        f'  identity = "{h.client_key}"\n  known_hosts = "{h.known_hosts}"\n  roles = ["utility"]\n'
    )
    return config


def ovmtui(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ovmtui", "--config", str(config)]
    argv += ["--repository", str(config.parent / "r.sqlite"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=os.environ
    )


@pytest.mark.parametrize(
    "args",
    [
        ("disk", "create", "x; touch /tmp/pwned-cli", "10G"),
        ("disk", "create", "../etc", "10G"),
        ("disk", "create", "quorum", "10X"),
        ("disk", "attach", "quorum", "nosuchvm", "--yes"),
        ("disk", "delete", "quorum", "--pool", "nowhere", "--yes"),
    ],
)
def test_bad_input_exits_2(estate: Path, args: tuple[str, ...]) -> None:
    done = ovmtui(estate, *args)
    assert done.returncode == 2, done.stderr
    assert "bad input" in done.stderr
    assert not Path("/tmp/pwned-cli").exists()


def test_create_attach_refuse_detach_delete(estate: Path, tmp_path: Path) -> None:
    image = tmp_path / "OVS" / "sharedDisk" / "quorum.img"
    config = tmp_path / "OVS" / "running_pool" / "vm7" / "vm.cfg"
    original = config.read_text()
    # Off a terminal without --yes: shown, not done.
    done = ovmtui(estate, "disk", "create", "quorum", "16M")
    assert done.returncode == 1 and "--yes" in done.stderr and not image.exists()
    assert "qemu-img create -f raw" in done.stdout
    done = ovmtui(estate, "disk", "create", "quorum", "16M", "--yes")
    assert done.returncode == 0, done.stderr
    assert image.stat().st_size == 16 * 1024 * 1024
    done = ovmtui(estate, "disk", "attach", "quorum", "vm7", "--yes")
    assert done.returncode == 0, done.stderr
    assert "+disk = [" in done.stdout and "quorum.img,xvdb,w'" in done.stdout  # the diff, first
    assert "quorum.img,xvdb,w'" in config.read_text()
    done = ovmtui(estate, "disk", "attach", "quorum", "vm8", "--yes")
    assert done.returncode == 1
    assert "one-writer" in done.stderr and "vm7" in done.stderr
    done = ovmtui(estate, "disk", "delete", "quorum", "--yes")
    assert done.returncode == 1 and "not-held" in done.stderr and image.exists()
    done = ovmtui(estate, "disk", "detach", "quorum", "vm7", "--yes")
    assert done.returncode == 0, done.stderr
    assert config.read_text() == original
    assert len(list(config.parent.glob("vm.cfg.*.bak"))) == 2
    done = ovmtui(estate, "disk", "delete", "quorum", "--yes")
    assert done.returncode == 0, done.stderr
    assert not image.exists()
    audit = ovmtui(estate, "audit", "--json")
    records = [r for r in json.loads(audit.stdout) if str(r["operation"]).startswith("shared-disk")]
    assert [(r["operation"], r["ok"]) for r in records] == [
        ("shared-disk-create", True),
        ("shared-disk-attach", True),
        ("shared-disk-detach", True),
        ("shared-disk-delete", True),
    ]
