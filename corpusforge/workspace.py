"""The workspace: every path the platform writes is derived here, never typed by a user.

Layout (see docs/architecture.md)::

    <root>/<dataset>/stages/<step>/        pipeline stages (data, _stats.json, _rejects/, _SUCCESS)
    <root>/<dataset>/validation/<run>/     GX results, summary, Data Docs
    <root>/releases/<dataset>/<version>/   releases
    <root>/annotation/label-studio/        the local Label Studio's data dir (its database)
    <root>/.cache/file-hashes.json         sha256 of input files by (path, size, mtime)
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

    def _dataset(self, dataset: str) -> Path:
        if not DATASET_NAME.match(dataset):
            raise WorkspaceError(f"invalid dataset name {dataset!r}: use lowercase letters, digits, '-' and '_'")
        return self.root / dataset

    def stages(self, dataset: str) -> Path:
        return self._dataset(dataset) / "stages"

    def validation(self, dataset: str) -> Path:
        return self._dataset(dataset) / "validation"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def annotation(self) -> Path:
        """Annotation servers' data: persistent, since the human labels live there."""
        return self.root / "annotation"

    def release_dir(self, dataset: str, version: str) -> Path:
        return self.releases / self._dataset(dataset).name / version

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
