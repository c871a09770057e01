"""Ctrl+Alt+Del on a guest's keyboard, on real libvirt (the test driver takes sendKey): on the
record, asked about in the screens, refused in read-only mode and on a host that cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.errors import ActionRefused
from ovmtui.model import Capability
from ovmtui.services.session import EstateSession

NODE = Path(__file__).resolve().parent.parent / "data" / "libvirt-node-small.xml"


def estate() -> EstateConfig:
    host = HostConfig("p", "h1", libvirt=f"test://{NODE}")
    return EstateConfig((PoolConfig("p", (host,)),), "test")


async def test_it_is_sent_on_the_record() -> None:
    async with EstateSession(estate()) as session:
        snapshot = await session.poll_once()
        (host,) = snapshot.hosts
        assert Capability.SEND_KEYS in host.capabilities
        placed = next(p for p in snapshot.placed_vms() if p.vm.state.is_active)
        command = session.ctrl_alt_del_command(placed)
        assert command.endswith(
            f"send-key --domain {placed.vm.name} --codeset linux "
            "KEY_LEFTCTRL KEY_LEFTALT KEY_DELETE"
        )
        assert await session.send_ctrl_alt_del(placed) is None
        records = session.actions.journal.records  # type: ignore[union-attr]
        assert records[0][6:8] == ("ctrl-alt-del", command)
        assert records[-1][2] is True


async def test_read_only_and_a_vm_that_is_off_are_refused() -> None:
    async with EstateSession(estate(), read_only=True) as session:
        snapshot = await session.poll_once()
        placed = next(p for p in snapshot.placed_vms() if p.vm.state.is_active)
        assert "read-only" in (session.ctrl_alt_del_refusal(placed) or "")
        with pytest.raises(ActionRefused, match="read-only"):
            await session.send_ctrl_alt_del(placed)
    async with EstateSession(estate()) as session:
        snapshot = await session.poll_once()
        off = next(p for p in snapshot.placed_vms() if not p.vm.state.is_active)
        assert session.ctrl_alt_del_refusal(off) == f"the VM is {off.vm.state.value}"


async def test_a_sysrq_key_is_sent_on_the_record_and_only_the_known_ones() -> None:
    async with EstateSession(estate()) as session:
        snapshot = await session.poll_once()
        (host,) = snapshot.hosts
        assert Capability.SYSRQ in host.capabilities
        placed = next(p for p in snapshot.placed_vms() if p.vm.state.is_active)
        command = session.sysrq_command(placed, "h")
        assert command.endswith("--codeset linux KEY_LEFTALT KEY_SYSRQ KEY_H")
        assert await session.send_sysrq(placed, "h") is None
        records = session.actions.journal.records  # type: ignore[union-attr]
        assert records[0][6:8] == ("sysrq-h", command)
        assert records[-1][2] is True
        with pytest.raises(ActionRefused, match="not one ovmtui sends"):
            await session.send_sysrq(placed, "z")
