"""Issue 16 end to end on the lab's real libvirtd + QEMU hosts, through the real CLI
(``python -m ovmtui … --config <the lab's estate>``), as an operator would do it from a shell:

- the lab's shared storage has Oracle VM's layout (running_pool, seed_pool with one template
  made from the lab's kernel and initramfs, iso_pool, sharedDisk, publish_pool);
- a real HTTP server and a real FTP server (pyftpdlib) on loopback serve a tiny real ISO 9660
  and a template archive (``.tgz`` whose ``vm.cfg`` parses): ``ovmtui resource import`` takes
  the ISO over HTTP and the template over FTP, ``ovmtui resource approve`` approves both;
- ``ovmtui disk create --shareable``, attached read-write to vm1 (h1) and vm3 (h2), both
  powered off first; a disk that is not shareable is refused to the second writer (exit 1,
  the rule named); both guests started, and from each one's serial console the disk is there
  (``/sys/block/vdb``) and a block that vm1 writes with ``dd`` is read by vm3;
- guests off again, detached, deleted, the resources deleted: the lab is left as found (the
  guests running where they were, no file or volume left behind).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.base import ConsoleChannel
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.backend.xen_parse.vm_cfg import parse_vm_cfg
from ovmtui.model import HostKey
from tests.e2e.lab.conftest import LAB_DIR, ROOT, Lab
from tests.e2e.lab.test_console import read_until
from tests.import_servers import ftp_server, http_server, make_iso, url_of

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

GUESTS = {"vm1": "h1", "vm3": "h2"}
OVS = LAB_DIR / "ovs"
POOL_FOLDERS = ("running_pool", "seed_pool", "iso_pool", "sharedDisk", "publish_pool")
BOOT_LIMIT_S = 120.0
# Where vm1 writes and vm3 reads: 1 MiB into the disk, clear of the first sectors the
# kernel reads (and caches) when it scans a new disk for partitions.
SEEK_BLOCKS = 2048
TEMPLATE_CFG = (
    "# imported by the lab test\n"
    "name = 'labtpl'\n"
    "memory = '192'\n"
    "vcpus = 1\n"
    "disk = ['file:/OVS/seed_pool/labtpl/System.img,xvda,w']\n"
    "vif = ['bridge=xenbr0']\n"
)


def ovmtui(lab: Lab, repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI on the lab's estate (a repository of the test's own: the lab's is left
    as it was)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ovmtui",
            "--config",
            str(lab.estate_path),
            "--repository",
            str(repository),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"{done.args[5:]}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def layout_files() -> set[str]:
    """Every file and folder of the layout, less the guests' console logs (which grow)."""
    found = set()
    for folder in POOL_FOLDERS:
        for path in (OVS / folder).rglob("*"):
            if path.name != "console.log":
                found.add(str(path.relative_to(OVS)))
    return found


def volumes(lab: Lab) -> dict[str, set[str]]:
    """Each host's storage pools and their volumes, as libvirt lists them."""
    listed: dict[str, set[str]] = {}
    for host in ("h1", "h2"):
        for pool in lab.virsh(host, "pool-list", "--name").split():
            lines = lab.virsh(host, "vol-list", pool).splitlines()  # -q: "NAME  PATH"
            listed[f"{host}:{pool}"] = {line.split()[0] for line in lines if line.strip()}
    return listed


