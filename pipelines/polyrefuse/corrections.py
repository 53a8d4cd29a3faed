"""Proofreading corrections in the PolyRefuse build: people's verdicts replace machine translations.

Input: a corrections parquet file, written by ``corpusforge annotate pull polyrefuse`` from the
proofreading project (:func:`annotation.recipes.polyrefuse.corrections_from_judgments`): one row
per judged item with ``prompt_id``, ``lang``, ``status`` (accepted / edited / rejected; null when
the latest judgment is unusable, ``problem`` says why), ``translation_final``,
``translation_machine`` (the text the person judged), ``annotator``, ``annotated_at`` and ``note``.

The ``corrections`` source step reads and checks the file; :func:`apply_corrections` (called by
the assemble step) applies each settled correction to its row:

* ``accepted``: the text stays; ``proofreading`` = accepted;
* ``edited``: ``instruction`` becomes the person's text, ``instruction_machine`` keeps the original;
* ``rejected``: ``instruction`` becomes null, ``instruction_machine`` keeps the original, and
  validation counts the row as declared missing (the reason: rejected at proofreading);

with ``proofread_by``, ``proofread_at`` and ``proofreading_note``. Corrections that cannot be
applied are quarantined in the assemble step's rejects with the reason, never dropped silently:
``unsettled_correction`` (the latest judgment is unusable), ``unknown_row`` (no such prompt and
language in this build), ``stale_correction`` (the machine translation changed since it was
judged: another model or source; proofread it again).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from pipelines.core.errors import InputError
from pipelines.core.step import Emitter, SourceUnit

CORRECTIONS_SCHEMA = pl.Schema({
    "prompt_id": pl.String, "lang": pl.String, "status": pl.String, "translation_final": pl.String,
    "translation_machine": pl.String, "annotator": pl.String, "annotated_at": pl.String,
    "note": pl.String, "problem": pl.String,
})
STATUSES = ("accepted", "edited", "rejected")
REJECT_COLUMNS = ("record_id", "drop_reason", "detail")


def read_corrections(unit: SourceUnit, params: object, out: Emitter) -> None:
    """Source step: the corrections file, checked; bad rows are quarantined with the reason."""
    path = Path(unit.path)
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise InputError(path, f"not a readable parquet file ({type(exc).__name__}: {exc})",
                         "Give the corrections.parquet written by `corpusforge annotate pull polyrefuse`") from None
    missing = [c for c in CORRECTIONS_SCHEMA.names() if c not in df.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing}; it has {df.columns}",
                         "Give the corrections.parquet written by `corpusforge annotate pull polyrefuse`")
    if df.schema["annotated_at"] != pl.String:
        df = df.with_columns(
            pl.col("annotated_at").map_elements(_iso, return_dtype=pl.String) if df.schema["annotated_at"] == pl.Object
            else pl.col("annotated_at").dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%SZ")
        )
    df = df.select([pl.col(c).cast(t) for c, t in CORRECTIONS_SCHEMA.items()]).with_row_index("_row", offset=1)
    bad_status = pl.col("status").is_not_null() & ~pl.col("status").is_in(list(STATUSES))
    edit_without_text = (pl.col("status") == "edited") & (pl.col("translation_final").fill_null("").str.strip_chars() == "")
    problems = df.with_columns(
        pl.when(pl.col("prompt_id").is_null() | pl.col("lang").is_null()).then(pl.lit("prompt_id and lang are required"))
        .when(bad_status).then(pl.lit("status must be one of accepted, edited, rejected (or null), got ") + pl.col("status"))
        .when(edit_without_text).then(pl.lit("status edited with an empty translation_final"))
        .alias("_problem")
    )
    bad = problems.filter(pl.col("_problem").is_not_null())
    if bad.height:
        out.reject(bad.select(
            (pl.col("prompt_id").fill_null("?") + ":" + pl.col("lang").fill_null("?")).alias("record_id"),
            pl.lit("bad_correction").alias("drop_reason"),
            (pl.lit(f"{path.name} row ") + pl.col("_row").cast(pl.String) + ": " + pl.col("_problem")).alias("detail"),
            pl.lit(str(path)).alias("source_file"),
            pl.col("_row").cast(pl.Int64).alias("line"),
        ))
        out.count("bad_corrections", bad.height)
    good = problems.filter(pl.col("_problem").is_null()).select(CORRECTIONS_SCHEMA.names())
    out.emit("corrections", good)
    out.count("corrections", good.height)
    out.advance(unit.size)


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def apply_corrections(rows: pl.DataFrame, corrections: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """``rows`` with the settled corrections applied, the corrections that could not be, and counts.

    ``rows`` needs ``prompt_id``, ``lang``, ``instruction``, ``proofreading`` and the provenance
    columns (``instruction_machine``, ``proofread_by``, ``proofread_at``, ``proofreading_note``).
    """
    if corrections.height == 0:
        return rows, pl.DataFrame(schema={c: pl.String for c in REJECT_COLUMNS}), {}
    c = corrections.join(
        rows.select("prompt_id", "lang", pl.col("instruction").alias("_current"), pl.lit(True).alias("_known")),
        on=["prompt_id", "lang"], how="left",
    )
    same = pl.col("_current").fill_null("").str.strip_chars() == pl.col("translation_machine").fill_null("").str.strip_chars()
    c = c.with_columns(
        pl.when(pl.col("_known").is_null()).then(pl.lit("unknown_row"))
        .when(pl.col("status").is_null()).then(pl.lit("unsettled_correction"))
        .when(~same).then(pl.lit("stale_correction"))
        .alias("_reject")
    )
    rejects = c.filter(pl.col("_reject").is_not_null()).select(
        (pl.col("prompt_id") + ":" + pl.col("lang")).alias("record_id"),
        pl.col("_reject").alias("drop_reason"),
        pl.when(pl.col("_reject") == "unknown_row").then(pl.lit("no row with this prompt id and language in this build"))
        .when(pl.col("_reject") == "unsettled_correction").then(pl.lit("the latest judgment is unusable: ") + pl.col("problem").fill_null("?"))
        .otherwise(pl.lit("the machine translation changed since it was judged (another model or source): proofread it again"))
        .alias("detail"),
    )
    settled = c.filter(pl.col("_reject").is_null()).select(
        "prompt_id", "lang", pl.col("status").alias("_status"), pl.col("translation_final").alias("_final"),
        pl.col("annotator").alias("_by"), pl.col("annotated_at").alias("_at"), pl.col("note").alias("_note"),
    )
    status = pl.col("_status")
    changed = status.is_in(["edited", "rejected"])
    out = (
        rows.join(settled, on=["prompt_id", "lang"], how="left", maintain_order="left")
        .with_columns(
            pl.when(changed).then(pl.col("instruction")).otherwise(pl.col("instruction_machine")).alias("instruction_machine"),
            pl.when(status == "edited").then(pl.col("_final"))
            .when(status == "rejected").then(pl.lit(None, dtype=pl.String))
            .otherwise(pl.col("instruction")).alias("instruction"),
            pl.coalesce(status, pl.col("proofreading")).alias("proofreading"),
            pl.coalesce(pl.col("_by"), pl.col("proofread_by")).alias("proofread_by"),
            pl.coalesce(pl.col("_at"), pl.col("proofread_at")).alias("proofread_at"),
            pl.coalesce(pl.col("_note"), pl.col("proofreading_note")).alias("proofreading_note"),
        )
        .drop("_status", "_final", "_by", "_at", "_note")
    )
    counts = {f"proofread_{s}": n for s, n in settled.group_by("_status").len().iter_rows()}
    return out, rejects, counts
