"""Human labels in the SAD build: merged annotation labels override the machine suggestions.

Input: a merged-labels parquet file (``schemas.annotation.LABELS``, written by
``corpusforge annotate merge``). Each row labels one example, i.e. its target utterance. The
``human_labels`` source step reads and checks it (a row whose strategies are not SAD strategy
names is quarantined with the reason); ``apply_labels`` then sets ``strategies`` and
``strategies_source`` (``human:<source>:<n annotators>``, e.g. ``human:majority:3``) on the
labelled utterances. Suggestions are kept next to the labels, never overwritten. Stance stays
structural (OP supports, a challenger opposes); the human stance answers are measured for
agreement in the annotation report, not written into the tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipelines.core.errors import InputError
from pipelines.core.step import Emitter, SourceUnit, StepResult
from pipelines.sad.settings import SadSettings
from schemas.annotation import LABELS
from schemas.rejects import REJECTS
from schemas.sad import STRATEGIES

HUMAN_LABELS_SCHEMA = pl.Schema({"utterance_id": pl.String, "strategies": pl.List(pl.Int64), "strategies_source": pl.String})


def read_labels(unit: SourceUnit, settings: SadSettings, out: Emitter) -> None:
    path = Path(unit.path)
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise InputError(path, f"not a readable parquet file ({type(exc).__name__}: {exc})", "Give the labels.parquet written by `corpusforge annotate merge`") from None
    missing = [c for c in ("item_id", "answers", "source", "n_annotators") if c not in df.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing}; it has {df.columns}", f"Give a merged-labels file ({LABELS.description})")
    ids, labels, sources, rejects = [], [], [], []
    for k, (item_id, answers, source, n) in enumerate(df.select("item_id", "answers", "source", "n_annotators").iter_rows(), start=1):
        problem = None
        try:
            strategies = json.loads(answers).get("strategies")
        except (json.JSONDecodeError, AttributeError):
            strategies, problem = None, "answers is not a JSON object"
        if problem is None and (not isinstance(strategies, list) or not all(s in STRATEGIES for s in strategies)):
            problem = f"strategies must be a list of {list(STRATEGIES)}, got {strategies!r}"
        if problem:
            rejects.append({"record_id": item_id, "drop_reason": "bad_label", "detail": f"row {k}: {problem}", "source_file": str(path), "line": k, "raw": answers})
            continue
        ids.append(item_id)
        labels.append(sorted(STRATEGIES.index(s) for s in strategies))
        sources.append(f"human:{source}:{n}")
    out.emit("labels", pl.DataFrame({"utterance_id": ids, "strategies": labels, "strategies_source": sources}, schema=HUMAN_LABELS_SCHEMA))
    if rejects:
        out.reject(pl.DataFrame(rejects, schema=REJECTS.subset_schema(("record_id", "drop_reason", "detail", "source_file", "line", "raw"))))
    out.advance(unit.size)


def apply_labels(frames: dict[str, pl.DataFrame], settings: SadSettings) -> StepResult:
    utterances = frames["utterances"]
    labels = frames["labels"].rename({"strategies": "_h_strategies", "strategies_source": "_h_source"})
    out = utterances.join(labels, on="utterance_id", how="left").with_columns(
        pl.coalesce("_h_strategies", "strategies").alias("strategies"),
        pl.coalesce("_h_source", "strategies_source").alias("strategies_source"),
    ).drop("_h_strategies", "_h_source")
    applied = int(out["strategies_source"].str.starts_with("human:").sum() or 0)
    return StepResult({"utterances": out}, None, {"human_labelled": applied})
