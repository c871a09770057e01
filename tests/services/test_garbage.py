"""The garbage policy: young collections and a freeze after each snapshot, a full release
at long intervals."""

from __future__ import annotations

import gc
import weakref

from ovmtui.services import garbage
from ovmtui.services.garbage import GarbagePolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_freezes_survivors_and_releases_them_at_long_intervals() -> None:
    now = [0.0]
    policy = GarbagePolicy(clock=lambda: now[0])
    try:
        kept = [Node() for _ in range(100)]
        plain = weakref.ref(kept[50])
        policy.after_publish()
        assert gc.get_freeze_count() >= 100  # the survivors are out of the collector's reach
        # Frozen objects are still freed by reference counting...
        a, b = kept[0], kept[1]
        a.other, b.other = b, a
        cycle = weakref.ref(a)
        del kept, a, b
        assert plain() is None
        # ...but a frozen cycle waits for the release: collections do not see it.
        policy.after_publish()
        gc.collect()
        assert cycle() is not None
        now[0] += garbage.RELEASE_EVERY_S
        policy.after_publish()
        assert cycle() is None
    finally:
        gc.unfreeze()


def test_disabled_policy_does_nothing() -> None:
    gc.unfreeze()
    GarbagePolicy(enabled=False).after_publish()
    assert gc.get_freeze_count() == 0


def test_first_round_runs_without_automatic_collection() -> None:
    assert gc.isenabled()
    policy = GarbagePolicy()
    try:
        policy.before_first_poll()
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0  # start-up's objects are out of the way too
        a, b = Node(), Node()
        a.other, b.other = b, a
        cycle = weakref.ref(a)
        del a, b
        # The first snapshot is frozen as it is: no collection walks the new estate...
        policy.after_publish()
        assert gc.isenabled()
        assert cycle() is not None
        # ...and the round's cyclic garbage goes at the release, like any frozen cycle.
        policy.before_first_poll()  # once per policy
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def test_stopping_before_any_snapshot_restores_the_collector() -> None:
    policy = GarbagePolicy()
    try:
        policy.before_first_poll()
        policy.stop()
        assert gc.isenabled()
        frozen = gc.get_freeze_count()
        kept = [Node() for _ in range(100)]
        policy.after_publish()  # a late snapshot does not turn it off again...
        assert gc.isenabled()
        assert gc.get_freeze_count() == frozen  # ...nor collect or freeze anything
        del kept
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_collector_disabled_by_someone_else_stays_disabled() -> None:
    gc.disable()
    policy = GarbagePolicy()
    try:
        policy.before_first_poll()
        policy.after_publish()
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
