"""Generic bridge from table definitions (and dataset rules) to Great Expectations 1.x runs.

* :class:`CheckSpec` names one check: the GX expectation (class name + kwargs), the frame it runs
  on and the id column naming its failing rows. Specs are plain data: building them imports no GX.
* :func:`table_checks` derives the specs of ``Table.column_checks()`` generically (not_null ->
  ExpectColumnValuesToNotBeNull, unique -> ExpectColumnValuesToBeUnique, in_set ->
  ExpectColumnValuesToBeInSet, between -> ExpectColumnValuesToBeBetween, elements_in_set -> the
  exploded list as a second frame ``<table>.<column>`` (id column + element) checked with
  ExpectColumnValuesToBeInSet).
* :func:`run_checks` validates polars frames with GX (pandas backend; an ephemeral context whose
  only Data Docs site is a local folder), writes the results and the Data Docs, and maps every
  expectation result back to a :class:`~validation.report.CheckResult`.
* :func:`validate_checks` runs a dataset's checks and writes its whole report (results.json,
  report.html, summary.json, Data Docs): what a ``validate_<dataset>`` function ends with.

GX never sees a list or struct column (it would pickle the whole frame to fingerprint it, about
10x slower): :func:`table_checks` keeps scalar columns only (a nested column's not-null check runs
on a scalar stand-in, see :func:`nested_stand_in`) and :func:`run_checks` refuses frames that
still have them. Validate list contents as exploded frames (:func:`explode_list`) or indicator
columns.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

import pandas as pd
import polars as pl

from pipelines.core.faults import fault_point
from pipelines.core.fileio import atomic_write_text
from schemas.table import ColumnCheck, Label, ListOf, Table
from validation.report import MAX_FAILING_IDS, CheckResult, ValidationReport

AUTO_INDEX_ABOVE = 2000  # id_mode="auto": failing rows above which GX gets ids as the index
RESULTS_LIST_CAP = 1000  # entries kept per unexpected_* list in results.json
DOCS_SITE = "local_site"

_EXPECTATION_OF_KIND = {
    "not_null": "ExpectColumnValuesToNotBeNull",
    "unique": "ExpectColumnValuesToBeUnique",
    "in_set": "ExpectColumnValuesToBeInSet",
    "between": "ExpectColumnValuesToBeBetween",
    "elements_in_set": "ExpectColumnValuesToBeInSet",  # on the exploded frame
}


# --------------------------------------------------------------------------- specs and frames


@dataclass(frozen=True)
class CheckSpec:
    """One named check = one GX expectation on one frame.

    ``expectation`` is a class name of ``great_expectations.expectations`` and ``kwargs`` its
    arguments (``column``, ``value_set``, ``min_value``...). ``table`` is the table reported;
    ``frame`` the key of the frame GX validates (a table's scalar frame, an exploded list).
    """

    name: str
    table: str
    frame: str
    expectation: str
    kwargs: dict[str, Any]
    description: str
    origin: str = "rule"  # "schema" | "rule"

    @property
    def is_table_level(self) -> bool:
        return self.expectation.startswith("ExpectTable")


@dataclass
class GXFrame:
    """A frame handed to GX (scalar columns only) and the column naming its rows."""

    name: str
    df: pl.DataFrame
    id_column: str | None


@dataclass
class TableChecks:
    specs: list[CheckSpec] = field(default_factory=list)
    frames: dict[str, GXFrame] = field(default_factory=dict)

    def extend(self, other: "TableChecks") -> "TableChecks":
        for name in other.frames:
            if name in self.frames:
                raise ValueError(f"frame {name!r} defined twice")
        self.frames.update(other.frames)
        self.specs.extend(other.specs)
        return self


def _is_nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.List, pl.Array, pl.Struct, pl.Object))


def explode_list(df: pl.DataFrame, id_column: str, list_column: str, element: str | None = None) -> pl.DataFrame:
    """One row per element of ``list_column``: (id, element). Null and empty lists give no row.

    A null element gives a null row, which GX's column-map expectations skip (as they skip
    nulls everywhere): a null inside a list is not reported by an in-set check.
    """
    element = element or list_column
    return (
        df.select(pl.col(id_column), pl.col(list_column).alias(element))
        .filter(pl.col(element).list.len() > 0)
        .explode(element)
    )


def nested_stand_in(column: str, dtype: pl.DataType) -> tuple[str, pl.Expr]:
    """(name, expr) of a scalar column that is null exactly where ``column`` is.

    A list becomes its length (``<column>_len``), a struct a constant true (``<column>_present``).
    """
    col = pl.col(column)
    if isinstance(dtype, (pl.List, pl.Array)):
        name = f"{column}_len"
        return name, col.list.len().alias(name) if isinstance(dtype, pl.List) else col.arr.len().alias(name)
    name = f"{column}_present"
    return name, pl.when(col.is_not_null()).then(pl.lit(True)).alias(name)


def _fmt(v: Any) -> str:
    return "None" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _values(table: Table, check: ColumnCheck) -> str:
    """The allowed values, with label names when the column is a label (``0=oppose, 1=support``)."""
    values = list(check.value_set or ())
    dtype = table.column(check.column).dtype
    label = dtype if isinstance(dtype, Label) else dtype.inner if isinstance(dtype, ListOf) else None
    if isinstance(label, Label) and values == list(range(len(label.names))):
        return "{" + ", ".join(f"{i}={n}" for i, n in enumerate(label.names)) + "}"
    return str(values)


def spec_of_column_check(table: Table, check: ColumnCheck) -> CheckSpec:
    """The spec of one backend-neutral column check (element checks run on ``table.column``)."""
    kind, col = check.kind, check.column
    name = f"{table.name}.{col}.{kind}"
    frame = table.name
    if kind == "not_null":
        kwargs: dict[str, Any] = {"column": col}
        desc = f"{col} is never null"
    elif kind == "unique":
        kwargs = {"column": col}
        desc = f"{col} is unique"
    elif kind == "in_set":
        kwargs = {"column": col, "value_set": list(check.value_set or ())}
        desc = f"{col} in {_values(table, check)}"
    elif kind == "between":
        kwargs = {"column": col, "min_value": check.min_value, "max_value": check.max_value}
        desc = f"{col} between {_fmt(check.min_value)} and {_fmt(check.max_value)}"
    elif kind == "elements_in_set":
        frame = f"{table.name}.{col}"
        kwargs = {"column": col, "value_set": list(check.value_set or ())}
        desc = f"every element of {col} in {_values(table, check)}"
    else:  # pragma: no cover - a new kind in schemas/ must be mapped here
        raise ValueError(f"unknown column check kind {kind!r} ({table.name}.{col})")
    return CheckSpec(name, table.name, frame, _EXPECTATION_OF_KIND[kind], kwargs, desc, origin="schema")


def table_checks(
    table: Table,
    df: pl.DataFrame,
    *,
    extra_columns: Iterable[str] = (),
    skip: Collection[str] = (),
) -> TableChecks:
    """Specs and frames of ``table.column_checks()`` for ``df``.

    The table's frame (named ``table.name``) holds the released scalar columns plus
    ``extra_columns`` (indicator columns computed by the caller); each list column with an
    ``elements_in_set`` check gets an exploded frame ``<table>.<column>`` (id + element).
    ``skip`` lists check names (``<table>.<column>.<kind>``) the caller replaces by its own.
    """
    released = [c.name for c in table.released_columns]
    missing = [c for c in released if c not in df.columns]
    if missing:
        raise ValueError(f"table {table.name!r}: frame lacks released columns {missing}")
    out = TableChecks()
    checks = [c for c in table.column_checks() if f"{table.name}.{c.column}.{c.kind}" not in skip]
    main_cols = [c for c in released if not _is_nested(df.schema[c])]
    main_cols += [c for c in extra_columns if c not in main_cols]
    # A nested column's not_null check runs on a scalar stand-in, null exactly where it is.
    stand_ins = {
        c.column: nested_stand_in(c.column, df.schema[c.column])
        for c in checks
        if c.kind == "not_null" and _is_nested(df.schema[c.column])
    }
    main = df.select(main_cols + [expr for _, expr in stand_ins.values()])
    out.frames[table.name] = GXFrame(table.name, main, table.primary_key)
    seen: dict[str, int] = {}
    for check in checks:
        spec = spec_of_column_check(table, check)
        seen[spec.name] = seen.get(spec.name, 0) + 1
        if seen[spec.name] > 1:  # e.g. a column with both an allowed set and a label set
            spec = CheckSpec(f"{spec.name}#{seen[spec.name]}", *[getattr(spec, f) for f in (
                "table", "frame", "expectation", "kwargs", "description", "origin")])
        if check.column in stand_ins and check.kind == "not_null":
            spec = CheckSpec(
                spec.name, spec.table, spec.frame, spec.expectation,
                {**spec.kwargs, "column": stand_ins[check.column][0]}, spec.description, spec.origin,
            )
        if check.kind == "elements_in_set" and spec.frame not in out.frames:
            out.frames[spec.frame] = GXFrame(
                spec.frame, explode_list(df, table.primary_key, check.column), table.primary_key
            )
        out.specs.append(spec)
    return out


def row_count_spec(table: str, min_value: int | None, max_value: int | None) -> CheckSpec:
    lo = 0 if min_value is None and max_value is None else min_value
    return CheckSpec(
        name=f"{table}.row_count",
        table=table,
        frame=table,
        expectation="ExpectTableRowCountToBeBetween",
        kwargs={"min_value": lo, "max_value": max_value},
        description=f"row count between {_fmt(min_value)} and {_fmt(max_value)}",
    )


# --------------------------------------------------------------------------- running


@dataclass
class SuiteRun:
    success: bool
    checks: list[CheckResult]
    results: dict[str, Any]  # what results.json holds
    data_docs_index: Path | None
    timings: dict[str, float]
    id_modes: dict[str, str] = field(default_factory=dict)  # frame -> how GX named failing rows


def _context(docs_dir: Path | None):
    """An ephemeral (in-memory) GX context whose only Data Docs site is ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


