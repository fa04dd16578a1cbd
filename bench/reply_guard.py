"""The reply guard on hostile drafts: 64 KiB against 8 KiB of the same shapes (linear = 8x)."""

from __future__ import annotations

import time

from kruxt.agents.knowledge import ReplyGuard

SMALL = 8 * 1024
LARGE = 64 * 1024
ROUNDS = 3
# Shapes that make backtracking patterns quadratic: runs without the character a pattern
# waits for, repeated half-promises and half-links.
SHAPES = ("a", "a.", "x@", " ", "we have ", "your account is ", "http://", "<ticket ", "\u200b")


def _seconds(guard: ReplyGuard, size: int) -> float:
    texts = [(shape * (size // len(shape) + 1))[:size] for shape in SHAPES]
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for text in texts:
            guard.refusal(text)
    return time.perf_counter() - started


def run() -> str:
    """Time the guard on both sizes; return the report line."""
    guard = ReplyGuard()
    small = _seconds(guard, SMALL)
    large = _seconds(guard, LARGE)
    return (
        f"reply guard: {large / (ROUNDS * len(SHAPES)) * 1e3:,.1f} ms per 64 KiB draft; "
        f"64 KiB takes {large / small:,.1f}x the time of 8 KiB (linear: 8x)"
    )


if __name__ == "__main__":
    print(run())
