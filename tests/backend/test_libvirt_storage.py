"""The pool's storage through libvirt's storage API, on the test driver: a dir storage pool
per folder, defined only when asked (the service journals it), listed one listing a folder,
a volume deleted."""

from __future__ import annotations

import pytest

from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.backend.libvirt_storage import pool_name
from ovmtui.errors import ActionFailed
from ovmtui.model import HostKey
from ovmtui.storage_model import DiskFormat, ResourceKind
from tests.backend.conftest import DEFAULT_URI

ROOT = "/OVS"


async def test_define_list_and_delete_on_the_test_driver() -> None:
    backend = LibvirtBackend(HostKey("p1", "h1"), DEFAULT_URI)
    try:
        missing = await backend.storage_pools_missing("p 1")
        assert missing == ["running_pool", "seed_pool", "iso_pool", "sharedDisk", "publish_pool"]
        command = backend.define_storage_pools_command("p 1", ROOT, missing[:1])
        assert command == (
            f"virsh -c {DEFAULT_URI} pool-define-as ovmtui-p_1-running_pool dir --target "
            f"/OVS/running_pool && virsh -c {DEFAULT_URI} pool-start ovmtui-p_1-running_pool"
        )
        # Before: nothing defined, nothing listed; every folder reads as missing.
        scan = await backend.list_storage("p 1", ROOT)
        assert (scan.entries, scan.commands, len(scan.missing_folders)) == ((), 0, 5)

        assert await backend.define_storage_pools("p 1", ROOT, missing) == []
        assert await backend.storage_pools_missing("p 1") == []

        def make_volumes() -> None:
            session = backend._session
            assert session is not None
            shared = session.conn.storagePoolLookupByName(pool_name("p 1", "sharedDisk"))
            for name, fmt, size in [
                ("quorum.img", "raw", 1 << 20),
                ("x; touch pwned", "qcow2", 4096),
            ]:
                shared.createXML(
                    f"<volume><name>{name}</name><capacity>{size}</capacity>"
                    f"<target><format type='{fmt}'/></target></volume>",
                    0,
                )

        session = backend._session
        assert session is not None
        await backend._call(session, make_volumes)
        scan = await backend.list_storage("p 1", ROOT)
        assert scan.commands == 5 and scan.missing_folders == ()
        found = {e.name: e for e in scan.entries}
        assert set(found) == {"quorum.img", "x; touch pwned"}
        quorum = found["quorum.img"]
        assert (quorum.kind, quorum.size_bytes, quorum.format) == (
            ResourceKind.SHARED_DISK,
            1 << 20,
            DiskFormat.RAW,
        )
        assert quorum.path == "/OVS/sharedDisk/quorum.img"
        assert found["x; touch pwned"].format is DiskFormat.QCOW2

        assert backend.delete_command("p 1", quorum) == (
            f"virsh -c {DEFAULT_URI} vol-delete --pool ovmtui-p_1-sharedDisk quorum.img"
        )
        await backend.delete_entry("p 1", ROOT, quorum)
        assert [e.name for e in (await backend.list_storage("p 1", ROOT)).entries] == [
            "x; touch pwned"
        ]
        with pytest.raises(ActionFailed):
            await backend.delete_entry("p 1", ROOT, quorum)
        assert await backend.read_storage_file("/OVS/seed_pool/t/vm.cfg", 100) is None
    finally:
        await backend.close()
