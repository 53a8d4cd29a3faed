"""PolyRefuse translation backends and the cached, resumable translation loop.

* ``base``: :class:`TranslationRequest`, :class:`Translation`, the :class:`Backend` protocol,
  language names and per-model-family codes, errors, model fingerprints.
* ``cache``: :class:`TranslationCache` (SQLite) and :func:`translate_all`.
* ``seq2seq``: :class:`Seq2SeqBackend` (local Marian / NLLB / M2M100).
* ``causal``: :class:`CausalBackend` (a local instruction model prompted to translate).
* ``http``: :class:`HttpBackend` (an OpenAI-compatible chat completions server).

Importing this package does not import torch or transformers; the local backends import them
when they load a model. Nothing is ever downloaded: local models come from directories.

Usage::

    backend = Seq2SeqBackend("models/nllb-200-distilled-600M", batch_size=16)
    with TranslationCache("workspace/polyrefuse/translations.sqlite") as cache:
        report = translate_all(requests, backend, cache, batch_size=64)
    report.translations  # one per request, in order; report.failures: (key, reason)
"""

from .base import (
    LANGUAGE_NAMES,
    M2M100_CODES,
    MARIAN_TARGET_TOKENS,
    NLLB_CODES,
    PROMPT_TEMPLATE,
    Backend,
    BackendError,
    BackendUnreachableError,
    ModelNotFoundError,
    Translation,
    TranslationRequest,
    UnsupportedLanguageError,
    build_prompt,
    fingerprint_model_dir,
    language_code,
)
from .cache import TranslateReport, TranslationCache, TranslationFailure, cache_key, translate_all
from .causal import CausalBackend
from .http import HttpBackend
from .seq2seq import Seq2SeqBackend

__all__ = [
    "LANGUAGE_NAMES",
    "M2M100_CODES",
    "MARIAN_TARGET_TOKENS",
    "NLLB_CODES",
    "PROMPT_TEMPLATE",
    "Backend",
    "BackendError",
    "BackendUnreachableError",
    "CausalBackend",
    "ModelNotFoundError",
    "HttpBackend",
    "Seq2SeqBackend",
    "TranslateReport",
    "Translation",
    "TranslationCache",
    "TranslationFailure",
    "TranslationRequest",
    "UnsupportedLanguageError",
    "build_prompt",
    "cache_key",
    "fingerprint_model_dir",
    "language_code",
    "translate_all",
]
