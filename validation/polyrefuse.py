"""Validation of a PolyRefuse release candidate: schema checks plus the dataset rules, run by GX.

The candidate is ``prompts`` (English), ``rows`` (one per prompt and language) and ``missing``
(declared gaps with reasons). Only the configured languages (``polyrefuse.languages``) are judged;
rows of other languages are ignored, here and in the release. Rules are computed in polars as
indicator columns or small summary frames, and GX checks them, naming failing rows by id:

* ``languages.present``: every configured language has at least one row; failing ids are the
  absent languages' codes, and the details list all of them. Fails whatever
  ``allow_declared_missing`` says: a language with no translation cannot be released; narrow
  ``polyrefuse.languages`` instead.
* ``coverage.<lang>`` (one per configured language): every prompt id of every split is present in
  that language or declared missing (``missing``, or a row whose translation a proofreader
  rejected: ``proofreading`` = rejected, instruction null). Declared-missing prompts fail the check unless
  ``validation.allow_declared_missing`` is true; either way the details name the gaps (label,
  split, count, reason). Undeclared absences always fail. Failing ids: ``<prompt_id>:<lang>``.
* ``counts.per_split_label``: per language, label and split, rows present + declared missing ==
  ``validation.expected_counts``; failing ids ``<lang>/<label>/<split>``.
* ``languages.language_id.agreement``: per translated language, the share of rows without the
  ``language`` flag >= ``validation.min_language_agreement``.
* ``rows.instruction.not_empty``: no row's text is null or blank (declared-missing prompts have no
  rows, and rejected rows count as declared missing, so neither is judged here).
* ``rows.label.same_across_languages``, ``rows.category.same_across_languages``: a prompt id has
  one label and one category (null included) in every language;
  ``rows.prompt_id.known``: every row's prompt id is an English prompt.
* the schema checks of ``ROWS`` and ``MISSING`` (``Table.column_checks()``).
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from pipelines.polyrefuse.settings import SOURCE_LANGUAGE, PolyRefuseSettings
from schemas.polyrefuse import LABEL, MISSING, ROWS, SPLITS
from validation.gx_suite import CheckSpec, GXFrame, TableChecks, table_checks, validate_checks
from validation.report import ValidationReport

__all__ = ["validate_polyrefuse", "polyrefuse_checks", "polyrefuse_tables"]

FRAME_ORDER = ("languages", "coverage", "counts", "rows", "missing")
PRESENT, DECLARED, ABSENT = "present", "declared_missing", "absent"
REASON_CHARS = 240  # of a gap's reason in a check's details


def _rule(name: str, frame: str, column: str, description: str) -> CheckSpec:
    """A boolean indicator column that must be true (null: not judged here)."""
    return CheckSpec(name, frame, frame, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": [True]}, description)


def polyrefuse_tables(tables: dict[str, pl.DataFrame], languages: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    """The candidate restricted to ``languages`` (what is validated and released)."""
    missing = [t for t in ("prompts", "rows", "missing") if t not in tables]
    if missing:
        raise ValueError(f"PolyRefuse candidate lacks tables {missing}; it has {sorted(tables)}")
    return {
        "prompts": tables["prompts"],
        "rows": tables["rows"].filter(pl.col("lang").is_in(list(languages))),
        "missing": tables["missing"].filter(pl.col("lang").is_in(list(languages))),
    }


def _coverage(prompts: pl.DataFrame, rows: pl.DataFrame, missing: pl.DataFrame, languages: tuple[str, ...], allow: bool) -> pl.DataFrame:
    """One row per (configured language, prompt): present, declared missing or absent."""
    grid = pl.DataFrame({"lang": list(languages)}).join(prompts.select("prompt_id", "split", "label"), how="cross")
    rejected = pl.col("proofreading") == "rejected"
    present = rows.filter(~rejected).select("prompt_id", "lang").unique().with_columns(pl.lit(True).alias("_present"))
    refused = rows.filter(rejected).select("prompt_id", "lang").unique().with_columns(pl.lit(True).alias("_rejected"))
    declared = missing.select("lang", "split", "label").unique().with_columns(pl.lit(True).alias("_declared"))
    out = (
        grid.join(present, on=["prompt_id", "lang"], how="left")
        .join(refused, on=["prompt_id", "lang"], how="left")
        .join(declared, on=["lang", "split", "label"], how="left")
        .with_columns(
            pl.when(pl.col("_present")).then(pl.lit(PRESENT))
            .when(pl.col("_declared") | pl.col("_rejected")).then(pl.lit(DECLARED))
            .otherwise(pl.lit(ABSENT)).alias("status"),
            (pl.col("prompt_id") + ":" + pl.col("lang")).alias("coverage_id"),
        )
    )
    ok = (pl.col("status") == PRESENT) | ((pl.col("status") == DECLARED) & pl.lit(allow))
    return out.select(
        "coverage_id", "lang", "split", "label", "status",
        *[pl.when(pl.col("lang") == lang).then(ok).alias(f"covered_{lang}") for lang in languages],
    )


def _counts(coverage: pl.DataFrame, settings: PolyRefuseSettings) -> pl.DataFrame:
    expected = settings.validation.expected_counts
    cells = pl.DataFrame(
        [
            {"lang": lang, "label": i, "split": split, "expected": getattr(getattr(expected, name), split)}
            for lang in settings.languages
            for i, name in enumerate(LABEL.names)
            for split in SPLITS
        ],
        schema={"lang": pl.String, "label": pl.Int64, "split": pl.String, "expected": pl.Int64},
    )
    observed = coverage.group_by("lang", "label", "split").agg(
        (pl.col("status") == PRESENT).sum().cast(pl.Int64).alias("present"),
        (pl.col("status") == DECLARED).sum().cast(pl.Int64).alias("declared_missing"),
    )
    names = pl.col("label").replace_strict(dict(enumerate(LABEL.names)), return_dtype=pl.String)
    return (
        cells.join(observed, on=["lang", "label", "split"], how="left")
        .with_columns(pl.col("present", "declared_missing").fill_null(0))
        .with_columns(
            (pl.col("lang") + "/" + names + "/" + pl.col("split")).alias("count_id"),
            (pl.col("present") + pl.col("declared_missing") == pl.col("expected")).alias("count_matches"),
        )
        .select("count_id", "lang", "label", "split", "present", "declared_missing", "expected", "count_matches")
    )


def _languages(rows: pl.DataFrame, languages: tuple[str, ...]) -> pl.DataFrame:
    per_lang = rows.group_by("lang").agg(
        pl.len().cast(pl.Int64).alias("rows"),
        (1 - pl.col("flags").list.contains("language").cast(pl.Float64).mean()).alias("language_agreement"),
    )
    return (
        pl.DataFrame({"lang": list(languages)})
        .join(per_lang, on="lang", how="left", maintain_order="left")
        .with_columns(
            pl.col("rows").fill_null(0),
            (pl.col("rows").fill_null(0) > 0).alias("present"),
            pl.when(pl.col("lang") != SOURCE_LANGUAGE).then(pl.col("language_agreement")).alias("language_agreement"),
        )
    )


def _row_indicators(rows: pl.DataFrame, prompts: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(
        pl.when(pl.col("proofreading") == "rejected").then(None)  # declared missing: judged by coverage
        .otherwise(pl.col("instruction").fill_null("").str.strip_chars().str.len_chars().gt(0)).alias("instruction_not_empty"),
        pl.col("prompt_id").is_in(prompts.get_column("prompt_id").implode()).alias("prompt_known"),
        (pl.col("label").n_unique().over("prompt_id") == 1).alias("label_same_across_languages"),
        (pl.col("category").n_unique().over("prompt_id") == 1).alias("category_same_across_languages"),
    )


def polyrefuse_checks(tables: dict[str, pl.DataFrame], settings: PolyRefuseSettings) -> tuple[TableChecks, dict[str, str]]:
    """Specs and GX frames of every PolyRefuse check, and details per check (no GX import)."""
    languages = settings.languages
    allow = settings.validation.allow_declared_missing
    t = polyrefuse_tables(tables, languages)
    prompts, rows, missing = t["prompts"], t["rows"], t["missing"]

    coverage = _coverage(prompts, rows, missing, languages, allow)
    counts = _counts(coverage, settings)
    langs = _languages(rows, languages)
    checks = TableChecks()
    details: dict[str, str] = {}

    # languages
    checks.frames["languages"] = GXFrame("languages", langs.select("lang", "rows", "present", "language_agreement"), "lang")
    absent = sorted(langs.filter(~pl.col("present")).get_column("lang").to_list())
    checks.specs.append(_rule(
        "languages.present", "languages", "present",
        f"every configured language has translations (configured: {', '.join(languages)})",
    ))
    if absent:
        details["languages.present"] = (
            f"absent languages ({len(absent)}): {', '.join(absent)}; translate them, or narrow polyrefuse.languages "
            f"(e.g. --languages {','.join(l for l in languages if l not in absent)})"
        )
    minimum = settings.validation.min_language_agreement
    checks.specs.append(CheckSpec(
        "languages.language_id.agreement", "languages", "languages", "ExpectColumnValuesToBeBetween",
        {"column": "language_agreement", "min_value": minimum, "max_value": None},
        f"per translated language, share of rows the language detector confirms (no 'language' flag) >= {minimum:g}",
    ))

    # coverage: one check per language
    checks.frames["coverage"] = GXFrame("coverage", coverage, "coverage_id")
    gaps = missing.sort("lang", "label", "split")
    for lang in languages:
        name = f"coverage.{lang}"
        how = "or declared missing (allowed: validation.allow_declared_missing)" if allow else "(declared missing fails: validation.allow_declared_missing = false)"
        checks.specs.append(_rule(name, "coverage", f"covered_{lang}", f"every prompt of every split is present in {lang} {how}"))
        mine = coverage.filter(pl.col("lang") == lang)
        n = {s: int((mine.get_column("status") == s).sum()) for s in (PRESENT, DECLARED, ABSENT)}
        parts = [f"{n[PRESENT]:,} of {mine.height:,} prompts present"]
        lang_gaps = gaps.filter(pl.col("lang") == lang)
        if lang_gaps.height:
            cells = ", ".join(f"{LABEL.names[g['label']]} {g['split']} {g['prompts']:,}" for g in lang_gaps.iter_rows(named=True))
            reasons = list(dict.fromkeys(lang_gaps.get_column("reason").to_list()))
            reason = reasons[0] if len(reasons[0]) <= REASON_CHARS else reasons[0][: REASON_CHARS - 3] + "..."
            if len(reasons) > 1:
                reason += f" (+{len(reasons) - 1} other reason{'s' if len(reasons) > 2 else ''}: see the missing table)"
            parts.append(f"declared missing {int(lang_gaps.get_column('prompts').sum()):,} ({cells}; {'allowed' if allow else 'not allowed'}): {reason}")
        n_rejected = rows.filter((pl.col("lang") == lang) & (pl.col("proofreading") == "rejected")).height
        if n_rejected:
            parts.append(f"rejected at proofreading {n_rejected:,} (counted as declared missing; "
                         f"{'allowed' if allow else 'not allowed'}): retranslate or edit them in the proofreading project")
        if n[ABSENT]:
            parts.append(f"absent and not declared missing {n[ABSENT]:,}")
        details[name] = "; ".join(parts)

    # counts
    checks.frames["counts"] = GXFrame("counts", counts, "count_id")
    checks.specs.append(_rule(
        "counts.per_split_label", "counts", "count_matches",
        "per language, label and split: rows present + declared missing == validation.expected_counts",
    ))
    wrong = counts.filter(~pl.col("count_matches"))
    if wrong.height:
        shown = [f"{r['count_id']} {r['present'] + r['declared_missing']:,} (expected {r['expected']:,})" for r in wrong.head(6).iter_rows(named=True)]
        details["counts.per_split_label"] = "; ".join(shown) + (f"; +{wrong.height - 6} more" if wrong.height > 6 else "")

    # rows
    extra = ["instruction_not_empty", "prompt_known", "label_same_across_languages", "category_same_across_languages"]
    checks.extend(table_checks(ROWS, _row_indicators(rows, prompts), extra_columns=extra))
    checks.specs += [
        _rule("rows.instruction.not_empty", "rows", "instruction_not_empty", "the text is neither null nor blank"),
        _rule("rows.prompt_id.known", "rows", "prompt_known", "every row's prompt_id is an English prompt"),
        _rule("rows.label.same_across_languages", "rows", "label_same_across_languages", "a prompt has one label in every language"),
        _rule("rows.category.same_across_languages", "rows", "category_same_across_languages", "a prompt has one category (or null) in every language"),
    ]
    # missing
    checks.extend(table_checks(MISSING, missing))
    return checks, details


def validate_polyrefuse(
    tables: dict[str, pl.DataFrame],
    settings: PolyRefuseSettings,
    out_dir: Path,
    *,
    id_mode: str = "auto",
    data_docs: bool = True,
) -> ValidationReport:
    """Validate a PolyRefuse candidate; write results.json, summary.json, report.html and Data Docs.

    ``tables``: ``prompts``, ``rows`` and ``missing`` as :func:`pipelines.polyrefuse.pipeline.read_candidate`
    returns them; ``settings`` gives the languages and ``settings.validation`` the rules.
    Raises ``ValueError`` when a table is absent.
    """
    t0 = time.perf_counter()
    checks, details = polyrefuse_checks(tables, settings)
    t_prepare = time.perf_counter() - t0
    t = polyrefuse_tables(tables, settings.languages)
    counts = {"prompts": t["prompts"].height, "rows": t["rows"].height, "missing": t["missing"].height}
    for lang, n in t["rows"].group_by("lang").len().iter_rows():
        counts[f"rows[{lang}]"] = n
    counts = dict(sorted(counts.items(), key=lambda kv: (kv[0].startswith("rows["), settings.languages.index(kv[0][5:-1]) if kv[0].startswith("rows[") else 0)))
    return validate_checks(
        checks, out_dir, dataset="PolyRefuse", name="polyrefuse", counts=counts, table_order=FRAME_ORDER,
        details=details, id_mode=id_mode, data_docs=data_docs, prepare_seconds=t_prepare, started=t0,
    )