_QUERY_ROWS = re.compile(r"items=\[([^\]]*)\]")


def null_id_label(row: int) -> str:
    """How a row whose id is null is named in failing ids."""
    return f"<null id: row {row}>"


def id_labels(df: pl.DataFrame, id_column: str) -> pl.Series:
    """The id of every row as a string; a null id becomes ``<null id: row N>`` (N: 0-based row)."""
    return df.select(
        pl.col(id_column)
        .cast(pl.String)
        .fill_null(pl.lit("<null id: row ") + pl.int_range(pl.len()).cast(pl.String) + pl.lit(">"))
    ).to_series()


def _failing_ids(result: dict[str, Any], id_column: str | None) -> list[str]:
    """Distinct ids of the failing rows (GX's unexpected_index_list), sorted, at most MAX_FAILING_IDS."""
    if not id_column:
        return []
    ids: set[str] = set()
    null_positions: list[int] = []
    for i, row in enumerate(result.get("unexpected_index_list") or []):
        v = row.get(id_column) if isinstance(row, dict) else row
        if _is_null(v):
            null_positions.append(i)
        else:
            ids.add(str(v))
    if null_positions:
        # unexpected_index_column_names gives no row for a null id; GX's pandas query has it
        m = _QUERY_ROWS.search(str(result.get("unexpected_index_query") or ""))
        rows = [r.strip() for r in m.group(1).split(",")] if m else []
        for i in null_positions:
            ids.add(null_id_label(int(rows[i])) if i < len(rows) and rows[i].isdigit() else "<null id>")
    return sorted(ids)[:MAX_FAILING_IDS]


