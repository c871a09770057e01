"""Which host of a pool does its file work: the utility host, else any that answers.

Oracle VM gives one host of a pool (or several) the ``utility`` role: it reads and writes the
pool's shared storage (listings, imports, new shared disks) so that the hosts running VMs are
spared. ovmtui picks the first reachable host with the role, in the estate file's order; when
none answers, any reachable host of the pool, and says so; when no host answers, none, with why.
"""

from __future__ import annotations

from dataclasses import dataclass

from ovmtui.model import EstateSnapshot, HostRole, HostStatus


@dataclass(frozen=True, slots=True)
class UtilityChoice:
    """The host picked for a pool's file work, or None with why (``why``)."""

    pool: str
    host: HostStatus | None
    # Set when the host is not a utility host ("no utility host answered: …"), or, with no
    # host, why there is none.
    note: str | None = None

    @property
    def name(self) -> str | None:
        return None if self.host is None else self.host.name


def pick_utility_host(snapshot: EstateSnapshot, pool: str) -> UtilityChoice:
    """The host through which ``pool``'s storage is read and written (see the module doc).

    Reachable means the host's last poll answered (``reachable is True``); a host not asked
    yet (None) is not picked while one that answered is, but is better than nothing.
    """
    hosts = [host for host in snapshot.hosts if host.pool == pool]
    if not hosts:
        return UtilityChoice(pool, None, f"pool {pool} has no hosts")
    utility = [host for host in hosts if HostRole.UTILITY in host.roles]
    for host in utility:
        if host.reachable is True:
            return UtilityChoice(pool, host)
    if utility:
        names = ", ".join(host.name for host in utility)
        lead = f"no utility host answered ({names})"
    else:
        lead = "the pool has no utility host"
    for host in hosts:
        if host.reachable is True:
            return UtilityChoice(pool, host, f"{lead}: read through {host.name}")
    for host in utility + [h for h in hosts if h not in utility]:
        if host.reachable is None:
            return UtilityChoice(pool, host, f"{lead}: trying {host.name}, not polled yet")
    return UtilityChoice(pool, None, f"{lead}, and no host of pool {pool} answers")
