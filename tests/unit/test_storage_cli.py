"""``ovmtui storage`` and ``ovmtui resource`` against a fake dom0 whose shared storage is a
real folder, with a real repository: the JSON shape of the issue, register (one, all, and
the refusals of the rules), approve on the record, delete refused while used, the missing
flag, and the exit statuses (0 done, 1 refused by a rule, 2 bad input)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ovmtui.cli import _main
from ovmtui.config import load_estate
from ovmtui.headless_storage import resource_report, storage_report
from ovmtui.store import Repository
from tests.backend.test_xen_storage import make_iso, make_layout, nothing_ran
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture


def estate_file(tmp_path: Path, xen: Any, root: Path) -> Path:
    path = tmp_path / "estate.toml"
    path.write_text(
        f'[[pools]]\nname = "p1"\nshared_storage = "{root}"\n'
        f'  [[pools.hosts]]\n  name = "ovs01"\n  ssh = "{xen.ssh_target}"\n'
        f'  identity = "{xen.client_key}"\n  known_hosts = "{xen.known_hosts}"\n'
        f'  toolstack = "xm"\n  roles = ["utility"]\n'
    )
    return path


@pytest.fixture
def storage(fake_xen_servers: Any, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "OVS"
    make_layout(root)
    (root / "seed_pool" / "broken").mkdir()
    (root / "seed_pool" / "broken" / "vm.cfg").write_text("disk = ['unterminated\n")
    holder = make_domain(
        "db01",
        uuid="0004fb00-0006-0000-aaaa-000000000001",
        domid=3,
        disks=[{"uname": f"file:{root}/sharedDisk/quorum.img", "dev": "xvdb", "mode": "w!"}],
    )
    server = fake_xen_servers([HostSpec("ovs01", toolstack="xm", domains=[holder])])
    return estate_file(tmp_path, server.hosts[0], root), root


async def test_list_register_approve_delete(storage: tuple[Path, Path], tmp_path: Path) -> None:
    path, root = storage
    config = load_estate(path)
    repo = tmp_path / "r.sqlite"
    out = io.StringIO()
    assert await storage_report(config, repo, None, out, as_json=True) == 0
    shown = json.loads(out.getvalue())
    assert set(shown) == {"pool", "entries"} and shown["pool"] == "p1"
    assert {tuple(sorted(e)) for e in shown["entries"]} == {
        ("kind", "name", "path", "size_bytes", "status", "used_by")
    }
    quorum = next(e for e in shown["entries"] if e["name"] == "quorum.img")
    assert quorum == {
        "kind": "shared-disk",
        "name": "quorum.img",
        "path": f"{root}/sharedDisk/quorum.img",
        "size_bytes": 1 << 20,
        "status": "unregistered",
        "used_by": [{"vm": "db01", "mode": "rw", "state": "blocked"}],
    }

    out = io.StringIO()
    code = await resource_report(config, repo, "register", [], out, pool=None)
    lines = sorted(out.getvalue().splitlines())
    assert code == 1  # some were refused, each saying why
    assert f"registered {root}/seed_pool/OVM EL5 64 (pending approval)" in lines
    assert f"registered {root}/iso_pool/el5 (pending approval)" in lines
    assert f"registered {root}/sharedDisk/quorum.img (pending approval)" in lines
    assert any(
        line.startswith(f"refused {root}/seed_pool/broken: broken: its vm.cfg does not parse")
        for line in lines
    )
    assert f"refused {root}/iso_pool/notes.txt: notes.txt: not an ISO image " in " ".join(
        lines
    ) or any("notes.txt: not an ISO image" in line for line in lines)

    out = io.StringIO()
    assert await resource_report(config, repo, "approve", ["el5"], out, pool=None) == 0
    out = io.StringIO()
    assert await resource_report(config, repo, "approve", ["el5"], out, pool=None) == 1
    assert "already approved" in out.getvalue()

    out = io.StringIO()
    assert await resource_report(config, repo, "delete", ["quorum.img"], out, pool=None) == 1
    assert out.getvalue() == "refused: quorum.img: in use by db01 (rw, blocked)\n"
    assert (root / "sharedDisk" / "quorum.img").exists()

    out = io.StringIO()
    code = await resource_report(
        config, repo, "delete", ["x; touch pwned"], out, pool=None, confirm=lambda _q: True
    )
    assert code == 0 and not (root / "sharedDisk" / "x; touch pwned").exists()
    assert nothing_ran(root)

    # A file that leaves the storage behind ovmtui's back: flagged, never dropped.
    (root / "iso_pool" / "el5" / "el5.iso").unlink()
    (root / "iso_pool" / "el5").rmdir()
    out = io.StringIO()
    assert await storage_report(config, repo, None, out, as_json=False) == 0
    assert "approved (missing)" in out.getvalue()
    make_iso(root / "iso_pool" / "el5" / "el5.iso")

    async with await Repository.open(repo, read_only=True) as opened:
        resources = {r.name: r for r in await opened.resources("p1")}
        entries = await opened.journal_entries()
    assert resources["el5"].approved_by is not None and resources["el5"].missing
    operations = [(e.operation, e.ok) for e in entries if e.operation.endswith("resource")]
    assert ("approve-resource", True) in operations
    assert ("approve-resource", False) in operations  # the refusal is on the record too
    assert ("delete-resource", False) in operations and ("delete-resource", True) in operations


def test_exit_statuses(storage: tuple[Path, Path], tmp_path: Path, capsys: Any) -> None:
    path, _root = storage
    base = ["--config", str(path), "--repository", str(tmp_path / "r.sqlite")]
    assert _main([*base, "resource", "approve", "nope"]) == 2  # bad input
    assert "No such resource" in capsys.readouterr().err
    assert _main([*base, "resource", "register"]) == 2  # neither PATH nor --all
    assert _main([*base, "storage", "--pool", "elsewhere"]) == 2
    assert _main([*base, "resource", "register", "web01"]) == 1  # a VM's folder: a rule
    assert "a VM's folder is the VM itself" in capsys.readouterr().out
    assert _main([*base, "resource", "approve", "quorum.img"]) == 1  # not registered
    assert _main([*base, "--read-only", "resource", "approve", "quorum.img"]) == 1
