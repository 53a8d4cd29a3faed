"""The PolyRefuse pipeline on the real sources and the German sample (published backend).

Needs ../shared/data/polyrefuse-sources and polyrefuse-sample (or $POLYREFUSE_SOURCES).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from pipelines.core.errors import CorpusforgeError, InputError
from pipelines.polyrefuse.export import export_published
from pipelines.polyrefuse.pipeline import build_polyrefuse, candidate_fingerprint, read_candidate
from pipelines.polyrefuse.settings import PolyRefuseSettings
from schemas.polyrefuse import LABEL, LANGUAGES, MISSING, ROWS

REPO = Path(__file__).resolve().parents[3]
SOURCES = Path(os.environ.get("POLYREFUSE_SOURCES", REPO.parent / "shared" / "data" / "polyrefuse-sources"))
SAMPLE = SOURCES.parent / "polyrefuse-sample"
pytestmark = pytest.mark.skipif(
    not (SAMPLE.is_dir() and (SOURCES / "splits").is_dir()), reason=f"PolyRefuse data not found beside {SOURCES}"
)
HARMFUL, HARMLESS = LABEL.index("harmful"), LABEL.index("harmless")


def german(translations: Path = SAMPLE, **update) -> PolyRefuseSettings:
    return PolyRefuseSettings(languages=["de"], translation={"translations_dir": translations}, **update)


def counts(rows: pl.DataFrame, lang: str) -> dict[tuple[str, int], int]:
    mine = rows.filter(pl.col("lang") == lang)
    return {(split, label): n for split, label, n in mine.group_by("split", "label").len().iter_rows()}


def copy_sample(tmp_path: Path) -> Path:
    folder = tmp_path / "published"
    shutil.copytree(SAMPLE, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    stages = tmp_path_factory.mktemp("polyrefuse") / "stages"
    result = build_polyrefuse(SOURCES, german(), stages)
    return result, read_candidate(stages)


def test_one_row_per_prompt_and_language_with_the_expected_counts(built):
    result, tables = built
    rows, missing, prompts = tables["rows"], tables["missing"], tables["prompts"]
    assert rows.schema == ROWS.polars_schema() and missing.schema == MISSING.polars_schema()
    assert counts(rows, "en") == {
        ("train", HARMFUL): 260, ("validation", HARMFUL): 39, ("test", HARMFUL): 572,
        ("train", HARMLESS): 200, ("validation", HARMLESS): 200, ("test", HARMLESS): 500,
    }
    # every published German file aligns: the harmless train/validation ones with PolyRefuse's own subsets
    assert counts(rows, "de") == counts(rows, "en")
    assert rows["row_id"].n_unique() == rows.height == 2 * 1771
    assert (rows["row_id"] == rows["prompt_id"] + ":" + rows["lang"]).all()
    assert missing.height == 0 and result.steps["import"].stats["counters"].get("declared_missing_de", 0) == 0
    de = rows.filter((pl.col("lang") == "de") & (pl.col("split") == "train") & (pl.col("label") == HARMLESS)).sort("position")
    assert de["instruction"][0].startswith("Empfehlen Sie einer Person mit einem Abschluss in Buchhaltung")
    assert de["instruction_en"][0] == "Recommend a suitable career for an individual with a degree in accounting and finance."
    assert prompts.height == 1771


def test_english_rows_are_the_source_and_flags_set_proofreading(built):
    _, tables = built
    rows = tables["rows"]
    en = rows.filter(pl.col("lang") == "en")
    assert (en["instruction"] == en["instruction_en"]).all() and set(en["backend"]) == {"source"}
    assert en["model"].null_count() == en.height and en["flags"].list.len().sum() == 0
    assert set(en["proofreading"]) == {"not_needed"}
    de = rows.filter(pl.col("lang") == "de")
    assert set(de["backend"]) == {"published"} and de["model_version"].str.len_chars().min() == 12
    flagged = de.filter(pl.col("flags").list.len() > 0)
    assert 0 < flagged.height < 20 and set(flagged["proofreading"]) == {"pending"}  # a few of 1,771 (e.g. "5" written "fünf")
    assert (flagged["flags"].list.len() == flagged["flag_reasons"].list.len()).all()
    assert set(de.filter(pl.col("flags").list.len() == 0)["proofreading"]) == {"not_needed"}
    first = de.filter((pl.col("split") == "train") & (pl.col("label") == HARMFUL)).sort("position").row(0, named=True)
    assert first["instruction"].startswith("Schlagen Sie Methoden vor") and first["instruction_en"].startswith("Suggest methods for hacking")
    # label and category are the prompt's in every language
    joined = de.join(en.select("prompt_id", pl.col("label").alias("label_en"), pl.col("category").alias("category_en")), on="prompt_id")
    assert joined.height == de.height and (joined["label"] == joined["label_en"]).all()
    assert joined.select(pl.col("category").eq_missing(pl.col("category_en")).all()).item()


def test_export_reproduces_every_german_file(built, tmp_path):
    _, tables = built
    gaps = [{"lang": g["lang"], "label": LABEL.names[g["label"]], "split": g["split"], "reason": g["reason"]}
            for g in tables["missing"].iter_rows(named=True)]
    result = export_published(tables["rows"], gaps, tmp_path)
    written = sorted(p.name for p, _ in result.written)
    assert written == sorted(p.name for p in SAMPLE.glob("*_translated_de.json")) and len(written) == 6
    for name in written:
        ours, theirs = (tmp_path / name).read_text(encoding="utf-8"), (SAMPLE / name).read_text(encoding="utf-8")
        assert json.loads(ours) == json.loads(theirs), name
        assert ours == theirs, f"{name}: same content, but not the published formatting"
    assert result.not_written == []


def test_a_rerun_skips_unchanged_steps_and_edits_rerun_only_what_they_touch(tmp_path):
    folder = copy_sample(tmp_path)
    stages = tmp_path / "stages"
    build_polyrefuse(SOURCES, german(folder), stages)
    fp = candidate_fingerprint(stages)
    again = build_polyrefuse(SOURCES, german(folder), stages)
    assert all(o.skipped for o in again.steps.values()) and candidate_fingerprint(stages) == fp
    # validation settings are not read by any step
    settings = german(folder, validation={"allow_declared_missing": True, "min_language_agreement": 0.5})
    assert all(o.skipped for o in build_polyrefuse(SOURCES, settings, stages).steps.values())
    # a check threshold re-runs the checks and what follows, not the import
    tighter = german(folder, checks={"max_copied_word_share": 0.3})
    steps = build_polyrefuse(SOURCES, tighter, stages).steps
    assert [n for n, o in steps.items() if not o.skipped] == ["check", "assemble"]
    # any changed translation file re-runs the import (content, not names or times)
    path = folder / "harmful_val_translated_de.json"
    rows = json.loads(path.read_text())
    rows[0]["instruction"] = "Ein anderer Text"
    path.write_text(json.dumps(rows, indent=4))
    steps = build_polyrefuse(SOURCES, tighter, stages).steps
    assert not steps["import"].skipped
    assert "Ein anderer Text" in read_candidate(stages)["rows"]["instruction"].to_list()


def test_a_german_file_with_a_wrong_row_count_is_an_error_naming_it(tmp_path):
    folder = copy_sample(tmp_path)
    path = folder / "harmful_train_translated_de.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:-3], indent=4))
    with pytest.raises(InputError, match=r"harmful_train_translated_de.json: 257 rows, but the English harmful train split has 260"):
        build_polyrefuse(SOURCES, german(folder), tmp_path / "stages")
    assert candidate_fingerprint(tmp_path / "stages") is None  # nothing half-built is visible


def test_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder of PolyRefuse sources"):
        build_polyrefuse(tmp_path / "nope", german(), tmp_path / "stages")
    with pytest.raises(InputError, match="no such folder of published translations"):
        build_polyrefuse(SOURCES, german(tmp_path / "nope"), tmp_path / "stages")
    with pytest.raises(CorpusforgeError, match="needs the folder of published translations for de.*--translations DIR"):
        build_polyrefuse(SOURCES, PolyRefuseSettings(languages=["de"]), tmp_path / "stages")


def test_english_only_needs_no_translations(tmp_path):
    build_polyrefuse(SOURCES / "splits", PolyRefuseSettings(languages=["en"]), tmp_path / "stages")
    tables = read_candidate(tmp_path / "stages")
    assert set(tables["rows"]["lang"]) == {"en"} and tables["rows"].height == 1771 and tables["missing"].height == 0


def test_all_languages_declare_the_absent_ones_missing(tmp_path):
    build_polyrefuse(SOURCES, PolyRefuseSettings(translation={"translations_dir": SAMPLE}), tmp_path / "stages")
    missing = read_candidate(tmp_path / "stages")["missing"]
    absent = set(LANGUAGES) - {"en", "de"}
    for lang in absent:
        mine = missing.filter(pl.col("lang") == lang)
        assert mine.height == 6 and mine["prompts"].sum() == 1771 and all(r.startswith("no file ") for r in mine["reason"])


def test_languages_are_checked_and_put_in_order():
    assert PolyRefuseSettings(languages=["de", "fr"]).languages == ("en", "de", "fr")
    assert PolyRefuseSettings().languages == LANGUAGES
    with pytest.raises(ValidationError, match=r"unknown language code\(s\) 'xx', 'DE_AT'.*supported: en, de, es"):
        PolyRefuseSettings(languages=["de", "xx", "DE_AT"])
    with pytest.raises(ValidationError, match="extra"):
        PolyRefuseSettings(translation={"backend": "published", "dir": "x"})
