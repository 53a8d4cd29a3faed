"""Errors with messages that say what went wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class CorpusforgeError(Exception):
    """Base of the errors the command line reports without a traceback."""


class InputError(CorpusforgeError):
    """Bad input that cannot be quarantined record by record (a whole file is unusable)."""

    def __init__(self, path: Path | str, problem: str, fix: str, line: int | None = None) -> None:
        where = f"{path}" if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {problem}. {fix}")
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.fix = fix

    def __reduce__(self):
        # Rebuilt from the constructor's arguments (not ``args``, which holds the message), so
        # the error survives the trip back from a worker process or a Ray task.
        return (InputError, (self.path, self.problem, self.fix, self.line))


class TruncatedInputError(InputError):
    """A compressed file ends in the middle of its data."""

    def __init__(self, path: Path | str, complete_lines: int) -> None:
        super().__init__(
            path,
            f"the file is truncated (its compressed stream ends early, after {complete_lines:,} complete lines)",
            "Re-download or re-copy it; to use the complete lines anyway, set "
            "sources.on_truncated = \"quarantine\" for this pipeline.",
        )
        self.complete_lines = complete_lines

    def __reduce__(self):
        return (TruncatedInputError, (self.path, self.complete_lines))


class PipelineDeclarationError(CorpusforgeError):
    """A pipeline's steps do not fit together (checked before any data moves)."""


class StepOutputError(CorpusforgeError):
    """A step produced data that does not match what it declared."""
