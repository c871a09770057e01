"""State drift: what the repository records and no host confirms.

Oracle VM's manager kept VMs "stuck in Shutting Down" when a host went away or rebooted
under it, and operators fixed that with hand-written SQL. Here a VM recorded as active (by
an earlier run, or in a restored repository) that no answering host reports is kept and
flagged instead of silently forgotten; a reconcile, backed up first and journaled, makes
the repository agree with the hosts.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ovmtui.format import timestamp
from ovmtui.model import VmState


@dataclass(frozen=True, slots=True)
class DriftedVm:
    pool: str
    host: str
    uuid: str
    name: str
    recorded_state: VmState
    seen_at: float | None  # when a host last reported it
    drift_since: float  # when a host answered without it

    @property
    def command(self) -> str:
        return f"ovmtui reconcile {shlex.quote(self.uuid)}"

    def describe(self) -> str:
        seen = "never seen live" if self.seen_at is None else "last seen " + timestamp(self.seen_at)
        return (
            f"{self.name}: recorded {self.recorded_state.value} on {self.pool}/{self.host} "
            f"({seen}); no host reports it now"
        )

    @property
    def change(self) -> str:
        """What a reconcile does to it, in words."""
        return f"forget {self.name} ({self.uuid}): the repository stops showing it on {self.host}"
