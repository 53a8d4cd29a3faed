"""Progress reporting hooks of the executors; the command line renders them as rich bars.

Kept free of heavy imports so that the command line can load it at start-up.
"""

from __future__ import annotations

from typing import Any


class Progress:
    """No-op hooks; subclasses display them."""

    def step_started(self, step: str, total: int, unit: str) -> None: ...
    def advance(self, step: str, n: int = 1) -> None: ...
    def step_finished(self, step: str, skipped: bool, stats: dict[str, Any]) -> None: ...


NO_PROGRESS = Progress()
