"""The storage screen of a pool holding 5,000 files: the layout read through the utility
host, folded with the library and the VMs, and the first picture drawn.

    .venv/bin/python bench/storage_screen.py [--files 5000] [--reps 5]   (as root: sshd)

The pool's utility host is a `tests/sshfake` dom0 behind a real OpenSSH sshd on loopback, its
shared storage a real folder in Oracle VM's layout: templates (a folder with vm.cfg and a
System.img each), ISOs (a folder with an ISO 9660 image each), shared disks, VMs' folders.
Timed: `S` on the dashboard of a running ovmtui (headless Textual) until the screen shows the
listing, and ctrl+r on it until it shows the listing again. Baseline, in the same run: the
bare `find` of the same tree over the same SSH connection. Counted: the SSH commands of one
listing (the fake dom0 logs every `find`: the listing's are a fixed number, not one a file).
Target (issue 16): the screen within 1 s, one command per folder at most.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _common import header, median, ms, row, title, verdict

from ovmtui.app import OvmApp, tune_process_for_ui
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostKey, HostRole
from ovmtui.screens.storage import StorageScreen
from ovmtui.storage_model import FOLDERS
from tests.sshfake.sshd import FakeXenHost, SshdServer


def arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


FILES = int(arg("--files", "5000"))
REPS = int(arg("--reps", "5"))
TARGET_S = 1.0
ISO_HEADER = b"\0" * 32769 + b"CD001"


def make_tree(root: Path, files: int) -> int:
    """Oracle VM's layout holding ``files`` files; returns how many it made."""
    made = 0
    per_kind = files // 4
    for index in range(per_kind // 2):
        folder = root / "seed_pool" / f"OVM_EL5_{index:04d}"
        folder.mkdir(parents=True)
        (folder / "vm.cfg").write_text(f"name = 'tpl{index}'\ndisk = []\n")
        (folder / "System.img").write_bytes(b"QFI\xfb" + b"\0" * 60)
        made += 2
    for index in range(per_kind // 2):
        folder = root / "running_pool" / f"vm{index:04d}"
        folder.mkdir(parents=True)
        (folder / "vm.cfg").write_text(f"name = 'vm{index}'\n")
        (folder / "System.img").write_bytes(b"\0" * 64)
        made += 2
    for index in range(per_kind // 20):  # ISOs are few and big: 5 % of the files
        folder = root / "iso_pool" / f"iso{index:03d}"
        folder.mkdir(parents=True)
        (folder / f"iso{index:03d}.iso").write_bytes(ISO_HEADER)
        made += 1
    shared = root / "sharedDisk"
    shared.mkdir(parents=True)
    (root / "publish_pool").mkdir()
    while made < files:
        (shared / f"disk {made:05d}.img").write_bytes(b"\0" * 16)
        made += 1
    return made


async def bare_find(backend: XenSshBackend, root: Path) -> float:
    began = time.perf_counter()
    folders = [str(root / folder) for folder in FOLDERS.values()]
    output = await backend.run_command(
        ["find", *folders, "-printf", "%y %s %b %T@ %p\\0"], timeout=60, label="find"
    )
    assert output.exit_status == 0
    return time.perf_counter() - began


async def main(host: FakeXenHost, root: Path, files: int) -> None:
    config = HostConfig(
        "big",
        host.name,
        ssh=host.ssh_target,
        identity=str(host.client_key),
        known_hosts=str(host.known_hosts),
        toolstack="xm",
        roles=(HostRole.UTILITY,),
    )
    estate = EstateConfig((PoolConfig("big", (config,), str(root)),), "bench")
    app = OvmApp(estate, interval_s=3600.0)
    opens: list[float] = []
    refreshes: list[float] = []
    finds: list[float] = []
    commands = entries = 0
    async with app.run_test(size=(200, 50)) as pilot:
        while not any(h.reachable for h in app.snapshot.hosts):
            await pilot.pause(0.02)
        backend = app.session.poller.backend(HostKey("big", host.name))
        assert isinstance(backend, XenSshBackend)
        for _ in range(REPS):
            finds.append(await bare_find(backend, root))
            host.clear_argv_log()
            began = time.perf_counter()
            await pilot.press("S")
            screen = app.screen
            while not (isinstance(screen, StorageScreen) and screen.view is not None):
                await pilot.pause(0)
                screen = app.screen
            await pilot.pause(0)  # the first picture
            opens.append(time.perf_counter() - began)
            commands = len([a for a in host.argv_log() if a[:1] == ["find"]])
            entries = len(screen.view.rows)
            screen.view = None
            began = time.perf_counter()
            await pilot.press("ctrl+r")
            while screen.view is None:
                await pilot.pause(0)
            await pilot.pause(0)
            refreshes.append(time.perf_counter() - began)
            await pilot.press("escape")
            await pilot.pause()
    title(f"storage screen of a pool holding {files} files ({entries} entries)")
    row("bare find over the same SSH connection", ms(median(finds)), "baseline")
    row("S: read, fold, first picture", ms(median(opens)), f"{median(opens) / median(finds):.1f}x")
    row("ctrl+r on the screen", ms(median(refreshes)), f"{median(refreshes) / median(finds):.1f}x")
    row("  find processes a listing (1 SSH command)", str(commands), "fixed, not per file")
    verdict(
        "storage screen of 5,000 files", median(opens) <= TARGET_S, f"{ms(median(opens))} <= 1 s"
    )
    verdict("commands per listing", commands <= len(FOLDERS), f"{commands} <= {len(FOLDERS)}")


if __name__ == "__main__":
    tune_process_for_ui()
    header("storage_screen", REPS, "openings of the storage screen, each against a bare find")
    with tempfile.TemporaryDirectory(prefix="ovmtui-bench-") as tmp:
        root = Path(tmp) / "OVS"
        made = make_tree(root, FILES)
        with SshdServer.start(hosts=["ovs01"], domains_per_host=3, toolstack="xm") as server:
            asyncio.run(main(server.hosts[0], root, made))
