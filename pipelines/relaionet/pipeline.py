"""The reLAIONet pipeline and the library entry point ``build_relaionet``.

::

    samples     one task per input file (LAION parquet, img2dataset tar or parquet, image folder):
                read in batches; captions matched to ImageNet classes (LAIONet rules) and checked
                for language; NSFW tag kept or rejected; images decoded and checked; pHash.
                Outputs ``meta`` (every column but the image) and ``pixels`` (sample id, image),
                both partitioned by crc32(sample_id).
    similarity  per partition: caption vs "<name> which is <gloss>" with the configured text
                encoder; below the threshold -> rejected (or nothing, with encoder = none).
    ocr         per partition: the class name written in the image? (yes / no / not_checked);
                dropped only with ocr.drop_flagged.
    dedupe      per partition, decided globally: every partition reads the hashes of all
                partitions (a small broadcast) and computes the same decisions, then keeps its own
                rows: duplicated sample ids across files, near-duplicates within the set and
                against reference hashes, the per-class cap.
    proofread   per partition: the people's verdicts (a corrections file from
                ``corpusforge annotate pull relaionet``) applied; without one every image is pending.

Images travel once: only the ``samples`` step stores their bytes (``pixels``); the later steps
carry metadata, and :func:`read_images` joins the bytes back for the rows asked for. Every dropped
row lands in its step's rejects with ``drop_reason`` and a ``detail`` saying what to do.

Inputs are fingerprinted by content (each file; an image folder as a whole), the class file, the
reference hashes and the corrections file too; the encoder by its model files (``version``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.errors import InputError
from pipelines.core.executor import BuildResult, Executor, LocalExecutor, NO_PROGRESS, Progress
from pipelines.core.fileio import sha256_file
from pipelines.core.rejects import rejects_frame
from pipelines.core.stage import StageStore
from pipelines.core.step import Emitter, Input, MapStep, Output, Pipeline, SourceStep, SourceUnit, StepResult, by_key_crc32
from pipelines.relaionet.captions import match_captions
from pipelines.relaionet.classes import ClassMap, load_class_map, read_class_info
from pipelines.relaionet.images import check_image, dedupe, against_reference, phash_batch
from pipelines.relaionet.settings import (
    CaptionSettings, DedupeSettings, ImageSettings, OcrSettings, RelaionetSettings, SafetySettings, SimilaritySettings,
)
from pipelines.relaionet.sources import CAPTION_FILES, IMAGE_EXTS, iter_samples
from schemas.relaionet import CANDIDATES, CLASS_FILE, N_CLASSES, wnids

FINAL_STEP = "proofread"
FILTERED_STEP = "dedupe"
META_SCHEMA = pl.Schema({n: t for n, t in CANDIDATES.polars_schema().items() if n != "image"})
PIXELS_SCHEMA = pl.Schema({"sample_id": pl.String, "image": CANDIDATES.column("image").dtype.polars()})
HASHES_COLUMNS = ("sample_id", "phash", "label", "text_similarity", "source", "position")
DEFAULT_PARTITIONS = 8
by_sample_id = partial(by_key_crc32, column="sample_id")

REJECT_REASONS = {
    "samples": ("duplicate_sample_id", "missing_image", "bad_metadata", "unknown_file", "broken_archive",
                "empty_caption", "no_lemma", "multiple_synsets", "caption_language", "nsfw", "nsfw_untagged",
                "empty", "not_an_image", "too_large", "too_small", "truncated", "corrupt"),
    "similarity": ("low_similarity",),
    "ocr": ("text_in_image",),
    "dedupe": ("duplicate_sample_id", "near_duplicate", "near_duplicate_reference", "class_cap"),
}


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class RelaionetInputs:
    units: tuple[SourceUnit, ...]
    class_file: SourceUnit
    reference: SourceUnit | None = None
    corrections: SourceUnit | None = None
    encoder_version: str = "none"


def _folder_unit(folder: Path, hash_file: Callable[[Path], str]) -> SourceUnit:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    lines = "".join(f"{p.name}\t{hash_file(p)}\n" for p in files)
    return SourceUnit(str(folder.resolve()), hashlib.sha256(lines.encode()).hexdigest(), sum(p.stat().st_size for p in files))


def _file_unit(path: Path, hash_file: Callable[[Path], str]) -> SourceUnit:
    return SourceUnit(str(path.resolve()), hash_file(path), path.stat().st_size)


def input_units(paths: Sequence[Path | str], hash_file: Callable[[Path], str] = sha256_file) -> tuple[SourceUnit, ...]:
    """One unit per tar or parquet file (a folder of them: each file), one per image folder."""
    units: dict[str, SourceUnit] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            if path.suffix.lower() not in (".tar", ".parquet"):
                raise InputError(path, f"unknown input file type {path.suffix or '(no suffix)'!r}",
                                 "Give LAION or img2dataset .parquet files, img2dataset .tar shards, or folders of them or of images")
            unit = _file_unit(path, hash_file)
            units[unit.path] = unit
            continue
        if not path.is_dir():
            raise InputError(path, "no such file or folder", "Give LAION/img2dataset files or folders (see `corpusforge build relaionet --help`)")
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        shards = [p for p in files if p.suffix.lower() == ".tar"]
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTS or p.name in CAPTION_FILES]
        parquets = [p for p in files if p.suffix.lower() == ".parquet"]
        if shards:
            chosen = [_file_unit(p, hash_file) for p in shards]
        elif images:
            chosen = [_folder_unit(path, hash_file)]
        elif parquets:
            chosen = [_file_unit(p, hash_file) for p in parquets]
        else:
            raise InputError(path, "no .tar shards, images, caption files or .parquet files in this folder",
                             "Give a folder written by img2dataset, a folder of LAION metadata parquet files, or a folder of images with captions")
        for unit in chosen:
            units[unit.path] = unit
    if not units:
        raise InputError("--input", "no input given", "Give LAION/img2dataset files or folders with --input")
    return tuple(sorted(units.values(), key=lambda u: u.path))


def class_file_path(settings: RelaionetSettings) -> Path:
    return Path(settings.class_file) if settings.class_file is not None else Path(str(CLASS_FILE))


def _check_class_file(path: Path) -> None:
    """Releases label with the bundled ImageNet-1k classes: another class file must have the same ids and WordNet ids."""
    info = read_class_info(path)
    if info.height != N_CLASSES or info.get_column("wnid").to_list() != list(wnids()):
        raise InputError(path, f"its classes are not the 1,000 ImageNet-1k classes in id order ({info.height:,} classes)",
                         "Give ImageNet-1k's class_info.json (cid, wnid, synset, gloss), or leave relaionet.class_file unset for the bundled copy")


def resolve_inputs(
    paths: Sequence[Path | str], settings: RelaionetSettings, hash_file: Callable[[Path], str] = sha256_file,
    corrections: Path | None = None, encoder_version: str = "none",
) -> RelaionetInputs:
    class_path = class_file_path(settings)
    if not class_path.is_file():
        raise InputError(class_path, "no such class file", "Set relaionet.class_file to ImageNet's class_info.json, or unset it")
    _check_class_file(class_path)
    reference = None
    if settings.dedupe.reference is not None:
        ref = Path(settings.dedupe.reference).expanduser()
        if ref.is_dir():
            reference = _folder_unit(ref, hash_file)
        elif ref.is_file():
            reference = _file_unit(ref, hash_file)
        else:
            raise InputError(ref, "no such reference file or folder", "Give a .parquet/.csv with a phash column or a folder of images (relaionet.dedupe.reference)")
    corr = None
    if corrections is not None:
        if not Path(corrections).is_file():
            raise InputError(corrections, "no such corrections file", "Give the corrections.parquet of a proofreading pull, or --corrections latest")
        corr = _file_unit(Path(corrections), hash_file)
    return RelaionetInputs(input_units(paths, hash_file), _file_unit(class_path, hash_file), reference, corr, encoder_version)


# --------------------------------------------------------------------------- step parameters


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleParams(_Frozen):
    """What a ``samples`` task needs; files are fingerprinted by content, their paths are excluded.
    Each step's parameters hold only the settings it uses, so changing one reruns from that step."""

    captions: CaptionSettings
    safety: SafetySettings
    images: ImageSettings
    batch_size: int
    class_sha256: str
    class_path: str = Field(exclude=True)


