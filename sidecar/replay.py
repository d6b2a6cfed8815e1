"""Sliding-window replay protection for per-sender packet counters.

Same scheme as IPsec/WireGuard: remember the highest counter seen and a bitmap
of the WINDOW counters below it. `check` is cheap and done before decryption;
`accept` is done only after the packet authenticated, so forged packets cannot
move the window.
"""

from __future__ import annotations

WINDOW = 2048


class ReplayWindow:
    __slots__ = ("bitmap", "highest")

    def __init__(self) -> None:
        self.highest = -1
        self.bitmap = 0  # bit i set: counter (highest - i) was seen

    def check(self, counter: int) -> bool:
        """True if the counter is new and inside the window."""
        if counter > self.highest:
            return True
        offset = self.highest - counter
        if offset >= WINDOW:
            return False
        return not (self.bitmap >> offset) & 1

    def accept(self, counter: int) -> bool:
        """Record an authenticated counter; False if it was a replay after all."""
        if counter > self.highest:
            shift = counter - self.highest
            self.bitmap = (
                ((self.bitmap << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            )
            self.highest = counter
            return True
        offset = self.highest - counter
        if offset >= WINDOW or (self.bitmap >> offset) & 1:
            return False
        self.bitmap |= 1 << offset
        return True
