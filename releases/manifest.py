"""manifest.json and checksums.sha256 of a release, and loading a release with `datasets`.

* ``manifest.json``: dataset, version, ``created_at`` (the only time stamp of a release), one
  entry per config (primary key, split column, columns, rows per split, files), ``files``
  (sha256 and size of every data file and of README.md), the versions of the writing libraries,
  and whatever the caller passed as ``manifest_extra`` (inputs, config, code revision,
  validation summary).
* ``checksums.sha256``: ``<sha256>  <relpath>`` lines (``sha256sum -c`` format) for every file
  of the release except itself, manifest.json included.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from releases.errors import ReleaseNotFoundError, UnknownConfigError

MANIFEST_NAME = "manifest.json"
CHECKSUMS_NAME = "checksums.sha256"
CARD_NAME = "README.md"
FORMAT = "corpusforge-release/1"


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_record(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return {"sha256": file_sha256(p), "bytes": p.stat().st_size}


def manifest_json(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n").encode("utf-8")


def checksums_text(records: Mapping[str, str]) -> str:
    """``{relpath: sha256}`` -> the text of checksums.sha256 (sorted by path, POSIX separators)."""
    lines = []
    for rel in sorted(records):
        if "\n" in rel or "\\" in rel:
            raise ValueError(f"unsupported file name in a release: {rel!r}")
        lines.append(f"{records[rel]}  {rel}\n")
    return "".join(lines)


def parse_checksums(text: str) -> tuple[dict[str, str], list[str]]:
    """checksums.sha256 text -> (``{relpath: sha256}``, malformed lines)."""
    records: dict[str, str] = {}
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep:  # sha256sum's binary mode marker: "<hex> *<path>"
            digest, sep, rel = line.partition(" *")
        if not sep or len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest.lower()) or not rel:
            bad.append(line)
            continue
        records[rel] = digest.lower()
    return records, bad


def read_manifest(release_dir: str | Path) -> dict[str, Any]:
    path = Path(release_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ReleaseNotFoundError(f"{release_dir} is not a release: it has no {MANIFEST_NAME}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def writer_versions() -> dict[str, str]:
    import datasets
    import polars
    import pyarrow

    return {"datasets": datasets.__version__, "pyarrow": pyarrow.__version__, "polars": polars.__version__}


def build_manifest(
    *,
    dataset: str,
    version: str,
    created_at: str,
    configs: Mapping[str, Any],
    files: Mapping[str, Mapping[str, Any]],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "dataset": dataset,
        "version": version,
        "created_at": created_at,
        "configs": dict(configs),
        "files": {rel: dict(files[rel]) for rel in sorted(files)},
        "writer": writer_versions(),
    }
    for key, value in extra.items():
        manifest[key] = value
    return manifest


def release_configs(release_dir: str | Path) -> list[str]:
    return list(read_manifest(release_dir)["configs"])


def load_release(
    release_dir: str | Path,
    config: str,
    split: str | None = None,
    *,
    cache_dir: str | Path | None = None,
    **load_kwargs: Any,
):
    """``datasets.load_dataset(release_dir, config, split=split)``, offline.

    Raises :class:`UnknownConfigError` naming the available configs (and splits) when asked for
    one the release does not have. Returns a ``DatasetDict`` (or a ``Dataset`` with ``split``).
    """
    # These only take effect if `datasets`/`huggingface_hub` are not imported yet; a local folder
    # needs no network anyway.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    release_dir = Path(release_dir)
    manifest = read_manifest(release_dir)
    configs = manifest.get("configs", {})
    if config not in configs:
        raise UnknownConfigError(
            f"release {manifest.get('dataset')} {manifest.get('version')} has no config {config!r}; "
            f"available configs: {', '.join(configs) or '(none)'}"
        )
    splits = configs[config].get("splits", {})
    if split is not None and split not in splits:
        raise UnknownConfigError(
            f"config {config!r} of release {manifest.get('dataset')} {manifest.get('version')} has no split "
            f"{split!r}; available splits: {', '.join(splits)}"
        )
    import datasets

    return datasets.load_dataset(
        str(release_dir),
        config,
        split=split,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
        **load_kwargs,
    )


def iter_release_files(release_dir: str | Path) -> Iterable[str]:
    """Every regular file under ``release_dir`` as a POSIX relpath, sorted."""
    root = Path(release_dir)
    out = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            out.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(out)