class SimilarityParams(_Frozen):
    similarity: SimilaritySettings
    case_sensitive: bool
    class_sha256: str
    class_path: str = Field(exclude=True)
    encoder_version: str


class OcrParams(_Frozen):
    ocr: OcrSettings
    case_sensitive: bool
    class_sha256: str
    class_path: str = Field(exclude=True)


class DedupeParams(_Frozen):
    dedupe: DedupeSettings
    reference_sha256: str | None = None
    reference_path: str | None = Field(None, exclude=True)


class ProofreadParams(_Frozen):
    partitions: int
    corrections_sha256: str | None = None
    corrections_path: str | None = Field(None, exclude=True)


@lru_cache(maxsize=4)
def _class_map(path: str, sha256: str, case_sensitive: bool) -> ClassMap:
    return load_class_map(path, case_sensitive=case_sensitive)


# --------------------------------------------------------------------------- samples


def _reject(sample_id: str | None, reason: str, detail: str, source: str | None, position: str | None = None) -> dict[str, Any]:
    where = f" ({position})" if position else ""
    return {"record_id": sample_id, "drop_reason": reason, "detail": f"{detail}{where}", "source_file": source}


def _language_rejects(captions: list[str], settings: CaptionSettings) -> list[tuple[str, float] | None]:
    if settings.language is None or not captions:
        return [None] * len(captions)
    from pipelines.core.langid import language_mismatch

    return language_mismatch(captions, settings.language, settings.min_language_probability)


