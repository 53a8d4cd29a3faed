"""Dataset names and semantic versions of releases.

Releases live at ``<releases_root>/<dataset>/<X.Y.Z>/``. Both path components are validated
against strict patterns, so that a spec can never write outside its dataset folder.

``next_version`` rules (documented choice):

* from the highest existing ``X.Y.Z`` folder: ``major`` -> ``X+1.0.0``, ``minor`` -> ``X.Y+1.0``,
  ``patch`` -> ``X.Y.Z+1``;
* with no release yet: ``major`` -> ``1.0.0``; ``minor`` and ``patch`` -> ``0.1.0`` (the first
  public version of a dataset that is still settling; a patch of nothing makes no sense, so it
  starts the 0.x line as well).

Hidden temporary folders (``.<version>.tmp-...``) and names that are not strict semver are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from releases.errors import InvalidReleaseSpecError

DATASET_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
BUMPS = ("major", "minor", "patch")


def validate_dataset_name(dataset: str) -> str:
    # fullmatch: ``$`` alone would accept a trailing newline
    if not isinstance(dataset, str) or not DATASET_RE.fullmatch(dataset) or len(dataset) > 100:
        raise InvalidReleaseSpecError(
            f"invalid dataset name {dataset!r}: use lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit (pattern ^[a-z0-9][a-z0-9_-]*$)"
        )
    return dataset


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``; raises :class:`InvalidReleaseSpecError` unless strict X.Y.Z."""
    m = VERSION_RE.fullmatch(version) if isinstance(version, str) else None
    if m is None:
        raise InvalidReleaseSpecError(
            f"invalid version {version!r}: releases use semantic versions X.Y.Z (digits only, no leading zeros; "
            "never a path such as '../x' or '/abs')"
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def validate_version(version: str) -> str:
    parse_version(version)
    return version


def list_versions(releases_root: str | Path, dataset: str) -> list[str]:
    """Existing release versions of ``dataset``, oldest first (semver order)."""
    validate_dataset_name(dataset)
    ds_dir = Path(releases_root) / dataset
    if not ds_dir.is_dir():
        return []
    found = [p.name for p in ds_dir.iterdir() if p.is_dir() and not p.is_symlink() and VERSION_RE.fullmatch(p.name)]
    return sorted(found, key=parse_version)


def latest_version(releases_root: str | Path, dataset: str) -> str | None:
    versions = list_versions(releases_root, dataset)
    return versions[-1] if versions else None


def bump_version(version: str | None, bump: str) -> str:
    if bump not in BUMPS:
        raise ValueError(f"bump must be one of {BUMPS}, not {bump!r}")
    if version is None:
        return "1.0.0" if bump == "major" else "0.1.0"
    major, minor, patch = parse_version(version)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def next_version(releases_root: str | Path, dataset: str, bump: str = "patch") -> str:
    """The version a new release of ``dataset`` should get (see the module docstring)."""
    return bump_version(latest_version(releases_root, dataset), bump)
