"""MinMax Harmonic Mean (MMHM): one score per row of a text-to-image sweep, used to pick each model's
hyperparameters (guidance, steps) on reLAIONet (seed notes, section 3).

Per evaluation set, each metric m of FID, IS, CLIP and PickScore is min-max normalised over *all*
rows of the sweep (every model x guidance x steps)::

    u_m = (x - min) / (max - min)        IS, CLIP, PickScore (higher is better)
    u_m = (max - x) / (max - min)        FID (inverted, so the best FID gets 1)
    u_m = 1                              when max == min

and the row's score is the harmonic mean ``S = 4 / sum_m 1 / (eps + u_m)`` with ``eps = 1e-3``. The
bounds (min, max per metric) can be saved as JSON and reused on another evaluation set; there ``u``
may leave [0, 1] (a row better than the best of the fitting set gets u > 1). A reused bound with
max == min still gives u = 1. Hyperparameters are chosen per model by the highest S; the best
setting by FID alone is shown next to it.

Input: a results CSV with the columns ``model, guidance, steps, FID, IS, CLIP, PickScore`` (further
columns are carried through). :func:`read_results` rejects missing columns, non-numeric, empty, NaN or
infinite values and repeated (model, guidance, steps) rows, naming the file, line and column.

Outputs (:func:`run_mmhm`, via :class:`experiments.common.RunDir`)::

    <out>/mmhm.csv              the input columns plus ``mmhm``
    <out>/bounds.json           the bounds used (when save_bounds)
    <out>/tables/normalised.csv the input columns, u_FID, u_IS, u_CLIP, u_PickScore and mmhm
    <out>/tables/best.csv       per model: the best setting by MMHM and the best by FID
    <out>/plots/sweep.png       MMHM and FID over guidance, one panel per model, one line per steps
    <out>/metrics.json, config.json, report.md
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from experiments.common import ExperimentError, RunDir
from pipelines.core.fileio import atomic_write_bytes, atomic_write_json

METRICS = ("FID", "IS", "CLIP", "PickScore")
LOWER_IS_BETTER = frozenset({"FID"})
KEY = ("model", "guidance", "steps")
COLUMNS = (*KEY, *METRICS)
EPS = 1e-3
BOUNDS_FORMAT = "corpusforge-mmhm-bounds/1"


# --------------------------------------------------------------------------- reading


def read_results(path: Path | str) -> pl.DataFrame:
    """The results table of a sweep: model (str), guidance (float), steps (int), the four metrics
    (float) and any further columns (str), in file order.

    Raises :class:`ExperimentError` naming the file, the line (1 = header) and the column for a missing
    file or column, an empty table, a non-numeric, empty, NaN or infinite value, a non-integer number
    of steps and a repeated (model, guidance, steps) row."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"results file {path} does not exist: give the CSV of the sweep (columns {', '.join(COLUMNS)})")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise ExperimentError(
                f"{path} line 1: missing column(s) {', '.join(missing)} (header: {', '.join(header) or 'empty'}); "
                f"the results CSV needs the columns {', '.join(COLUMNS)} (names are case-sensitive)"
            )
        rows = [(number, row) for number, row in enumerate(reader, start=2) if any(cell.strip() for cell in row)]
    if not rows:
        raise ExperimentError(f"{path}: no rows below the header; add one row per (model, guidance, steps) setting")
    columns: dict[str, list[Any]] = {name: [] for name in header}
    seen: dict[tuple[str, float, int], int] = {}
    for number, row in rows:
        if len(row) != len(header):
            raise ExperimentError(f"{path} line {number}: {len(row)} fields but the header has {len(header)}; "
                                  "fix the row (a comma inside a model name needs quotes)")
        cells = dict(zip(header, (cell.strip() for cell in row)))
        model = cells["model"]
        if not model:
            raise ExperimentError(f"{path} line {number}, column 'model': empty; name the model of the row")
        guidance = _number(path, number, "guidance", cells["guidance"])
        steps_value = _number(path, number, "steps", cells["steps"])
        if steps_value != int(steps_value):
            raise ExperimentError(f"{path} line {number}, column 'steps': {cells['steps']!r} is not a whole number; "
                                  "write the number of sampling steps, e.g. 50")
        key = (model, guidance, int(steps_value))
        if key in seen:
            raise ExperimentError(
                f"{path} lines {seen[key]} and {number}: repeated setting model={model!r}, guidance={guidance:g}, "
                f"steps={key[2]}; keep one row per (model, guidance, steps) (average repeated runs first)"
            )
        seen[key] = number
        for name in header:
            if name == "guidance":
                columns[name].append(guidance)
            elif name == "steps":
                columns[name].append(key[2])
            elif name in METRICS:
                columns[name].append(_number(path, number, name, cells[name]))
            else:
                columns[name].append(cells[name])
    schema = {name: (pl.Float64 if name in METRICS or name == "guidance" else pl.Int64 if name == "steps" else pl.String)
              for name in header}
    return pl.DataFrame(columns, schema=schema)