def predicted_failures(df: pl.DataFrame, spec: CheckSpec) -> int:
    """Rows polars expects ``spec`` to fail on (0 for unknown expectations).

    Only chooses how GX is asked to name failing rows (see ``id_mode`` of :func:`run_checks`);
    the verdict and the ids always come from GX.
    """
    col = spec.kwargs.get("column")
    if col is None or col not in df.columns:
        return 0
    c = pl.col(col)
    if spec.expectation == "ExpectColumnValuesToNotBeNull":
        expr = c.is_null()
    elif spec.expectation == "ExpectColumnValuesToBeUnique":
        expr = c.is_duplicated() & c.is_not_null()
    elif spec.expectation == "ExpectColumnValuesToBeInSet":
        values = pl.Series(list(spec.kwargs.get("value_set") or []), dtype=df.schema[col])
        expr = c.is_not_null() & ~c.is_in(values.implode())
    elif spec.expectation == "ExpectColumnValuesToBeBetween":
        lo, hi = spec.kwargs.get("min_value"), spec.kwargs.get("max_value")
        expr = pl.lit(False)
        if lo is not None:
            expr = expr | (c < lo)
        if hi is not None:
            expr = expr | (c > hi)
        expr = expr & c.is_not_null()
    else:
        return 0
    try:
        return int(df.select(expr.sum()).item() or 0)
    except Exception:  # a dtype polars cannot compare: let GX judge, name rows the fast way
        return len(df)


