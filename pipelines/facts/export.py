"""Export fact frequencies in the paper's layout, and read that layout back.

One JSON file::

    {"<lang>": {"<relation>": [{"subject": ..., "object": ..., "index": ..., "frequency": ...}, ...]}}

``frequency`` is ``cooccurrence_docs`` (documents mentioning both subject and object). Languages
and relations are sorted by name, samples by ``index``; the file is UTF-8 (``ensure_ascii=False``),
indented by 2, with a trailing newline, written atomically. Aliases and the one-sided counts are
not part of the layout: the release's parquet files carry them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.core.fileio import atomic_write_text

__all__ = ["export_paper_json", "paper_records", "read_paper_json", "PAPER_SCHEMA"]

SAMPLE_KEYS = ("subject", "object", "index", "frequency")
PAPER_SCHEMA = pl.Schema(
    {"lang": pl.String(), "relation": pl.String(), "index": pl.Int64(), "subject": pl.String(),
     "object": pl.String(), "frequency": pl.Int64()}
)


def paper_records(counts: pl.DataFrame) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The layout as a dict (see the module docstring). ``counts`` needs ``lang``, ``relation``,
    ``index``, ``subject``, ``object`` and ``cooccurrence_docs``."""
    needed = ("lang", "relation", "index", "subject", "object", "cooccurrence_docs")
    missing = [c for c in needed if c not in counts.columns]
    if missing:
        raise ValueError(f"counts frame lacks columns {missing}; it has {counts.columns}")
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    rows = counts.select(*needed[:-1], pl.col("cooccurrence_docs").alias("frequency")).sort("lang", "relation", "index")
    for row in rows.iter_rows(named=True):
        sample = {key: row[key] for key in SAMPLE_KEYS}
        out.setdefault(row["lang"], {}).setdefault(row["relation"], []).append(sample)
    return out


def export_paper_json(counts: pl.DataFrame, path: Path | str) -> Path:
    """Write ``counts`` in the paper's layout to ``path`` (atomically); returns ``path``."""
    path = Path(path)
    atomic_write_text(path, json.dumps(paper_records(counts), ensure_ascii=False, indent=2) + "\n")
    return path


def read_paper_json(path: Path | str) -> pl.DataFrame:
    """The file as a frame (:data:`PAPER_SCHEMA`), in (lang, relation, index) order.

    Raises ``ValueError`` naming the place when the file does not have the layout.
    """
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of languages, got {type(data).__name__}")
    rows: list[dict[str, Any]] = []
    for lang, relations in data.items():
        if not isinstance(relations, dict):
            raise ValueError(f"{path}: {lang}: expected an object of relations, got {type(relations).__name__}")
        for relation, samples in relations.items():
            if not isinstance(samples, list):
                raise ValueError(f"{path}: {lang}/{relation}: expected a list of samples, got {type(samples).__name__}")
            for i, sample in enumerate(samples):
                if not isinstance(sample, dict) or any(key not in sample for key in SAMPLE_KEYS):
                    raise ValueError(f"{path}: {lang}/{relation}[{i}]: a sample needs the keys {list(SAMPLE_KEYS)}")
                rows.append({"lang": lang, "relation": relation, **{key: sample[key] for key in SAMPLE_KEYS}})
    return pl.DataFrame(rows, schema=PAPER_SCHEMA).sort("lang", "relation", "index")
