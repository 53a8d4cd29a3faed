"""The ``published`` translation backend: import translations in PolyRefuse's published layout.

One JSON list per label, split and language: ``<label>_<split>_translated_<lang>.json`` with the
file split names ``train``, ``val``, ``test``. Rows are aligned by position with the English
prompts of their split:

* harmful train / validation rows are ``{instruction (translated), category}``: aligned by
  position with the English split files (which are exactly the published English prompts);
* harmful test and harmless test rows carry the English too (``instruction``) and the
  translation (``instruction_translated``): each row's English is checked against the prompt at
  its position, so a shifted or foreign file is an error naming the row;
* harmless train / validation rows carry only the translation, and PolyRefuse's harmless
  subsets are not the ones :mod:`pipelines.polyrefuse.sources` draws (see there): they can be
  aligned only with PolyRefuse's English subsets. Without those they are declared missing with
  that reason, never attached to the wrong prompts.

A missing file is not an error: the (language, split, label) is declared missing with the
reason, and validation names it. A file whose row count differs from its English split is an
error naming the file, both counts and the fix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.core.errors import InputError
from pipelines.core.readers import load_json_file
from pipelines.polyrefuse.sources import normalise_instruction
from schemas.polyrefuse import LABEL, SPLITS

FILE_SPLIT = {"train": "train", "validation": "val", "test": "test"}
BACKEND = "published"

TRANSLATIONS_SCHEMA = pl.Schema({
    "prompt_id": pl.String, "lang": pl.String, "translation": pl.String, "backend": pl.String,
    "model": pl.String, "model_version": pl.String, "source_file": pl.String, "row": pl.Int64,
})
MISSING_SCHEMA = pl.Schema({"lang": pl.String, "split": pl.String, "label": pl.String, "prompts": pl.Int64, "reason": pl.String})


def published_file(folder: Path, label: str, split: str, lang: str) -> Path:
    return Path(folder) / f"{label}_{FILE_SPLIT[split]}_translated_{lang}.json"


@dataclass
class PublishedImport:
    translations: pl.DataFrame  # TRANSLATIONS_SCHEMA: one row per (prompt, language) found
    missing: pl.DataFrame  # MISSING_SCHEMA: what is declared missing, with the reason


def _load(path: Path) -> list:
    rows = load_json_file(path)  # a BOM allowed; bad JSON, encoding or nesting: an InputError naming the file
    if not isinstance(rows, list):
        raise InputError(path, f"expected a JSON list of rows, got {type(rows).__name__}", "Give the published file unchanged")
    return rows


def _translation_of(row: object, path: Path, k: int, has_english: bool) -> tuple[str | None, str | None]:
    """(translation, English or None) of one published row; a bad row is an error naming it."""
    if not isinstance(row, dict):
        raise InputError(path, f"row {k} is a {type(row).__name__}, not an object", "Give the published file unchanged", line=k + 1)
    key = "instruction_translated" if has_english else "instruction"
    text = row.get(key)
    if text is not None and not isinstance(text, str):
        raise InputError(path, f"row {k}: {key!r} is a {type(text).__name__}, not a string", "Give the published file unchanged", line=k + 1)
    english = row.get("instruction") if has_english else None
    return text, english


def import_published(
    prompts: pl.DataFrame,
    folder: Path,
    languages: tuple[str, ...],
    *,
    harmless_subsets_aligned: bool = False,
) -> PublishedImport:
    """Translations of ``prompts`` (PROMPTS) for ``languages`` from the published files in ``folder``.

    ``harmless_subsets_aligned``: the harmless train / validation prompts are PolyRefuse's own
    subsets (in their order), so those files may be aligned by position.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such folder of published translations", "Give the folder holding <label>_<split>_translated_<lang>.json files")
    rows: dict[str, list] = {name: [] for name in TRANSLATIONS_SCHEMA.names()}
    missing: list[dict] = []
    for lang in languages:
        if lang == "en":
            continue  # the English prompts are the source
        for split in SPLITS:
            for label_index, label in enumerate(LABEL.names):
                english = prompts.filter((pl.col("split") == split) & (pl.col("label") == label_index)).sort("position")
                path = published_file(folder, label, split, lang)
                if not path.exists():
                    missing.append({"lang": lang, "split": split, "label": label, "prompts": english.height, "reason": f"no file {path.name} in {folder}"})
                    continue
                has_english = split == "test"
                if label == "harmless" and not has_english and not harmless_subsets_aligned:
                    missing.append({
                        "lang": lang, "split": split, "label": label, "prompts": english.height,
                        "reason": f"{path.name} carries no English and PolyRefuse's harmless {split} subset is not among the inputs: "
                                  "its rows cannot be aligned with our prompts (give PolyRefuse's harmless_*_sampled.json as the harmless source)",
                    })
                    continue
                published = _load(path)
                if len(published) != english.height:
                    raise InputError(
                        path,
                        f"{len(published):,} rows, but the English {label} {split} split has {english.height:,}",
                        "Published translations are aligned with the English prompts by position: give the complete file for this split",
                    )
                version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
                for k, (row, prompt_id, source) in enumerate(zip(published, english["prompt_id"], english["instruction_en"])):
                    text, en = _translation_of(row, path, k, has_english)
                    if has_english and (not isinstance(en, str) or normalise_instruction(en) != normalise_instruction(source)):
                        raise InputError(
                            path,
                            f"row {k} translates {str(en)[:60]!r}, but the English prompt at that position is {source[:60]!r}",
                            "The file does not follow the English split's order: give the published file for this split",
                            line=k + 1,
                        )
                    rows["prompt_id"].append(prompt_id)
                    rows["lang"].append(lang)
                    rows["translation"].append(text)
                    rows["backend"].append(BACKEND)
                    rows["model"].append(None)
                    rows["model_version"].append(version)
                    rows["source_file"].append(str(path))
                    rows["row"].append(k)
    return PublishedImport(pl.DataFrame(rows, schema=TRANSLATIONS_SCHEMA), pl.DataFrame(missing, schema=MISSING_SCHEMA))


def with_published_harmless_test(prompts: pl.DataFrame, folder: Path) -> pl.DataFrame:
    """``prompts`` with the harmless test prompts replaced by PolyRefuse's own subset.

    The published harmless test files carry their English (``instruction``), so that subset,
    unlike train and validation, is known: it is read from the first language's file (every
    language translates the same rows in the same order).
    """
    from schemas.polyrefuse import PROMPTS
    from pipelines.polyrefuse.sources import prompt_id

    files = sorted(Path(folder).glob("harmless_test_translated_*.json"))
    if not files:
        return prompts
    rows = _load(files[0])
    english = []
    for k, row in enumerate(rows):
        _, en = _translation_of(row, files[0], k, True)
        if not isinstance(en, str) or not normalise_instruction(en):
            raise InputError(files[0], f"row {k} has no English 'instruction'", "Give the published file unchanged", line=k + 1)
        english.append(en)
    harmless = LABEL.names.index("harmless")
    subset = pl.DataFrame(
        {
            "prompt_id": [prompt_id("harmless", t) for t in english],
            "split": ["test"] * len(english),
            "label": [harmless] * len(english),
            "category": [None] * len(english),
            "source": ["alpaca"] * len(english),
            "position": list(range(len(english))),
            "instruction_en": english,
        },
        schema=PROMPTS.polars_schema(),
    )
    keep = prompts.filter(~((pl.col("split") == "test") & (pl.col("label") == harmless)))
    return pl.concat([keep, subset]).sort("split", "label", "position")
