"""Export PolyRefuse in the published layout: one JSON file per label, split and language.

``<label>_<split>_translated_<lang>.json`` (file split names ``train``, ``val``, ``test``), a JSON
list in English split order (``position``):

* test files: ``{"instruction": <English>, "instruction_translated": <translation>, "category": ...}``;
* train / val files: ``{"instruction": <translation>, "category": ...}``.

Formatting as the published files: ``json.dumps(rows, indent=4)`` (ASCII with ``\\uXXXX``
escapes), keys in that order, no trailing newline. English has no file of its own (it is the
split files). A (language, label, split) without rows is not written: declared gaps are reported
with their reason, so an export of the German build reproduces the published German files it
could import, and names the harmless train/val files it cannot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from pipelines.core.fileio import atomic_write_text
from pipelines.polyrefuse.published import published_file
from pipelines.polyrefuse.settings import SOURCE_LANGUAGE
from schemas.polyrefuse import LABEL, LANGUAGES, SPLITS

LAYOUTS = ("published",)
EXPORT_COLUMNS = ("lang", "split", "label", "category", "position", "instruction", "instruction_en")


@dataclass
class ExportResult:
    out_dir: Path
    written: list[tuple[Path, int]] = field(default_factory=list)  # (file, rows)
    not_written: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)


def published_records(rows: pl.DataFrame, split: str) -> list[dict[str, Any]]:
    """The rows of one file, in English split order, with the published keys."""
    ordered = rows.sort("position")
    if split == "test":
        return [
            {"instruction": r["instruction_en"], "instruction_translated": r["instruction"], "category": r["category"]}
            for r in ordered.iter_rows(named=True)
        ]
    return [{"instruction": r["instruction"], "category": r["category"]} for r in ordered.iter_rows(named=True)]


def published_json(records: list[dict[str, Any]]) -> str:
    """Exactly the published files' formatting."""
    return json.dumps(records, indent=4)


def export_published(rows: pl.DataFrame, gaps: Iterable[dict[str, Any]], out_dir: Path | str) -> ExportResult:
    """Write every (language, label, split) of ``rows`` (English excluded) under ``out_dir``.

    ``rows`` needs :data:`EXPORT_COLUMNS` (``label`` as the class index); ``gaps`` are declared
    gaps (``lang``, ``label`` name, ``split``, ``reason``), reported for files not written.
    Existing files of the same names are replaced (atomically, one by one).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir)
    reasons = {(g["lang"], g["label"], g["split"]): g["reason"] for g in gaps}
    # every language with rows or with declared gaps, in the canonical order
    mentioned = set(rows.get_column("lang").to_list()) | {lang for lang, _, _ in reasons}
    for lang in [lang for lang in LANGUAGES if lang in mentioned and lang != SOURCE_LANGUAGE]:
        for label_index, label in enumerate(LABEL.names):
            for split in SPLITS:
                path = published_file(out_dir, label, split, lang)
                cell = rows.filter((pl.col("lang") == lang) & (pl.col("label") == label_index) & (pl.col("split") == split))
                if cell.height == 0:
                    reason = reasons.get((lang, label, split), f"no {lang} rows for {label} {split}")
                    result.not_written.append((path.name, reason))
                    continue
                atomic_write_text(path, published_json(published_records(cell, split)))
                result.written.append((path, cell.height))
    return result
