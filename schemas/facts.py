"""Tables of the fact-frequency dataset: the facts, their document counts, counts at checkpoints.

A fact is one (language, relation, index) row of KLAR (or of a plain facts table): a subject and
an object surface form, with optional aliases. The same ``index`` is the same fact in every
language. Counts are of corpus documents (see ``pipelines/core/phrases.py`` for the matching
semantics and ``pipelines/facts/count.py`` for the counting).
"""

from __future__ import annotations

from schemas.table import Column, Int, ListOf, String, Table

LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "ar", "zh", "ru", "ja", "tr", "uk", "ca", "ko", "el")

_FACT_COLUMNS = (
    Column("lang", String(), "Language code of the surface forms."),
    Column("relation", String(), "KLAR relation, e.g. capital_of."),
    Column("index", Int(64), "Fact index: the same fact in every language."),
    Column("subject", String(), "Subject surface form in this language."),
    Column("object", String(), "Object surface form in this language."),
    Column("subject_aliases", ListOf(String()), "Alternative subject forms (any of them counts); may be empty."),
    Column("object_aliases", ListOf(String()), "Alternative object forms (any of them counts); may be empty."),
)

FACTS = Table(
    name="facts",
    primary_key="fact_id",
    description="The facts as read (bad rows quarantined): one row per language, relation and index.",
    columns=(Column("fact_id", Int(64), "Row number in (lang, relation, index) order.", unique=True), *_FACT_COLUMNS),
)

_COUNT_COLUMNS = (
    Column("subject_docs", Int(64), "Documents that mention the subject (any form).", min_value=0),
    Column("object_docs", Int(64), "Documents that mention the object (any form).", min_value=0),
    Column("cooccurrence_docs", Int(64), "Documents that mention both: the fact's frequency.", min_value=0),
)

COUNTS = Table(
    name="counts",
    primary_key="fact_id",
    description="Document counts per fact over the whole corpus.",
    columns=(*FACTS.columns, *_COUNT_COLUMNS),
)

CHECKPOINT_COUNTS = Table(
    name="checkpoint_counts",
    primary_key="row_id",
    description="Cumulative document counts per fact at each requested training step (documents with step <= checkpoint).",
    columns=(
        Column("row_id", String(), "<fact_id>@<checkpoint>.", unique=True),
        Column("fact_id", Int(64), "The fact (see counts)."),
        Column("checkpoint", Int(64), "Training step of the checkpoint."),
        *_COUNT_COLUMNS,
    ),
)

# What a release holds per config: the counts without the internal fact_id.
RELEASE_COUNTS = Table(
    name="fact_counts",
    primary_key="fact",
    description="Document counts per fact (config per language, and all).",
    columns=(Column("fact", String(), "<lang>:<index>.", unique=True), *_FACT_COLUMNS, *_COUNT_COLUMNS),
)

RELEASE_CHECKPOINTS = Table(
    name="fact_counts_at_checkpoints",
    primary_key="row",
    description="Cumulative document counts per fact at each requested training step (config checkpoints).",
    columns=(
        Column("row", String(), "<lang>:<index>@<checkpoint>.", unique=True),
        Column("lang", String(), "Language code of the surface forms."),
        Column("relation", String(), "KLAR relation."),
        Column("index", Int(64), "Fact index."),
        Column("checkpoint", Int(64), "Training step: documents with step <= checkpoint are counted."),
        *_COUNT_COLUMNS,
    ),
)
