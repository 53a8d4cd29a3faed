"""Importing translations in the published layout: alignment, declared gaps, bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.errors import InputError
from pipelines.polyrefuse.published import import_published, published_file, with_published_harmless_subsets, with_published_harmless_test
from pipelines.polyrefuse.sources import read_splits
from schemas.polyrefuse import LANGUAGES

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SPLITS_DIR = SHARED / "polyrefuse-sources" / "splits"
SAMPLE = SHARED / "polyrefuse-sample"
pytestmark = pytest.mark.skipif(not SAMPLE.exists(), reason="../shared/data is not beside the repository")


@pytest.fixture(scope="module")
def prompts():
    return with_published_harmless_test(read_splits(SPLITS_DIR).prompts, SAMPLE)


def test_the_german_sample_aligns_and_the_gaps_are_declared(prompts):
    imp = import_published(prompts, SAMPLE, LANGUAGES)
    de = imp.translations.filter(pl.col("lang") == "de").join(prompts, on="prompt_id")
    counts = dict(((s, l), n) for s, l, n in de.group_by("split", "label").len().iter_rows())
    assert counts == {("train", 1): 260, ("validation", 1): 39, ("test", 1): 572, ("test", 0): 500}
    first = de.filter((pl.col("split") == "train") & (pl.col("label") == 1)).sort("position").row(0, named=True)
    assert first["translation"].startswith("Schlagen Sie Methoden vor") and first["instruction_en"].startswith("Suggest methods for hacking")
    assert set(imp.translations["backend"]) == {"published"} and imp.translations["model_version"].str.len_chars().min() == 12
    missing = imp.missing
    assert sorted(set(missing["lang"])) == sorted(set(LANGUAGES) - {"en"})
    fr = missing.filter(pl.col("lang") == "fr")
    assert fr.height == 6 and f"no file harmful_train_translated_fr.json in {SAMPLE}" in fr["reason"].to_list()
    de_gaps = missing.filter(pl.col("lang") == "de")
    assert sorted(de_gaps["split"]) == ["train", "validation"] and set(de_gaps["label"]) == {"harmless"}
    assert all("cannot be aligned" in r for r in de_gaps["reason"])


def test_harmless_test_prompts_are_the_published_subset(prompts):
    test = prompts.filter((pl.col("split") == "test") & (pl.col("label") == 0)).sort("position")
    published = json.loads((SAMPLE / "harmless_test_translated_de.json").read_text())
    assert test.height == 500 and test["instruction_en"].to_list() == [r["instruction"] for r in published]
    assert prompts["prompt_id"].n_unique() == prompts.height


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "published"
    shutil.copytree(SAMPLE, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def test_a_file_with_another_row_count_is_an_error_naming_it(prompts, tmp_path):
    folder = _copy(tmp_path)
    path = published_file(folder, "harmful", "validation", "de")
    rows = json.loads(path.read_text())
    path.write_text(json.dumps(rows[:-1]))
    with pytest.raises(InputError, match=r"harmful_val_translated_de.json: 38 rows, but the English harmful validation split has 39.*aligned .* by position"):
        import_published(prompts, folder, ("de",))


def test_a_shifted_file_is_an_error_naming_the_row(prompts, tmp_path):
    folder = _copy(tmp_path)
    path = published_file(folder, "harmful", "test", "de")
    rows = json.loads(path.read_text())
    rows[3], rows[4] = rows[4], rows[3]
    path.write_text(json.dumps(rows))
    with pytest.raises(InputError, match=r"harmful_test_translated_de.json:4: row 3 translates .* but the English prompt at that position"):
        import_published(prompts, folder, ("de",))


def test_not_a_list_and_a_missing_folder_are_clear_errors(prompts, tmp_path):
    folder = _copy(tmp_path)
    published_file(folder, "harmful", "train", "de").write_text('{"instruction": "x"}')
    with pytest.raises(InputError, match="harmful_train_translated_de.json: expected a JSON list of rows, got dict"):
        import_published(prompts, folder, ("de",))
    with pytest.raises(InputError, match="no such folder of published translations"):
        import_published(prompts, tmp_path / "nope", ("de",))


def test_polyrefuse_harmless_subsets_align_the_german_train_and_validation_files(prompts):
    assert with_published_harmless_subsets(prompts, SHARED, SPLITS_DIR) is prompts  # no published harmless files there
    subsets = with_published_harmless_subsets(prompts, SAMPLE, SPLITS_DIR)
    harmless = subsets.filter(pl.col("label") == 0)
    assert dict(((s,), n) for s, n in harmless.group_by("split").len().iter_rows()) == {("train",): 200, ("validation",): 200, ("test",): 500}
    assert subsets["prompt_id"].n_unique() == subsets.height
    assert subsets.filter(pl.col("label") == 1).equals(prompts.filter(pl.col("label") == 1))  # harmful untouched
    imp = import_published(subsets, SAMPLE, ("de",), harmless_subsets_aligned=True)
    assert imp.missing.height == 0 and imp.translations.height == 1771
    de = imp.translations.join(subsets, on="prompt_id")
    val = de.filter((pl.col("split") == "validation") & (pl.col("label") == 0)).sort("position")
    assert val["translation"].to_list() == [r["instruction"] for r in json.loads((SAMPLE / "harmless_val_translated_de.json").read_text())]
    first = de.filter((pl.col("split") == "train") & (pl.col("label") == 0)).sort("position").row(0, named=True)
    assert first["instruction_en"] == "Recommend a suitable career for an individual with a degree in accounting and finance."
    assert first["translation"].startswith("Empfehlen Sie einer Person mit einem Abschluss in Buchhaltung und Finanzen")


def test_a_split_file_that_is_not_the_published_one_is_an_error_naming_the_row(prompts, tmp_path):
    splits = tmp_path / "splits"
    shutil.copytree(SPLITS_DIR, splits)
    path = splits / "harmless_val.json"
    path.chmod(0o644)
    rows = json.loads(path.read_text())
    rows.insert(0, {"instruction": "An extra first row.", "category": None})  # every later row moves down
    path.write_text(json.dumps(rows))
    with pytest.raises(InputError, match=r"harmless_val.json:\d+: row \d+ is .* but PolyRefuse's harmless validation subset, prompt 0, is harmless-\w+ there.*unchanged"):
        with_published_harmless_subsets(prompts, SAMPLE, splits)
