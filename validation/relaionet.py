"""Validation of a reLAIONet release candidate: schema checks plus the dataset rules, run by GX.

The candidate is the proofread images table (:func:`schemas.relaionet.images_table` rows, every
status). The release takes the rows whose ``proofread_status`` is in ``RELEASED_STATUS``
(accepted, relabelled); rows with another *known* status (pending, unusable, disputed) are left
out, here and in the release, and counted in the report (``left_out[<status>]``). A row whose
status is null or not a known status stays in the validated frame, so that it fails a check
instead of disappearing silently. Rules are computed in polars as indicator columns (true/false
per row, null where an input is null: the schema's not-null check reports that) and GX checks
them, naming failing rows by ``sample_id``:

* the schema checks of the images table (``Table.column_checks()``): ids unique and not null,
  ``images.label.in_set`` (a class id 0..999), ``caption_class`` in 0..999, allowed values of
  ``proofread_status``, ``label_source``, ``text_in_image``, ``unusable_reason``, sizes >= 1.
* ``images.wnid.matches_label``: ``wnid == wnids()[label]`` (the bundled class file: the label
  set of every release).
* ``images.proofread_status.released``: every validated row is accepted or relabelled; the
  details say how many rows were left out by status.
* ``images.phash.valid``: ``phash`` is 16 hex digits (64 bits).
* ``images.phash.no_near_duplicates``: no two released images within ``dedupe.threshold`` bits of
  pHash (recomputed over the released rows with :func:`pipelines.relaionet.images.near_duplicates`);
  both images of a pair fail, the details name the pairs and their distances.
* ``images.short_side.at_least_min_side``: ``min(width, height) >= images.min_side``;
  ``images.long_side.at_most_max_side``: ``max(width, height) <= validation.max_side``.
* ``images.caption.matches_class``: the caption, matched again with LAIONet's rule
  (:func:`pipelines.relaionet.captions.match_captions`, the configured class file and case rule),
  names exactly one class, and that class is ``caption_class``; when ``label_source`` is
  ``caption`` the label must also be ``caption_class`` (so the caption matches the label).
  A row relabelled by a proofreader (``label_source = proofreader``) keeps the caption's class in
  ``caption_class`` and its label is the proofreader's choice: only the caption -> caption_class
  part is judged. Details: the sample id, what the caption matches now and what was expected.
* ``images.image.bytes_not_empty``: the image has non-empty bytes (decoding is checked by the
  pipeline, which re-encodes or rejects every image; here only that bytes are there).

GX never sees the image bytes or the list columns (:func:`validation.gx_suite.table_checks`
keeps scalar columns; stand-ins carry the not-null checks).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.relaionet.captions import match_captions
from pipelines.relaionet.classes import ClassMap, load_class_map
from pipelines.relaionet.images import near_duplicates
from pipelines.relaionet.settings import RelaionetSettings
from schemas.relaionet import CLASS_FILE, PROOFREAD_STATUS, RELEASED_STATUS, images_table, wnids
from validation.gx_suite import CheckSpec, TableChecks, table_checks, validate_checks
from validation.report import ValidationReport

__all__ = ["validate_relaionet", "relaionet_checks", "validated_rows", "left_out_by_status", "class_map_of"]

TABLE_ORDER = ("images",)
EXAMPLES = 6  # rows or pairs quoted in a check's details
LEFT_OUT_STATUS = tuple(s for s in PROOFREAD_STATUS if s not in RELEASED_STATUS)
HEX16 = r"^[0-9a-fA-F]{16}$"
INDICATORS = (
    "wnid_matches_label", "status_released", "phash_valid", "no_near_duplicate", "short_side", "long_side",
    "caption_matches", "image_bytes_present",
)


def _rule(name: str, column: str, description: str) -> CheckSpec:
    """A boolean indicator column of the images frame that must be true (null: not judged here)."""
    return CheckSpec(name, "images", "images", "ExpectColumnValuesToBeInSet", {"column": column, "value_set": [True]}, description)


def _examples(rows: list[str], total: int) -> str:
    shown = "; ".join(rows[:EXAMPLES])
    return shown + (f"; +{total - EXAMPLES:,} more" if total > EXAMPLES else "")


def class_map_of(settings: RelaionetSettings) -> ClassMap:
    """The class map of ``settings.class_file`` (null: the copy bundled in ``schemas/data``)."""
    path = settings.class_file if settings.class_file is not None else Path(str(CLASS_FILE))
    return load_class_map(path, case_sensitive=settings.captions.case_sensitive)


def validated_rows(images: pl.DataFrame) -> pl.DataFrame:
    """The rows judged (and released): all but those with a known non-released status."""
    return images.filter(~pl.col("proofread_status").is_in(list(LEFT_OUT_STATUS)).fill_null(False))


def left_out_by_status(images: pl.DataFrame) -> dict[str, int]:
    """Rows not validated (nor released), per status, in ``PROOFREAD_STATUS`` order; zeros omitted."""
    counts = dict(images.filter(pl.col("proofread_status").is_in(list(LEFT_OUT_STATUS))).group_by("proofread_status").len().iter_rows())
    return {s: int(counts[s]) for s in LEFT_OUT_STATUS if counts.get(s)}


# --------------------------------------------------------------------------- indicators


def _phash_values(phash: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """(valid mask, uint64 hashes of the valid rows). Hex is parsed in Python: polars has no u64 hex cast."""
    valid = phash.str.contains(HEX16).fill_null(False)
    hashes = np.array([int(h, 16) for h in phash.filter(valid).to_list()], dtype=np.uint64)
    return valid, hashes


def _near_duplicate_pairs(rows: pl.DataFrame, threshold: int) -> tuple[pl.Series, list[tuple[str, str, int]]]:
    """(per row: true unless in a near-duplicate pair, null for an invalid phash; the pairs as ids)."""
    valid, hashes = _phash_values(rows.get_column("phash"))
    ids = rows.get_column("sample_id").filter(valid).to_list()
    pairs = [(ids[i], ids[j], d) for i, j, d in near_duplicates(hashes, threshold)]
    in_pair = {x for i, j, _ in pairs for x in (i, j)}
    flags = [None if not ok else sid not in in_pair for sid, ok in zip(rows.get_column("sample_id").to_list(), valid.to_list(), strict=True)]
    return pl.Series("no_near_duplicate", flags, dtype=pl.Boolean), sorted(pairs, key=lambda p: (str(p[0]), str(p[1])))


def _caption_matches(rows: pl.DataFrame, class_map: ClassMap, case_sensitive: bool) -> pl.DataFrame:
    """The caption's class now (``matched_class``, null when none), its drop reason, and the indicator."""
    matched = match_captions(rows.get_column("caption"), class_map, case_sensitive=case_sensitive)
    from_caption = pl.col("label_source") == "caption"
    expected = pl.when(from_caption).then(pl.col("label")).otherwise(pl.col("caption_class"))
    ok = (
        (pl.col("matched_class") == pl.col("caption_class")).fill_null(False)
        & (~from_caption | (pl.col("label") == pl.col("caption_class")))
    )
    known = pl.all_horizontal(pl.col(c).is_not_null() for c in ("label", "caption_class", "label_source"))
    return rows.select("sample_id", "label", "caption_class", "label_source").with_columns(
        matched.get_column("class_id").cast(pl.Int64).alias("matched_class"),
        matched.get_column("drop_reason").alias("match_drop_reason"),
        matched.get_column("detail").alias("match_detail"),
    ).with_columns(expected.alias("expected_class"), pl.when(known).then(ok).alias("caption_matches"))


