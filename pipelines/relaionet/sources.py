"""reLAIONet input readers: LAION metadata, img2dataset output and local image folders, streamed.

``iter_samples(path, batch=1000)`` picks the reader from the path and yields :class:`SourceBatch`
objects: up to ``batch`` :class:`Sample` records plus the reject rows (REJECTS layout, turn them
into a frame with :func:`pipelines.core.rejects.rejects_frame`) and counters found since the
previous batch. Layouts:

* ``.parquet`` with a binary image column (``jpg``/``png``/``webp``/``image``): img2dataset's
  parquet output; rows whose ``status`` is not ``success`` or without bytes are ``missing_image``.
* other ``.parquet``: LAION metadata (``SAMPLE_ID``, ``URL``, ``TEXT``, ``NSFW``, ``similarity``,
  ``WIDTH``, ``HEIGHT``, ``LICENSE``; names matched case-insensitively, all but one of
  ``URL``/``TEXT`` optional), read one row group at a time, no image bytes.
* ``.tar`` or a folder holding ``*.tar``: img2dataset webdataset shards (``<key>.jpg|png|webp``,
  ``<key>.txt``, ``<key>.json``), streamed with ``tarfile`` mode ``"r|"``. Other files beside the
  shards (img2dataset's ``*.parquet`` and ``*_stats.json``) are not read.
* a folder of ``*.parquet`` only: each file as above.
* a folder of images with a sidecar ``<name>.txt`` each, or one ``captions.csv`` / ``captions.jsonl``
  (``file``, ``caption``, optional ``sample_id``).

Anything else is an :class:`InputError` naming the path and these layouts.

Decisions:

* ``sample_id``: LAION's ``SAMPLE_ID`` when the input carries it (img2dataset copies it with
  ``--save_additional_columns``), else img2dataset's ``key``, else the image file's stem (folder) or
  the row number (LAION parquet without ids). A repeated id is ``duplicate_sample_id``; the first
  is kept and the reject names where it was. Seen ids stay in memory for the whole stream.
* A missing or blank caption is *kept* as ``caption=None`` and counted (``empty_caption``): caption
  matching drops it with the same reason, so the reject lands in one place with the other
  caption drops, and image-only uses of a source still see the image.
* ``width``/``height``: the stored image size (img2dataset's ``width``/``height``, else
  ``original_width``/``original_height``; LAION's ``WIDTH``/``HEIGHT``).
* Images are not decoded here (:mod:`pipelines.relaionet.images` does that).

Quarantine reasons: ``duplicate_sample_id``, ``missing_image`` (a caption, sidecar, json or
caption-file row without its image), ``bad_metadata`` (json not parseable, a row without an id or
file), ``unknown_file`` (a stray file in an image folder or tar), ``broken_archive`` (a truncated or
unreadable tar or parquet file, quarantined whole: the shard's headers are checked before any of
its samples is handed out; damage that shows only later is an :class:`InputError`).
"""

from __future__ import annotations

import csv
import json
import math
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import InputError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
IMAGE_COLUMNS = ("jpg", "jpeg", "png", "webp", "image")
CAPTION_FILES = ("captions.csv", "captions.jsonl")
REJECT_REASONS = (
    "duplicate_sample_id", "missing_image", "bad_metadata", "unknown_file", "broken_archive",
)
LAYOUTS = (
    "a LAION metadata .parquet (SAMPLE_ID, URL, TEXT, NSFW, similarity, WIDTH, HEIGHT, LICENSE), "
    "an img2dataset .parquet with a jpg column, img2dataset webdataset .tar shards (or a folder of them), "
    "a folder of .parquet files, or a folder of images with <name>.txt captions or one "
    "captions.csv / captions.jsonl"
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One image-caption record; ``source`` is the input file, ``position`` where in it."""

    sample_id: str
    caption: str | None
    url: str | None
    nsfw: str | None
    similarity: float | None
    width: int | None
    height: int | None
    license: str | None
    image: bytes | None
    source: str
    position: str


@dataclass
class SourceBatch:
    """Samples plus the rejects (REJECTS rows without ``reject_no``) and counters since the last
    batch. ``counters``: ``samples``, ``empty_caption`` and one count per reject reason."""

    samples: list[Sample] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Reject:
    reason: str
    detail: str
    source: str
    line: int | None = None
    record_id: str | None = None


# --------------------------------------------------------------------------- entry point


def iter_samples(path: Path | str, *, batch: int = 1000) -> Iterator[SourceBatch]:
    """Stream the samples under ``path`` in batches of ``batch`` (see the module docstring).

    Raises :class:`InputError` at once for a missing path or an unknown layout."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, not {batch}")
    return _batched(_records(Path(path)), batch)


