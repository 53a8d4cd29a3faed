"""Exceptions of the release layer. All derive from :class:`ReleaseError`."""

from __future__ import annotations


class ReleaseError(Exception):
    """Base class of every error raised by ``releases``."""


class InvalidReleaseSpecError(ReleaseError, ValueError):
    """The spec cannot be released as given (bad name or version, missing columns, duplicate keys...)."""


class ReleaseExistsError(ReleaseError, FileExistsError):
    """``<releases_root>/<dataset>/<version>`` already exists: released versions are immutable."""

    def __init__(self, message: str, *, path: str = "", suggested_version: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.suggested_version = suggested_version

    def __str__(self) -> str:  # FileExistsError would otherwise format errno-style
        return self.args[0] if self.args else ""


class ReleaseNotFoundError(ReleaseError, FileNotFoundError):
    """The folder is not a release (no manifest.json), or does not exist."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


class UnknownConfigError(ReleaseError, ValueError):
    """A config (or split) that the release does not have; the message names the available ones."""
