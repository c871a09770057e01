"""The demo estate loads in libvirt's test driver and looks like a real Oracle VM estate."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from ovmtui.config import HostConfig
from ovmtui.demo import DEMO_HOSTS, demo_estate, generate
from ovmtui.model import HostRole

RUNNING, BLOCKED, PAUSED, SHUTDOWN, SHUTOFF, CRASHED, PMSUSPENDED = range(1, 8)
# VmState.is_active: the states that hold memory on the host.
ACTIVE = {RUNNING, BLOCKED, PAUSED, SHUTDOWN, CRASHED}


@dataclass(frozen=True)
class Domain:
    host: str
    name: str
    uuid: str
    state: int
    vcpus: int
    max_kib: int
    current_kib: int
    xml: ET.Element


@dataclass(frozen=True)
class Node:
    host: HostConfig
    memory_mib: int
    cpus: int
    domains: tuple[Domain, ...]
    stats: int  # records returned by getAllDomainStats

    @property
    def committed_mib(self) -> int:
        return sum(d.current_kib for d in self.domains if d.state in ACTIVE) // 1024


def _path(uri: str) -> Path:
    parsed = urllib.parse.urlsplit(uri)
    return Path(urllib.parse.unquote(parsed.path))


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[Node, ...]]:
    loaded = []
    for host in demo_estate().hosts:
        assert host.libvirt is not None
        conn = libvirt.open(host.libvirt)
        try:
            domains = []
            for dom in conn.listAllDomains():
                _, max_kib, current_kib, vcpus, _ = dom.info()
                domains.append(
                    Domain(
                        host.name,
                        dom.name(),
                        dom.UUIDString(),
                        dom.state()[0],
                        vcpus,
                        max_kib,
                        current_kib,
                        ET.fromstring(dom.XMLDesc()),
                    )
                )
            info = conn.getInfo()
            stats = len(conn.getAllDomainStats())
        finally:
            conn.close()
        loaded.append(Node(host, info[1], info[2], tuple(domains), stats))
    yield tuple(loaded)


@pytest.fixture(scope="module")
def domains(nodes: tuple[Node, ...]) -> tuple[Domain, ...]:
    return tuple(d for node in nodes for d in node.domains)


def test_estate_has_two_pools_and_five_hosts_with_one_master_each() -> None:
    estate = demo_estate()
    assert estate.source == "demo estate"
    assert len(estate.pools) >= 2
    assert len(estate.hosts) >= 5
    assert len({h.name for h in estate.hosts}) == len(estate.hosts)
    for pool in estate.pools:
        assert sum(HostRole.MASTER in h.roles for h in pool.hosts) == 1
        assert all(HostRole.VM in h.roles for h in pool.hosts)
        assert all(h.pool == pool.name for h in pool.hosts)


def test_uris_are_absolute_test_driver_paths_that_exist() -> None:
    for host in demo_estate().hosts:
        assert host.libvirt is not None
        assert host.libvirt.startswith("test:///")
        path = _path(host.libvirt)
        assert path.is_absolute()
        assert path.is_file()
        assert path.parent == Path(generate.__file__).resolve().parent


def test_every_host_loads_and_reports_stats(nodes: tuple[Node, ...]) -> None:
    for node in nodes:
        assert node.domains, node.host.name
        assert node.stats == len(node.domains), node.host.name
        assert 64 * 1024 <= node.memory_mib <= 256 * 1024
        assert node.cpus >= 8


def test_sixty_vms_in_every_state_mostly_running(domains: tuple[Domain, ...]) -> None:
    assert len(domains) >= 60
    states = Counter(d.state for d in domains)
    assert set(states) == set(range(1, 8)), states
    assert states[RUNNING] > len(domains) / 2


def test_names_and_uuids_are_unique_and_valid(domains: tuple[Domain, ...]) -> None:
    assert len({d.name for d in domains}) == len(domains)
    assert len({d.uuid for d in domains}) == len(domains)
    for d in domains:
        assert str(uuid.UUID(d.uuid)) == d.uuid


def test_sizes_vary_and_current_memory_fits(domains: tuple[Domain, ...]) -> None:
    vcpus = {d.vcpus for d in domains}
    assert min(vcpus) == 1
    assert max(vcpus) == 16
    assert len(vcpus) >= 5
    memory_mib = {d.max_kib // 1024 for d in domains}
    assert min(memory_mib) == 512
    assert max(memory_mib) == 32 * 1024
    assert len(memory_mib) >= 6
    assert all(d.current_kib <= d.max_kib for d in domains)
    assert any(d.current_kib < d.max_kib for d in domains)


def test_committed_memory_fits_on_most_hosts(nodes: tuple[Node, ...]) -> None:
    fitting = [node for node in nodes if node.committed_mib < node.memory_mib]
    assert len(fitting) >= len(nodes) - 1
    # The demo should show one host close to its limit.
    assert any(node.committed_mib > 0.9 * node.memory_mib for node in nodes)


def test_devices_look_like_oracle_vm(domains: tuple[Domain, ...]) -> None:
    macs = []
    shared = cdroms = empty_cdroms = 0
    for d in domains:
        sources = []
        for disk in d.xml.iterfind("devices/disk"):
            source = disk.find("source")
            path = None if source is None else source.get("file")
            if disk.get("device") == "cdrom":
                if path is None:
                    empty_cdroms += 1
                else:
                    assert path.startswith("/OVS/iso_pool/")
                    cdroms += 1
                continue
            assert path is not None
            sources.append(path)
            if disk.find("shareable") is not None:
                assert path.startswith("/OVS/sharedDisk/")
                shared += 1
        assert sources[0] == f"/OVS/running_pool/{d.name}/System.img"
        nics = d.xml.findall("devices/interface")
        assert 1 <= len(nics) <= 2, d.name
        for nic in nics:
            mac = nic.find("mac")
            assert mac is not None
            macs.append(mac.get("address", ""))
    assert shared and cdroms and empty_cdroms
    assert all(mac.startswith("00:16:3e:") for mac in macs)
    assert len(set(macs)) == len(macs)


def test_shipped_files_are_what_the_generator_writes() -> None:
    assert generate.check_estate() == []
    for host in DEMO_HOSTS:
        assert host.path.read_text(encoding="utf-8") == generate.render(host), host.file


def test_demo_module_imports_neither_textual_nor_libvirt() -> None:
    code = (
        "import sys, ovmtui.demo; "
        "ovmtui.demo.demo_estate(); "
        "bad = {'textual', 'libvirt', 'rich'} & set(sys.modules); "
        "print(' '.join(sorted(bad)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
