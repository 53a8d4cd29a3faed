"""PolyRefuse validation with GX: absent languages named, declared gaps, counts, broken rows."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from pipelines.polyrefuse.pipeline import build_polyrefuse, read_candidate
from pipelines.polyrefuse.settings import PolyRefuseSettings
from validation.polyrefuse import polyrefuse_checks, validate_polyrefuse

REPO = Path(__file__).resolve().parents[2]
SOURCES = Path(os.environ.get("POLYREFUSE_SOURCES", REPO.parent / "shared" / "data" / "polyrefuse-sources"))
SAMPLE = SOURCES.parent / "polyrefuse-sample"
pytestmark = pytest.mark.skipif(
    not (SAMPLE.is_dir() and (SOURCES / "splits").is_dir()), reason=f"PolyRefuse data not found beside {SOURCES}"
)
ABSENT = ("ar", "es", "fr", "it", "ja", "ko", "nl", "pl", "ru", "th", "yo", "zh")


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    stages = tmp_path_factory.mktemp("polyrefuse-validation") / "stages"
    build_polyrefuse(SOURCES, PolyRefuseSettings(languages=["de"], translation={"translations_dir": SAMPLE}), stages)
    return read_candidate(stages)


def test_all_fourteen_languages_fail_naming_the_twelve_absent(german, tmp_path):
    report = validate_polyrefuse(german, PolyRefuseSettings(), tmp_path, data_docs=False)
    assert not report.success
    present = report.check("languages.present")
    assert not present.success and present.failing_ids == list(ABSENT)
    assert present.details.startswith(f"absent languages (12): {', '.join(ABSENT)}")
    failed = {c.name for c in report.failed}
    assert {f"coverage.{lang}" for lang in ABSENT} <= failed and "coverage.en" not in failed
    verdict = report.render_text(show_passed=False).splitlines()[-1]
    assert verdict.startswith("VERDICT: FAIL") and all(f"coverage.{lang}" in verdict for lang in ABSENT)


def test_the_german_sample_passes_for_english_and_german(german, tmp_path):
    report = validate_polyrefuse(german, PolyRefuseSettings(languages=["en", "de"]), tmp_path, data_docs=False)
    assert report.success, report.render_text(show_passed=False)
    assert report.counts["rows[de]"] == report.counts["rows[en]"] == 1771


@pytest.fixture(scope="module")
def german_without_harmless_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("polyrefuse-gap")
    folder = root / "published"
    folder.mkdir()
    for f in SAMPLE.iterdir():
        if f.name != "harmless_val_translated_de.json":
            (folder / f.name).write_bytes(f.read_bytes())
    build_polyrefuse(SOURCES, PolyRefuseSettings(languages=["de"], translation={"translations_dir": folder}), root / "stages")
    return read_candidate(root / "stages")


def test_declared_gaps_fail_by_default_and_pass_when_allowed(german_without_harmless_val, tmp_path):
    tables = german_without_harmless_val
    narrowed = PolyRefuseSettings(languages=["en", "de"])
    report = validate_polyrefuse(tables, narrowed, tmp_path / "strict", data_docs=False)
    assert [c.name for c in report.failed] == ["coverage.de"]
    de = report.check("coverage.de")
    assert de.unexpected_count == 200 and all(i.startswith("harmless-") and i.endswith(":de") for i in de.failing_ids)
    assert "declared missing 200 (harmless validation 200; not allowed)" in de.details
    assert "no file harmless_val_translated_de.json" in de.details
    assert not any("polyrefuse-gap" in r for r in tables["missing"]["reason"])  # the folder's name, not its local path
    allowed = narrowed.model_copy(update={"validation": narrowed.validation.model_copy(update={"allow_declared_missing": True})})
    report = validate_polyrefuse(tables, allowed, tmp_path / "allowed", data_docs=False)
    assert report.success, report.render_text(show_passed=False)
    assert "declared missing 200" in report.check("coverage.de").details and "allowed" in report.check("coverage.de").details
    assert report.counts["rows[de]"] == 1571 and report.counts["rows[en]"] == 1771


def test_broken_rows_counts_and_language_agreement_are_named(german):
    rows = german["rows"]
    broken_id = rows.filter(pl.col("lang") == "de").row(0, named=True)["row_id"]
    other_id = rows.filter(pl.col("lang") == "de").row(1, named=True)["row_id"]
    rows = rows.with_columns(
        pl.when(pl.col("row_id") == broken_id).then(pl.lit("  ")).otherwise(pl.col("instruction")).alias("instruction"),
        pl.when(pl.col("row_id") == other_id).then(pl.lit("other")).otherwise(pl.col("category")).alias("category"),
    )
    tables = {**german, "rows": rows}
    settings = PolyRefuseSettings(
        languages=["en", "de"],
        validation={"allow_declared_missing": True, "min_language_agreement": 1.0, "expected_counts": {"harmful": {"train": 261, "validation": 39, "test": 572}}},
    )
    checks, details = polyrefuse_checks(tables, settings)
    frames = {name: f.df for name, f in checks.frames.items()}
    assert frames["rows"].filter(~pl.col("instruction_not_empty"))["row_id"].to_list() == [broken_id]
    assert sorted(frames["rows"].filter(~pl.col("category_same_across_languages"))["row_id"].to_list()) == sorted(
        [other_id, other_id.replace(":de", ":en")]
    )
    assert sorted(frames["counts"].filter(~pl.col("count_matches"))["count_id"].to_list()) == ["de/harmful/train", "en/harmful/train"]
    assert "de/harmful/train 260 (expected 261)" in details["counts.per_split_label"]
    agreement = frames["languages"].filter(pl.col("lang") == "de")["language_agreement"].item()
    assert 0.99 < agreement < 1.0  # one German row is flagged 'language'
