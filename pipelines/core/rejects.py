"""Rejects (quarantine) rows as a REJECTS frame: one layout for every pipeline."""

from __future__ import annotations

from typing import Any

import polars as pl

from pipelines.core.readers import RAW_LIMIT
from schemas.rejects import REJECTS


def rejects_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Reject rows (dicts with any of record_id, drop_reason, detail, source_file, line, raw) as a
    REJECTS frame, numbered in the given order; ``raw`` is cut to RAW_LIMIT characters."""
    schema = REJECTS.polars_schema()
    body = {
        name: [row.get(name) for row in rows] for name in schema.names() if name != "reject_no"
    }
    body["raw"] = [None if r is None else str(r)[:RAW_LIMIT] for r in body["raw"]]
    frame = pl.DataFrame(body, schema={n: t for n, t in schema.items() if n != "reject_no"})
    return REJECTS.conform(frame.with_row_index("reject_no").with_columns(pl.col("reject_no").cast(pl.Int64)))