def _nsfw_reason(tag: str | None, safety: SafetySettings) -> tuple[str, str] | None:
    if tag is None:
        if safety.allow_untagged:
            return None
        return ("nsfw_untagged", "the source gives no NSFW tag; set relaionet.safety.allow_untagged = true to keep untagged "
                "images (proofreaders can still mark them unsafe)")
    if tag.upper() not in {k.upper() for k in safety.keep_nsfw}:
        return ("nsfw", f"NSFW tag {tag!r} is not one of {list(safety.keep_nsfw)} (relaionet.safety.keep_nsfw)")
    return None


def _process_batch(samples: list, params: SampleParams, out: Emitter) -> None:
    case_sensitive = params.captions.case_sensitive
    cmap = _class_map(params.class_path, params.class_sha256, case_sensitive)
    matched = match_captions([x.caption for x in samples], cmap, case_sensitive=case_sensitive)
    rejects: list[dict[str, Any]] = []
    keep: list[tuple[Any, int, list[str]]] = []
    for sample, (class_id, lemmas, reason, detail) in zip(
        samples, matched.select("class_id", "lemmas", "drop_reason", "detail").iter_rows(), strict=True
    ):
        if reason is not None:
            rejects.append(_reject(sample.sample_id, reason, detail or f"caption {sample.caption!r}", sample.source, sample.position))
        else:
            keep.append((sample, int(class_id), list(lemmas)))
    languages = _language_rejects([x[0].caption for x in keep], params.captions)
    survivors = []
    for (sample, class_id, lemmas), wrong in zip(keep, languages, strict=True):
        if wrong is not None:
            lang, prob = wrong
            rejects.append(_reject(sample.sample_id, "caption_language",
                                   f"caption looks {lang} (p={prob:.2f}), not {params.captions.language}; set relaionet.captions.language = "
                                   f"null to keep every language", sample.source, sample.position))
            continue
        unsafe = _nsfw_reason(sample.nsfw, params.safety)
        if unsafe is not None:
            rejects.append(_reject(sample.sample_id, unsafe[0], unsafe[1], sample.source, sample.position))
            continue
        survivors.append((sample, class_id, lemmas))
    meta_rows: list[dict[str, Any]] = []
    pixels: list[dict[str, Any]] = []
    hash_inputs = []
    for sample, class_id, lemmas in survivors:
        if sample.image is None:  # LAION metadata without images: nothing to check yet
            rejects.append(_reject(sample.sample_id, "missing_image",
                                   "LAION metadata has no image bytes: download the images with img2dataset and build from its output",
                                   sample.source, sample.position))
            continue
        checked = check_image(sample.image, min_side=params.images.min_side, max_pixels=params.images.max_pixels)
        if not checked.ok:
            rejects.append(_reject(sample.sample_id, checked.reason, checked.detail, sample.source, sample.position))
            continue
        hash_inputs.append(checked.hash_input)
        ext = "jpg" if not checked.reencoded and checked.format in ("JPEG", "MPO") else "png"
        pixels.append({"sample_id": sample.sample_id, "image": {"bytes": checked.data, "path": f"{sample.sample_id}.{ext}"}})
        meta_rows.append({
            "sample_id": sample.sample_id, "label": class_id, "wnid": wnids()[class_id], "caption": sample.caption,
            "caption_class": class_id, "lemmas": lemmas, "text_similarity": None, "similarity_model": "none",
            "url": sample.url, "license": sample.license, "nsfw": sample.nsfw, "laion_similarity": sample.similarity,
            "width": checked.width, "height": checked.height, "format": checked.format, "mode": checked.mode,
            "reencoded": int(checked.reencoded), "phash": None, "text_in_image": "not_checked", "ocr_text": None,
            "proofread_status": "pending", "label_source": "caption", "unusable_reason": None, "annotators": [],
            "source": sample.source, "position": sample.position,
        })
    if meta_rows:
        hashes = phash_batch(np.stack(hash_inputs))
        for row, h in zip(meta_rows, hashes.tolist(), strict=True):
            row["phash"] = f"{h:016x}"
        out.emit("meta", pl.DataFrame(meta_rows, schema=META_SCHEMA))
        out.emit("pixels", pl.DataFrame(pixels, schema=PIXELS_SCHEMA))
    if rejects:
        out.reject(rejects_frame(rejects))  # the executor counts them by reason


