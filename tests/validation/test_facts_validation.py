"""Fact-frequency validation with GX: a real candidate passes; each rule fails on a doctored
candidate and names the failing rows by id."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipelines.facts.settings import FactsSettings
from tests.pipelines.facts.test_summary_export import CHECKPOINTS, KLAR, build_klar_candidate
from validation.facts import facts_checks, validate_facts

pytestmark = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")
SETTINGS = FactsSettings(checkpoints=CHECKPOINTS, corpus={"step_field": "metadata.step"})
ANY_NUMBER = FactsSettings(checkpoints=CHECKPOINTS, corpus={"step_field": "metadata.step"}, validation={"facts_per_language": None})


@pytest.fixture(scope="module")
def candidate(tmp_path_factory) -> dict[str, pl.DataFrame]:
    return build_klar_candidate(tmp_path_factory.mktemp("facts-validation"))


def fact_id(tables: dict[str, pl.DataFrame], lang: str, index: int) -> int:
    return tables["counts"].filter(lang=lang, index=index).item(0, "fact_id")


def edit(df: pl.DataFrame, where: pl.Expr, **values) -> pl.DataFrame:
    return df.with_columns(pl.when(where).then(pl.lit(v)).otherwise(pl.col(c)).alias(c) for c, v in values.items())


def failed(report) -> dict[str, list[str]]:
    return {c.name: c.failing_ids for c in report.failed}


def test_real_candidate_passes_and_writes_the_report(candidate, tmp_path) -> None:
    report = validate_facts(candidate, SETTINGS, tmp_path)
    assert report.success, report.render_text(show_passed=False)
    assert report.counts["counts"] == 14_364 and report.counts["checkpoint_counts"] == 2 * 14_364
    assert list(report.counts)[2:4] == ["counts[en]", "counts[fr]"] and report.counts["counts[el]"] == 1197
    names = [c.name for c in report.checks]
    assert names[:3] == ["languages.facts_per_language", "coverage.index.in_every_language", "coverage.index.one_relation"]
    assert {"counts.subject_docs.between", "counts.cooccurrence_docs.at_most_sides", "checkpoint_counts.row_id.unique",
            "checkpoint_counts.cumulative.non_decreasing", "checkpoint_counts.last.at_most_totals"} <= set(names)
    for name in ("results.json", "summary.json", "report.html"):
        assert (tmp_path / name).is_file()
    assert report.data_docs_index is not None and report.data_docs_index.is_file()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["success"] and summary["n_failed"] == 0
    # GX never saw the alias lists: their presence is checked through their lengths
    checks, _ = facts_checks(candidate, SETTINGS)
    assert "subject_aliases" not in checks.frames["counts"].df.columns and "subject_aliases_len" in checks.frames["counts"].df.columns
    assert validate_facts(candidate, ANY_NUMBER, tmp_path / "any", data_docs=False).success


def test_a_missing_fact_fails_facts_per_language_and_coverage(candidate, tmp_path) -> None:
    tables = {**candidate, "counts": candidate["counts"].filter(~((pl.col("lang") == "fr") & (pl.col("index") == 3751)))}
    for settings in (SETTINGS, ANY_NUMBER):  # 1,197 expected, or the most common count
        report = validate_facts(tables, settings, tmp_path / str(settings.validation.facts_per_language), data_docs=False)
        assert failed(report) == {
            "languages.facts_per_language": ["fr"],
            "coverage.index.in_every_language": ["fr:3751"],
            # its checkpoint rows now name a fact that is not in counts
            "checkpoint_counts.fact_id.known": [f"{fact_id(candidate, 'fr', 3751)}@{c}" for c in CHECKPOINTS],
        }
        assert "fr 1,196" in report.check("languages.facts_per_language").details
        coverage = report.check("coverage.index.in_every_language").details
        assert coverage.startswith("1,197 distinct indices; facts per language: en 1,197, fr 1,196, es 1,197") and "fr lacks 1 (3751)" in coverage
    thousand = FactsSettings(checkpoints=CHECKPOINTS, validation={"facts_per_language": 1000})
    report = validate_facts(candidate, thousand, tmp_path / "1000", data_docs=False)
    assert failed(report) == {"languages.facts_per_language": ["ar", "ca", "el", "en", "es", "fr", "ja", "ko", "ru", "tr", "uk", "zh"]}


def test_an_index_under_two_relations_is_named_in_every_language(candidate, tmp_path) -> None:
    counts = edit(candidate["counts"], (pl.col("lang") == "fr") & (pl.col("index") == 3751), relation="continent")
    report = validate_facts({**candidate, "counts": counts}, SETTINGS, tmp_path, data_docs=False)
    langs = ["ar", "ca", "el", "en", "es", "fr", "ja", "ko", "ru", "tr", "uk", "zh"]
    assert failed(report) == {"coverage.index.one_relation": [f"{lang}:3751" for lang in langs]}
    assert "3751: " in report.check("coverage.index.one_relation").details and "fr continent" in report.check("coverage.index.one_relation").details


def test_negative_and_impossible_counts_are_named_by_fact_id(candidate, tmp_path) -> None:
    negative, too_many = fact_id(candidate, "en", 3752), fact_id(candidate, "en", 3751)
    counts = edit(candidate["counts"], pl.col("fact_id") == negative, subject_docs=-1)
    counts = edit(counts, pl.col("fact_id") == too_many, cooccurrence_docs=4)  # subject 4 documents (one French), object 3
    report = validate_facts({**candidate, "counts": counts}, SETTINGS, tmp_path, data_docs=False)
    assert failed(report) == {
        "counts.subject_docs.between": [str(negative)],
        # -1 is below its 0 co-occurrences, and below its counts at the checkpoints
        "counts.cooccurrence_docs.at_most_sides": sorted([str(negative), str(too_many)]),
        "checkpoint_counts.last.at_most_totals": [f"{negative}@35"],
    }
    assert f"{too_many} (en:3751) 4 > min(4, 3)" in report.check("counts.cooccurrence_docs.at_most_sides").details


def test_checkpoint_counts_must_grow_and_stay_within_the_totals(candidate, tmp_path) -> None:
    ankara, edmonton = fact_id(candidate, "en", 3751), fact_id(candidate, "en", 3750)
    at = candidate["checkpoint_counts"]
    assert at.filter(row_id=f"{ankara}@15").item(0, "cooccurrence_docs") == 1 and at.filter(row_id=f"{ankara}@35").item(0, "cooccurrence_docs") == 2
    at = edit(at, pl.col("row_id") == f"{ankara}@35", cooccurrence_docs=0)  # 1 at step 15, then 0
    at = edit(at, pl.col("row_id") == f"{edmonton}@35", subject_docs=5)  # the total is 1
    report = validate_facts({**candidate, "checkpoint_counts": at}, SETTINGS, tmp_path, data_docs=False)
    assert failed(report) == {
        "checkpoint_counts.cumulative.non_decreasing": [f"{ankara}@35"],
        "checkpoint_counts.last.at_most_totals": [f"{edmonton}@35"],
    }
    assert f"{ankara}@35 (subject_docs 3, object_docs 2, cooccurrence_docs 0)" in report.check("checkpoint_counts.cumulative.non_decreasing").details


def test_checkpoints_other_than_the_configured_ones_fail(candidate, tmp_path) -> None:
    report = validate_facts(candidate, SETTINGS.model_copy(update={"checkpoints": (15,)}), tmp_path, data_docs=False)
    assert [c.name for c in report.failed] == ["checkpoint_counts.checkpoint.in_settings"]
    check = report.check("checkpoint_counts.checkpoint.in_settings")
    assert check.unexpected_count == 14_364 and all(i.endswith("@35") for i in check.failing_ids)


def test_an_empty_or_incomplete_candidate(candidate, tmp_path) -> None:
    empty = {name: df.clear() for name, df in candidate.items()}
    report = validate_facts(empty, SETTINGS, tmp_path, data_docs=False)
    assert [c.name for c in report.failed] == ["counts.row_count"]
    with pytest.raises(ValueError, match=r"lacks tables \['checkpoint_counts'\]"):
        validate_facts({"counts": candidate["counts"]}, SETTINGS, tmp_path)
