"""Validation verdicts recorded next to a candidate's fingerprint, shared by every dataset's ops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.fileio import read_json


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