def _number(path: Path, line: int, column: str, text: str) -> float:
    where = f"{path} line {line}, column {column!r}"
    if not text:
        raise ExperimentError(f"{where}: empty; every row needs {', '.join(('guidance', 'steps', *METRICS))}: "
                              "fill the value in or remove the row")
    try:
        value = float(text)
    except ValueError:
        raise ExperimentError(f"{where}: {text!r} is not a number; write a plain decimal number such as 12.5") from None
    if not math.isfinite(value):
        raise ExperimentError(f"{where}: {text!r} is not a finite number; recompute the metric or remove the row")
    return value


# --------------------------------------------------------------------------- bounds


@dataclass(frozen=True)
class Bounds:
    """Min and max of each metric over the rows the normalisation was fitted on."""

    low: Mapping[str, float]
    high: Mapping[str, float]
    source: str = ""  # where they were fitted (a results file), for the record

    @classmethod
    def fit(cls, frame: pl.DataFrame, source: str = "") -> "Bounds":
        """Bounds over all rows of ``frame`` (every model x guidance x steps)."""
        return cls({m: float(frame[m].min()) for m in METRICS}, {m: float(frame[m].max()) for m in METRICS}, source)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BOUNDS_FORMAT, "source": self.source, "eps": EPS,
            "metrics": {m: {"min": self.low[m], "max": self.high[m], "higher_is_better": m not in LOWER_IS_BETTER}
                        for m in METRICS},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "bounds") -> "Bounds":
        metrics = data.get("metrics") if isinstance(data, Mapping) else None
        if not isinstance(metrics, Mapping):
            raise ExperimentError(f"{where}: no 'metrics' object; give a bounds.json written by "
                                  "`corpusforge experiment mmhm --save-bounds`")
        low, high = {}, {}
        for m in METRICS:
            entry = metrics.get(m)
            try:
                low[m], high[m] = float(entry["min"]), float(entry["max"])
            except (TypeError, KeyError, ValueError):
                raise ExperimentError(f"{where}: metric {m!r} needs numeric 'min' and 'max'; "
                                      "rewrite the file with `corpusforge experiment mmhm --save-bounds`") from None
            if not (math.isfinite(low[m]) and math.isfinite(high[m])) or low[m] > high[m]:
                raise ExperimentError(f"{where}: metric {m!r} has min {low[m]} and max {high[m]}; "
                                      "they must be finite with min <= max")
        return cls(low, high, str(data.get("source", "")))


def save_bounds(bounds: Bounds, path: Path | str) -> Path:
    path = Path(path)
    atomic_write_json(path, bounds.to_json())
    return path


def load_bounds(path: Path | str) -> Bounds:
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"bounds file {path} does not exist; write one with `corpusforge experiment mmhm --save-bounds`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExperimentError(f"bounds file {path} is not valid JSON ({exc}); rewrite it with --save-bounds") from None
    return Bounds.from_json(data, where=f"bounds file {path}")


# --------------------------------------------------------------------------- the score


def normalise(frame: pl.DataFrame, bounds: Bounds) -> pl.DataFrame:
    """``frame`` with ``u_<metric>`` columns: min-max normalised, FID inverted, 1 where max == min."""
    columns = []
    for m in METRICS:
        low, high = bounds.low[m], bounds.high[m]
        if high == low:
            columns.append(pl.lit(1.0).alias(f"u_{m}"))
        elif m in LOWER_IS_BETTER:
            columns.append(((high - pl.col(m)) / (high - low)).alias(f"u_{m}"))
        else:
            columns.append(((pl.col(m) - low) / (high - low)).alias(f"u_{m}"))
    return frame.with_columns(columns)


