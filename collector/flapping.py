"""Flap detection as Icinga 2 does it: a ring of the last 20 results, each a bit saying "the state changed here".

The state-change percentage weighs recent changes more (0.8 for the oldest slot up to 1.18 for the newest) and
divides by 20: a series that changed state on every one of its last 20 results scores about 100 %. A series
starts flapping above the high threshold (30 %) and stops at or below the low one (25 %); while it flaps its
incident stays open, says so, and sends nothing.

The ring is an int (bit 0 the newest result), so a steady series whose ring has emptied costs one test per
result on the ingest path.
"""

from __future__ import annotations

from dataclasses import dataclass

RING = 20
MASK = (1 << RING) - 1
OLDEST_WEIGHT = 0.8
WEIGHT_STEP = 0.02
"""Weights rise by this per slot from the oldest (0.8) to the newest (0.8 + 19 × 0.02 = 1.18)."""
HIGH = 30.0
LOW = 25.0


@dataclass(frozen=True)
class Thresholds:
    high: float = HIGH
    low: float = LOW
    enabled: bool = True


def record(ring: int, changed: bool) -> int:
    """The ring after one more result: shift the oldest out, the newest in."""
    return ((ring << 1) | changed) & MASK


def percent(ring: int) -> float:
    """Weighted state-change percentage of the ring (0–100 after a full ring of changes, about 99.8)."""
    total = 0.0
    newest_first = ring
    slot = 0
    while newest_first:
        if newest_first & 1:
            total += OLDEST_WEIGHT + WEIGHT_STEP * (RING - 1 - slot)
        newest_first >>= 1
        slot += 1
    return 100.0 * total / RING


def is_flapping(was_flapping: bool, pct: float, thresholds: Thresholds) -> bool:
    """Above `high` starts flapping; a flapping series stops only at or below `low`."""
    if not thresholds.enabled:
        return False
    return pct > thresholds.low if was_flapping else pct > thresholds.high
