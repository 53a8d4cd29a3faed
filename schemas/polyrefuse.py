"""PolyRefuse tables: English prompts for now (translations and back-translations come later).

A prompt is identified by its label and its English text, so the id is the same in every
language and every run: ``<label>-<first 12 hex digits of sha256(normalised English text)>``,
where the normalised text is the instruction with leading/trailing whitespace stripped and every
run of whitespace (the characters ``str.isspace`` accepts, newlines included) collapsed to one
space, encoded as UTF-8 (``pipelines.polyrefuse.sources.prompt_id`` computes it). Published
translations are aligned with the English split files by row position, which ``position`` keeps.
"""

from __future__ import annotations

from schemas.table import Column, Int, Label, String, Table

LABEL = Label(names=("harmless", "harmful"))
SPLITS: tuple[str, ...] = ("train", "validation", "test")
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "it", "nl", "pl", "ja", "ko", "zh", "ar", "th", "ru", "yo")
# Benchmarks the English prompts come from; "unknown" marks a split row no raw source holds.
SOURCES: tuple[str, ...] = (
    "advbench",
    "harmbench",
    "jailbreakbench",
    "strongreject",
    "malicious_instruct",
    "tdc2023",
    "alpaca",
    "unknown",
)

PROMPTS = Table(
    name="prompts",
    primary_key="prompt_id",
    description="One row per English prompt of the harmful/harmless train, validation and test splits.",
    columns=(
        Column(
            "prompt_id",
            String(),
            "<label>-<first 12 hex of sha256(normalised English instruction)>; normalised = stripped, "
            "whitespace runs collapsed to one space. Stable across languages and runs.",
            unique=True,
        ),
        Column("split", String(), "train, validation or test.", allowed=SPLITS),
        Column("label", LABEL, "harmless (0) or harmful (1)."),
        Column(
            "category",
            String(),
            "Harm category as given by the source benchmark; null where it has none.",
            nullable=True,
        ),
        Column(
            "source", String(), "Benchmark the prompt comes from; unknown when no raw source holds it.", allowed=SOURCES
        ),
        Column(
            "position",
            Int(64),
            "0-based row index in the English split file; published translations are aligned by it.",
            min_value=0,
        ),
        Column("instruction_en", String(), "English instruction as published (whitespace kept)."),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (PROMPTS,)}
