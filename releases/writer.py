"""Write a release: parquet per config and split, card, manifest, checksums; atomically.

The release is assembled in a hidden sibling folder ``<dataset>/.<version>.tmp-<host>-<pid>-<hex>``
and renamed to ``<dataset>/<version>`` only when complete, so a crash never leaves a partial
version. Released versions are immutable: writing an existing version raises
:class:`ReleaseExistsError` and touches nothing.

Byte-identity: rows are sorted by split, then primary key; files are cut at fixed row counts, row groups
have a fixed size, and neither the parquet files nor the card hold a time stamp or anything
random. With the same libraries (recorded in the manifest), the same spec gives the same bytes;
only manifest.json (``created_at``) and hence checksums.sha256 differ between two writes.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import shutil
import socket
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from pipelines.core.faults import fault_point, fault_write
from releases.card import ConfigSummary, SplitSummary, render_card
from releases.errors import InvalidReleaseSpecError, ReleaseExistsError
from releases.manifest import (
    CARD_NAME,
    CHECKSUMS_NAME,
    MANIFEST_NAME,
    build_manifest,
    checksums_text,
    file_record,
    file_sha256,
    manifest_json,
)
from releases.spec import (
    DEFAULT_ROW_GROUP_SIZE,
    DEFAULT_ROW_GROUP_SIZE_BINARY,
    DEFAULT_SPLIT,
    SPLIT_RE,
    ReleaseSpec,
)
from releases.versions import next_version
from schemas.table import DType, Label, ListOf, StructOf, Table

TMP_MARKER = ".tmp-"
STALE_TMP_AFTER_S = 6 * 3600  # a temp folder this old is a crashed run, whoever wrote it


# --------------------------------------------------------------------------- public entry point


def write_release(spec: ReleaseSpec, releases_root: str | Path, *, created_at: datetime | None = None) -> Path:
    """Write ``spec`` to ``<releases_root>/<dataset>/<version>/`` and return that folder."""
    spec.validate()
    ds_dir = Path(releases_root) / spec.dataset
    final = ds_dir / spec.version
    if not final.resolve().is_relative_to(Path(releases_root).resolve()):  # a symlinked dataset folder
        raise InvalidReleaseSpecError(f"{final} resolves to {final.resolve()}, outside the releases folder "
                                      f"{Path(releases_root).resolve()}: replace the symlink by a folder")
    if final.exists():
        raise _exists_error(Path(releases_root), spec.dataset, spec.version, final)
    ds_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp_dirs(ds_dir)

    tmp = ds_dir / f".{spec.version}{TMP_MARKER}{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        summaries: list[ConfigSummary] = []
        files: dict[str, dict[str, Any]] = {}
        for name, table in spec.configs.items():
            fault_point(f"release.config.before:{name}", tmp)  # crash tests (no-op otherwise)
            summary = _write_config(tmp, spec, name, table, files)
            summaries.append(summary)
            fault_point(f"release.config.after:{name}", tmp)

        for name, data in sorted(spec.attachments.items()):
            _write_bytes(tmp / name, data)
            files[name] = file_record(tmp / name)

        fault_point("release.card.before", tmp)
        card = render_card(spec.card, dataset=spec.dataset, version=spec.version, configs=summaries)
        _write_bytes(tmp / CARD_NAME, card.encode("utf-8"))
        files[CARD_NAME] = file_record(tmp / CARD_NAME)

        stamp = (created_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        manifest = build_manifest(
            dataset=spec.dataset,
            version=spec.version,
            created_at=stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
            configs={s.name: _config_manifest(s) for s in summaries},
            files=files,
            extra=spec.manifest_extra,
        )
        _write_bytes(tmp / MANIFEST_NAME, manifest_json(manifest))

        fault_point("release.checksums.before", tmp)
        sums = {rel: rec["sha256"] for rel, rec in files.items()}
        sums[MANIFEST_NAME] = file_sha256(tmp / MANIFEST_NAME)
        _write_bytes(tmp / CHECKSUMS_NAME, checksums_text(sums).encode("utf-8"))

        fault_point("release.seal.before", tmp)
        _seal(tmp)
        fault_point("release.before_rename", final)
        try:
            os.rename(tmp, final)  # atomic; fails if `final` appeared meanwhile (non-empty dir)
        except OSError:
            if final.exists():
                raise _exists_error(Path(releases_root), spec.dataset, spec.version, final) from None
            raise
        _fsync_dir(ds_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# --------------------------------------------------------------------------- configs


def _write_config(tmp: Path, spec: ReleaseSpec, name: str, table: Table, files: dict[str, dict[str, Any]]) -> ConfigSummary:
    split_column = spec.split_column_of(name)
    prepared = prepare_frame(spec.tables[name], table, name, split_column, spec.split_order)
    features = table.hf_features()
    row_group_size = spec.row_group_size or _default_row_group_size(features)
    config_dir = tmp / name
    config_dir.mkdir()

    splits: list[SplitSummary] = []
    for split, start, length in prepared.bounds:
        n_files = max(1, math.ceil(length / spec.max_rows_per_file))
        rels: list[str] = []
        num_bytes = 0
        download = 0
        for i in range(n_files):
            offset = i * spec.max_rows_per_file
            rel = f"{name}/{split}-{i:05d}-of-{n_files:05d}.parquet"
            order = prepared.order.slice(start + offset, min(spec.max_rows_per_file, length - offset))
            num_bytes += _write_parquet_file(prepared.frame, features, tmp / rel, row_group_size, order=order)
            files[rel] = file_record(tmp / rel)
            download += files[rel]["bytes"]
            rels.append(rel)
        splits.append(
            SplitSummary(name=split, num_examples=length, num_bytes=num_bytes, files=tuple(rels), download_size=download)
        )
    return ConfigSummary(name=name, table=table, features=features, split_column=split_column, splits=tuple(splits))


@dataclass(frozen=True)
class PreparedFrame:
    frame: pl.DataFrame  # released columns, declared types, input order
    order: pl.Series  # row indices in release order: by split, then primary key
    bounds: list[tuple[str, int, int]]  # (split, start, length) in `order`

    def rows(self, start: int, length: int) -> pl.DataFrame:
        return self.frame[self.order.slice(start, length)]


def prepare_frame(
    df: pl.DataFrame,
    table: Table,
    config: str,
    split_column: str | None = None,
    split_order: Sequence[str] = (),
) -> "PreparedFrame":
    """Released columns in declared order and types, checked; row order by (split, primary key).

    Splits are ordered by ``split_order`` then alphabetically; within a split, rows are sorted
    by the primary key. The frame itself is not sorted (that would copy it whole): files gather
    their rows through ``order``.
    """
    try:
        frame = table.conform(df, released_only=True)
    except (ValueError, pl.exceptions.PolarsError) as e:
        raise InvalidReleaseSpecError(f"config {config!r}: cannot conform the frame to table {table.name!r}: {e}") from e
    if frame.height == 0:
        raise InvalidReleaseSpecError(f"config {config!r} has no rows: nothing to release")
    pk = table.primary_key
    nulls = frame[pk].null_count()
    if nulls:
        raise InvalidReleaseSpecError(f"config {config!r}: primary key {pk!r} is null in {nulls} rows")
    if frame[pk].n_unique() != frame.height:
        dup = frame.filter(pl.col(pk).is_duplicated())[pk].unique().sort()
        raise InvalidReleaseSpecError(
            f"config {config!r}: primary key {pk!r} is not unique ({dup.len()} values repeat, e.g. {dup.head(5).to_list()})"
        )
    check_labels(frame, table, config)

    if split_column is None:
        return PreparedFrame(frame, frame.select(pl.arg_sort_by(pl.col(pk)).alias("i"))["i"], [(DEFAULT_SPLIT, 0, frame.height)])
    col = frame[split_column]
    if col.null_count():
        raise InvalidReleaseSpecError(f"config {config!r}: split column {split_column!r} is null in {col.null_count()} rows")
    counts = dict(frame.group_by(pl.col(split_column).cast(pl.String).alias("s")).len().iter_rows())
    bad = sorted(v for v in counts if not SPLIT_RE.match(v))
    if bad:
        raise InvalidReleaseSpecError(
            f"config {config!r}: invalid split names {bad} in {split_column!r} (pattern {SPLIT_RE.pattern})"
        )
    order = {s: i for i, s in enumerate(split_order)}
    ordered = sorted(counts, key=lambda s: (order.get(s, len(order)), s))
    rank = pl.col(split_column).cast(pl.String).replace_strict({s: i for i, s in enumerate(ordered)}, return_dtype=pl.UInt32)
    order = frame.select(pl.arg_sort_by(rank, pl.col(pk)).alias("i"))["i"]
    bounds, start = [], 0
    for s in ordered:
        bounds.append((s, start, counts[s]))
        start += counts[s]
    return PreparedFrame(frame, order, bounds)


def check_labels(frame: pl.DataFrame, table: Table, config: str) -> None:
    """Every class-label index (also inside lists and structs) must name a class."""
    exprs: list[pl.Expr] = []
    labels: list[tuple[str, int]] = []
    for c in table.released_columns:
        for path, n, expr in _label_values(pl.col(c.name), c.dtype, c.name):
            exprs += [expr.min().alias(f"min{len(labels)}"), expr.max().alias(f"max{len(labels)}")]
            labels.append((path, n))
    if not exprs:
        return
    row = frame.select(exprs).row(0)
    for i, (path, n) in enumerate(labels):
        lo, hi = row[2 * i], row[2 * i + 1]
        if (lo is not None and lo < 0) or (hi is not None and hi >= n):
            raise InvalidReleaseSpecError(
                f"config {config!r}: label column {path} has indices in [{lo}, {hi}], outside 0..{n - 1}"
            )


def _label_values(expr: pl.Expr, dtype: DType, path: str) -> list[tuple[str, int, pl.Expr]]:
    """(path, number of classes, flat expression of the indices) for each label inside ``dtype``.

    Lists are flattened after extracting the label (``list.eval``), so the texts next to a label
    in a list of structs are never copied.
    """
    if isinstance(dtype, Label):
        return [(path, len(dtype.names), expr)]
    if isinstance(dtype, ListOf):
        inner = _label_values(pl.element(), dtype.inner, path + "[]")
        return [(p, n, expr.list.eval(e).explode()) for p, n, e in inner]
    if isinstance(dtype, StructOf):
        out = []
        for fname, fdtype in dtype.fields:
            out += _label_values(expr.struct.field(fname), fdtype, f"{path}.{fname}")
        return out
    return []


def _default_row_group_size(features: Any) -> int:
    from datasets.features.features import require_storage_embed

    if any(require_storage_embed(f) for f in features.values()):
        return DEFAULT_ROW_GROUP_SIZE_BINARY
    return DEFAULT_ROW_GROUP_SIZE


def _config_manifest(s: ConfigSummary) -> dict[str, Any]:
    return {
        "table": s.table.name,
        "primary_key": s.table.primary_key,
        "split_column": s.split_column,
        "columns": [c.name for c in s.table.released_columns],
        "num_rows": s.num_examples,
        "splits": {sp.name: sp.num_examples for sp in s.splits},
        "files": [rel for sp in s.splits for rel in sp.files],
    }


# --------------------------------------------------------------------------- file writing helpers


def _write_parquet_file(
    frame: pl.DataFrame, features: Any, path: Path, row_group_size: int, *, order: pl.Series | None = None
) -> int:
    """One parquet file written by `datasets` (features in the schema metadata); returns Arrow bytes.

    The file holds ``frame[order]`` (all of ``frame`` without ``order``). Rows are gathered,
    moved to Arrow without copying (string views) and cast to the features' Arrow schema one
    row group at a time: memory stays near the size of the file's Arrow table, and no Arrow chunk
    exceeds the 2 GiB limit of 32-bit offsets (large media columns). Types that a plain Arrow
    cast cannot produce (e.g. Image from file paths) go through `datasets`' own cast.
    """
    import pyarrow as pa
    from datasets import Dataset, DatasetInfo
    from datasets.features.features import require_storage_embed
    from datasets.table import InMemoryTable, embed_table_storage, table_cast

    schema = features.arrow_schema
    n_rows = frame.height if order is None else order.len()
    chunks = []
    for offset in range(0, n_rows, row_group_size):
        rows = frame.slice(offset, row_group_size) if order is None else frame[order.slice(offset, row_group_size)]
        try:
            chunks.append(rows.to_arrow(compat_level=pl.CompatLevel.newest()).cast(schema))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            chunks.append(table_cast(rows.to_arrow(), schema))
        del rows
    table = pa.concat_tables(chunks) if chunks else schema.empty_table()
    del chunks
    if any(require_storage_embed(f) for f in features.values()):
        table = embed_table_storage(table)
    # An explicit fingerprint: otherwise `datasets` hashes the whole table (seconds per file).
    fingerprint = hashlib.sha256(path.name.encode()).hexdigest()[:16]
    dataset = Dataset(InMemoryTable(table), info=DatasetInfo(features=features), fingerprint=fingerprint)
    dataset.to_parquet(str(path), batch_size=row_group_size)
    fault_write(path, path)  # crash tests (no-op otherwise); the whole folder is temporary
    return table.nbytes


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
    fault_write(path, path)  # crash tests (no-op otherwise); the whole folder is temporary


def _seal(tmp: Path) -> None:
    """fsync every file and folder, then make the files read-only (immutability, best effort)."""
    for dirpath, _dirnames, filenames in os.walk(tmp):
        for name in filenames:
            p = os.path.join(dirpath, name)
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(p, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- temporary folders


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_tmp_dirs(ds_dir: Path, *, older_than_s: float = STALE_TMP_AFTER_S) -> list[Path]:
    """Remove temporary folders of crashed writes; returns those removed.

    A folder is stale if its writer (host and pid in its name) is this host and no longer runs,
    or if it is older than ``older_than_s`` (any host: a write never takes that long).
    """
    removed: list[Path] = []
    if not ds_dir.is_dir():
        return removed
    host = _host_tag()
    now = time.time()
    for p in ds_dir.iterdir():
        if not (p.name.startswith(".") and TMP_MARKER in p.name and p.is_dir()):
            continue
        tail = p.name.split(TMP_MARKER, 1)[1]
        parts = tail.split("-")
        stale = False
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
            pid = int(parts[1])
            stale = pid != os.getpid() and not _pid_alive(pid)
        try:
            stale = stale or (now - p.stat().st_mtime) > older_than_s
        except FileNotFoundError:
            continue
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _exists_error(root: Path, dataset: str, version: str, final: Path) -> ReleaseExistsError:
    suggestion = next_version(root, dataset, "patch")
    return ReleaseExistsError(
        f"release {dataset} {version} already exists at {final}: released versions are immutable and are "
        f"never overwritten. Write a new version instead, e.g. rerun with --bump patch (next: {suggestion}) "
        f"or --bump minor/--bump major.",
        path=str(final),
        suggested_version=suggestion,
    )
