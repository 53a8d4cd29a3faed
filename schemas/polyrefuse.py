"""PolyRefuse tables: the English prompts, one row per prompt and language, and declared gaps.

A prompt is identified by its label and its English text, so the id is the same in every
language and every run: ``<label>-<first 12 hex digits of sha256(normalised English text)>``,
where the normalised text is the instruction with leading/trailing whitespace stripped and every
run of whitespace (the characters ``str.isspace`` accepts, newlines included) collapsed to one
space, encoded as UTF-8 (``pipelines.polyrefuse.sources.prompt_id`` computes it). Published
translations are aligned with the English split files by row position, which ``position`` keeps.
"""

from __future__ import annotations

from schemas.table import Column, Int, Label, ListOf, String, Table

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

# Proofreading state of a row: nothing to do (English, or every automatic check passed), waiting
# for a person (at least one check flagged it; see annotation/recipes/polyrefuse.py), or what a
# person decided (pipelines/polyrefuse/corrections.py): accepted, edited or rejected.
PROOFREADING: tuple[str, ...] = ("not_needed", "pending", "accepted", "edited", "rejected")
# backend of the English rows: the source itself, not a translation
SOURCE_BACKEND = "source"

_ROW_COLUMNS = (
    Column("split", String(), "train, validation or test.", allowed=SPLITS),
    Column("label", LABEL, "harmless (0) or harmful (1)."),
    Column("category", String(), "Harm category as given by the source benchmark; null where it has none.", nullable=True),
    Column("source", String(), "Benchmark the English prompt comes from.", allowed=SOURCES),
    Column(
        "position",
        Int(64),
        "0-based row index in the English split file; the published files list prompts in this order.",
        min_value=0,
    ),
    Column(
        "instruction",
        String(),
        "The prompt in this language (the English instruction for en); null or empty only when broken "
        "(validation names such rows).",
        nullable=True,
    ),
    Column("instruction_en", String(), "The English prompt as published."),
    Column("backend", String(), "What produced the text: 'source' for English, else the translation backend (published)."),
    Column("model", String(), "Translation model; null for English and for the published translations.", nullable=True),
    Column(
        "model_version",
        String(),
        "Version of the model, or for published translations the first 12 hex of the file's sha256; null for English.",
        nullable=True,
    ),
    Column("flags", ListOf(String()), "Automatic checks that fired (pipelines/polyrefuse/checks.py); empty for English."),
    Column("flag_reasons", ListOf(String()), "One readable sentence per flag."),
    Column(
        "back_translation",
        String(),
        "The translation translated back into English (translation.back_translation); null when none was configured.",
        nullable=True,
    ),
    Column(
        "proofreading",
        String(),
        "not_needed (English, or no check fired), pending (flagged: waits for a person), or a person's verdict: "
        "accepted, edited (instruction is the person's text) or rejected (instruction is null).",
        allowed=PROOFREADING,
    ),
    Column(
        "instruction_machine",
        String(),
        "The machine (or published) translation a person edited or rejected; null otherwise.",
        nullable=True,
    ),
    Column("proofread_by", String(), "The annotator whose verdict applies; null when not proofread.", nullable=True),
    Column("proofread_at", String(), "When that verdict was given (UTC, ISO 8601); null when not proofread.", nullable=True),
    Column("proofreading_note", String(), "The annotator's note, if any.", nullable=True),
)

ROWS = Table(
    name="rows",
    primary_key="row_id",
    description="One row per prompt and language, English included (lang en): the release candidate.",
    columns=(
        Column("row_id", String(), "<prompt_id>:<lang> (also the proofreading item id).", unique=True),
        Column("prompt_id", String(), "Id of the English prompt (see prompts)."),
        Column("lang", String(), "Language code.", allowed=LANGUAGES),
        *_ROW_COLUMNS,
    ),
)

MISSING = Table(
    name="missing",
    primary_key="gap_id",
    description="Prompts declared missing in a language, per label and split, with the reason (never silent).",
    columns=(
        Column("gap_id", String(), "<lang>/<label>/<split>.", unique=True),
        Column("lang", String(), "Language code.", allowed=LANGUAGES),
        Column("split", String(), "train, validation or test.", allowed=SPLITS),
        Column("label", LABEL, "harmless (0) or harmful (1)."),
        Column("prompts", Int(64), "English prompts of the split that have no translation here.", min_value=0),
        Column("reason", String(), "Why they are missing and what would fill the gap."),
    ),
)

# The release: one config per language with these columns (``id`` = prompt_id, the same in every
# language), and a ``parallel`` config (:func:`parallel_table`).
LANGUAGE_ROWS = Table(
    name="language_rows",
    primary_key="id",
    description="The prompts in one language; `id` is the prompt id, shared by every language's config.",
    columns=(Column("id", String(), "Prompt id: <label>-<first 12 hex of sha256(normalised English)>.", unique=True), *_ROW_COLUMNS),
)


def parallel_table(languages: tuple[str, ...]) -> Table:
    """The ``parallel`` config: one row per prompt, one text column per language (null = missing)."""
    keep = ("split", "label", "category", "source", "position")
    return Table(
        name="parallel",
        primary_key="id",
        description="One row per prompt with its text in every released language (null where declared missing).",
        columns=(
            Column("id", String(), "Prompt id (as in the per-language configs).", unique=True),
            *[c for c in _ROW_COLUMNS if c.name in keep],
            *[
                Column(lang, String(), f"The prompt in {lang}" + (" (the source)." if lang == "en" else "; null when missing."), nullable=lang != "en")
                for lang in languages
            ],
        ),
    )


TABLES: dict[str, Table] = {t.name: t for t in (PROMPTS, ROWS, MISSING)}
