"""Translate many texts once: a SQLite cache of translations and the resumable batch loop.

:class:`TranslationCache` stores each successful translation under the sha256 of (source text,
source language, target language, backend name, model, model version): a translation is reused
only when exactly the same thing would produce it again. SQLite in WAL mode; :meth:`put_many`
commits one transaction per call, so a crash loses at most the batch in flight.

:func:`translate_all` looks every request up in the cache, sends only the missing ones to the
backend in batches of ``batch_size`` (identical texts with the same languages go once), and writes
each batch to the cache before the next one starts. A rerun after a crash, or after more requests
were added, translates only what is missing. Outputs that are ``None`` or blank for a non-blank
source are kept in the report as they are, counted as failures with reason ``"empty"`` and not
cached (a rerun asks again). Blank sources are not sent: they fail with reason ``"empty_source"``.
Exceptions of the backend (:class:`~.base.BackendError`, unknown languages...) propagate: the run
stops, and what was committed stays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.core.progress import NO_PROGRESS, Progress

from .base import Backend, BackendError, Translation, TranslationRequest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    key TEXT PRIMARY KEY,
    source_text TEXT NOT NULL,
    source_lang TEXT NOT NULL,
    target_lang TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    translation TEXT NOT NULL,
    seconds REAL NOT NULL,
    created_at TEXT NOT NULL
)
"""
_LOOKUP_CHUNK = 500  # stays under SQLite's limit on bound parameters
_BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's lock


