"""Validation of a fact-frequency candidate: schema checks plus the dataset rules, run by GX.

The candidate is ``counts`` (one row per fact: language, relation, index, forms, document counts)
and ``checkpoint_counts`` (cumulative counts per fact at each checkpoint), as
:func:`pipelines.facts.pipeline.read_candidate` returns them. Rules are computed in polars as
indicator columns (true/false per row, null where an input is null: the schema's not-null check
reports that) or small summary frames, and GX checks them, naming failing rows by id:

* ``languages.facts_per_language``: every language has ``validation.facts_per_language`` facts
  (KLAR: 1,197); with null, any number but the same in every language (the most common count,
  the larger on a tie, is the reference). Failing ids: the languages; details: facts per language.
* ``coverage.index.in_every_language``: every index that some language has, every language has
  (the facts are parallel). Failing ids ``<lang>:<index>`` of the missing facts; details: facts
  per language and missing indices per language.
* ``coverage.index.one_relation``: an index is filed under one relation in every language (else
  the cross-language pairing of that index is doubtful). Failing ids ``<lang>:<index>``.
* ``counts.cooccurrence_docs.at_most_sides``: ``cooccurrence_docs <= min(subject_docs,
  object_docs)`` (a document mentioning both mentions each). Failing ids: ``fact_id``.
* ``checkpoint_counts.checkpoint.in_settings``: the checkpoints are the configured ones;
  ``checkpoint_counts.fact_id.known``: every row's fact is in ``counts``.
* ``checkpoint_counts.cumulative.non_decreasing``: per fact, each of the three counts at a
  checkpoint >= at the previous checkpoint. Failing ids ``<fact_id>@<checkpoint>`` (the later one).
* ``checkpoint_counts.last.at_most_totals``: at a fact's last checkpoint, each count <= the
  fact's total in ``counts`` (documents without a step count in the totals only).
* ``counts.row_count``: at least one fact; and the schema checks of ``COUNTS`` and
  ``CHECKPOINT_COUNTS`` (``Table.column_checks()``: ids unique and not null, counts >= 0).

GX never sees the alias lists (:func:`validation.gx_suite.table_checks` keeps scalar columns and
checks a list's presence through its length).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.facts.facts import check_parallel
from pipelines.facts.settings import FactsSettings
from pipelines.facts.summary import language_order
from schemas.facts import CHECKPOINT_COUNTS, COUNTS
from validation.gx_suite import CheckSpec, GXFrame, TableChecks, row_count_spec, table_checks, validate_checks
from validation.report import ValidationReport

__all__ = ["validate_facts", "facts_checks"]

TABLE_ORDER = ("languages", "coverage", "counts", "checkpoint_counts")
COUNT_COLUMNS = ("subject_docs", "object_docs", "cooccurrence_docs")
EXAMPLES = 6  # rows quoted in a check's details


def _rule(name: str, frame: str, column: str, description: str) -> CheckSpec:
    """A boolean indicator column that must be true (null: not judged here)."""
    return CheckSpec(name, frame, frame, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": [True]}, description)


def _fact_label(lang: pl.Expr, index: pl.Expr) -> pl.Expr:
    return lang + pl.lit(":") + index.cast(pl.String)


def _examples(rows: list[str], total: int) -> str:
    shown = "; ".join(rows[:EXAMPLES])
    return shown + (f"; +{total - EXAMPLES:,} more" if total > EXAMPLES else "")


# --------------------------------------------------------------------------- frames


def _languages(counts: pl.DataFrame, expected: int | None) -> tuple[pl.DataFrame, int, str]:
    """Facts per language, the reference count and its wording."""
    per_lang = counts.group_by("lang").agg(pl.len().cast(pl.Int64).alias("facts"))
    order = language_order(per_lang.get_column("lang"))
    langs = pl.DataFrame({"lang": order}, schema={"lang": pl.String}).join(per_lang, on="lang", how="left", maintain_order="left")
    if expected is not None:
        return langs, expected, f"every language has {expected:,} facts (validation.facts_per_language)"
    tally = langs.group_by("facts").len().sort("len", "facts", descending=True)
    reference = int(tally.item(0, "facts")) if tally.height else 0
    return langs, reference, (
        f"every language has the same number of facts (validation.facts_per_language = null; most common: {reference:,})"
    )


def _coverage(counts: pl.DataFrame, languages: list[str]) -> pl.DataFrame:
    """One row per (language, index of any language): present, and the relation consistency."""
    facts = counts.select("lang", "index", "relation").unique(["lang", "index"], keep="first")
    grid = (
        pl.DataFrame({"lang": languages}, schema={"lang": pl.String})
        .join(facts.select("index").unique().sort("index"), how="cross")
        .join(facts, on=["lang", "index"], how="left")
    )
    present = pl.col("relation").is_not_null()
    one_relation = pl.col("relation").drop_nulls().n_unique().over("index") == 1
    return grid.select(
        _fact_label(pl.col("lang"), pl.col("index")).alias("coverage_id"),
        "lang",
        "index",
        present.alias("present"),
        pl.when(present).then(one_relation).alias("one_relation"),
    )


def _count_indicators(counts: pl.DataFrame) -> pl.DataFrame:
    side = pl.min_horizontal("subject_docs", "object_docs")
    inputs_known = pl.all_horizontal(pl.col(c).is_not_null() for c in COUNT_COLUMNS)
    return counts.with_columns(
        pl.when(inputs_known).then(pl.col("cooccurrence_docs") <= side).alias("cooccurrence_within_sides")
    )


def _checkpoint_indicators(checkpoint_counts: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    totals = counts.select("fact_id", *[pl.col(c).alias(f"{c}_total") for c in COUNT_COLUMNS], pl.lit(True).alias("_known"))
    cp = checkpoint_counts.sort("fact_id", "checkpoint").join(totals, on="fact_id", how="left", maintain_order="left")
    # the first checkpoint of a fact has no previous one (null comparison): nothing to judge
    rising = [(pl.col(c) >= pl.col(c).shift(1).over("fact_id")).fill_null(True) for c in COUNT_COLUMNS]
    within = [pl.col(c) <= pl.col(f"{c}_total") for c in COUNT_COLUMNS]
    is_last = pl.col("checkpoint") == pl.col("checkpoint").max().over("fact_id")
    known = pl.col("_known").fill_null(False)
    return cp.with_columns(
        known.alias("fact_known"),
        pl.all_horizontal(rising).alias("non_decreasing"),
        pl.when(is_last & known).then(pl.all_horizontal(within)).alias("last_within_totals"),
    ).drop(*[f"{c}_total" for c in COUNT_COLUMNS], "_known")


# --------------------------------------------------------------------------- details


def _coverage_details(parallel: dict[str, Any]) -> tuple[str, str]:
    order = language_order(parallel["facts_per_language"])
    per_lang = ", ".join(f"{lang} {parallel['facts_per_language'][lang]:,}" for lang in order)
    parts = [f"{parallel['indices']:,} distinct indices; facts per language: {per_lang}"]
    for lang in [lang for lang in order if lang in parallel["missing"]]:
        missing = parallel["missing"][lang]
        shown = ", ".join(str(i) for i in missing[:EXAMPLES]) + (", ..." if len(missing) > EXAMPLES else "")
        parts.append(f"{lang} lacks {len(missing):,} ({shown})")
    mismatch = parallel["relation_mismatch"]
    relations = ""
    if mismatch:
        rows = [f"{index}: " + ", ".join(f"{lang} {rel}" for lang, rel in by_lang.items()) for index, by_lang in mismatch.items()]
        relations = f"{len(mismatch):,} indices under more than one relation: " + _examples(rows, len(rows))
    return "; ".join(parts), relations


def facts_checks(tables: dict[str, pl.DataFrame], settings: FactsSettings) -> tuple[TableChecks, dict[str, str]]:
    """Specs and GX frames of every fact-frequency check, and details per check (no GX import).

    ``tables``: ``counts`` and ``checkpoint_counts`` as ``read_candidate`` returns them; a
    missing table is a ``ValueError``.
    """
    absent = [t for t in (COUNTS.name, CHECKPOINT_COUNTS.name) if t not in tables]
    if absent:
        raise ValueError(f"fact-frequency candidate lacks tables {absent}; it has {sorted(tables)}")
    counts, at = tables[COUNTS.name], tables[CHECKPOINT_COUNTS.name]
    checks = TableChecks()
    details: dict[str, str] = {}

    # languages
    langs, reference, wording = _languages(counts, settings.validation.facts_per_language)
    checks.frames["languages"] = GXFrame("languages", langs, "lang")
    checks.specs.append(CheckSpec(
        "languages.facts_per_language", "languages", "languages", "ExpectColumnValuesToBeBetween",
        {"column": "facts", "min_value": reference, "max_value": reference}, wording,
    ))
    details["languages.facts_per_language"] = "facts per language: " + ", ".join(
        f"{lang} {n:,}" for lang, n in langs.iter_rows()
    )

    # coverage
    languages = langs.get_column("lang").to_list()
    checks.frames["coverage"] = GXFrame("coverage", _coverage(counts, languages), "coverage_id")
    checks.specs += [
        _rule("coverage.index.in_every_language", "coverage", "present",
              "every index of any language is present in every language (parallel facts)"),
        _rule("coverage.index.one_relation", "coverage", "one_relation",
              "an index is filed under one relation in every language"),
    ]
    details["coverage.index.in_every_language"], relations = _coverage_details(check_parallel(counts))
    if relations:
        details["coverage.index.one_relation"] = relations

    # counts
    counts_x = _count_indicators(counts)
    checks.extend(table_checks(COUNTS, counts_x, extra_columns=["cooccurrence_within_sides"]))
    checks.specs += [
        _rule("counts.cooccurrence_docs.at_most_sides", "counts", "cooccurrence_within_sides",
              "cooccurrence_docs <= min(subject_docs, object_docs)"),
        row_count_spec("counts", 1, None),
    ]
    bad = counts_x.filter(~pl.col("cooccurrence_within_sides"))
    if bad.height:
        rows = [f"{r['fact_id']} ({r['lang']}:{r['index']}) {r['cooccurrence_docs']:,} > min({r['subject_docs']:,}, {r['object_docs']:,})"
                for r in bad.head(EXAMPLES).iter_rows(named=True)]
        details["counts.cooccurrence_docs.at_most_sides"] = _examples(rows, bad.height)

    # checkpoint counts
    at_x = _checkpoint_indicators(at, counts)
    extra = ["fact_known", "non_decreasing", "last_within_totals"]
    checks.extend(table_checks(CHECKPOINT_COUNTS, at_x, extra_columns=extra))
    configured = list(settings.checkpoints)
    checks.specs += [
        CheckSpec(
            "checkpoint_counts.checkpoint.in_settings", "checkpoint_counts", "checkpoint_counts",
            "ExpectColumnValuesToBeInSet", {"column": "checkpoint", "value_set": configured},
            f"checkpoint is a configured one (checkpoints: {configured or 'none'})",
        ),
        _rule("checkpoint_counts.fact_id.known", "checkpoint_counts", "fact_known", "every fact_id is a fact of counts"),
        _rule("checkpoint_counts.cumulative.non_decreasing", "checkpoint_counts", "non_decreasing",
              "per fact, subject_docs, object_docs and cooccurrence_docs never decrease from one checkpoint to the next"),
        _rule("checkpoint_counts.last.at_most_totals", "checkpoint_counts", "last_within_totals",
              "at a fact's last checkpoint, each count <= the fact's total in counts"),
    ]
    for name, column in (("checkpoint_counts.cumulative.non_decreasing", "non_decreasing"),
                         ("checkpoint_counts.last.at_most_totals", "last_within_totals")):
        failing = at_x.filter(~pl.col(column))
        if failing.height:
            rows = [f"{r['row_id']} ({', '.join(f'{c} {r[c]:,}' for c in COUNT_COLUMNS)})"
                    for r in failing.head(EXAMPLES).iter_rows(named=True)]
            details[name] = _examples(rows, failing.height)
    return checks, details


def validate_facts(
    tables: dict[str, pl.DataFrame],
    settings: FactsSettings,
    out_dir: Path,
    *,
    id_mode: str = "auto",
    data_docs: bool = True,
) -> ValidationReport:
    """Validate a fact-frequency candidate; write results.json, summary.json, report.html and
    Data Docs under ``out_dir``.

    ``tables``: ``counts`` and ``checkpoint_counts`` (see :func:`facts_checks`); ``settings``
    gives the checkpoints and ``settings.validation`` the expected facts per language.
    ``id_mode`` is how GX names failing rows (see :func:`validation.gx_suite.run_checks`).
    """
    t0 = time.perf_counter()
    checks, details = facts_checks(tables, settings)
    prepare = time.perf_counter() - t0
    counts = tables[COUNTS.name]
    report_counts = {COUNTS.name: counts.height, CHECKPOINT_COUNTS.name: tables[CHECKPOINT_COUNTS.name].height}
    per_lang = dict(counts.group_by("lang").len().iter_rows())
    report_counts.update({f"counts[{lang}]": per_lang[lang] for lang in language_order(per_lang)})
    return validate_checks(
        checks, out_dir, dataset="fact frequencies", name="facts", counts=report_counts, table_order=TABLE_ORDER,
        details=details, id_mode=id_mode, data_docs=data_docs, prepare_seconds=prepare, started=t0,
    )