def score_mmhm(frame: pl.DataFrame, bounds: Bounds | None = None, eps: float = EPS) -> pl.DataFrame:
    """``frame`` with the u columns and ``mmhm`` = 4 / sum_m 1 / (eps + u_m); bounds fitted on
    ``frame`` when not given."""
    bounds = bounds or Bounds.fit(frame)
    normalised = normalise(frame, bounds)
    inverse = sum(1.0 / (eps + pl.col(f"u_{m}")) for m in METRICS)
    return normalised.with_columns((len(METRICS) / inverse).alias("mmhm"))


def best_settings(scored: pl.DataFrame) -> pl.DataFrame:
    """One row per model: the setting with the highest MMHM and the one with the lowest FID (ties go
    to the lower guidance, then fewer steps), and whether they agree."""
    order = ["guidance", "steps"]
    by_mmhm = (scored.sort(["model", "mmhm", *order], descending=[False, True, False, False])
               .group_by("model", maintain_order=True).first())
    by_fid = scored.sort(["model", "FID", *order]).group_by("model", maintain_order=True).first()
    picked = by_mmhm.select("model", "guidance", "steps", "mmhm", *METRICS).join(
        by_fid.select("model", "guidance", "steps", "mmhm", *METRICS), on="model", suffix="_fid")
    picked = picked.rename({"guidance": "guidance_mmhm", "steps": "steps_mmhm", "mmhm": "mmhm_mmhm",
                            **{m: f"{m}_mmhm" for m in METRICS}})
    agree = (pl.col("guidance_mmhm") == pl.col("guidance_fid")) & (pl.col("steps_mmhm") == pl.col("steps_fid"))
    return picked.with_columns(agree.alias("agree")).sort("model")


# --------------------------------------------------------------------------- the run


def run_mmhm(results: Path | str, out: Path | str, *, bounds_file: Path | str | None = None,
             save_bounds_file: bool = False) -> dict[str, Any]:
    """Score a sweep and write the run folder (see the module docstring); returns metrics.json's content.

    ``bounds_file``: reuse saved bounds (u may leave [0, 1]) instead of fitting them on ``results``.
    ``save_bounds_file``: write the bounds used to ``<out>/bounds.json``."""
    results = Path(results)
    frame = read_results(results)
    reused = bounds_file is not None
    bounds = load_bounds(bounds_file) if reused else Bounds.fit(frame, source=str(results.resolve()))
    scored = score_mmhm(frame, bounds)
    best = best_settings(scored)

    run = RunDir(Path(out))
    run.config({"experiment": "mmhm", "results": str(results.resolve()), "eps": EPS, "metrics": list(METRICS),
                "bounds": {"reused_from": str(Path(bounds_file).resolve()) if reused else None, **bounds.to_json()},
                "save_bounds": save_bounds_file})
    atomic_write_bytes(run.root / "mmhm.csv", scored.select(*frame.columns, "mmhm").write_csv().encode("utf-8"))
    run.table("normalised", scored)
    run.table("best", best)
    if save_bounds_file:
        save_bounds(bounds, run.root / "bounds.json")
    run.plot("sweep", sweep_figure(scored))
    metrics = _metrics(scored, best, reused)
    run.metrics(metrics)
    run.report(_report(metrics, bounds, results, bounds_file, save_bounds_file))
    return metrics


def _metrics(scored: pl.DataFrame, best: pl.DataFrame, reused: bool) -> dict[str, Any]:
    def pick(row: Mapping[str, Any], suffix: str) -> dict[str, Any]:
        return {"guidance": row[f"guidance_{suffix}"], "steps": row[f"steps_{suffix}"], "mmhm": row[f"mmhm_{suffix}"],
                **{m: row[f"{m}_{suffix}"] for m in METRICS}}

    rows = best.to_dicts()
    u = scored.select([f"u_{m}" for m in METRICS])
    return {
        "rows": scored.height, "models": best["model"].to_list(), "bounds": "reused" if reused else "fitted",
        "u_outside_unit_interval": int(u.select(pl.any_horizontal((pl.all() < 0) | (pl.all() > 1)).sum()).item()),
        "best_by_mmhm": {r["model"]: pick(r, "mmhm") for r in rows},
        "best_by_fid": {r["model"]: pick(r, "fid") for r in rows},
        "agree": {r["model"]: r["agree"] for r in rows},
    }


