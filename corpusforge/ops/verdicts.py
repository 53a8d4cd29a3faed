"""Validation verdicts recorded next to a candidate's fingerprint, shared by every dataset's ops."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipelines.core.errors import CorpusforgeError
from pipelines.core.fileio import atomic_write_json, read_json


def find_verdict(validation_root: Path, fingerprint: str | None, **match: Any) -> dict[str, Any] | None:
    """The newest run under ``validation_root`` whose ``candidate.json`` has ``fingerprint``
    (and every ``match`` key equal), with its ``summary`` and ``dir`` added; None if none."""
    if fingerprint is None or not validation_root.exists():
        return None
    for run in sorted(validation_root.iterdir(), reverse=True):
        rec = run / "candidate.json"
        if not rec.exists():
            continue
        data = read_json(rec)
        if data.get("candidate_fingerprint") == fingerprint and all(data.get(k) == v for k, v in match.items()):
            data["summary"] = read_json(run / "summary.json") if (run / "summary.json").exists() else {}
            data["dir"] = str(run)
            return data
    return None


class ReleaseRefused(CorpusforgeError):
    """A release that may not be written (no build, failed validation, ...); the message says what to do."""


def release_verdict(
    version: str | None, bump: str | None, fingerprint: str | None, no_build: str,
    latest: Callable[[], dict[str, Any] | None], validate: Callable[[], Any],
) -> tuple[dict[str, Any], bool, list[str]]:
    """What every release checks first: exactly one of ``version`` / ``bump``, a completed build
    (``fingerprint``; ``no_build`` says how to make one), and a verdict for it, validating now when
    there is none. Returns (verdict, validated_now, names of failed checks); the caller refuses a
    failed verdict with its own advice. Raises :class:`ReleaseRefused` for the first two."""
    if (version is None) == (bump is None):
        raise ReleaseRefused("give exactly one of --version X.Y.Z or --bump major|minor|patch")
    if fingerprint is None:
        raise ReleaseRefused(no_build)
    verdict = latest()
    validated_now = verdict is None
    if verdict is None:
        validate()
        verdict = latest()
        assert verdict is not None
    failed = [c["name"] for c in verdict["summary"].get("checks", []) if not c.get("success")]
    return verdict, validated_now, failed


def new_run_id() -> str:
    """A validation run's folder name: the UTC time, sortable."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def validate_candidate(
    validation_root: Path, fingerprint: str | None, run: Callable[[Path], Any], *, run_id: str | None = None,
    validation_key: str | None = None, **record: Any,
) -> Any:
    """Run one validation (``run(out_dir)`` returns a report with ``success``) into
    ``<validation_root>/<run id>/`` and record its verdict beside it (``candidate.json``): the
    candidate's ``fingerprint``, what else the verdict depends on (``validation_key``, ``record``),
    success and run id. :func:`find_verdict` reads it back."""
    run_id = run_id or new_run_id()
    out_dir = validation_root / run_id
    report = run(out_dir)
    key = {} if validation_key is None else {"validation_key": validation_key}
    atomic_write_json(out_dir / "candidate.json", {
        "candidate_fingerprint": fingerprint, **key, **record, "success": report.success, "run": run_id,
    })
    return report


@dataclass
class ReleaseOutcome:
    """What every dataset's ``release`` returns; ``details`` holds what one dataset adds (the
    released languages, statistics, ...)."""

    path: Path
    version: str
    validated_now: bool
    counts: dict[str, dict[str, int]]  # config -> split -> rows
    details: dict[str, Any] = field(default_factory=dict)
