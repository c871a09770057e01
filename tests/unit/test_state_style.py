"""The one table of state colours: complete, consistent, and written out both ways."""

from __future__ import annotations

import pytest

from ovmtui.model import HostStatus, VmState
from ovmtui.widgets.state_style import (
    HOST_STATE_STYLES,
    VM_STATE_STYLES,
    HostState,
    StateStyle,
    css_rules,
    host_state,
    markup,
)


def test_every_state_has_a_theme_colour() -> None:
    assert set(VM_STATE_STYLES) == set(VmState)
    assert set(HOST_STATE_STYLES) == set(HostState)
    for style in (*VM_STATE_STYLES.values(), *HOST_STATE_STYLES.values()):
        assert style.colour.startswith("$"), "colours only through theme variables"


def test_suspended_is_coloured_as_paused() -> None:
    # It was $warning in the header and $secondary in the table: both hold memory
    # without running, and both want the same attention.
    assert VM_STATE_STYLES[VmState.SUSPENDED] == VM_STATE_STYLES[VmState.PAUSED]
    assert VM_STATE_STYLES[VmState.SUSPENDED].colour == "$warning"


def test_vm_and_host_states_share_their_meanings() -> None:
    assert VM_STATE_STYLES[VmState.RUNNING] == HOST_STATE_STYLES[HostState.UP]
    assert VM_STATE_STYLES[VmState.CRASHED] == HOST_STATE_STYLES[HostState.DOWN]
    assert VM_STATE_STYLES[VmState.PAUSED] == HOST_STATE_STYLES[HostState.UNKNOWN]


@pytest.mark.parametrize(
    ("style", "as_markup", "as_css"),
    [
        (StateStyle("$success"), "$success", "color: $success;"),
        (StateStyle("$error", bold=True), "$error b", "color: $error; text-style: bold;"),
    ],
)
def test_markup_and_css(style: StateStyle, as_markup: str, as_css: str) -> None:
    assert style.markup == as_markup
    assert style.css == as_css


def test_markup_of_either_kind_of_state() -> None:
    assert markup(VmState.CRASHED) == "$error b"
    assert markup(VmState.SUSPENDED) == "$warning"
    assert markup(HostState.DOWN) == "$error b"


def test_css_rules_name_each_state_class() -> None:
    rules = css_rules("VmTable", "vm-table--state-", VM_STATE_STYLES)
    assert rules.startswith("VmTable {")
    assert "& > .vm-table--state-suspended { color: $warning; }" in rules
    assert "& > .vm-table--state-crashed { color: $error; text-style: bold; }" in rules
    assert rules.count("& > .vm-table--state-") == len(VmState)


@pytest.mark.parametrize(
    ("reachable", "stale", "state"),
    [
        (True, False, HostState.UP),
        (True, True, HostState.UNKNOWN),
        (None, False, HostState.UNKNOWN),
        (False, False, HostState.DOWN),
        (False, True, HostState.DOWN),
    ],
)
def test_host_state(reachable: bool | None, stale: bool, state: HostState) -> None:
    host = HostStatus(pool="p", name="h", address="-", reachable=reachable, stale=stale)
    assert host_state(host) is state
