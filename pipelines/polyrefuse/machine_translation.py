"""The model steps of the PolyRefuse build: ``translate`` and ``back_translate``.

Both are map steps over partitions of prompts (by prompt id), so that a large run is split into
tasks that the local executor runs in worker processes and the Ray executor on a cluster, with
the same code. Each task builds its backend from the settings (:func:`make_backend`; a loaded
model is kept per process, so the partitions a worker runs share one load) and calls
:func:`~pipelines.polyrefuse.translate.translate_all` with the workspace's
:class:`~pipelines.polyrefuse.translate.TranslationCache`. The cache, not the stage, is what makes
a crash cheap: every finished batch is committed to it, so a rerun after a crash (or with more
languages, or another partitioning) sends only the texts that are not in it yet.

``translate``: for every prompt of the partition and every configured language but English, a
request ``en -> lang``. A backend that returns nothing (or only whitespace) for a text leaves the
row's translation null: the ``empty`` check flags it, the row waits for proofreading, and
validation names it; empty outputs are never cached, so a later run with another model retries
them. Counters: ``translated``, ``cached``, ``failed_empty`` per task.

``back_translate``: every non-empty translation back into English with the back-translation
backend (``translation.back_translation``); the ``back_translation`` check scores it against the
English prompt (chrF and BLEU).

The cache path is where the cache lives, not what it holds: it is excluded from the fingerprint.
The model's identity is in it instead (``model_version``: a hash of the model directory's files,
or the served model's id), so that replacing the weights behind the same path rebuilds.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.step import StepResult
from pipelines.polyrefuse.published import TRANSLATIONS_SCHEMA
from pipelines.polyrefuse.settings import SOURCE_LANGUAGE, ModelSettings
from pipelines.polyrefuse.translate import Backend, TranslationCache, TranslationRequest, fingerprint_model_dir, translate_all

BACK_TRANSLATIONS_SCHEMA = pl.Schema({
    "prompt_id": pl.String, "lang": pl.String, "back_translation": pl.String,
    "back_translation_model": pl.String, "back_translation_model_version": pl.String,
})


class ModelStepParams(BaseModel):
    """What a model step needs; ``cache_path`` is excluded from the fingerprint (see module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    model: ModelSettings
    model_identity: str = Field(description="model_version of the backend, computed when the build starts.")
    languages: tuple[str, ...]
    cache_path: str = Field(exclude=True)


def make_backend(backend: str, model: ModelSettings) -> Backend:
    """A translation backend from settings (local models load lazily, on their first batch)."""
    if backend == "seq2seq":
        from pipelines.polyrefuse.translate import Seq2SeqBackend

        return Seq2SeqBackend(
            model.model_dir, kind=model.seq2seq_kind, device=model.device, batch_size=model.batch_size,
            max_new_tokens=model.max_new_tokens, num_beams=model.num_beams, dtype=model.dtype, model_name=model.model,
        )
    if backend == "causal":
        from pipelines.polyrefuse.translate import CausalBackend

        return CausalBackend(
            model.model_dir, device=model.device, batch_size=model.batch_size, max_new_tokens=model.max_new_tokens,
            dtype=model.dtype, model_name=model.model,
        )
    if backend == "http":
        from pipelines.polyrefuse.translate import HttpBackend

        return HttpBackend(
            model.url, model.model, api_key_env=model.api_key_env, timeout=model.timeout,
            concurrency=model.concurrency, max_tokens=model.max_new_tokens,
        )
    raise ValueError(f"unknown model backend {backend!r}; use seq2seq, causal or http")


_BACKENDS: dict[tuple[str, str], Backend] = {}
_LOCK = threading.Lock()


def _backend(backend: str, model: ModelSettings) -> Backend:
    """One backend object per process and settings (a loaded model serves every partition)."""
    key = (backend, model.model_dump_json())
    with _LOCK:
        if key not in _BACKENDS:
            _BACKENDS[key] = make_backend(backend, model)
        return _BACKENDS[key]


def model_identity(backend: str, model: ModelSettings) -> str:
    """What identifies the outputs of a model before any is made: the local directory's file
    hash, or for a server its reported model id (one cheap request: it also checks the server)."""
    if backend in ("seq2seq", "causal"):
        from pipelines.core.models import require_model_dir

        return fingerprint_model_dir(require_model_dir(model.model_dir, backend))
    return _backend(backend, model).model_version


def _translate(requests: list[TranslationRequest], params: ModelStepParams):
    backend = _backend(params.backend, params.model)
    Path(params.cache_path).parent.mkdir(parents=True, exist_ok=True)
    with TranslationCache(params.cache_path) as cache:
        return translate_all(requests, backend, cache, batch_size=params.model.batch_size)


def _counters(report: Any, prefix: str = "") -> dict[str, int]:
    out = {f"{prefix}translated": report.translated, f"{prefix}cached": report.cached}
    for reason, n in report.failure_reasons.items():
        out[f"{prefix}failed_{reason}"] = n
    return out


def translate_partition(frames: dict[str, pl.DataFrame], params: ModelStepParams) -> StepResult:
    """Translate the partition's English prompts into every configured language."""
    prompts = frames["prompts"].select("prompt_id", "instruction_en")
    requests = [
        TranslationRequest(f"{pid}:{lang}", text, SOURCE_LANGUAGE, lang)
        for lang in params.languages
        for pid, text in prompts.iter_rows()
    ]
    if not requests:
        return StepResult({"translations": pl.DataFrame(schema=TRANSLATIONS_SCHEMA)})
    report = _translate(requests, params)
    failed = {f.key for f in report.failures}
    rows = {c: [] for c in TRANSLATIONS_SCHEMA.names()}
    for request, made in zip(requests, report.translations):
        pid, lang = request.key.rsplit(":", 1)
        values = {
            "prompt_id": pid, "lang": lang, "translation": None if request.key in failed else made.text,
            "backend": made.backend, "model": made.model, "model_version": made.model_version,
            "source_file": None, "row": None,
        }
        for c in rows:
            rows[c].append(values[c])
    return StepResult({"translations": pl.DataFrame(rows, schema=TRANSLATIONS_SCHEMA)}, counters=_counters(report))


def back_translate_partition(frames: dict[str, pl.DataFrame], params: ModelStepParams) -> StepResult:
    """Translate the partition's non-empty translations back into English."""
    todo = frames["translations"].filter(pl.col("translation").str.strip_chars().str.len_chars() > 0)
    requests = [
        TranslationRequest(f"{pid}:{lang}", text, lang, SOURCE_LANGUAGE)
        for pid, lang, text in todo.select("prompt_id", "lang", "translation").iter_rows()
    ]
    if not requests:
        return StepResult({"back_translations": pl.DataFrame(schema=BACK_TRANSLATIONS_SCHEMA)})
    report = _translate(requests, params)
    failed = {f.key for f in report.failures}
    rows = [
        (*r.key.rsplit(":", 1), None if r.key in failed else t.text, t.model, t.model_version)
        for r, t in zip(requests, report.translations)
    ]
    out = pl.DataFrame(rows, schema=BACK_TRANSLATIONS_SCHEMA, orient="row")
    return StepResult({"back_translations": out}, counters=_counters(report, "back_"))