def template_archive() -> bytes:
    """A template as Oracle shipped them: one folder holding vm.cfg and System.img."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("OVM_LAB_IMPORTED/vm.cfg", TEMPLATE_CFG.encode()),
            ("OVM_LAB_IMPORTED/System.img", bytes(range(256)) * 4096),  # 1 MiB
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def storage_entries(lab: Lab, repository: Path) -> dict[str, dict[str, Any]]:
    listing = json.loads(ok(ovmtui(lab, repository, "storage", "--json")))
    return {entry["name"]: entry for entry in listing["entries"]}


@pytest.fixture
def guests_back(lab: Lab) -> Iterator[None]:
    """Whatever happens, vm1 and vm3 end running on their hosts, as the lab had them."""
    yield
    for vm, host in GUESTS.items():
        if lab.domstate(host, vm) != "running":
            lab.virsh(host, "start", vm)


def power_off(lab: Lab) -> None:
    for vm, host in GUESTS.items():
        if lab.domstate(host, vm) != "shut off":
            lab.virsh(host, "destroy", vm)


@asynccontextmanager
async def console(lab: Lab, vm: str) -> AsyncIterator[ConsoleChannel]:
    """The guest's serial console over the estate's own qemu+ssh URI, once its shell is up
    (its first heartbeat seen on the console)."""
    host = GUESTS[vm]
    uri = next(h.libvirt for h in lab.estate.hosts if h.name == host)
    assert uri is not None
    backend = LibvirtBackend(HostKey("lab", host), uri)
    try:
        found = next(v for v in (await backend.poll()).vms if v.name == vm)
        async with backend.console(found, term_type="xterm-256color", term_size=(80, 24)) as ch:
            beat = re.compile(rf"{vm} heartbeat \d+".encode())
            await asyncio.wait_for(
                read_until(ch, lambda data: bool(beat.search(data)), answer_queries=True),
                BOOT_LIMIT_S,
            )
            yield ch
    finally:
        await backend.close()


async def shell(channel: ConsoleChannel, command: str, answer: re.Pattern[bytes]) -> bytes:
    """``command`` typed on the guest's shell; the first match of ``answer`` in what follows
    (the typed line echoes the command unexpanded: ``answer`` must match only its output)."""
    await channel.write(command.encode() + b"\r")
    seen = await read_until(channel, lambda data: bool(answer.search(data)), answer_queries=True)
    found = answer.search(seen)
    assert found is not None
    return found.group(1)


async def test_import_approve_share_a_disk_between_two_guests_and_leave_the_lab_as_found(
    lab: Lab, tmp_path: Path, guests_back: None
) -> None:
    repository = tmp_path / "repository.sqlite"
    started = time.monotonic()
    # The layout the lab starts with.
    for folder in POOL_FOLDERS:
        assert (OVS / folder).is_dir(), folder
    seeded = OVS / "seed_pool" / "OVM_LAB_PVM"
    assert parse_vm_cfg((seeded / "vm.cfg").read_text()).value["kernel"] == str(seeded / "vmlinuz")
    before_files = layout_files()
    before_volumes = volumes(lab)

    # -- imports: an ISO over HTTP, a template over FTP; then approved ----------------------
    served = tmp_path / "served"
    served.mkdir()
    iso = make_iso(2 * 1024 * 1024, label="OVMLAB")
    (served / "labiso.iso").write_bytes(iso)
    (served / "labtpl.tgz").write_bytes(template_archive())
    with http_server(served) as http, ftp_server(served) as ftp_port:
        done = ovmtui(lab, repository, "resource", "import", url_of(http, "labiso.iso"),
                      "--kind", "iso")  # fmt: skip
        ok(done)
        done = ovmtui(lab, repository, "resource", "import",
                      f"ftp://127.0.0.1:{ftp_port}/labtpl.tgz", "--kind", "template")  # fmt: skip
        ok(done)
    assert (OVS / "iso_pool" / "labiso.iso").read_bytes() == iso
    imported = OVS / "seed_pool" / "labtpl"
    assert (imported / "vm.cfg").read_text() == TEMPLATE_CFG
    assert parse_vm_cfg((imported / "vm.cfg").read_text()).value["name"] == "labtpl"
    assert (imported / "System.img").read_bytes() == bytes(range(256)) * 4096

    entries = storage_entries(lab, repository)
    assert entries["labiso.iso"]["kind"] == "iso" and entries["labiso.iso"]["status"] == "pending"
    assert entries["labtpl"]["kind"] == "template" and entries["labtpl"]["status"] == "pending"
    assert entries["OVM_LAB_PVM"]["status"] == "unregistered"  # the seeded one: found
    for name in ("labiso.iso", "labtpl"):
        assert "approved" in ok(ovmtui(lab, repository, "resource", "approve", name))
    entries = storage_entries(lab, repository)
    assert entries["labiso.iso"]["status"] == entries["labtpl"]["status"] == "approved"

    # -- shared disks, the guests powered off ----------------------------------------------
    power_off(lab)
    ok(ovmtui(lab, repository, "disk", "create", "labshared", "16M", "--shareable", "--yes"))
    for vm in GUESTS:
        ok(ovmtui(lab, repository, "disk", "attach", "labshared", vm, "--yes"))
    # A disk for one writer: a second read-write holder is refused, naming the rule.
    ok(ovmtui(lab, repository, "disk", "create", "labsingle", "8M", "--yes"))
    ok(ovmtui(lab, repository, "disk", "attach", "labsingle", "vm1", "--yes"))
    refused = ovmtui(lab, repository, "disk", "attach", "labsingle", "vm3", "--yes")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "one-writer" in refused.stdout + refused.stderr
    assert "labsingle" not in lab.virsh("h2", "dumpxml", "--inactive", "vm3")
    ok(ovmtui(lab, repository, "disk", "detach", "labsingle", "vm1", "--yes"))
    ok(ovmtui(lab, repository, "disk", "delete", "labsingle", "--yes"))
    for vm, host in GUESTS.items():
        xml = lab.virsh(host, "dumpxml", "--inactive", vm)
        assert "labshared.img" in xml and "<shareable/>" in xml, xml

    # -- both guests up: the disk is there, one writes, the other reads --------------------
    for vm, host in GUESTS.items():
        lab.virsh(host, "start", vm)
    marker = f"ovmtui-shared-{int(time.time())}"
    present = re.compile(rb"DISK-(\d+)-END")
    async with console(lab, "vm1") as vm1:
        sectors = await shell(vm1, "echo DISK-$(cat /sys/block/vdb/size)-END", present)
        assert int(sectors) * 512 == 16 * 1024 * 1024
        await shell(
            vm1,
            f"echo {marker} | dd of=/dev/vdb bs=512 seek={SEEK_BLOCKS} conv=notrunc,fsync "
            "2>/dev/null; sync; echo WROTE-$?-END",
            re.compile(rb"WROTE-(0)-END"),
        )
    async with console(lab, "vm3") as vm3:
        sectors = await shell(vm3, "echo DISK-$(cat /sys/block/vdb/size)-END", present)
        assert int(sectors) * 512 == 16 * 1024 * 1024
        read = await shell(
            vm3,
            "echo 3 >/proc/sys/vm/drop_caches; echo READ-$(dd if=/dev/vdb bs=512 "
            f"skip={SEEK_BLOCKS} count=1 2>/dev/null | head -n 1)-END",
            re.compile(rb"READ-([A-Za-z0-9-]*)-END"),
        )
    assert read.decode() == marker
    assert f"READ-{marker}-END" in lab.console_log("vm3")  # the serial log has it too

    # -- off again, detached, deleted; the resources deleted ------------------------------
    power_off(lab)
    for vm in GUESTS:
        ok(ovmtui(lab, repository, "disk", "detach", "labshared", vm, "--yes"))
    ok(ovmtui(lab, repository, "disk", "delete", "labshared", "--yes"))
    for name in ("labiso.iso", "labtpl"):
        ok(ovmtui(lab, repository, "resource", "delete", name, "--yes"))
    for vm, host in GUESTS.items():
        assert "sharedDisk" not in lab.virsh(host, "dumpxml", "--inactive", vm)
        lab.virsh(host, "start", vm)
    for vm, host in GUESTS.items():
        assert lab.domstate(host, vm) == "running"
    assert layout_files() == before_files
    after_volumes = volumes(lab)
    # ovmtui's storage pools of the layout's folders stay defined (the storage screen's);
    # every volume there was before, and nothing else.
    for pool, names in after_volumes.items():
        assert names == before_volumes.get(pool, names), pool
        assert not any(n.startswith(("labiso", "labtpl", "labshared", "labsingle")) for n in names)
    assert not [p for p in after_volumes if "seed_pool-" in p]  # no template's own pool left
    print(f"issue-16 lab test: {time.monotonic() - started:.1f} s")
