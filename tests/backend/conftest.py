"""Fixtures for backend tests.

libvirt is imported inside the fixtures that need it, so backends that do not use libvirt
can share this directory without it.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
NODE_XML = DATA / "libvirt-node-small.xml"
# test:///ABSOLUTE/PATH: every open gets a private copy of the node, so tests may change it.
NODE_URI = f"test://{NODE_XML}"
DEFAULT_URI = "test:///default"

_DOMAIN_XML = """<domain type='test'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/images/{uuid}.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>"""


@pytest.fixture
def libvirt_conn() -> Iterator[Any]:
    """A connection of the test's own to test:///default, beside the backend's.

    test:///default is one node shared by every connection in the process: what this
    connection does, the backend sees (and receives events for).
    """
    import libvirt

    from ovmtui.backend.libvirt import _ensure_libvirt_runtime

    # Before the open, or libvirt would print its errors and deliver no events.
    _ensure_libvirt_runtime()
    conn = libvirt.open(DEFAULT_URI)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def scratch_domain(libvirt_conn: Any) -> Iterator[Callable[..., tuple[str, str]]]:
    """Define domains on the shared test:///default; all undefined again at teardown."""
    import libvirt

    defined: list[str] = []

    def define(name: str | None = None, *, start: bool = False) -> tuple[str, str]:
        uuid = str(uuid_module.uuid4())
        name = name or f"scratch-{uuid[:8]}"
        xml = _DOMAIN_XML.format(name=_xml_escape(name), uuid=uuid)
        dom = libvirt_conn.defineXML(xml)
        defined.append(uuid)
        if start:
            dom.create()
        return name, uuid

    yield define

    for uuid in defined:
        try:
            dom = libvirt_conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError:
            continue
        if dom.isActive():
            dom.destroy()
        dom.undefine()


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
    )
