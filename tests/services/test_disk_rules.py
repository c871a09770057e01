"""The shared-disk rules, table by table: each refusal names its rule."""

from __future__ import annotations

import pytest

from ovmtui.model import Disk, PlacedVm, Vm, VmState
from ovmtui.services.disk_rules import (
    BadInput,
    Holder,
    Rule,
    SharedDisk,
    attach_refusal,
    attachment,
    delete_refusal,
    detach_refusal,
    disk_name,
    disk_path,
    disk_size,
    holders_of,
    next_target,
)

PATH = "/OVS/sharedDisk/quorum.img"


def placed(
    name: str, state: VmState, *, pool: str = "prod", disks: tuple[Disk, ...] = ()
) -> PlacedVm:
    return PlacedVm(pool, "h1", Vm(f"uuid-{name}", name, state, disks=disks))


def holder(name: str, *, ro: bool = False, shared: bool = False) -> Holder:
    return Holder(name, f"uuid-{name}", "prod", "h2", "xvdb", ro, shared, VmState.RUNNING)


def disk(*holders: Holder, shareable: bool = False, pool: str = "prod") -> SharedDisk:
    return SharedDisk("quorum", pool, PATH, shareable=shareable, holders=holders)


OFF, RUNNING, PAUSED = VmState.SHUTOFF, VmState.RUNNING, VmState.PAUSED
CAN = None  # the host hot-plugs
CANNOT = "Oracle VM attaches disks to powered-off VMs only"

# (disk, vm state, vm pool, read_only, live, hot_plug) -> the rule that refuses, or None
ATTACH_TABLE = [
    # powered off: Oracle VM's rule, whatever the host can
    (disk(), OFF, "prod", False, False, CANNOT, None),
    (disk(), OFF, "prod", False, False, CAN, None),
    (disk(), OFF, "prod", True, False, CAN, None),
    # --live for a VM that is off: refused, it is not what was meant
    (disk(), OFF, "prod", False, True, CAN, Rule.HOT_PLUG),
    # running: only with hot-plug, and only when asked
    (disk(), RUNNING, "prod", False, False, CAN, Rule.POWERED_OFF),
    (disk(), RUNNING, "prod", False, True, CAN, None),
    (disk(), RUNNING, "prod", False, True, CANNOT, Rule.HOT_PLUG),
    (disk(), RUNNING, "prod", False, False, CANNOT, Rule.POWERED_OFF),
    (disk(), VmState.BLOCKED, "prod", False, True, CAN, None),
    # paused, suspended, crashed: power it off
    (disk(), PAUSED, "prod", False, True, CAN, Rule.POWERED_OFF),
    (disk(), VmState.CRASHED, "prod", False, False, CAN, Rule.POWERED_OFF),
    (disk(), VmState.UNKNOWN, "prod", False, False, CAN, Rule.POWERED_OFF),
    # another pool
    (disk(), OFF, "dev", False, False, CAN, Rule.SAME_POOL),
    (disk(pool="dev"), OFF, "prod", True, False, CAN, Rule.SAME_POOL),
    # a second read-write holder of a disk that is not shareable
    (disk(holder("a")), OFF, "prod", False, False, CAN, Rule.ONE_WRITER),
    (disk(holder("a")), OFF, "prod", True, False, CAN, Rule.ONE_WRITER),
    (disk(holder("a", ro=True)), OFF, "prod", False, False, CAN, Rule.ONE_WRITER),
    (disk(holder("a", ro=True)), OFF, "prod", True, False, CAN, None),
    # shareable: every writer shares it
    (disk(holder("a", shared=True), shareable=True), OFF, "prod", False, False, CAN, None),
    (
        disk(holder("a", shared=True), holder("b", shared=True), shareable=True),
        OFF,
        "prod",
        False,
        False,
        CAN,
        None,
    ),
    (disk(holder("a"), shareable=True), OFF, "prod", False, False, CAN, Rule.ONE_WRITER),
    (disk(holder("a"), shareable=True), OFF, "prod", True, False, CAN, Rule.ONE_WRITER),
    (disk(holder("a", ro=True), shareable=True), OFF, "prod", False, False, CAN, None),
]


@pytest.mark.parametrize(("shared", "state", "pool", "ro", "live", "hot", "rule"), ATTACH_TABLE)
def test_attach_rules(
    shared: SharedDisk,
    state: VmState,
    pool: str,
    ro: bool,
    live: bool,
    hot: str | None,
    rule: Rule | None,
) -> None:
    refusal = attach_refusal(
        shared, placed("vm", state, pool=pool), read_only=ro, live=live, hot_plug=hot
    )
    assert (refusal.rule if refusal else None) is rule
    if refusal is not None:
        # Said in words, with the VM's or the disk's name, and the rule's title.
        assert "vm" in refusal.text or "quorum" in refusal.text
        assert "rule:" in str(refusal)