def read_samples(unit: SourceUnit, params: SampleParams, out: Emitter) -> None:
    """One input file (or image folder): stream, match, check, hash; see the module docstring."""
    for batch in iter_samples(unit.path, batch=params.batch_size):
        if batch.rejects:
            out.reject(rejects_frame(batch.rejects))
        for key, n in batch.counters.items():
            if key not in ("samples", "empty_caption"):
                continue
            out.count(f"read_{key}", n)
        if batch.samples:
            _process_batch(batch.samples, params, out)
    out.advance(unit.size)


# --------------------------------------------------------------------------- similarity


@lru_cache(maxsize=2)
def _encoder(kind: str, model_dir: str, batch_size: int, device: str):
    from pipelines.relaionet.similarity import make_encoder

    return make_encoder(kind, model_dir, batch_size=batch_size, device=device)


def encoder_version(settings: RelaionetSettings) -> str:
    """``kind:version`` of the configured encoder (its files hashed), or "none"; raises a clear
    error when the filter is on and no local model folder is set."""
    sim = settings.similarity
    if sim.encoder == "none":
        return "none"
    if sim.model_dir is None:
        raise InputError(
            "relaionet.similarity.model_dir", f"the {sim.encoder} text encoder needs a local model folder (nothing is downloaded)",
            "Set relaionet.similarity.model_dir to the folder (e.g. a saved CLIP ViT-B/32), or relaionet.similarity.encoder = \"none\" "
            "to skip the filter (recorded in every row)",
        )
    encoder = _encoder(sim.encoder, str(Path(sim.model_dir).expanduser()), sim.batch_size, sim.device)
    return f"{sim.encoder}:{encoder.version}"


def score_similarity(frames: dict[str, pl.DataFrame], params: SimilarityParams) -> StepResult:
    meta = frames["meta"]
    sim = params.similarity
    if sim.encoder == "none" or meta.height == 0:
        return StepResult({"meta": meta.with_columns(pl.lit(params.encoder_version).alias("similarity_model"))})
    from pipelines.relaionet.similarity import similarity_filter

    encoder = _encoder(sim.encoder, str(Path(sim.model_dir).expanduser()), sim.batch_size, sim.device)
    cmap = _class_map(params.class_path, params.class_sha256, params.case_sensitive)
    scored = similarity_filter(meta.get_column("caption"), meta.get_column("label"), cmap, encoder, sim.threshold)
    meta = meta.with_columns(
        scored.get_column("similarity").cast(pl.Float64).alias("text_similarity"),
        pl.lit(params.encoder_version).alias("similarity_model"),
    )
    kept = scored.get_column("kept")
    dropped = meta.filter(~kept).with_columns(scored.filter(~kept).get_column("detail"))
    rejects = dropped.select(
        pl.col("sample_id").alias("record_id"), pl.lit("low_similarity").alias("drop_reason"),
        (pl.col("detail") + " between the caption and its class text; lower relaionet.similarity.threshold to keep more"
         ).alias("detail"), pl.col("source").alias("source_file"),
    )
    return StepResult({"meta": meta.filter(kept)}, rejects=rejects)


# --------------------------------------------------------------------------- ocr


