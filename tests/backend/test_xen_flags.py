"""The state flags of xm/xl list and xentop (tests/data/xen/, see xen_samples)."""

from __future__ import annotations

import re

import pytest

from ovmtui.backend.xen_parse.flags import state_from_flags
from ovmtui.model import VmState
from tests.backend.xen_samples import load

# --------------------------------------------------------------------------- state flags


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        ("r-----", VmState.RUNNING),
        ("-b----", VmState.BLOCKED),
        ("--p---", VmState.PAUSED),
        ("---s--", VmState.SHUTTING_DOWN),
        ("----c-", VmState.CRASHED),
        ("-----d", VmState.DYING),
        ("------", VmState.RUNNING),  # runnable, waiting for a physical CPU
        ("", VmState.SHUTOFF),  # blank: an inactive domain xend manages
        ("   ", VmState.SHUTOFF),
        ("--p--d", VmState.DYING),  # the (null) zombie of freebsd-xen
        ("---sc-", VmState.CRASHED),  # xl: shutdown, reason crash
        ("---sr-", VmState.SHUTTING_DOWN),  # xl: shutdown, reason reboot (not "running")
        ("---ss-", VmState.SHUTTING_DOWN),  # xl: shutdown, reason suspend
        ("--ps--", VmState.SHUTTING_DOWN),  # shutting down beats paused
        ("-b--c-", VmState.CRASHED),
        ("r----", VmState.RUNNING),  # Xen 2: five flags
        ("-b---", VmState.BLOCKED),
        ("-----r", VmState.RUNNING),  # xentop's order: dsbcpr
        ("--b---", VmState.BLOCKED),
        ("d----r", VmState.DYING),
        ("----p-", VmState.PAUSED),  # xentop paused
        ("rb", VmState.UNKNOWN),
        ("xyzxyz", VmState.UNKNOWN),
        ("rrrrrr", VmState.UNKNOWN),
    ],
)
def test_state_from_flags(flags: str, state: VmState) -> None:
    assert state_from_flags(flags) is state


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "xentop/exabox-clucontrol-XENTOP_CMD_OP.txt",
            {"c2214-vkge": ("-----r", VmState.RUNNING), "Domain-0": ("-----r", VmState.RUNNING)},
        ),
        (
            "xentop/fragment-name-with-spaces-and-net-line.txt",
            {"BB - backup2": ("--b---", VmState.BLOCKED)},
        ),
        (
            "xentop/py-script-xentop-b-8-iterations-old-columns.txt",
            {"Domain-0": ("-----r", VmState.RUNNING)},
        ),
        (
            "xentop/ubuntuforums-xm-top-xen-4.1.2.txt",
            {"Domain-0": ("-----r", VmState.RUNNING), "virtual1": ("--b---", VmState.BLOCKED)},
        ),
    ],
)
def test_xentop_state_column_in_xentop_order(
    name: str, expected: dict[str, tuple[str, VmState]]
) -> None:
    text = load(name)
    for domain, (flags, state) in expected.items():
        found = set(re.findall(rf"^\s*{re.escape(domain)} (\S+) ", text, re.MULTILINE))
        assert found == {flags}
        assert state_from_flags(flags) is state