def _records(path: Path) -> Iterator[Sample | _Reject]:
    if path.is_file():
        if path.suffix.lower() == ".parquet":
            return _read_parquet(path)
        if path.suffix.lower() == ".tar":
            return _read_tars([path])
        raise InputError(path, f"unknown input file type {path.suffix or '(no suffix)'!r}", f"Give {LAYOUTS}")
    if not path.is_dir():
        raise InputError(path, "no such file or folder", f"Give {LAYOUTS}")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    tars = [p for p in files if p.suffix.lower() == ".tar"]
    if tars:
        return _read_tars(tars)
    if any(p.suffix.lower() in IMAGE_EXTS or p.name in CAPTION_FILES for p in files):
        return _read_folder(path, files)
    parquets = [p for p in files if p.suffix.lower() == ".parquet"]
    if parquets:
        return (record for p in parquets for record in _read_parquet(p))
    raise InputError(path, "no .tar shards, images, caption files or .parquet files in this folder", f"Give {LAYOUTS}")


def _batched(records: Iterable[Sample | _Reject], size: int) -> Iterator[SourceBatch]:
    seen: dict[str, str] = {}
    current = SourceBatch()
    for record in records:
        if isinstance(record, Sample):
            first = seen.get(record.sample_id)
            if first is not None:
                record = _Reject(
                    "duplicate_sample_id", f"{record.position}: sample id {record.sample_id!r} was first seen at {first}; the first is kept",
                    record.source, _line(record.position), record.sample_id,
                )
            else:
                seen[record.sample_id] = f"{record.source} {record.position}"
                current.samples.append(record)
                current.counters["samples"] += 1
                if record.caption is None:
                    current.counters["empty_caption"] += 1
                if len(current.samples) >= size:
                    yield current
                    current = SourceBatch()
                continue
        current.rejects.append({
            "record_id": record.record_id, "drop_reason": record.reason, "detail": record.detail,
            "source_file": record.source, "line": record.line,
        })
        current.counters[record.reason] += 1
    if current.samples or current.rejects:
        yield current


def _line(position: str) -> int | None:
    """The row number of a position "row N" (parquet) or "<caption file> row N"."""
    head, sep, number = position.rpartition("row ")
    return int(number) if sep and number.isdigit() and (not head or head.endswith(" ")) else None


# --------------------------------------------------------------------------- value cleaning


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    return text if text.strip() else None