@lru_cache(maxsize=2)
def _ocr(settings_json: str):
    from pipelines.relaionet.ocr import make_ocr
    from pipelines.relaionet.settings import OcrSettings

    return make_ocr(OcrSettings.model_validate_json(settings_json))


def flag_text(frames: dict[str, pl.DataFrame], params: OcrParams) -> StepResult:
    meta = frames["meta"]
    ocr_settings = params.ocr
    if ocr_settings.backend == "none" or meta.height == 0:
        return StepResult({"meta": meta})
    from pipelines.relaionet.ocr import class_lemma_forms, text_in_image

    pixels = frames["pixels"].join(meta.select("sample_id"), on="sample_id", how="semi")
    order = meta.select("sample_id").join(pixels, on="sample_id", how="left")
    images = [row["bytes"] for row in order.get_column("image").to_list()]
    texts = _ocr(ocr_settings.model_dump_json()).read(images)
    cmap = _class_map(params.class_path, params.class_sha256, params.case_sensitive)
    flags = text_in_image(texts, meta.get_column("label").to_list(), class_lemma_forms(cmap))
    meta = meta.with_columns(pl.Series("text_in_image", flags, dtype=pl.String), pl.Series("ocr_text", texts, dtype=pl.String))
    if not ocr_settings.drop_flagged:
        return StepResult({"meta": meta}, counters={"text_in_image": int((meta.get_column("text_in_image") == "yes").sum())})
    flagged = pl.col("text_in_image") == "yes"
    rejects = meta.filter(flagged).select(
        pl.col("sample_id").alias("record_id"), pl.lit("text_in_image").alias("drop_reason"),
        pl.format("OCR read the class name in the image ({}); set relaionet.ocr.drop_flagged = false to let proofreaders decide",
                  pl.col("ocr_text").str.slice(0, 200)).alias("detail"),
        pl.col("source").alias("source_file"),
    )
    return StepResult({"meta": meta.filter(~flagged)}, rejects=rejects)


# --------------------------------------------------------------------------- dedupe


def _hex_hashes(values: Sequence[str] | pl.Series, where: str) -> np.ndarray:
    try:
        return np.array([int(v, 16) for v in values], dtype=np.uint64)
    except (TypeError, ValueError) as exc:
        raise InputError(where, f"a phash is not 16 hex digits ({exc})", "Give 64-bit hashes as 16 hex digits") from None


@lru_cache(maxsize=2)
def reference_hashes(path: str, sha256: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Hashes (and ids) of the reference set: a .parquet or .csv with ``phash`` (and optional
    ``id``), or a folder of images hashed here."""
    p = Path(path)
    if p.is_dir():
        ids, inputs = [], []
        for f in sorted(p.iterdir()):
            if f.suffix.lower() not in IMAGE_EXTS:
                continue
            checked = check_image(f.read_bytes(), min_side=1)
            if checked.ok:
                ids.append(f.name)
                inputs.append(checked.hash_input)
        return (phash_batch(np.stack(inputs)) if inputs else np.zeros(0, dtype=np.uint64)), tuple(ids)
    frame = pl.read_parquet(p) if p.suffix.lower() == ".parquet" else pl.read_csv(p, infer_schema=False)
    if "phash" not in frame.columns:
        raise InputError(p, f"no phash column (columns: {frame.columns})", "Give a table with a phash column of 16 hex digits (and an optional id)")
    ids = frame.get_column("id").cast(pl.String).to_list() if "id" in frame.columns else [f"row {i + 1}" for i in range(frame.height)]
    return _hex_hashes(frame.get_column("phash").to_list(), str(p)), tuple(ids)


def _target_caps(counts: dict[int, int], path: Path) -> dict[int, int]:
    """Per class the cap that matches the target shares with as many images as possible."""
    table = pl.read_csv(path, infer_schema=False)
    key = "wnid" if "wnid" in table.columns else "class_id" if "class_id" in table.columns else None
    if key is None or "share" not in table.columns:
        raise InputError(path, f"columns {table.columns} lack wnid (or class_id) and share", "Give a CSV with header wnid,share (or class_id,share)")
    index = {w: i for i, w in enumerate(wnids())}
    shares: dict[int, float] = {}
    for line, (k, share) in enumerate(table.select(key, "share").iter_rows(), start=2):
        try:
            cid = index[k] if key == "wnid" else int(k)
            value = float(share)
        except (KeyError, TypeError, ValueError):
            raise InputError(path, f"line {line}: {key}={k!r}, share={share!r} is not a known class and a number", "Fix the row") from None
        if value < 0:
            raise InputError(path, f"line {line}: negative share {value}", "Shares must be >= 0")
        shares[cid] = value
    total = sum(shares.values())
    if total <= 0:
        raise InputError(path, "all shares are zero", "Give positive shares")
    wanted = {c: v / total for c, v in shares.items() if v > 0}
    scale = min(counts.get(c, 0) / w for c, w in wanted.items())
    return {c: int(np.floor(scale * w + 1e-9)) for c, w in wanted.items()}


def _first_of_each_id(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per sample id: the one from the first input file (then position)."""
    return frame.sort("sample_id", "source", "position").unique("sample_id", keep="first", maintain_order=True)


_DECISIONS: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}


