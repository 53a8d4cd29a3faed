"""Settings of the PolyRefuse pipeline (section ``[polyrefuse]`` of ``corpusforge.toml``).

The defaults build the published PolyRefuse: all 14 languages, the English splits as published,
translations imported from PolyRefuse's own files (the ``published`` backend), and validation
expecting the published counts (harmful 260 / 39 / 572, harmless 200 / 200 / 500 for train /
validation / test). Unknown keys are errors; see ``docs/polyrefuse.md`` for each setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.polyrefuse.checks import CheckSettings
from pipelines.polyrefuse.sources import HARMLESS_SEED, HARMLESS_SIZES, MAX_PER_SOURCE
from schemas.polyrefuse import LANGUAGES

SOURCE_LANGUAGE = "en"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolyRefuseSources(_Strict):
    """Where the English prompts come from (:mod:`pipelines.polyrefuse.sources`)."""

    mode: Literal["published", "rebuild"] = Field(
        "published",
        description="published: the six split files as published (splits/); rebuild: rebuild them from the raw "
        "benchmark files (raw/ and processed/alpaca.json) with the literature's rules, seeded.",
    )
    harmless_sizes: tuple[int, int, int] | None = Field(
        HARMLESS_SIZES,
        description="Harmless prompts drawn per split (train, validation, test); null keeps every row. With the "
        "published backend the harmless test prompts are PolyRefuse's own subset (read from the translation files).",
    )
    harmless_seed: int = Field(HARMLESS_SEED, description="Seed of our harmless draw (random.Random(seed).sample).")
    seed: int = Field(0, description="rebuild only: seed of the per-source draw of harmful train prompts.")
    max_per_source: int = Field(MAX_PER_SOURCE, ge=1, description="rebuild only: harmful train prompts per benchmark.")

    @field_validator("harmless_sizes")
    @classmethod
    def _non_negative(cls, sizes: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if sizes is not None and min(sizes) < 0:
            raise ValueError(f"harmless_sizes must be >= 0, got {list(sizes)}")
        return sizes


MODEL_BACKENDS = ("seq2seq", "causal", "http")


class ModelSettings(_Strict):
    """A model backend's settings (:mod:`pipelines.polyrefuse.translate`); which fields apply depends
    on the backend: ``model_dir`` for ``seq2seq`` and ``causal``, ``url`` and ``model`` for ``http``."""

    model_dir: Path | None = Field(None, description="seq2seq / causal: the local model directory (never downloaded).")
    seq2seq_kind: Literal["auto", "marian", "nllb", "m2m100"] = Field(
        "auto", description="seq2seq: model family (auto: from config.json); marian: a root of <src>-<tgt> pair dirs."
    )
    url: str | None = Field(None, description="http: base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")
    model: str | None = Field(
        None, description="http: the served model name (required); seq2seq / causal: a readable name (default: the directory name)."
    )
    device: str = Field("auto", description="seq2seq / causal: auto (GPU when torch sees one), cpu, cuda, cuda:1...")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="seq2seq / causal: weights dtype.")
    batch_size: int = Field(16, ge=1, description="Texts per model call (http: per round of concurrent requests).")
    max_new_tokens: int = Field(256, ge=1, description="Longest output, in tokens.")
    num_beams: int = Field(1, ge=1, description="seq2seq: beam width (1: greedy).")
    concurrency: int = Field(4, ge=1, description="http: requests in flight.")
    timeout: float = Field(60.0, gt=0, description="http: seconds per request.")
    api_key_env: str = Field(
        "CORPUSFORGE_TRANSLATION_API_KEY", description="http: environment variable holding the API key (if the server needs one)."
    )
    gpus_per_task: float = Field(
        0.0, ge=0, description="Ray executor: GPUs each translation task asks for (e.g. 1 for a GPU model); the local executor ignores it."
    )


def check_model_settings(backend: str, model: ModelSettings, where: str) -> None:
    """Raise ``ValueError`` naming the missing field for ``backend``."""
    if backend in ("seq2seq", "causal") and model.model_dir is None:
        raise ValueError(f"{where}.backend = {backend} needs {where}.model.model_dir (a local model directory), e.g. --model DIR")
    if backend == "http" and (not model.url or not model.model):
        raise ValueError(f"{where}.backend = http needs {where}.model.url and {where}.model.model (the served model name)")


class BackTranslationSettings(_Strict):
    """Back-translation into English, scored against the source with chrF and BLEU (check
    ``back_translation``). ``none``: no back-translation; ``same``: the translation backend and
    model (a multilingual model, a Marian root with the <lang>-en pairs, or an instruction model);
    or another model backend with its own ``model`` settings."""

    backend: Literal["none", "same", "seq2seq", "causal", "http"] = Field("none", description="none, same, seq2seq, causal or http.")
    model: ModelSettings = ModelSettings()


class PolyRefuseTranslation(_Strict):
    """Which backend provides the translations, and the back-translation.

    ``published`` imports PolyRefuse's published files (``<label>_<split>_translated_<lang>.json``,
    :mod:`pipelines.polyrefuse.published`); ``seq2seq``, ``causal`` and ``http`` translate with a
    model (:mod:`pipelines.polyrefuse.translate`), cached in the workspace per (text, languages,
    backend, model, model version), so that a rerun translates only what is missing.
    """

    backend: Literal["published", "seq2seq", "causal", "http"] = Field(
        "published", description="published (import files), seq2seq, causal or http (translate with a model)."
    )
    translations_dir: Path | None = Field(
        None,
        description="published backend: the folder of published translation files (`--translations DIR`). Its "
        "files are fingerprinted by content, not by path.",
    )
    model: ModelSettings = ModelSettings()
    back_translation: BackTranslationSettings = BackTranslationSettings()
    partitions: int = Field(
        4, ge=1, le=4096,
        description="Model backends: prompts are split into this many partitions by id, translated as separate tasks "
        "(in parallel with executor.workers > 1 or on Ray).",
    )

    @model_validator(mode="after")
    def _complete(self) -> "PolyRefuseTranslation":
        if self.backend in MODEL_BACKENDS:
            check_model_settings(self.backend, self.model, "translation")
        bt = self.back_translation
        if bt.backend == "same" and self.backend not in MODEL_BACKENDS:
            raise ValueError(
                "translation.back_translation.backend = same needs a model translation backend; with the published "
                "backend, name a model backend for back-translation (seq2seq, causal or http) and its model"
            )
        if bt.backend in MODEL_BACKENDS:
            check_model_settings(bt.backend, bt.model, "translation.back_translation")
        return self

    @property
    def uses_model(self) -> bool:
        return self.backend in MODEL_BACKENDS

    def back_translation_backend(self) -> tuple[str, ModelSettings] | None:
        """(backend, model settings) of the back-translation, or None when there is none."""
        bt = self.back_translation
        if bt.backend == "none":
            return None
        if bt.backend == "same":
            return self.backend, self.model
        return bt.backend, bt.model


class SplitCounts(_Strict):
    train: int = Field(ge=0)
    validation: int = Field(ge=0)
    test: int = Field(ge=0)


class ExpectedCounts(_Strict):
    harmful: SplitCounts = SplitCounts(train=260, validation=39, test=572)
    harmless: SplitCounts = SplitCounts(train=200, validation=200, test=500)


class PolyRefuseValidation(_Strict):
    """What `corpusforge validate polyrefuse` demands of the candidate."""

    expected_counts: ExpectedCounts = Field(
        ExpectedCounts(),
        description="Prompts per label and split that every language must have (present or declared missing).",
    )
    min_language_agreement: float = Field(
        0.95,
        ge=0,
        le=1,
        description="Per translated language, the share of rows the language detector confirms (no 'language' flag).",
    )
    allow_declared_missing: bool = Field(
        False,
        description="false: prompts declared missing (with a reason, e.g. a file absent from the translations "
        "folder) fail validation, which names them; true: they are reported but pass. A "
        "configured language with no translation at all fails either way: narrow `languages` instead.",
    )


class PolyRefuseSettings(_Strict):
    languages: tuple[str, ...] = Field(
        LANGUAGES,
        description="Languages built, validated and released. English (the source) is always included; codes are "
        "put in the canonical order en, de, es, fr, it, nl, pl, ja, ko, zh, ar, th, ru, yo.",
    )
    sources: PolyRefuseSources = PolyRefuseSources()
    translation: PolyRefuseTranslation = PolyRefuseTranslation()
    checks: CheckSettings = CheckSettings()
    validation: PolyRefuseValidation = PolyRefuseValidation()

    @field_validator("languages", mode="before")
    @classmethod
    def _known_languages(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):  # --set polyrefuse.languages=de,en reads as one string
            value = [part for part in value.replace(" ", ",").split(",") if part]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"languages: give a list of language codes, e.g. ['en', 'de'], got {value!r}")
        codes = [v.strip().lower() for v in value]
        unknown = [v for v, c in zip(value, codes) if c not in LANGUAGES]
        if unknown:
            raise ValueError(
                f"unknown language code(s) {', '.join(repr(c) for c in unknown)}; supported: {', '.join(LANGUAGES)}"
            )
        wanted = set(codes) | {SOURCE_LANGUAGE}
        return tuple(lang for lang in LANGUAGES if lang in wanted)

    @property
    def translated_languages(self) -> tuple[str, ...]:
        """The configured languages other than English."""
        return tuple(lang for lang in self.languages if lang != SOURCE_LANGUAGE)


def only(settings: PolyRefuseSettings, *sections: str) -> PolyRefuseSettings:
    """The settings with every field but ``sections`` reset to defaults (a step's fingerprint
    then changes only when what it reads changes)."""
    defaults = PolyRefuseSettings()
    return settings.model_copy(
        update={name: getattr(defaults, name) for name in PolyRefuseSettings.model_fields if name not in sections}
    )