def _indicators(rows: pl.DataFrame, settings: RelaionetSettings, class_map: ClassMap) -> tuple[pl.DataFrame, pl.DataFrame, list]:
    """The validated rows with the indicator columns, the caption matches and the near-duplicate pairs."""
    names = pl.Series(list(wnids()), dtype=pl.String)
    label_ok = pl.col("label").is_between(0, len(names) - 1)
    wnid_of_label = pl.when(label_ok).then(pl.col("label")).cast(pl.Int64).replace_strict(
        dict(enumerate(names.to_list())), default=None, return_dtype=pl.String)
    no_dup, pairs = _near_duplicate_pairs(rows, settings.dedupe.threshold)
    captions = _caption_matches(rows, class_map, settings.captions.case_sensitive)
    out = rows.with_columns(
        pl.when(label_ok & pl.col("wnid").is_not_null()).then(pl.col("wnid") == wnid_of_label).alias("wnid_matches_label"),
        pl.col("proofread_status").alias("status_released"),
        pl.when(pl.col("phash").is_not_null()).then(pl.col("phash").str.contains(HEX16)).alias("phash_valid"),
        no_dup,
        pl.min_horizontal("width", "height").alias("short_side"),
        pl.max_horizontal("width", "height").alias("long_side"),
        captions.get_column("caption_matches"),
        (pl.col("image").struct.field("bytes").bin.size() > 0).fill_null(False).alias("image_bytes_present"),
    )
    return out, captions, pairs