def _global_decisions(hashes: pl.DataFrame, params: DedupeParams) -> dict[str, tuple[str, str]]:
    """sample_id -> (reason, detail) for every image the dedupe step drops, decided over all
    partitions (``hashes``: one row per sample id); a worker process computes them once per build."""
    key = (hashlib.sha256(hashes.select("sample_id", "phash").write_ipc(None).getvalue()).hexdigest(),
           params.model_dump_json() + str(params.reference_path))
    if key not in _DECISIONS:
        _DECISIONS.clear()
        _DECISIONS[key] = _decide(hashes, params)
    return _DECISIONS[key]


def _decide(hashes: pl.DataFrame, params: DedupeParams) -> dict[str, tuple[str, str]]:
    d = params.dedupe
    drops: dict[str, tuple[str, str]] = {}
    ids = hashes.get_column("sample_id").to_list()
    values = _hex_hashes(hashes.get_column("phash").to_list(), "the samples step's hashes")
    # near-duplicates within the set: the smallest sample id of a group is kept
    result = dedupe(values, ids, d.threshold)
    for dup in result.removed:
        drops[str(dup.id)] = ("near_duplicate", f"pHash within {dup.distance} bits of {dup.duplicate_of} (threshold {d.threshold}), which is kept")
    kept = [str(i) for i in result.kept]
    if params.reference_path is not None and kept:
        ref, ref_ids = reference_hashes(params.reference_path, params.reference_sha256 or "")
        position = {sid: i for i, sid in enumerate(ids)}
        closest: dict[int, tuple[int, int]] = {}
        for i, j, dist in against_reference(values[[position[k] for k in kept]], ref, d.threshold):
            if i not in closest or dist < closest[i][1]:
                closest[i] = (j, dist)
        for i, (j, dist) in closest.items():
            drops[kept[i]] = ("near_duplicate_reference", f"pHash within {dist} bits of reference image {ref_ids[j]} (threshold {d.threshold})")
        kept = [k for i, k in enumerate(kept) if i not in closest]
    if d.max_per_class is None and d.target_distribution is None:
        return drops
    # per-class cap: the most similar captions first, then sample id
    info = {r["sample_id"]: r for r in hashes.iter_rows(named=True)}
    by_class: dict[int, list[str]] = {}
    for sid in kept:
        by_class.setdefault(int(info[sid]["label"]), []).append(sid)
    if d.max_per_class is not None:
        caps, why = {c: d.max_per_class for c in by_class}, f"relaionet.dedupe.max_per_class = {d.max_per_class}"
    else:
        caps = _target_caps({c: len(v) for c, v in by_class.items()}, Path(d.target_distribution))
        why = f"the target distribution {d.target_distribution}"
    for c, members in by_class.items():
        members.sort(key=lambda sid: (-(info[sid]["text_similarity"] or 0.0), sid))
        cap = caps.get(c, 0)
        for sid in members[cap:]:
            drops[sid] = ("class_cap", f"class {c} ({wnids()[c]}) is capped at {cap} images by {why}; its {cap} most similar are kept")
    return drops