def test_refusals_say_why_in_words() -> None:
    running = placed("web", RUNNING)
    refusal = attach_refusal(disk(), running, read_only=False, live=False, hot_plug=CANNOT)
    assert refusal is not None and "power it off" in refusal.text and CANNOT in refusal.text
    refusal = attach_refusal(disk(), running, read_only=False, live=False, hot_plug=CAN)
    assert refusal is not None and "--live" in refusal.text
    refusal = attach_refusal(
        disk(holder("db1")), placed("db2", OFF), read_only=False, live=False, hot_plug=CAN
    )
    assert refusal is not None and "db1" in refusal.text and "not shareable" in refusal.text
    refusal = attach_refusal(
        disk(), placed("x", OFF, pool="dev"), read_only=False, live=False, hot_plug=CAN
    )
    assert refusal is not None and "pool dev" in refusal.text and "pool prod" in refusal.text


def test_attach_twice_to_one_vm_is_refused() -> None:
    held = disk(holder("vm"))
    refusal = attach_refusal(held, placed("vm", OFF), read_only=True, live=False, hot_plug=CAN)
    assert refusal is not None and refusal.rule is Rule.ATTACHED


@pytest.mark.parametrize(
    ("shareable", "read_only", "expected"),
    [(False, False, False), (True, False, True), (True, True, False), (False, True, False)],
)
def test_a_writer_of_a_shareable_disk_shares_it(
    shareable: bool, read_only: bool, expected: bool
) -> None:
    vm = placed("vm", OFF, disks=(Disk("xvda", "/OVS/running_pool/vm/System.img"),))
    made = attachment(disk(shareable=shareable), vm, read_only=read_only, live=False, prefix="xvd")
    assert made.shareable is expected
    assert made.target == "xvdb"
    assert made.as_disk(PATH).source == PATH


# (held by the VM, vm state, live, hot_plug) -> rule
DETACH_TABLE = [
    (True, OFF, False, CANNOT, None),
    (True, RUNNING, False, CAN, Rule.POWERED_OFF),
    (True, RUNNING, True, CAN, None),
    (True, RUNNING, True, CANNOT, Rule.HOT_PLUG),
    (True, PAUSED, True, CAN, Rule.POWERED_OFF),
    (False, OFF, False, CAN, Rule.ATTACHED),
]


@pytest.mark.parametrize(("held", "state", "live", "hot", "rule"), DETACH_TABLE)
def test_detach_rules(
    held: bool, state: VmState, live: bool, hot: str | None, rule: Rule | None
) -> None:
    shared = disk(holder("vm")) if held else disk(holder("other"))
    refusal = detach_refusal(shared, placed("vm", state), live=live, hot_plug=hot)
    assert (refusal.rule if refusal else None) is rule


# (holders, hosts that do not answer) -> rule
DELETE_TABLE = [
    ((), (), None),
    ((holder("a"),), (), Rule.NOT_HELD),
    ((holder("a", ro=True),), (), Rule.NOT_HELD),
    ((), ("h2",), Rule.NOT_HELD),
]


@pytest.mark.parametrize(("holders", "silent", "rule"), DELETE_TABLE)
def test_delete_rules(
    holders: tuple[Holder, ...], silent: tuple[str, ...], rule: Rule | None
) -> None:
    refusal = delete_refusal(disk(*holders), silent_hosts=silent)
    assert (refusal.rule if refusal else None) is rule
    if holders:
        assert refusal is not None and "a (" in refusal.text
    if silent:
        assert refusal is not None and "h2" in refusal.text


def test_holders_are_read_from_the_vms_disks() -> None:
    vms = [
        placed("a", RUNNING, disks=(Disk("xvda", "/x.img"), Disk("xvdb", PATH, shareable=True))),
        placed("b", OFF, disks=(Disk("xvdc", PATH, read_only=True),)),
        placed("c", OFF, disks=(Disk("xvdb", "/OVS/sharedDisk/other.img"),)),
    ]
    found = holders_of(PATH, vms)
    assert [(h.vm, h.target, h.mode) for h in found] == [
        ("a", "xvdb", "rw shared"),
        ("b", "xvdc", "ro"),
    ]


def test_next_target_skips_used_devices() -> None:
    disks = [Disk("xvda", "/a"), Disk("xvdb", "/b"), Disk("xvdd", "/d")]
    assert next_target(disks, "xvd") == "xvdc"
    assert next_target([], "vd") == "vdb"
    full = [Disk(f"vd{c}", "/x") for c in "abcdefghijklmnopqrstuvwxyz"]
    assert next_target(full, "vd") == "vdaa"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quorum", "quorum"),
        ("quorum.img", "quorum"),
        ("db-cluster_01", "db-cluster_01"),
        ("v1.2", "v1.2"),
    ],
)
def test_good_names(text: str, expected: str) -> None:
    assert disk_name(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a/b",
        "../etc",
        "x..y",
        "x; touch /tmp/pwned",
        "$(id)",
        "a b",
        "-rf",
        ".hidden",
        "`x`",
        "a" * 65,
        "é",
    ],
)
def test_bad_names(text: str) -> None:
    with pytest.raises(BadInput):
        disk_name(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10G", 10 * 1024**3),
        ("512M", 512 * 1024**2),
        ("1T", 1024**4),
        ("2GiB", 2 * 1024**3),
        ("4g", 4 * 1024**3),
        ("1048576", 1024**2),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert disk_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "10X", "-1G", "1.5G", "10 G B", "1K", "0M"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(BadInput):
        disk_size(text)


def test_disk_path() -> None:
    assert disk_path("/OVS/", "quorum") == PATH