# --------------------------------------------------------------------------- checks and details


def relaionet_checks(images: pl.DataFrame, settings: RelaionetSettings) -> tuple[TableChecks, dict[str, str]]:
    """Specs and GX frames of every reLAIONet check over :func:`validated_rows`, and details per
    check (no GX import). ``images`` needs the columns of :func:`schemas.relaionet.images_table`
    (``ValueError`` naming the missing ones otherwise)."""
    table = images_table()
    rows = validated_rows(table.conform(images))
    x, captions, pairs = _indicators(rows, settings, class_map_of(settings))
    checks = table_checks(table, x, extra_columns=INDICATORS)
    min_side, max_side, threshold = settings.images.min_side, settings.validation.max_side, settings.dedupe.threshold
    checks.specs += [
        _rule("images.wnid.matches_label", "wnid_matches_label", "wnid is the WordNet id of the label (wnids()[label])"),
        CheckSpec("images.proofread_status.released", "images", "images", "ExpectColumnValuesToBeInSet",
                  {"column": "status_released", "value_set": list(RELEASED_STATUS)},
                  f"every validated row is released ({', '.join(RELEASED_STATUS)}); {', '.join(LEFT_OUT_STATUS)} rows are left out"),
        _rule("images.phash.valid", "phash_valid", "phash is 16 hex digits (64 bits)"),
        _rule("images.phash.no_near_duplicates", "no_near_duplicate",
              f"no two released images within {threshold} bits of pHash (dedupe.threshold)"),
        CheckSpec("images.short_side.at_least_min_side", "images", "images", "ExpectColumnValuesToBeBetween",
                  {"column": "short_side", "min_value": min_side, "max_value": None},
                  f"min(width, height) >= {min_side} (images.min_side)"),
        CheckSpec("images.long_side.at_most_max_side", "images", "images", "ExpectColumnValuesToBeBetween",
                  {"column": "long_side", "min_value": None, "max_value": max_side},
                  f"max(width, height) <= {max_side} (validation.max_side)"),
        _rule("images.caption.matches_class", "caption_matches",
              "the caption still matches caption_class (LAIONet rule, "
              f"{'case-sensitive' if settings.captions.case_sensitive else 'casefolded'}), and label == caption_class "
              "unless a proofreader relabelled it"),
        _rule("images.image.bytes_not_empty", "image_bytes_present", "the image has non-empty bytes"),
    ]
    return checks, _details(x, captions, pairs, images, min_side, max_side)


