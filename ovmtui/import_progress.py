"""An import's progress as the operator reads it: bytes, rate, time left (pure)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

from ovmtui import format as fmt

Phase = Literal["checking", "downloading", "verifying", "unpacking", "placing", "done"]
# The rate is measured over the last few seconds: the whole run's average hides a stall,
# one interval's jitters.
RATE_WINDOW_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """One reading of an import in flight."""

    phase: Phase
    elapsed_s: float
    done_bytes: int = 0
    total_bytes: int | None = None  # None: the server did not say
    bytes_per_s: float | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total_bytes:
            return None
        return max(0.0, min(1.0, self.done_bytes / self.total_bytes))

    @property
    def percent(self) -> int | None:
        fraction = self.fraction
        return None if fraction is None else int(fraction * 100)

    @property
    def eta_s(self) -> float | None:
        if not self.total_bytes or not self.bytes_per_s:
            return None
        return max(0.0, (self.total_bytes - self.done_bytes) / self.bytes_per_s)


def describe(progress: ImportProgress) -> str:
    """One line: ``downloading 45 % 1.2 GiB of 2.6 GiB, 85 MiB/s, 17 s left``."""
    if progress.phase != "downloading":
        return progress.phase
    parts = ["downloading"]
    if progress.percent is not None:
        parts.append(f"{progress.percent} %")
    amount = fmt.size(progress.done_bytes)
    if progress.total_bytes is not None:
        amount += f" of {fmt.size(progress.total_bytes)}"
    parts.append(amount)
    line = " ".join(parts)
    if progress.bytes_per_s is not None:
        line += f", {fmt.size(int(progress.bytes_per_s))}/s"
    if (eta := progress.eta_s) is not None:
        line += f", {fmt.duration(eta)} left"
    return line


class RateMeter:
    """Bytes per second over the last ``RATE_WINDOW_S`` of readings."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at_s: float, done_bytes: int) -> float | None:
        """Take a reading; the rate, once two readings are apart in time."""
        samples = self._samples
        samples.append((at_s, done_bytes))
        while len(samples) > 2 and at_s - samples[1][0] >= self._window_s:
            samples.popleft()
        first_at, first_bytes = samples[0]
        if at_s <= first_at:
            return None
        return max(0.0, (done_bytes - first_bytes) / (at_s - first_at))