def cache_key(text: str, source_lang: str, target_lang: str, backend: str, model: str, model_version: str) -> str:
    """sha256 (hex) of the six fields that decide a translation."""
    blob = json.dumps([text, source_lang, target_lang, backend, model, model_version], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BackendIdentity:
    """The backend fields of a cache key, read once per run (``model_version`` may cost a request)."""

    backend: str
    model: str
    model_version: str

    @classmethod
    def of(cls, backend: Backend) -> BackendIdentity:
        return cls(backend.name, backend.model, backend.model_version)

    def key(self, request: TranslationRequest) -> str:
        return cache_key(
            request.text, request.source_lang, request.target_lang, self.backend, self.model, self.model_version
        )


class TranslationCache:
    """SQLite store of translations (``path`` is created with its folders when missing).

    One connection, for the thread that opened it. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S)
        # Several tasks (worker processes, Ray tasks) may open a new cache at the same moment:
        # switching to WAL and creating the table take a lock that SQLite's busy timeout does not
        # always wait for, so retry them for a while (WAL mode then stays with the file).
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")  # durable at each commit's checkpoint in WAL
                with self._conn:
                    self._conn.execute(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    self._conn.close()
                    raise
                time.sleep(0.05)

    def get_many(
        self, requests: Sequence[TranslationRequest], backend: Backend | BackendIdentity
    ) -> list[Translation | None]:
        """The cached translation of each request by this backend (None where there is none)."""
        identity = backend if isinstance(backend, BackendIdentity) else BackendIdentity.of(backend)
        keys = [identity.key(request) for request in requests]
        found: dict[str, tuple[str, float]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, translation, seconds FROM translations WHERE key IN ({marks})", chunk
            )
            found.update((key, (text, seconds)) for key, text, seconds in rows)
        return [
            (
                Translation(
                    key=request.key,
                    text=found[key][0],
                    backend=identity.backend,
                    model=identity.model,
                    model_version=identity.model_version,
                    seconds=found[key][1],
                    cached=True,
                )
                if key in found
                else None
            )
            for request, key in zip(requests, keys)
        ]

    def put_many(self, requests: Sequence[TranslationRequest], translations: Sequence[Translation]) -> None:
        """Store translations (pairs in order) in one transaction; an existing key is replaced."""
        if len(requests) != len(translations):
            raise ValueError(f"put_many got {len(requests)} requests but {len(translations)} translations")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rows = []
        for request, translation in zip(requests, translations):
            if translation.text is None:
                raise ValueError(f"cannot cache a missing translation (request {request.key!r})")
            key = cache_key(
                request.text,
                request.source_lang,
                request.target_lang,
                translation.backend,
                translation.model,
                translation.model_version,
            )
            rows.append(
                (
                    key,
                    request.text,
                    request.source_lang,
                    request.target_lang,
                    translation.backend,
                    translation.model,
                    translation.model_version,
                    translation.text,
                    translation.seconds,
                    now,
                )
            )
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO translations VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TranslationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class TranslationFailure:
    """A request without a usable translation: ``reason`` is "empty" or "empty_source"."""

    key: str
    reason: str


@dataclass
class TranslateReport:
    """Result of :func:`translate_all`: one translation per request, in request order, and counts.

    ``cached + translated + failed == len(translations)``. ``backend_calls`` counts calls of
    ``translate_batch``; ``texts_sent`` the texts sent (duplicates go once).
    """

    translations: list[Translation]
    cached: int = 0
    translated: int = 0
    failed: int = 0
    failures: list[TranslationFailure] = field(default_factory=list)
    backend_calls: int = 0
    texts_sent: int = 0
    seconds: float = 0.0

    @property
    def failure_reasons(self) -> Counter[str]:
        return Counter(failure.reason for failure in self.failures)


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


def translate_all(
    requests: Sequence[TranslationRequest],
    backend: Backend,
    cache: TranslationCache | None,
    *,
    batch_size: int,
    progress: Progress | None = None,
) -> TranslateReport:
    """Translate ``requests`` with ``backend``, reusing and filling ``cache`` (None: no cache).

    Batches of at most ``batch_size`` distinct missing texts go to ``backend.translate_batch``; each
    batch's successes are committed to the cache before the next batch starts. ``progress`` gets
    one step ``translate:<backend name>`` advanced per request. Raises ``ValueError`` for a bad
    ``batch_size``, :class:`~.base.BackendError` when the backend answers with the wrong number of
    outputs or a non-string, and whatever the backend raises.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    progress = progress or NO_PROGRESS
    started = time.perf_counter()
    step = f"translate:{backend.name}"
    progress.step_started(step, len(requests), "texts")

    identity = BackendIdentity.of(backend)
    results: list[Translation | None] = (
        cache.get_many(requests, identity) if cache is not None else [None] * len(requests)
    )
    report = TranslateReport(translations=[], cached=sum(r is not None for r in results))
    progress.advance(step, report.cached)
    reasons: dict[int, str] = {}

    # Distinct missing texts (by cache key) -> the request indices they serve, in request order.
    pending: dict[str, list[int]] = {}
    for index, (request, result) in enumerate(zip(requests, results)):
        if result is not None:
            continue
        if _is_blank(request.text):
            reasons[index] = "empty_source"
            results[index] = Translation(
                request.key, request.text, identity.backend, identity.model, identity.model_version, 0.0
            )
            progress.advance(step)
            continue
        pending.setdefault(identity.key(request), []).append(index)

    groups = list(pending.values())
    for start in range(0, len(groups), batch_size):
        batch = groups[start : start + batch_size]
        batch_requests = [requests[indices[0]] for indices in batch]
        began = time.perf_counter()
        outputs = backend.translate_batch(batch_requests)
        seconds = (time.perf_counter() - began) / len(batch_requests)
        report.backend_calls += 1
        report.texts_sent += len(batch_requests)
        if not isinstance(outputs, list) or len(outputs) != len(batch_requests):
            got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
            raise BackendError(f"backend {backend.name!r} returned {got} outputs for {len(batch_requests)} requests")

        to_cache: list[tuple[TranslationRequest, Translation]] = []
        for indices, request, output in zip(batch, batch_requests, outputs):
            if output is not None and not isinstance(output, str):
                raise BackendError(
                    f"backend {backend.name!r} returned a {type(output).__name__} for request {request.key!r}; "
                    "expected a string or None"
                )
            made = Translation(request.key, output, identity.backend, identity.model, identity.model_version, seconds)
            if _is_blank(output):
                for index in indices:
                    reasons[index] = "empty"
            else:
                to_cache.append((request, made))
            for index in indices:
                results[index] = dataclasses.replace(made, key=requests[index].key)
        if cache is not None and to_cache:
            cache.put_many([r for r, _ in to_cache], [t for _, t in to_cache])
        progress.advance(step, sum(len(indices) for indices in batch))

    report.translations = [r for r in results if r is not None]
    assert len(report.translations) == len(requests)
    report.failures = [TranslationFailure(requests[i].key, reason) for i, reason in sorted(reasons.items())]
    report.failed = len(report.failures)
    report.translated = len(requests) - report.cached - report.failed
    report.seconds = time.perf_counter() - started
    progress.step_finished(
        step,
        False,
        {"cached": report.cached, "translated": report.translated, "failed": report.failed},
    )
    return report
