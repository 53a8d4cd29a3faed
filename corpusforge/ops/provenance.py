"""What a release manifest records about its inputs and settings, independent of where they live.

A release must be byte-identical when the same inputs, settings and labels are built in another
workspace or a fresh clone (see docs/architecture.md, Reproducibility). Absolute paths would break
that, so the manifest names an input file by its file name and identifies it by content
(sha256, bytes); the absolute paths stay in the workspace's ``_build.json``, which is local.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any, Mapping

from pydantic import BaseModel


def portable_settings(section: BaseModel) -> dict[str, Any]:
    """``section`` as JSON-able data (like ``describe``), every path setting replaced by its name."""
    return _replace_paths(section.model_dump(mode="python"), section.model_dump(mode="json"))


def _replace_paths(python: Any, as_json: Any) -> Any:
    # The python dump says where the paths are; the json dump gives every other value as `describe` does.
    if isinstance(python, PurePath):
        return python.name
    if isinstance(python, Mapping) and isinstance(as_json, Mapping) and len(python) == len(as_json):
        return {k: _replace_paths(p, j) for (_, p), (k, j) in zip(python.items(), as_json.items())}
    if isinstance(python, (list, tuple)) and isinstance(as_json, list) and len(python) == len(as_json):
        return [_replace_paths(p, j) for p, j in zip(python, as_json)]
    return as_json


def portable_file(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A ``{"path", "sha256", "bytes", ...}`` input record with ``path`` replaced by ``name``."""
    if record is None:
        return None
    out = {k: v for k, v in record.items() if k != "path"}
    if "path" in record and "name" not in record:
        out = {"name": Path(record["path"]).name, **out}
    return out
