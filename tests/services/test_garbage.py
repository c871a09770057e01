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
