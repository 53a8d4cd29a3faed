"""What every translation backend shares: requests, results, the backend protocol, language codes.

A backend turns a batch of :class:`TranslationRequest` into one output per request, in order
(:meth:`Backend.translate_batch`). It returns what the model said, as-is: ``None`` or an empty
string for a non-empty source is not an error here; :func:`~.cache.translate_all` records it as a
failure (reason ``"empty"``) and the automatic checks (``pipelines.polyrefuse.checks``) flag wrong
languages. Problems that stop a run (a server that cannot be reached, a model directory that does
not exist, a language the backend cannot produce) raise the errors defined here.

``model_version`` identifies what produced a translation and is part of the cache key. Local
backends use :func:`fingerprint_model_dir` (the model files) joined to :func:`fingerprint_settings`
(the decoding settings and the prompt), so that changing the weights, the tokenizer, the prompt or
``max_new_tokens`` never serves a stale cached translation.

Language codes: requests use the short codes of PolyRefuse (:data:`LANGUAGE_NAMES`); each model
family has its own table (:data:`NLLB_CODES`, :data:`M2M100_CODES`, :data:`MARIAN_TARGET_TOKENS`),
and :func:`language_code` turns a code into a family's code or raises
:class:`UnsupportedLanguageError` naming the code and the supported ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipelines.core.errors import CorpusforgeError
from pipelines.core.models import (  # noqa: F401 (part of this module's interface)
    DTYPES,
    ModelNotFoundError,
    fingerprint_model_dir,
    fingerprint_settings,
    require_model_dir,
    resolve_device,
    torch_dtype,
)

# English names, used in prompts of instruction models ("from English to German").
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "es": "Spanish",
    "fr": "French",
    "it": "Italian",
    "nl": "Dutch",
    "pl": "Polish",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Simplified Chinese",
    "ar": "Arabic",
    "th": "Thai",
    "ru": "Russian",
    "yo": "Yoruba",
}

# NLLB-200 (facebook/nllb-200-*): FLORES-200 codes, used as src_lang and as the forced first token.
NLLB_CODES: dict[str, str] = {
    "en": "eng_Latn",
    "de": "deu_Latn",
    "es": "spa_Latn",
    "fr": "fra_Latn",
    "it": "ita_Latn",
    "nl": "nld_Latn",
    "pl": "pol_Latn",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "zh": "zho_Hans",
    "ar": "arb_Arab",
    "th": "tha_Thai",
    "ru": "rus_Cyrl",
    "yo": "yor_Latn",
}

# M2M100 (facebook/m2m100_*): ISO 639-1 codes; the tokenizer wraps them as "__de__".
M2M100_CODES: dict[str, str] = {code: code for code in LANGUAGE_NAMES}

# Marian (Helsinki-NLP opus-mt-*): one model directory per language pair, named "<src>-<tgt>"
# under a root directory (see seq2seq.py). Multi-target models (e.g. opus-mt-en-zh) expect a
# target token such as ">>cmn_Hans<<" before the source text; it is added only when the model's
# vocabulary lists such tokens.
MARIAN_PAIR_DIR = "{source}-{target}"
MARIAN_TARGET_TOKENS: dict[str, str] = {
    "en": ">>eng<<",
    "de": ">>deu<<",
    "es": ">>spa<<",
    "fr": ">>fra<<",
    "it": ">>ita<<",
    "nl": ">>nld<<",
    "pl": ">>pol<<",
    "ja": ">>jpn<<",
    "ko": ">>kor<<",
    "zh": ">>cmn_Hans<<",
    "ar": ">>ara<<",
    "th": ">>tha<<",
    "ru": ">>rus<<",
    "yo": ">>yor<<",
}

# The instruction given to instruction models (causal and HTTP backends); fields: source, target
# (English language names) and text.
PROMPT_TEMPLATE = "Translate the following text from {source} to {target}. Reply with the translation only.\n\n{text}"


class UnsupportedLanguageError(CorpusforgeError, ValueError):
    """A language code that the backend (or its model) cannot translate from or to."""


class BackendError(CorpusforgeError):
    """A backend could not produce translations (bad answer, server error after retries...)."""


class BackendUnreachableError(BackendError):
    """The translation server could not be reached at all."""


@dataclass(frozen=True)
class TranslationRequest:
    """One text to translate. ``key`` is the caller's id (e.g. a prompt id and language)."""

    key: str
    text: str
    source_lang: str
    target_lang: str


@dataclass(frozen=True)
class Translation:
    """What a backend produced for one request. ``text`` is the raw output (may be None or empty);
    ``seconds`` is the request's share of its batch's wall time (for a cached one: when it was made);
    ``cached`` says that it came from the cache, not from the backend, in this run."""

    key: str
    text: str | None
    backend: str
    model: str
    model_version: str
    seconds: float
    cached: bool = False


class Backend(Protocol):
    """A translation backend.

    ``name`` (e.g. "seq2seq"), ``model`` (a readable model name) and ``model_version`` (what
    exactly produced the output) identify the translations in the cache.
    ``translate_batch`` returns one output per request, in request order; it may raise
    :class:`UnsupportedLanguageError` or :class:`BackendError`. (Not runtime-checkable on purpose:
    on Python 3.11 ``isinstance`` would read ``model_version``, which may cost a server request.)
    """

    name: str
    model: str

    @property
    def model_version(self) -> str: ...

    def translate_batch(self, requests: Sequence[TranslationRequest]) -> list[str | None]: ...


def language_code(lang: str, table: Mapping[str, str], backend: str) -> str:
    """``table[lang]``, or :class:`UnsupportedLanguageError` naming the code and the supported ones."""
    try:
        return table[lang]
    except (KeyError, TypeError):
        supported = ", ".join(sorted(table))
        raise UnsupportedLanguageError(
            f"unknown language code {lang!r} for the {backend} backend; supported: {supported}"
        ) from None


def check_languages(requests: Sequence[TranslationRequest], table: Mapping[str, str], backend: str) -> None:
    """Raise :class:`UnsupportedLanguageError` before any work if a request uses an unknown code."""
    for request in requests:
        language_code(request.source_lang, table, backend)
        language_code(request.target_lang, table, backend)


def build_prompt(request: TranslationRequest, template: str = PROMPT_TEMPLATE) -> str:
    """The instruction for one request (``template`` fields: source, target, text)."""
    return template.format(
        source=language_code(request.source_lang, LANGUAGE_NAMES, "instruction"),
        target=language_code(request.target_lang, LANGUAGE_NAMES, "instruction"),
        text=request.text,
    )


# Model folders (versions, local loading): shared with other pipelines, in pipelines/core/models.py.


def length_order(texts: Sequence[str]) -> list[int]:
    """Indices of ``texts`` from shortest to longest (stable), so that batches pad little."""
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))
