"""Releases: write, verify, diff and load versioned dataset releases.

Imports ``schemas`` only; pipelines and validation results reach it as plain data
(frames, and the validation summary as a dict inside ``manifest_extra``).
"""

from releases.diff import ConfigDiff, DiffReport, diff_releases
from releases.errors import (
    InvalidReleaseSpecError,
    ReleaseError,
    ReleaseExistsError,
    ReleaseNotFoundError,
    UnknownConfigError,
)
from releases.manifest import load_release, read_manifest
from releases.spec import CardText, ReleaseSpec
from releases.verify import VerifyReport, verify_release
from releases.versions import latest_version, list_versions, next_version
from releases.writer import write_release

__all__ = [
    "CardText",
    "ConfigDiff",
    "DiffReport",
    "InvalidReleaseSpecError",
    "ReleaseError",
    "ReleaseExistsError",
    "ReleaseNotFoundError",
    "ReleaseSpec",
    "UnknownConfigError",
    "VerifyReport",
    "diff_releases",
    "latest_version",
    "list_versions",
    "load_release",
    "next_version",
    "read_manifest",
    "verify_release",
    "write_release",
]
