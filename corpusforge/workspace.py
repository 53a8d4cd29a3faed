"""The workspace: every path the platform writes is derived here, never typed by a user.

Layout (see docs/architecture.md)::

    <root>/<dataset>/stages/<step>/        pipeline stages (data, _stats.json, _rejects/, _SUCCESS)
    <root>/<dataset>/validation/<run>/     GX results, summary, Data Docs
    <root>/releases/<dataset>/<version>/   releases
    <root>/annotation/label-studio/        the local Label Studio's data dir (its database)
    <root>/.cache/file-hashes.json         sha256 of input files by (path, size, mtime)

Dataset names and release versions are checked against strict patterns before they become path
components, and every derived path must resolve inside the root: a name such as ``../x`` or
``/etc``, a version such as ``1.0.0/../../x``, or a folder of the workspace that is a symlink to
somewhere else is a :class:`WorkspaceError`, never a path outside the workspace.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.errors import CorpusforgeError
from pipelines.core.fileio import atomic_write_json, sha256_file

DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class WorkspaceError(CorpusforgeError):
    pass


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, path: Path | str) -> "Workspace":
        return cls(Path(path).expanduser().resolve())

    def _inside(self, path: Path) -> Path:
        """``path`` if it resolves (symlinks followed) inside the root; else a :class:`WorkspaceError`."""
        root = self.root.resolve()
        resolved = path.resolve()
        if resolved != root and not resolved.is_relative_to(root):
            raise WorkspaceError(
                f"{path} resolves to {resolved}, outside the workspace {root} (a symlink?): every path the "
                f"platform writes stays in the workspace; replace the link by a folder, or choose another workspace"
            )
        return path

    def _dataset(self, dataset: str) -> Path:
        if not isinstance(dataset, str) or not DATASET_NAME.fullmatch(dataset):
            raise WorkspaceError(f"invalid dataset name {dataset!r}: use lowercase letters, digits, '-' and '_' "
                                 f"(at most 64, starting with a letter or digit; no '/', '..' or absolute paths)")
        return self._inside(self.root / dataset)

    def stages(self, dataset: str) -> Path:
        return self._inside(self._dataset(dataset) / "stages")

    def validation(self, dataset: str) -> Path:
        return self._inside(self._dataset(dataset) / "validation")

    @property
    def releases(self) -> Path:
        return self._inside(self.root / "releases")

    @property
    def annotation(self) -> Path:
        """Annotation servers' data: persistent, since the human labels live there."""
        return self._inside(self.root / "annotation")

    @property
    def media(self) -> Path:
        """The only folder the local Label Studio serves files from (its local-files document root):
        ``annotation/media/<dataset>/`` holds the files annotators are shown (reLAIONet's images)."""
        return self._inside(self.annotation / "media")

    def release_dir(self, dataset: str, version: str) -> Path:
        from releases.versions import validate_version

        try:
            validate_version(version)
        except ValueError as exc:
            raise WorkspaceError(str(exc)) from None
        return self._inside(self.releases / self._dataset(dataset).name / version)

    # -- content hashes of inputs, cached so that a rerun over large dumps does not re-read them

    def hash_file(self, path: Path) -> str:
        path = Path(path).resolve()
        st = path.stat()
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
        cache_file = self.root / ".cache" / "file-hashes.json"
        cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        if key not in cache:
            cache[key] = sha256_file(path)
            atomic_write_json(cache_file, cache)  # whole-file rename: a crash leaves the old cache
        return cache[key]