def deduplicate(frames: dict[str, pl.DataFrame], params: DedupeParams) -> StepResult:
    """Drop this partition's repeated sample ids and the images the global decisions drop."""
    meta = frames["meta"].with_row_index("_row")
    drops = _global_decisions(_first_of_each_id(frames["hashes"].select(HASHES_COLUMNS)), params)
    # a sample id lands in one partition, so its copies from several input files are all here
    first_rows = _first_of_each_id(meta).get_column("_row")
    repeated = meta.filter(~pl.col("_row").is_in(first_rows.implode())).join(
        _first_of_each_id(meta).select("sample_id", pl.col("source").alias("kept_source"), pl.col("position").alias("kept_position")),
        on="sample_id",
    ).select(
        "_row", pl.lit("duplicate_sample_id").alias("drop_reason"),
        pl.format("sample id {} appears in several inputs; the one from {} ({}) is kept", "sample_id", "kept_source", "kept_position").alias("detail"),
    )
    decided = pl.DataFrame(
        {"sample_id": list(drops), "drop_reason": [r for r, _ in drops.values()], "detail": [t for _, t in drops.values()]},
        schema={"sample_id": pl.String, "drop_reason": pl.String, "detail": pl.String},
    )
    global_drops = meta.filter(pl.col("_row").is_in(first_rows.implode())).join(decided, on="sample_id").select("_row", "drop_reason", "detail")
    dropped = pl.concat([repeated, global_drops]).join(meta, on="_row")
    rejects = dropped.select(pl.col("sample_id").alias("record_id"), "drop_reason", "detail", pl.col("source").alias("source_file"))
    kept = meta.join(dropped.select("_row"), on="_row", how="anti").drop("_row")
    return StepResult({"meta": kept}, rejects=rejects)


# --------------------------------------------------------------------------- proofread


def apply_proofreading(frames: dict[str, pl.DataFrame], params: ProofreadParams, partition: int) -> StepResult:
    """This partition's candidates with the people's verdicts; corrections naming no candidate
    (the image was dropped by a changed filter, or the file is from another build) are reported
    once, by the partition that holds them by id, as rejects ``correction_without_candidate``."""
    meta = frames["meta"]
    from pipelines.relaionet.corrections import apply_corrections, read_corrections

    corrections = read_corrections(Path(params.corrections_path)) if params.corrections_path is not None else None
    if corrections is not None:  # the corrections of this partition's ids (a sample id has one partition)
        corrections = corrections.filter(by_sample_id(corrections, params.partitions) == partition)
    applied = apply_corrections(meta, corrections)
    rejects = applied.unknown.select(
        pl.col("sample_id").alias("record_id"), pl.lit("correction_without_candidate").alias("drop_reason"),
        pl.format("a proofreading verdict ({}) for an image that is not a candidate of this build; it is not applied",
                  pl.col("status").fill_null("unsettled")).alias("detail"),
        pl.lit(params.corrections_path).alias("source_file"),
    )
    counters = {f"proofread_{s}": n for s, n in applied.counts.items() if n}
    return StepResult({"meta": applied.candidates}, rejects=rejects, counters=counters)


# --------------------------------------------------------------------------- pipeline


def relaionet_pipeline(inputs: RelaionetInputs, settings: RelaionetSettings, partitions: int = DEFAULT_PARTITIONS) -> Pipeline:
    class_path, class_sha = inputs.class_file.path, inputs.class_file.sha256
    meta_cols = tuple(META_SCHEMA.names())
    samples = SourceStep(
        name="samples", version="1",
        description="Read; captions matched to ImageNet classes and language-checked; NSFW; images decoded, checked and hashed.",
        read=read_samples, outputs=(Output("meta", META_SCHEMA), Output("pixels", PIXELS_SCHEMA)),
        partition_by=by_sample_id, units=inputs.units, partitions=partitions,
        params=SampleParams(captions=settings.captions, safety=settings.safety, images=settings.images,
                            batch_size=settings.batch_size, class_sha256=class_sha, class_path=class_path),
    )
    case = settings.captions.case_sensitive
    sim_params = SimilarityParams(similarity=settings.similarity, case_sensitive=case, class_sha256=class_sha,
                                  class_path=class_path, encoder_version=inputs.encoder_version)
    gpus = (("num_gpus", settings.similarity.num_gpus),) if settings.similarity.num_gpus else ()
    similarity = MapStep(
        name="similarity", version="1", description="Caption vs '<name> which is <gloss>' (text encoder); low similarity dropped.",
        transform=score_similarity, inputs=(Input("meta", "samples.meta", meta_cols),), outputs=(Output("meta", META_SCHEMA),),
        params=sim_params, resources=gpus,
    )
    ocr = MapStep(
        name="ocr", version="1", description="Class name written in the image? (OCR; not_checked without a backend).",
        transform=flag_text,
        inputs=(Input("meta", "similarity.meta", meta_cols), Input("pixels", "samples.pixels", tuple(PIXELS_SCHEMA.names()))),
        outputs=(Output("meta", META_SCHEMA),),
        params=OcrParams(ocr=settings.ocr, case_sensitive=case, class_sha256=class_sha, class_path=class_path),
    )
    dedupe_step = MapStep(
        name=FILTERED_STEP, version="1",
        description="Duplicate ids, near-duplicates (within the set and against a reference), per-class cap; decided over all partitions.",
        transform=deduplicate,
        inputs=(Input("meta", "ocr.meta", meta_cols), Input("hashes", "ocr.meta", HASHES_COLUMNS, broadcast=True)),
        outputs=(Output("meta", META_SCHEMA),),
        params=DedupeParams(dedupe=settings.dedupe, reference_sha256=inputs.reference.sha256 if inputs.reference else None,
                            reference_path=inputs.reference.path if inputs.reference else None),
    )
    proofread = MapStep(
        name=FINAL_STEP, version="1", description="People's verdicts applied (pending without a corrections file).",
        transform=apply_proofreading, inputs=(Input("meta", f"{FILTERED_STEP}.meta", meta_cols),),
        outputs=(Output("meta", META_SCHEMA),), with_partition=True,
        params=ProofreadParams(partitions=partitions, corrections_sha256=inputs.corrections.sha256 if inputs.corrections else None,
                               corrections_path=inputs.corrections.path if inputs.corrections else None),
    )
    return Pipeline("relaionet", (samples, similarity, ocr, dedupe_step, proofread))