def _cap_lists(obj: Any, cap: int) -> Any:
    """results.json stays readable when a check fails on most rows: long lists are cut."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, list) and len(v) > cap and k.startswith(("unexpected_", "partial_")):
                out[k] = [_cap_lists(x, cap) for x in v[:cap]]
                out[f"{k}_truncated_from"] = len(v)
            else:
                out[k] = _cap_lists(v, cap)
        return out
    if isinstance(obj, list):
        return [_cap_lists(x, cap) for x in obj]
    if isinstance(obj, str) and len(obj) > 20_000:  # e.g. an unexpected_index_query over many rows
        return obj[:20_000] + "...<truncated>"
    return obj


def _describe_observed(spec: CheckSpec, result: dict[str, Any]) -> str:
    if spec.is_table_level and "observed_value" in result:
        return f"observed {result['observed_value']}"
    return ""


def run_checks(
    frames: dict[str, GXFrame],
    specs: list[CheckSpec],
    out_dir: Path | None,
    *,
    name: str = "validation",
    build_docs: bool = True,
    id_mode: str = "auto",
    allow_nested: bool = False,
) -> SuiteRun:
    """Validate every frame with its specs in one ephemeral GX context.

    Writes ``out_dir/results.json`` (every suite's validation result, JSON; unexpected lists
    capped at RESULTS_LIST_CAP entries) and, with ``build_docs``, the Data Docs site under
    ``out_dir/data_docs``. Returns one CheckResult per spec, in the order of ``specs``.

    Failing rows are named from GX's ``unexpected_index_list`` (result format COMPLETE):

    * ``id_mode="columns"``: ``{"result_format": "COMPLETE", "unexpected_index_column_names":
      [id column]}``. GX fetches the id of each failing row one by one (about 80 us per row on
      this machine: a check failing on 700k rows takes about a minute).
    * ``id_mode="index"``: the pandas frame's (unnamed) index holds the ids, so GX lists them
      directly (cheap whatever the failure count; costs about 0.5 s more per million rows to
      hash the index).
    * ``id_mode="auto"`` (default): per frame, "columns" unless polars predicts a check of the
      frame to fail on more than AUTO_INDEX_ABOVE rows (:func:`predicted_failures`) or the id
      column has nulls.

    A row whose id is null is named ``<null id: row N>`` (N: 0-based row of the frame).
    ``allow_nested`` lets frames keep list/struct columns: only to measure that naive way.
    """
    if id_mode not in ("auto", "index", "columns"):
        raise ValueError(f"id_mode must be 'auto', 'index' or 'columns', got {id_mode!r}")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    timings["gx_import"] = time.perf_counter() - t

    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"check names must be unique: {sorted(dup)}")
    for s in specs:
        if s.frame not in frames:
            raise ValueError(f"check {s.name!r} runs on unknown frame {s.frame!r}")
    for f in frames.values():
        nested = [c for c, dt in f.df.schema.items() if _is_nested(dt)]
        if nested and not allow_nested:
            raise ValueError(f"frame {f.name!r} has list/struct columns {nested}: GX would pickle it")

    t = time.perf_counter()
    out_dir = Path(out_dir) if out_dir is not None else None
    docs_dir = (out_dir / "data_docs").resolve() if (out_dir is not None and build_docs) else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    if docs_dir is not None and docs_dir.is_dir() and (docs_dir / "index.html").exists():
        shutil.rmtree(docs_dir)  # pages of an earlier run would linger beside this run's
    context = _context(docs_dir)
    source = context.data_sources.add_pandas(f"{name}_frames")
    run_id = RunIdentifier(run_name=name, run_time=_dt.datetime.now(_dt.timezone.utc))
    timings["gx_setup"] = time.perf_counter() - t

    by_frame: dict[str, list[CheckSpec]] = {}
    for s in specs:
        by_frame.setdefault(s.frame, []).append(s)

    spec_by_name = {s.name: s for s in specs}
    outcome: dict[str, CheckResult] = {}
    suite_results: list[dict[str, Any]] = []
    t_convert = t_validate = 0.0
    modes: dict[str, str] = {}
    for frame_name, frame_specs in by_frame.items():
        frame = frames[frame_name]
        fault_point(f"validation.frame.before:{frame_name}")  # crash tests (no-op otherwise)
        t = time.perf_counter()
        df = frame.df
        result_format: dict[str, Any] = {"result_format": "COMPLETE"}
        mode = id_mode
        if id_mode == "auto":
            worst = max((predicted_failures(df, sp) for sp in frame_specs), default=0)
            null_ids = bool(frame.id_column) and df.get_column(frame.id_column).null_count() > 0
            mode = "index" if (worst > AUTO_INDEX_ABOVE or null_ids) else "columns"
        modes[frame_name] = mode
        if frame.id_column and mode == "index":
            # GX reports the (unnamed) index of failing rows as is: make it the id. The id column
            # itself goes only where a check reads it (GX hashes every column of a batch).
            labels = pd.Index(id_labels(df, frame.id_column).to_numpy(), dtype=object)
            if not any(sp.kwargs.get("column") == frame.id_column for sp in frame_specs):
                df = df.drop(frame.id_column)
            pdf = df.to_pandas()
            pdf.index = labels
        else:
            pdf = df.to_pandas()
            if frame.id_column:
                result_format["unexpected_index_column_names"] = [frame.id_column]
        t_convert += time.perf_counter() - t
        t = time.perf_counter()
        asset = source.add_dataframe_asset(frame_name)
        batch_def = asset.add_batch_definition_whole_dataframe(f"{frame_name}: whole frame")
        expectations = []
        for sp in frame_specs:
            cls = getattr(gxe, sp.expectation)
            extra = {"description": f"{sp.name}: {sp.description}"} if sp.origin == "rule" else {}
            expectations.append(cls(**sp.kwargs, meta={"check": sp.name, "table": sp.table}, **extra))
        # the suite is built whole, then stored once (add_expectation stores after each one)
        suite = context.suites.add(gx.ExpectationSuite(name=frame_name, expectations=expectations))
        vd = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}: {frame_name}", data=batch_def, suite=suite)
        )
        res = vd.run(batch_parameters={"dataframe": pdf}, result_format=result_format, run_id=run_id)
        timings[f"gx_validate[{frame_name}]"] = time.perf_counter() - t
        t_validate += time.perf_counter() - t
        del pdf
        for er in res.results:
            check_name = (er.expectation_config.meta or {}).get("check")
            fault_point(f"validation.check:{frame_name}:{check_name}")
            spec = spec_by_name[check_name]
            r = er.result or {}
            exc = er.exception_info or {}
            raised = bool(exc.get("raised_exception")) if isinstance(exc, dict) else False
            details = _describe_observed(spec, r)
            if raised:
                details = f"GX raised: {exc.get('exception_message')}"
            unexpected = int(r.get("unexpected_count") or 0)
            outcome[check_name] = CheckResult(
                name=spec.name,
                table=spec.table,
                description=spec.description,
                success=bool(er.success),
                unexpected_count=unexpected,
                failing_ids=[] if spec.is_table_level else _failing_ids(r, frame.id_column),
                id_column=None if spec.is_table_level else frame.id_column,
                expectation=er.expectation_config.type,
                origin=spec.origin,
                details=details,
            )
            er.result = _cap_lists(r, RESULTS_LIST_CAP)  # before serialising: lists can be huge
        suite_results.append(res.to_json_dict())
    timings["prepare_frames"] = t_convert
    timings["gx_validate"] = t_validate

    missing = [n for n in names if n not in outcome]
    if missing:  # pragma: no cover - GX returns one result per expectation
        raise RuntimeError(f"GX returned no result for {missing}")
    checks = [outcome[n] for n in names]
    success = all(c.success for c in checks)
    results = {
        "name": name,
        "success": success,
        "run_id": {"run_name": run_id.run_name, "run_time": run_id.run_time.isoformat()},
        "great_expectations_version": gx.__version__,
        "results_list_cap": RESULTS_LIST_CAP,
        "failing_ids_from": {
            f: "index (ids as the frame index)" if m == "index" else "unexpected_index_column_names"
            for f, m in modes.items()
        },
        "validation_results": suite_results,
    }

    index: Path | None = None
    if out_dir is not None:
        t = time.perf_counter()
        atomic_write_text(out_dir / "results.json", json.dumps(results, indent=1, default=str) + "\n")
        timings["write_results"] = time.perf_counter() - t
    if docs_dir is not None:
        t = time.perf_counter()
        fault_point("validation.data_docs.before")
        built = context.build_data_docs(site_names=[DOCS_SITE])
        fault_point("validation.data_docs.after")
        timings["data_docs"] = time.perf_counter() - t
        index = docs_dir / "index.html"
        if not index.exists():  # pragma: no cover - GX names the index page itself
            url = built.get(DOCS_SITE, "")
            index = Path(url.removeprefix("file://")) if url else None
    return SuiteRun(
        success=success, checks=checks, results=results, data_docs_index=index, timings=timings, id_modes=modes
    )


def validate_checks(
    checks: TableChecks,
    out_dir: Path,
    *,
    dataset: str,
    name: str,
    counts: dict[str, int],
    table_order: Sequence[str] = (),
    details: Mapping[str, str] | None = None,
    id_mode: str = "auto",
    data_docs: bool = True,
    prepare_seconds: float = 0.0,
    started: float | None = None,
) -> ValidationReport:
    """Run ``checks`` with GX and write the report: results.json, report.html, summary.json and
    (``data_docs``) the Data Docs site, all under ``out_dir``.

    ``name`` names the GX run; ``dataset`` the report. ``details`` replaces a check's details by
    name (what polars computed about it). Checks are reported in ``table_order`` (other tables
    after), schema checks first within a table. ``prepare_seconds`` (building the frames) and
    ``started`` (``time.perf_counter()`` at the start, for the ``total`` timing) only feed the
    timings.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter() if started is None else started
    run = run_checks(checks.frames, checks.specs, out_dir, name=name, id_mode=id_mode, build_docs=data_docs)
    for check in run.checks:
        if details and check.name in details:
            check.details = details[check.name]
    order = {t: i for i, t in enumerate(table_order)}
    report = ValidationReport(
        dataset=dataset,
        success=run.success,
        checks=sorted(run.checks, key=lambda c: (order.get(c.table, len(order)), c.origin != "schema")),
        counts=counts,
        out_dir=out_dir,
        data_docs_index=run.data_docs_index,
        results_path=out_dir / "results.json",
        timings={"prepare_polars": prepare_seconds, **run.timings},
    )
    report.write_html(out_dir / "report.html")
    report.timings["total"] = time.perf_counter() - started
    report.write_summary(out_dir / "summary.json")
    return report
