"""The little the async and sync clients do differently besides awaiting (not generated)."""

from __future__ import annotations

import time


def sleep(seconds: float) -> None:
    time.sleep(seconds)
