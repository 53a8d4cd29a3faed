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
  subsets are not the ones :mod:`pipelines.polyrefuse.sources` draws (see there): they are
  aligned with PolyRefuse's own English subsets, which :func:`with_published_harmless_subsets`
  puts in place of our draw (``harmless_subsets.json`` lists their rows in the split files).
  Without them (``harmless_subsets_aligned=False``) these files are declared missing with that
  reason, never attached to the wrong prompts.

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
from pipelines.polyrefuse.sources import normalise_instruction, prompt_id, split_path
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
                        "reason": f"{path.name} carries no English and the harmless {split} prompts are not PolyRefuse's subset: "
                                  "its rows cannot be aligned with our prompts (sources.mode = published uses PolyRefuse's subsets)",
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

    The published harmless test files carry their English (``instruction``), so that subset is
    read from the first language's file (every language translates the same rows in the same
    order); train and validation carry none (see :func:`with_published_harmless_subsets`).
    """
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
    subset = _harmless_prompts("test", english)
    keep = prompts.filter(~((pl.col("split") == "test") & (pl.col("label") == LABEL.names.index("harmless"))))
    return pl.concat([keep, subset]).sort("split", "label", "position")


def _harmless_prompts(split: str, english: list[str]) -> pl.DataFrame:
    """PROMPTS rows of PolyRefuse's harmless ``split`` subset, in its order (``position``)."""
    from schemas.polyrefuse import PROMPTS

    n = len(english)
    return pl.DataFrame(
        {
            "prompt_id": [prompt_id("harmless", t) for t in english],
            "split": [split] * n,
            "label": [LABEL.names.index("harmless")] * n,
            "category": [None] * n,
            "source": ["alpaca"] * n,
            "position": list(range(n)),
            "instruction_en": english,
        },
        schema=PROMPTS.polars_schema(),
    )


HARMLESS_SUBSETS = Path(__file__).with_name("harmless_subsets.json")


def with_published_harmless_subsets(
    prompts: pl.DataFrame, folder: Path, splits_dir: Path, subsets: Path = HARMLESS_SUBSETS
) -> pl.DataFrame:
    """``prompts`` with the harmless train / validation prompts replaced by PolyRefuse's own subsets.

    Only the splits for which ``folder`` holds published harmless translations are replaced (none:
    ``prompts`` unchanged).

    PolyRefuse translated 200 harmless train and 200 validation prompts drawn from the
    refusal-direction split files; its published files for those splits carry only the
    translation. ``subsets`` (``harmless_subsets.json``, bundled) lists the drawn rows as
    ``[row index in the split file, prompt id]`` in PolyRefuse's order, the order of every
    language's translations, so the rows become prompts with ``position`` 0..199.

    Each listed row is checked: a split file whose row there has another prompt id (another
    version of the file) is an :class:`InputError` naming the file, the row and the fix.
    """
    spec = {
        split: entry
        for split, entry in load_json_file(subsets)["splits"].items()
        if any(Path(folder).glob(f"harmless_{FILE_SPLIT[split]}_translated_*.json"))
    }
    if not spec:
        return prompts
    harmless = LABEL.names.index("harmless")
    frames = []
    for split, entry in spec.items():
        path = split_path(Path(splits_dir), split, "harmless")
        records = load_json_file(path)
        english = []
        for position, (row, expected) in enumerate(entry["rows"]):
            record = records[row] if isinstance(records, list) and row < len(records) else None
            text = record.get("instruction") if isinstance(record, dict) else None
            found = prompt_id("harmless", text) if isinstance(text, str) else None
            if found != expected:
                raise InputError(
                    path,
                    f"row {row} is {str(text)[:60]!r} (id {found}), but PolyRefuse's harmless {split} subset, "
                    f"prompt {position}, is {expected} there",
                    "Give the refusal-direction split files unchanged (dataset/splits of andyrdt/refusal_direction)",
                    line=row + 1,
                )
            english.append(text)
        frames.append(_harmless_prompts(split, english))
    replaced = pl.col("split").is_in(list(spec)) & (pl.col("label") == harmless)
    out = pl.concat([prompts.filter(~replaced), *frames]).sort("split", "label", "position")
    if out["prompt_id"].n_unique() != out.height:
        dup = out.filter(pl.col("prompt_id").is_duplicated())["prompt_id"].unique().sort().to_list()
        raise InputError(subsets, f"PolyRefuse's harmless subsets repeat prompts of other splits: {dup[:5]}", "Give the bundled harmless_subsets.json unchanged")
    return out
