"""Settings of the PolyRefuse pipeline (section ``[polyrefuse]`` of ``corpusforge.toml``).

The defaults build the published PolyRefuse: all 14 languages, the English splits as published,
translations imported from PolyRefuse's own files (the ``published`` backend), and validation
expecting the published counts (harmful 260 / 39 / 572, harmless 200 / 200 / 500 for train /
validation / test). Unknown keys are errors; see ``docs/polyrefuse.md`` for each setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class PolyRefuseTranslation(_Strict):
    """Which backend provides the translations.

    Only ``published`` exists yet: it imports PolyRefuse's published files
    (``<label>_<split>_translated_<lang>.json``, :mod:`pipelines.polyrefuse.published`). Model
    backends (local MT models, ``pipelines/polyrefuse/translate/``) are wired in a later step and
    will add their names to ``backend``.
    """

    backend: Literal["published"] = Field("published", description="Translation backend; model backends come later.")
    translations_dir: Path | None = Field(
        None,
        description="published backend: the folder of published translation files (`--translations DIR`). Its "
        "files are fingerprinted by content, not by path.",
    )


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
        description="false: prompts declared missing (with a reason, e.g. the published harmless train/validation "
        "files that cannot be aligned) fail validation, which names them; true: they are reported but pass. A "
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
