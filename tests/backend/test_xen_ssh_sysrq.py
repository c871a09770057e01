"""SysRq keys to Xen guests over SSH (`xm/xl sysrq DOM KEY`), against the fake dom0s."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ovmtui.errors import ActionRefused, VmNotFound
from ovmtui.model import Vm, VmState
from tests.backend.test_xen_ssh_long import backend_for
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture

ODD = "x; touch /tmp/pwned-sysrq"


@pytest.mark.parametrize("tool", ["xm", "xl"])
async def test_the_key_reaches_the_tool_as_one_argument(fake_xen_servers: Any, tool: str) -> None:
    server = fake_xen_servers(
        [
            HostSpec(
                "xen-a",
                domains=[make_domain(ODD, uuid="0004fb00-0006-0000-dddd-000000000001", domid=4)],
            )
        ]
    )
    host = server.hosts[0]
    backend = backend_for(host, toolstack=tool)
    try:
        vm = next(v for v in (await backend.poll()).vms if v.name == ODD)
        host.clear_argv_log()
        await backend.send_sysrq(vm, "s")
        assert host.argv_log() == [[tool, "sysrq", ODD, "s"]]
        assert not os.path.exists("/tmp/pwned-sysrq")  # noqa: ASYNC240 - one stat
        assert backend.sysrq_command(vm, "s") == f"{tool} sysrq 'x; touch /tmp/pwned-sysrq' s"
        with pytest.raises(ActionRefused, match="not one ovmtui sends"):
            await backend.send_sysrq(vm, "; reboot")
        gone = Vm(uuid="u-gone", name="gone01", state=VmState.RUNNING)
        with pytest.raises(VmNotFound):
            await backend.send_sysrq(gone, "h")
    finally:
        await backend.close()
