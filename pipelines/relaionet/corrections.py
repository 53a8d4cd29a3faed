"""Proofreading corrections in the reLAIONet build: people's verdicts decide each image's status.

Input: a corrections parquet file, written by ``corpusforge annotate pull relaionet``
(:func:`annotation.recipes.relaionet.corrections_from_judgments`): one row per judged image with
``sample_id``, ``status`` (accepted / relabelled / unusable / disputed; null while not settled,
``problem`` says why), ``label`` (the final class id), ``unusable_reason`` and ``annotators``.

:func:`read_corrections` reads and checks the file; :func:`apply_corrections` applies each
settled correction to its candidate:

* ``accepted``: ``proofread_status`` accepted, the label stays;
* ``relabelled``: ``label`` and ``wnid`` become the proofreaders' class, ``label_source`` proofreader;
* ``unusable``: ``proofread_status`` unusable with ``unusable_reason`` (not released);
* ``disputed``: ``proofread_status`` disputed (proofreaders disagree: not released);

and ``annotators`` = who proofread it. Candidates without a settled correction stay ``pending``
(with the caption's label). Corrections for sample ids that are not candidates are not dropped
silently: :func:`apply_corrections` returns them (see :class:`Applied`) for the caller to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.core.errors import InputError
from schemas.relaionet import N_CLASSES, PROOFREAD_STATUS, UNUSABLE_REASONS, wnids

CORRECTIONS_SCHEMA = pl.Schema({
    "sample_id": pl.String, "status": pl.String, "label": pl.Int64, "unusable_reason": pl.String,
    "annotators": pl.List(pl.String), "problem": pl.String,
})
SETTLED = ("accepted", "relabelled", "unusable", "disputed")
FIX = "Give the corrections.parquet written by `corpusforge annotate pull relaionet`"


def read_corrections(path: Path | str) -> pl.DataFrame:
    """The corrections file in :data:`CORRECTIONS_SCHEMA`; an :class:`InputError` naming the file
    when it is unreadable, lacks a column, or holds a row that cannot be a correction (an unknown
    status or reason, a relabel without a valid class, a sample id twice)."""
    path = Path(path)
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise InputError(path, f"not a readable parquet file ({type(exc).__name__}: {exc})", FIX) from None
    missing = [c for c in CORRECTIONS_SCHEMA.names() if c not in df.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing}; it has {df.columns}", FIX)
    try:
        df = df.select([pl.col(c).cast(t) for c, t in CORRECTIONS_SCHEMA.items()])
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, f"a column has the wrong type ({exc})", FIX) from None
    checks = (
        (pl.col("sample_id").is_null(), "no sample_id"),
        (pl.col("status").is_not_null() & ~pl.col("status").is_in(list(SETTLED)), f"a status outside {', '.join(SETTLED)} (or null)"),
        ((pl.col("status") == "relabelled") & ~pl.col("label").is_between(0, N_CLASSES - 1).fill_null(False),
         f"status relabelled but no class id in 0..{N_CLASSES - 1}"),
        (pl.col("unusable_reason").is_not_null() & ~pl.col("unusable_reason").is_in(list(UNUSABLE_REASONS)),
         f"an unusable_reason outside {', '.join(UNUSABLE_REASONS)}"),
        (pl.col("sample_id").is_duplicated(), "a sample_id that appears more than once"),
    )
    for condition, what in checks:
        bad = df.with_row_index("_row", offset=1).filter(condition.fill_null(False))
        if bad.height:
            raise InputError(path, f"{bad.height} row(s) with {what}, e.g. row {bad['_row'][0]} ({bad['sample_id'][0]!r})", FIX)
    return df


@dataclass(frozen=True)
class Applied:
    """:func:`apply_corrections`' result: the candidates, and what could not be applied."""

    candidates: pl.DataFrame
    unknown: pl.DataFrame  # corrections whose sample_id is not a candidate (not applied)
    counts: dict[str, int]  # candidates by proofread_status after applying


def apply_corrections(candidates: pl.DataFrame, corrections: pl.DataFrame | None) -> Applied:
    """``candidates`` (CANDIDATES rows) with the settled corrections applied; see the module doc.

    Unsettled corrections (``status`` null) leave their candidate pending. Every candidate not
    settled by a correction is reset to pending with the caption's class (``caption_class``), so
    applying the latest corrections to a rebuilt candidate frame gives the same result as to a
    fresh one.
    """
    base = candidates.with_columns(
        pl.lit("pending").alias("proofread_status"), pl.col("caption_class").cast(candidates.schema["label"]).alias("label"),
        pl.lit("caption").alias("label_source"), pl.lit(None, dtype=pl.String).alias("unusable_reason"),
        pl.lit([], dtype=pl.List(pl.String)).alias("annotators"),
    ).with_columns(_wnid("caption_class"))
    if corrections is None or corrections.height == 0:
        return Applied(base, pl.DataFrame(schema=CORRECTIONS_SCHEMA), _counts(base))
    settled = corrections.filter(pl.col("status").is_not_null())
    known = set(candidates["sample_id"].to_list())
    unknown = corrections.filter(~pl.col("sample_id").is_in(list(known)))
    c = settled.select(
        "sample_id", pl.col("status").alias("_status"), pl.col("label").alias("_label"),
        pl.col("unusable_reason").alias("_reason"), pl.col("annotators").alias("_by"),
    )
    status = pl.col("_status")
    relabelled = status == "relabelled"
    out = (
        base.join(c, on="sample_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce(status, pl.col("proofread_status")).alias("proofread_status"),
            pl.when(relabelled).then(pl.col("_label").cast(base.schema["label"])).otherwise(pl.col("label")).alias("label"),
            pl.when(relabelled).then(pl.lit("proofreader")).otherwise(pl.col("label_source")).alias("label_source"),
            pl.when(status == "unusable").then(pl.col("_reason")).otherwise(pl.lit(None, dtype=pl.String)).alias("unusable_reason"),
            pl.coalesce(pl.col("_by"), pl.col("annotators")).alias("annotators"),
        )
        .with_columns(_wnid("label"))
        .drop("_status", "_label", "_reason", "_by")
    )
    return Applied(out.select(candidates.columns), unknown, _counts(out))


def _wnid(column: str) -> pl.Expr:
    return pl.col(column).replace_strict(list(range(N_CLASSES)), list(wnids()), return_dtype=pl.String).alias("wnid")


def _counts(df: pl.DataFrame) -> dict[str, int]:
    found = dict(df.group_by("proofread_status").len().iter_rows())
    return {s: found.get(s, 0) for s in PROOFREAD_STATUS}