def sweep_figure(scored: pl.DataFrame):
    """MMHM (top) and FID (bottom) over guidance, one column per model, one line per number of steps;
    the best setting by MMHM is starred, the best by FID ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted(scored["model"].unique().to_list())
    best = {r["model"]: r for r in best_settings(scored).to_dicts()}
    fig, axes = plt.subplots(2, len(models), figsize=(4.2 * len(models), 6.5), squeeze=False, sharex="col")
    for col, model in enumerate(models):
        part = scored.filter(pl.col("model") == model)
        for steps in sorted(part["steps"].unique().to_list()):
            line = part.filter(pl.col("steps") == steps).sort("guidance")
            for row, metric in enumerate(("mmhm", "FID")):
                axes[row][col].plot(line["guidance"], line[metric], marker="o", label=f"{steps} steps")
        b = best[model]
        mmhm_at = part.filter((pl.col("guidance") == b["guidance_mmhm"]) & (pl.col("steps") == b["steps_mmhm"]))
        axes[0][col].scatter(b["guidance_mmhm"], b["mmhm_mmhm"], marker="*", s=220, color="black", zorder=5, label="best MMHM")
        axes[1][col].scatter(b["guidance_mmhm"], mmhm_at["FID"][0], marker="*", s=220, color="black", zorder=5)
        axes[1][col].scatter(b["guidance_fid"], b["FID_fid"], s=160, facecolors="none", edgecolors="red", zorder=6,
                             label="best FID")
        axes[0][col].set_title(model)
        axes[0][col].set_ylabel("MMHM (higher is better)")
        axes[1][col].set_ylabel("FID (lower is better)")
        axes[1][col].set_xlabel("guidance scale")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle("MMHM and FID over the sweep")
    fig.tight_layout()
    return fig


def _report(metrics: Mapping[str, Any], bounds: Bounds, results: Path, bounds_file: Path | str | None,
            saved: bool) -> str:
    lines = [
        "# MMHM: hyperparameters per model", "",
        f"Results: `{results}` ({metrics['rows']} rows, {len(metrics['models'])} models). "
        f"Each metric is min-max normalised over all rows (FID inverted, best = 1); "
        f"MMHM = 4 / sum 1/(eps + u) over {', '.join(METRICS)}, eps = {EPS:g}.", "",
    ]
    if bounds_file is not None:
        lines += [f"Bounds reused from `{bounds_file}`; {metrics['u_outside_unit_interval']} row(s) have a u outside [0, 1].", ""]
    else:
        lines += ["Bounds fitted on this results file" + (" and saved to `bounds.json`." if saved else "."), ""]
    lines += ["| metric | min | max | better |", "|---|---|---|---|"]
    lines += [f"| {m} | {bounds.low[m]:.4g} | {bounds.high[m]:.4g} | {'lower' if m in LOWER_IS_BETTER else 'higher'} |"
              for m in METRICS]
    lines += ["", "| model | best by MMHM (guidance, steps) | MMHM | FID there | best by FID (guidance, steps) | FID | same |",
              "|---|---|---|---|---|---|---|"]
    for model in metrics["models"]:
        a, b = metrics["best_by_mmhm"][model], metrics["best_by_fid"][model]
        lines.append(f"| {model} | {a['guidance']:g}, {a['steps']} | {a['mmhm']:.4f} | {a['FID']:.4g} | "
                     f"{b['guidance']:g}, {b['steps']} | {b['FID']:.4g} | {'yes' if metrics['agree'][model] else 'no'} |")
    lines += ["", "Files: `mmhm.csv` (the input plus `mmhm`), `tables/normalised.csv` (u per metric), `tables/best.csv`, "
              "`plots/sweep.png` (MMHM and FID over guidance), `metrics.json`, `config.json`.", ""]
    return "\n".join(lines)


__all__ = [
    "METRICS", "EPS", "Bounds", "read_results", "save_bounds", "load_bounds", "normalise", "score_mmhm",
    "best_settings", "run_mmhm", "sweep_figure",
]
