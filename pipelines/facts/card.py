"""The prose of the fact-frequency dataset card: the corpus, the counting rules with their
settings, the per-language summary and the checkpoints.

``corpus_record`` describes the counted corpus as plain data (the build records it; the
release stores it in its manifest)::

    {"name": str,                       # e.g. "Dolma v1.7 sample"
     "shards": [{"name": str, "sha256": str, "bytes": int, "documents": int}, ...],
     "documents": int, "bytes": int}    # over all shards

``summary`` is :func:`pipelines.facts.summary.language_summary` (the frame, or its rows as dicts).
The card points to ``summary.png`` (:data:`PLOT_FILE`, :func:`pipelines.facts.summary.plot_summary`),
which the release ships beside it.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import polars as pl

from pipelines.facts.settings import FactsSettings

TITLE = "Fact frequencies: how often a pretraining corpus mentions each KLAR fact"
SUMMARY = (
    "For each parallel fact of KLAR (12 languages, 12 relations, 1,197 facts per language with the same index in "
    "every language), the number of corpus documents that mention both its subject and its object in that "
    "language, as used by arXiv 2505.14824 to relate fact frequency in pretraining to factual recall and "
    "crosslingual consistency. Optionally, cumulative counts at training checkpoints."
)
LICENSE_NOTE = (
    "The facts (subjects, objects, relations) are KLAR's and keep KLAR's terms; the counts are derived from the "
    "corpus named in the card, whose terms govern any use tied to it. No corpus text is redistributed: only "
    "counts of documents."
)
PLOT_FILE = "summary.png"
SHARDS_LISTED = 50  # shards in the card's table; the manifest lists them all


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _codes(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(f"`{v}`" for v in values) if values else "none"


def _corpus_section(record: dict[str, Any]) -> list[str]:
    shards = record.get("shards") or []
    lines = [
        "## Corpus", "",
        f"**{_cell(record['name'])}**: {record['documents']:,} documents counted, {record['bytes']:,} bytes in "
        f"{len(shards):,} shard{'s' if len(shards) != 1 else ''} (documents that could not be read are quarantined "
        "by the build and not counted).",
        "",
    ]
    if shards:
        lines += ["| shard | sha256 | bytes | documents |", "|---|---|---:|---:|"]
        for shard in shards[:SHARDS_LISTED]:
            lines.append(f"| {_cell(shard['name'])} | `{shard['sha256']}` | {shard['bytes']:,} | {shard['documents']:,} |")
        if len(shards) > SHARDS_LISTED:
            lines.append(f"| +{len(shards) - SHARDS_LISTED:,} more (see `manifest.json`) | | | |")
    return lines


def _semantics_section(settings: FactsSettings) -> list[str]:
    m, c = settings.matching, settings.corpus
    normalise = "none" if m.normalisation == "none" else m.normalisation
    return [
        "## What is counted", "",
        "- **Frequency** (`cooccurrence_docs`): the number of documents that mention both the subject and the object "
        "of a fact, anywhere in the document, each in the language's own surface form (or one of its aliases). "
        "`subject_docs` and `object_docs` count the documents mentioning each side. A document counts once per "
        "fact however often it mentions it.",
        f"- **Normalisation**: text and phrases are {normalise}-normalised"
        + (" and casefolded" if m.casefold else " (not casefolded)") + ".",
        f"- **Scripts without spaces** ({_codes(m.substring_scripts)}): a phrase whose first and last characters "
        "are of these scripts matches as any substring.",
        "- **Word boundaries**: any other phrase must start and end at a boundary: the characters before and after "
        "it are not letters, digits or combining marks of a script written with spaces (\"Turkey\" does not match "
        "\"Turkeys\"; \"Obama\" matches in \"オバマ大統領とObamaは\").",
        f"- **Suffixing languages** ({_codes(m.start_only_languages)}): only the start of a phrase must be a "
        "boundary, so inflected forms count.",
        f"- **Documents**: the `{c.text_field}` field (or column) of each document, format `{c.format}`; one "
        "exact-match pass over every document (the paper queried an Elasticsearch index of Dolma v1.7 instead).",
    ]


def _checkpoint_section(settings: FactsSettings, checkpoints: Sequence[int]) -> list[str]:
    lines = ["## Checkpoints", ""]
    if not checkpoints:
        return lines + ["None: counts are over the whole corpus only (as in the paper, where one count served every checkpoint)."]
    c = settings.corpus
    order_file = settings.order_file or c.order_file
    source = (f"the `{c.step_field}` field of each document" if c.step_field
              else f"the data-order file `{order_file.name}`" if order_file else "the corpus's training order")
    return lines + [
        f"Cumulative counts (config `checkpoint_counts`) at {len(checkpoints)} training step"
        f"{'s' if len(checkpoints) != 1 else ''}: " + ", ".join(f"{step:,}" for step in checkpoints) + ".",
        "",
        f"A count at step *s* covers the documents trained at a step <= *s*, the step taken from {source}; "
        "documents without a step count in the totals only.",
    ]


def _summary_section(summary: pl.DataFrame | Sequence[dict[str, Any]]) -> list[str]:
    rows = summary.to_dicts() if isinstance(summary, pl.DataFrame) else list(summary)
    lines = [
        "## Frequencies per language", "",
        "| lang | facts | median | mean | max | zero-count facts | share |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['lang']} | {r['facts']:,} | {r['median']:g} | {r['mean']:.1f} | {r['max']:,} | "
            f"{r['zero_facts']:,} | {r['zero_share']:.1%} |"
        )
    return lines + [
        "",
        f"![Facts per frequency bin and median frequency per language]({PLOT_FILE})",
        "",
        f"`{PLOT_FILE}` (in the release folder) shows the facts per language in 30 log-spaced frequency bins from 1 "
        "to the largest count + 1 (the paper's bins; zero counts apart) and the median per language.",
    ]


def card_body(
    settings: FactsSettings,
    summary: pl.DataFrame | Sequence[dict[str, Any]],
    corpus_record: dict[str, Any],
    checkpoints: Sequence[int],
) -> str:
    """The card's markdown below the title: corpus, counting rules (with ``settings``' values),
    per-language summary with the plot, checkpoints."""
    lines = [
        *_corpus_section(corpus_record), "",
        *_semantics_section(settings), "",
        *_summary_section(summary), "",
        *_checkpoint_section(settings, checkpoints),
    ]
    return "\n".join(lines) + "\n"