# --------------------------------------------------------------------------- entry points


def build_relaionet(
    paths: Sequence[Path | str],
    settings: RelaionetSettings,
    stages_root: Path,
    executor: Executor | None = None,
    progress: Progress = NO_PROGRESS,
    hash_file: Callable[[Path], str] = sha256_file,
    corrections: Path | None = None,
    partitions: int = DEFAULT_PARTITIONS,
) -> BuildResult:
    """Build the reLAIONet candidate from ``paths`` under ``stages_root``; unchanged steps are skipped."""
    inputs = resolve_inputs(paths, settings, hash_file, corrections, encoder_version(settings))
    outcomes = (executor or LocalExecutor()).run(relaionet_pipeline(inputs, settings, partitions), Path(stages_root), progress)
    return BuildResult(inputs, outcomes, Path(stages_root))


def _read_meta(stages_root: Path, step: str) -> pl.DataFrame:
    store = StageStore(Path(stages_root))
    if store.fingerprint_of(step) is None:
        raise InputError(stages_root, "no completed reLAIONet build here", "Run `corpusforge build relaionet --input ...` first")
    return store.read(step, "meta", META_SCHEMA).sort("sample_id")


def with_pixels(stages_root: Path, meta: pl.DataFrame) -> pl.DataFrame:
    """``meta`` with its ``image`` column (joined from the samples step), in CANDIDATES column order."""
    pixels = (
        StageStore(Path(stages_root)).scan("samples", "pixels", PIXELS_SCHEMA)
        .filter(pl.col("sample_id").is_in(meta.get_column("sample_id").implode()))
        .unique("sample_id", keep="first")
        .collect()
    )
    return CANDIDATES.conform(meta.join(pixels, on="sample_id", how="left"))


def read_candidates(stages_root: Path, *, images: bool = True) -> pl.DataFrame:
    """The images the automatic filters kept (status pending), sorted by sample id."""
    meta = _read_meta(stages_root, FILTERED_STEP)
    return with_pixels(stages_root, meta) if images else meta


def read_images(stages_root: Path, *, images: bool = True, statuses: Sequence[str] | None = None) -> pl.DataFrame:
    """The last build's images with their proofreading status (``statuses``: only those)."""
    meta = _read_meta(stages_root, FINAL_STEP)
    if statuses is not None:
        meta = meta.filter(pl.col("proofread_status").is_in(list(statuses)))
    return with_pixels(stages_root, meta) if images else meta


def candidate_fingerprint(stages_root: Path) -> str | None:
    return StageStore(Path(stages_root)).fingerprint_of(FINAL_STEP)



__all__ = [
    "build_relaionet", "read_candidates", "read_images", "candidate_fingerprint", "resolve_inputs", "input_units",
    "relaionet_pipeline", "BuildResult", "RelaionetInputs", "encoder_version", "REJECT_REASONS",
]
