"""Export reLAIONet as class folders: the ImageNet / ImageFolder layout.

``<out>/<wnid>/<sample_id>.<ext>`` (one folder per class, named by its WordNet id; ``ext`` from
the image bytes' format: jpg, png, webp, ...) and ``<out>/metadata.csv`` with one row per image:
``sample_id, file`` (relative to ``<out>``), ``label, class_name, wnid, caption, url, license``.

ImageNet-1k class ids are the positions of the WordNet ids in sorted order, so sorted folder
names give the class ids, as torchvision's ``ImageFolder`` assigns them, *when all 1,000 folders
are there*: with ``all_classes`` (default) a folder is written for every class, empty ones too
(``ImageFolder(..., allow_empty=True)`` reads them). With ``all_classes=False`` only classes with
images get a folder, and sorted positions are no longer class ids: take the label from
``metadata.csv`` or map the folder name through the WordNet ids.

The export is written into a hidden sibling folder and renamed onto ``<out>`` when complete; an
existing non-empty ``<out>`` is refused (:class:`ExportExistsError`), never merged into.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from PIL import Image

from pipelines.core.errors import CorpusforgeError
from schemas.relaionet import RELEASED_STATUS, class_names, wnids

METADATA_FILE = "metadata.csv"
METADATA_COLUMNS = ("sample_id", "file", "label", "class_name", "wnid", "caption", "url", "license")
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
NEEDED = ("sample_id", "image", "label", "wnid", "caption", "url", "license")


class ExportExistsError(CorpusforgeError, FileExistsError):
    """The export folder exists and is not empty."""


@dataclass(frozen=True)
class ClassFolderExport:
    out_dir: Path
    images: int
    classes: int  # classes with at least one image
    folders: int  # class folders written (1,000 with all_classes)
    metadata: Path

    def __str__(self) -> str:
        return f"{self.images:,} images in {self.classes:,} classes ({self.folders:,} class folders), {self.metadata.name}"


def extension_of(data: bytes) -> str:
    """The file extension of encoded image bytes (Pillow reads only the header); ValueError
    for bytes Pillow cannot identify or a format without a known extension."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        raise ValueError(f"not an image Pillow can identify ({type(exc).__name__}: {exc})") from exc
    if fmt not in EXTENSIONS:
        raise ValueError(f"image format {fmt} has no known extension ({', '.join(EXTENSIONS)})")
    return EXTENSIONS[fmt]


def _check_rows(rows: pl.DataFrame) -> None:
    missing = [c for c in NEEDED if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack columns {missing}; give rows of schemas.relaionet.images_table()")
    if "proofread_status" in rows.columns:
        other = rows.filter(~pl.col("proofread_status").is_in(list(RELEASED_STATUS)).fill_null(True))
        if other.height:
            raise ValueError(f"{other.height:,} rows are not released (status not in {', '.join(RELEASED_STATUS)}), e.g. "
                             f"{other.item(0, 'sample_id')}: export the release's rows only")
    ids = rows.get_column("sample_id")
    unsafe = ids.filter(ids.is_null() | ids.str.contains(r"[/\\\x00]|^\.|^$"))
    if len(unsafe):
        raise ValueError(f"sample ids that cannot be file names: {unsafe.head(5).to_list()}")
    if ids.is_duplicated().any():
        raise ValueError(f"duplicated sample ids: {ids.filter(ids.is_duplicated()).unique().sort().head(5).to_list()}")
    labels = rows.get_column("label")
    if labels.is_null().any() or not labels.is_between(0, len(wnids()) - 1).all():
        raise ValueError("labels must be ImageNet-1k class ids 0..999")
    wrong = rows.filter(pl.col("wnid") != pl.col("label").replace_strict(dict(enumerate(wnids())), return_dtype=pl.String))
    if wrong.height:
        raise ValueError(f"{wrong.height:,} rows whose wnid is not their label's, e.g. {wrong.item(0, 'sample_id')}")


def export_class_folders(rows: pl.DataFrame, out_dir: Path | str, *, all_classes: bool = True) -> ClassFolderExport:
    """Write ``rows`` (released rows of the images table) as class folders under ``out_dir``.

    Raises :class:`ExportExistsError` when ``out_dir`` exists and is not empty, ``ValueError`` for
    rows that are not released, lack columns, have unsafe or duplicated sample ids, a label
    outside 0..999, a wnid that is not the label's, or image bytes of an unknown format. Nothing
    is left behind on failure.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ExportExistsError(f"{out_dir} exists and is not empty: choose a new folder or remove it first")
    _check_rows(rows)
    ids, names = wnids(), class_names()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        labels = sorted(set(rows.get_column("label").to_list()))
        for label in range(len(ids)) if all_classes else labels:
            (tmp / ids[label]).mkdir()
        files = []
        for sample_id, image, label in rows.select("sample_id", "image", "label").iter_rows():
            data = (image or {}).get("bytes") or b""
            try:
                ext = extension_of(data)
            except ValueError as exc:
                raise ValueError(f"sample {sample_id}: {exc}") from None
            relative = f"{ids[label]}/{sample_id}.{ext}"
            (tmp / relative).write_bytes(data)
            files.append(relative)
        metadata = rows.select(
            "sample_id", pl.Series("file", files, dtype=pl.String), "label",
            pl.col("label").replace_strict(dict(enumerate(names)), return_dtype=pl.String).alias("class_name"),
            "wnid", "caption", "url", "license",
        ).sort("file")
        metadata.write_csv(tmp / METADATA_FILE)
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); a folder created meanwhile makes this fail loudly
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    folders = len(ids) if all_classes else len(labels)
    return ClassFolderExport(out_dir, rows.height, len(labels), folders, out_dir / METADATA_FILE)