def _details(
    x: pl.DataFrame, captions: pl.DataFrame, pairs: list[tuple[str, str, int]], images: pl.DataFrame, min_side: int, max_side: int,
) -> dict[str, str]:
    details: dict[str, str] = {}
    left = left_out_by_status(images)
    released = ", ".join(f"{s} {int((x.get_column('proofread_status') == s).sum()):,}" for s in RELEASED_STATUS)
    details["images.proofread_status.released"] = (
        f"{x.height:,} rows validated ({released}); left out by status: "
        + (", ".join(f"{s} {n:,}" for s, n in left.items()) if left else "none")
    )
    bad = x.filter(~pl.col("status_released").is_in(list(RELEASED_STATUS)).fill_null(False))
    if bad.height:
        details["images.proofread_status.released"] += "; not released: " + _examples(
            [f"{r['sample_id']} ({r['proofread_status']})" for r in bad.head(EXAMPLES).iter_rows(named=True)], bad.height)
    if pairs:
        details["images.phash.no_near_duplicates"] = f"{len(pairs):,} near-duplicate pairs: " + _examples(
            [f"{a} ~ {b} ({d} bits)" for a, b, d in pairs], len(pairs))
    per_rule = {
        "images.wnid.matches_label": (
            ~pl.col("wnid_matches_label"), lambda r: f"{r['sample_id']} (label {r['label']} is {wnids()[r['label']]}, wnid {r['wnid']})"),
        "images.phash.valid": (~pl.col("phash_valid"), lambda r: f"{r['sample_id']} ({r['phash']!r})"),
        "images.short_side.at_least_min_side": (pl.col("short_side") < min_side, _size),
        "images.long_side.at_most_max_side": (pl.col("long_side") > max_side, _size),
        "images.image.bytes_not_empty": (~pl.col("image_bytes_present"), lambda r: str(r["sample_id"])),
    }
    for name, (failing_when, show) in per_rule.items():
        failing = x.filter(failing_when)
        if failing.height:
            details[name] = f"{failing.height:,} rows: " + _examples([show(r) for r in failing.head(EXAMPLES).iter_rows(named=True)], failing.height)
    mismatch = captions.filter(pl.col("caption_matches").not_())
    if mismatch.height:
        details["images.caption.matches_class"] = f"{mismatch.height:,} rows: " + _examples(
            [_caption_mismatch(r) for r in mismatch.head(EXAMPLES).iter_rows(named=True)], mismatch.height)
    return details


def _size(r: dict) -> str:
    return f"{r['sample_id']} ({r['width']} x {r['height']})"


def _caption_mismatch(r: dict) -> str:
    now = f"matches class {r['matched_class']}" if r["matched_class"] is not None else f"matches no class ({r['match_drop_reason']})"
    if r["label_source"] == "caption" and r["label"] != r["caption_class"]:
        return f"{r['sample_id']}: label {r['label']} differs from caption_class {r['caption_class']} though label_source is caption"
    return f"{r['sample_id']}: the caption {now}, expected caption_class {r['caption_class']}"


def validate_relaionet(
    images: pl.DataFrame,
    settings: RelaionetSettings,
    out_dir: Path,
    *,
    id_mode: str = "auto",
    data_docs: bool = True,
) -> ValidationReport:
    """Validate a reLAIONet candidate; write results.json, summary.json, report.html and Data Docs
    under ``out_dir``.

    ``images``: the proofread images table (every status; see the module docstring for what is
    validated and left out); ``settings`` gives the class file, case rule, size bounds and dedupe
    threshold. The report counts ``images`` (rows validated), ``input`` (rows given) and
    ``left_out[<status>]``. A missing column is a ``ValueError``; a missing class file an
    :class:`pipelines.core.errors.InputError`.
    """
    t0 = time.perf_counter()
    checks, details = relaionet_checks(images, settings)
    prepare = time.perf_counter() - t0
    counts = {"images": checks.frames["images"].df.height, "input": images.height}
    counts.update({f"left_out[{s}]": n for s, n in left_out_by_status(images).items()})
    return validate_checks(
        checks, out_dir, dataset="reLAIONet", name="relaionet", counts=counts, table_order=TABLE_ORDER,
        details=details, id_mode=id_mode, data_docs=data_docs, prepare_seconds=prepare, started=t0,
    )