def _number(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return int(number) if kind is int else number


def _id(value: Any) -> str | None:
    if isinstance(value, float):
        return None if math.isnan(value) else (str(int(value)) if value.is_integer() else repr(value))
    return _text(value.strip() if isinstance(value, str) else value)


def _first(meta: dict[str, Any], *names: str) -> Any:
    """The first non-null value among ``names`` in a lower-cased metadata dict."""
    for name in names:
        if meta.get(name) is not None:
            return meta[name]
    return None


def _sample(meta: dict[str, Any], *, sample_id: str, image: bytes | None, caption: Any, source: str, position: str) -> Sample:
    """A Sample from a lower-cased metadata dict (LAION or img2dataset names)."""
    return Sample(
        sample_id=sample_id,
        caption=_text(caption),
        url=_text(_first(meta, "url")),
        nsfw=_text(_first(meta, "nsfw")),
        similarity=_number(_first(meta, "similarity"), float),
        width=_number(_first(meta, "width", "original_width"), int),
        height=_number(_first(meta, "height", "original_height"), int),
        license=_text(_first(meta, "license")),
        image=image,
        source=source,
        position=position,
    )


# --------------------------------------------------------------------------- parquet


def _read_parquet(path: Path) -> Iterator[Sample | _Reject]:
    src = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        yield _Reject("broken_archive", f"not a readable parquet file ({exc}); the whole file is skipped. Re-write or re-copy it", src)
        return
    names = {name.lower(): name for name in parquet.schema_arrow.names}
    schema = parquet.schema_arrow
    image_col = next((names[c] for c in IMAGE_COLUMNS if c in names and _is_binary(schema.field(names[c]).type)), None)
    if image_col is None and "text" not in names and "url" not in names:
        raise InputError(path, f"neither a LAION metadata file (no URL or TEXT column) nor img2dataset output (no jpg column); columns: {parquet.schema_arrow.names}", f"Give {LAYOUTS}")
    row = 0
    for group in range(parquet.num_row_groups):
        try:
            table = parquet.read_row_group(group)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(path, f"unreadable parquet row group {group} after row {row:,} ({exc})", "Re-write or re-copy the file") from exc
        for values in table.to_pylist():
            row += 1
            meta = {key.lower(): value for key, value in values.items()}
            position = f"row {row}"
            raw_id = _first(meta, "sample_id", "key")
            sample_id = _id(raw_id) if raw_id is not None else (None if "sample_id" in names or "key" in names else f"{path.stem}:{row}")
            if sample_id is None:
                yield _Reject("bad_metadata", f"{position}: no sample id (SAMPLE_ID / key is empty)", src, row)
                continue
            image = None
            if image_col is not None:
                image = values[image_col]
                status = meta.get("status")
                if not image or (status is not None and status != "success"):
                    why = f"status {status!r}" + (f": {meta['error_message']}" if meta.get("error_message") else "")
                    yield _Reject("missing_image", f"{position}: no image bytes ({why})", src, row, sample_id)
                    continue
            caption = _first(meta, "caption", "txt", "text")
            yield _sample(meta, sample_id=sample_id, image=image, caption=caption, source=src, position=position)


def _is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


# --------------------------------------------------------------------------- webdataset tar


def _tar_break(path: Path) -> str | None:
    """None if every member header and member body of the tar ``path`` is within the file."""
    size = path.stat().st_size
    index = 0
    try:
        with tarfile.open(path, "r:") as tar:
            for index, member in enumerate(tar, start=1):
                end = member.offset_data + member.size
                if end > size:
                    return (f"truncated: member {index} ({member.name!r}, header at byte {member.offset:,}) needs "
                            f"{end:,} bytes but the file has {size:,}")
            end_of_archive = tar.offset
        with path.open("rb") as handle:  # tarfile takes a cut header for the end; the marker is not
            handle.seek(end_of_archive)
            if handle.read(1024) != bytes(1024):
                return f"truncated: no end-of-archive marker after member {index:,} (byte {end_of_archive:,} of {size:,})"
    except (tarfile.TarError, EOFError, OSError) as exc:
        return f"unreadable tar ({exc}) after {index:,} members, {size:,} bytes"
    return None


def _read_tars(paths: list[Path]) -> Iterator[Sample | _Reject]:
    for path in paths:
        broken = _tar_break(path)
        if broken is not None:
            yield _Reject("broken_archive", f"{broken}; the whole shard is skipped. Re-download or re-copy it", str(path))
            continue
        yield from _read_tar(path)


def _read_tar(path: Path) -> Iterator[Sample | _Reject]:
    src = str(path)
    key: str | None = None
    parts: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                stem, dot, ext = name.partition(".")
                ext = f".{ext.lower()}" if dot else ""
                if ext not in (*IMAGE_EXTS, ".txt", ".json"):
                    yield _Reject("unknown_file", f"member {member.name!r} is not an image, .txt or .json; skipped", src)
                    continue
                # img2dataset writes a key's members one after another, so a new key ends the last.
                if stem != key:
                    if key is not None:
                        yield from _tar_sample(src, key, parts)
                    key, parts = stem, {}
                parts[ext] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(path, f"the tar broke while it was being read, after key {key!r} ({exc})", "Re-download or re-copy it") from exc
    if key is not None:
        yield from _tar_sample(src, key, parts)


def _tar_sample(src: str, key: str, parts: dict[str, bytes]) -> Iterator[Sample | _Reject]:
    meta: dict[str, Any] = {}
    if ".json" in parts:
        try:
            loaded = json.loads(parts[".json"])
            if not isinstance(loaded, dict):
                raise ValueError(f"a JSON {type(loaded).__name__}, not an object")
        except ValueError as exc:
            yield _Reject("bad_metadata", f"member {key}.json is not a JSON object ({exc})", src, None, key)
            return
        meta = {k.lower(): v for k, v in loaded.items()}
    image_ext = next((ext for ext in IMAGE_EXTS if ext in parts), None)
    raw_id = _first(meta, "sample_id")
    sample_id = _id(raw_id) if raw_id is not None else key
    if image_ext is None:
        present = ", ".join(f"{key}{ext}" for ext in parts)
        yield _Reject("missing_image", f"key {key!r} has no image member (only {present})", src, None, sample_id or key)
        return
    if sample_id is None:
        yield _Reject("bad_metadata", f"member {key}.json has an empty sample_id", src, None, key)
        return
    caption = parts[".txt"].decode("utf-8", errors="replace") if ".txt" in parts else meta.get("caption")
    yield _sample(meta, sample_id=sample_id, image=parts[image_ext], caption=caption, source=src, position=f"{key}{image_ext}")


# --------------------------------------------------------------------------- image folder


def _read_folder(folder: Path, files: list[Path]) -> Iterator[Sample | _Reject]:
    caption_files = [p for p in files if p.name in CAPTION_FILES]
    sidecars = {p.stem: p for p in files if p.suffix.lower() == ".txt"}
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    if len(caption_files) > 1:
        raise InputError(folder, "both captions.csv and captions.jsonl", "Keep one caption file")
    if caption_files and sidecars:
        raise InputError(folder, f"a {caption_files[0].name} and .txt sidecars ({len(sidecars):,})", "Give captions one way: the caption file or the sidecars")
    for stray in files:
        if stray.suffix.lower() not in (*IMAGE_EXTS, ".txt") and stray.name not in CAPTION_FILES:
            yield _Reject("unknown_file", f"{stray.name} is not an image, a .txt caption or a caption file; skipped", str(stray))
    if caption_files:
        yield from _folder_with_caption_file(folder, caption_files[0], images)
        return
    for image in images:
        caption = sidecars.pop(image.stem).read_text("utf-8", errors="replace") if image.stem in sidecars else None
        yield _sample({}, sample_id=image.stem, image=image.read_bytes(), caption=caption, source=str(image), position=image.name)
    for stem, sidecar in sidecars.items():
        yield _Reject("missing_image", f"caption {sidecar.name} has no image {stem}.jpg|jpeg|png|webp beside it", str(sidecar), None, stem)


def _caption_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line, row or None, problem) for each row of captions.csv / captions.jsonl."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:  # -sig: a BOM is not data
        if path.suffix == ".csv":
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "file" not in reader.fieldnames or "caption" not in reader.fieldnames:
                raise InputError(path, f"columns {reader.fieldnames} lack file and caption", "Give a header row: file,caption[,sample_id]")
            for row in reader:
                yield reader.line_num, row, ""
            return
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                if not isinstance(row, dict):
                    raise ValueError(f"a JSON {type(row).__name__}, not an object")
            except ValueError as exc:
                yield line, None, f"not a JSON object ({exc})"
                continue
            except RecursionError:
                yield line, None, "JSON nested too deeply to read"
                continue
            yield line, row, ""


def _folder_with_caption_file(folder: Path, caption_file: Path, images: list[Path]) -> Iterator[Sample | _Reject]:
    src = str(caption_file)
    by_name = {image.name: image for image in images}
    listed: set[str] = set()
    for line, row, problem in _caption_rows(caption_file):
        name = _text(row.get("file")) if row is not None else None
        if row is None or name is None:
            yield _Reject("bad_metadata", f"row {line}: {problem or 'no file name'}", src, line)
            continue
        sample_id = _id(row.get("sample_id")) or Path(name).stem
        image = by_name.get(name)
        if image is None:
            yield _Reject("missing_image", f"row {line}: no image file {name!r} in {folder}", src, line, sample_id)
            continue
        listed.add(name)
        yield _sample({str(k).lower(): v for k, v in row.items()}, sample_id=sample_id, image=image.read_bytes(), caption=row.get("caption"), source=str(image), position=f"{caption_file.name} row {line}")
    for image in images:
        if image.name not in listed:
            yield _sample({}, sample_id=image.stem, image=image.read_bytes(), caption=None, source=str(image), position=image.name)
