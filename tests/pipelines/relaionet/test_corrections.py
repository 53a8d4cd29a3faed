"""Applying proofreading corrections to reLAIONet candidates (pipelines/relaionet/corrections.py).

``candidate_frame`` builds CANDIDATES rows with small generated images; the annotation tests
use it too.
"""

from __future__ import annotations

import io

import polars as pl
import pytest
from PIL import Image

from pipelines.core.errors import InputError
from pipelines.relaionet.corrections import CORRECTIONS_SCHEMA, apply_corrections, read_corrections
from schemas.relaionet import CANDIDATES, wnids

# (sample id, class id, caption, text in image)
SAMPLES = (
    ("100001", 0, "a tench caught at the lake", "no"),
    ("100002", 1, "my goldfish in its new bowl", "not_checked"),
    ("100003", 2, "great white shark poster", "yes"),
    ("100004", 207, "golden retriever puppy on the grass", "no"),
    ("100005", 409, "analog clock on the wall", "no"),
)
COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200))


def image_bytes(n: int, fmt: str = "PNG") -> bytes:
    """A 96x96 image with a coloured square, distinct per ``n``."""
    img = Image.new("RGB", (96, 96), (240, 240, 240))
    img.paste(COLOURS[n % len(COLOURS)], (8 + n % 40, 8, 60 + n % 40, 60))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def candidate_frame(samples=SAMPLES) -> pl.DataFrame:
    rows = []
    for n, (sid, cls, caption, text) in enumerate(samples):
        fmt = "JPEG" if n % 2 else "PNG"
        rows.append({
            "sample_id": sid, "image": {"bytes": image_bytes(n, fmt), "path": f"{sid}.{fmt.lower()}"}, "label": cls,
            "wnid": wnids()[cls], "caption": caption, "caption_class": cls, "lemmas": [caption.split()[0]],
            "text_similarity": 0.3 + n / 100, "similarity_model": "test:1", "url": f"https://example.org/{sid}.jpg",
            "license": None, "nsfw": "UNLIKELY", "laion_similarity": 0.31, "width": 96, "height": 96, "format": fmt,
            "mode": "RGB", "reencoded": 0, "phash": "0" * 16, "text_in_image": text,
            "ocr_text": caption.split()[-1] if text == "yes" else None, "proofread_status": "pending",
            "label_source": "caption", "unusable_reason": None, "annotators": [], "source": "test.parquet", "position": str(n),
        })
    return CANDIDATES.conform(pl.DataFrame(rows))


def corrections(*rows: dict) -> pl.DataFrame:
    full = [{"label": None, "unusable_reason": None, "annotators": ["anna"], "problem": None, **r} for r in rows]
    return pl.DataFrame(full, schema=CORRECTIONS_SCHEMA)


def test_settled_corrections_are_applied_and_the_rest_stays_pending():
    cands = candidate_frame()
    fixes = corrections(
        {"sample_id": "100001", "status": "accepted", "label": 0},
        {"sample_id": "100002", "status": "relabelled", "label": 3, "annotators": ["anna", "ben"]},
        {"sample_id": "100003", "status": "unusable", "unusable_reason": "text_in_image"},
        {"sample_id": "100004", "status": "disputed", "annotators": ["anna", "ben"], "problem": "proofreaders disagree"},
        {"sample_id": "100005", "status": None, "problem": "proofread by 1 of 2"},
        {"sample_id": "999999", "status": "accepted", "label": 5},
    )
    applied = apply_corrections(cands, fixes)
    out = {r["sample_id"]: r for r in applied.candidates.iter_rows(named=True)}
    assert applied.candidates.columns == cands.columns and applied.candidates.height == cands.height
    assert (out["100001"]["proofread_status"], out["100001"]["label"], out["100001"]["label_source"]) == ("accepted", 0, "caption")
    r = out["100002"]
    assert (r["proofread_status"], r["label"], r["wnid"], r["label_source"], r["annotators"]) == ("relabelled", 3, wnids()[3], "proofreader", ["anna", "ben"])
    assert r["caption_class"] == 1  # what the caption said is kept
    assert (out["100003"]["proofread_status"], out["100003"]["unusable_reason"], out["100003"]["label"]) == ("unusable", "text_in_image", 2)
    assert out["100004"]["proofread_status"] == "disputed" and out["100004"]["label"] == 207
    assert (out["100005"]["proofread_status"], out["100005"]["annotators"]) == ("pending", [])
    # the correction for an image that is not a candidate is returned, not dropped silently
    assert applied.unknown["sample_id"].to_list() == ["999999"]
    assert applied.counts == {"pending": 1, "accepted": 1, "relabelled": 1, "unusable": 1, "disputed": 1}
    assert CANDIDATES.conform(applied.candidates).height == 5


def test_no_corrections_resets_every_candidate_to_pending_with_the_captions_class():
    cands = candidate_frame().with_columns(pl.lit("accepted").alias("proofread_status"), pl.lit(7).cast(pl.Int64).alias("label"))
    applied = apply_corrections(cands, None)
    assert set(applied.candidates["proofread_status"]) == {"pending"}
    assert applied.candidates["label"].to_list() == cands["caption_class"].to_list()
    assert applied.unknown.height == 0 and applied.counts["pending"] == 5


def test_read_corrections_round_trips_and_names_the_file_on_bad_input(tmp_path):
    good = tmp_path / "corrections.parquet"
    fixes = corrections({"sample_id": "100002", "status": "relabelled", "label": 3})
    fixes.with_columns(pl.lit("extra").alias("note")).write_parquet(good)
    assert read_corrections(good).equals(fixes)

    not_parquet = tmp_path / "junk.parquet"
    not_parquet.write_text("not parquet")
    with pytest.raises(InputError, match="junk.parquet: not a readable parquet file"):
        read_corrections(not_parquet)
    lacking = tmp_path / "lacking.parquet"
    fixes.drop("annotators").write_parquet(lacking)
    with pytest.raises(InputError, match=r"lacking.parquet: missing column\(s\) \['annotators'\]"):
        read_corrections(lacking)
    for name, bad, what in (
        ("status", {"sample_id": "1", "status": "maybe"}, "a status outside"),
        ("relabel", {"sample_id": "1", "status": "relabelled", "label": None}, "status relabelled but no class id"),
        ("reason", {"sample_id": "1", "status": "unusable", "unusable_reason": "ugly"}, "an unusable_reason outside"),
    ):
        path = tmp_path / f"{name}.parquet"
        corrections(bad).write_parquet(path)
        with pytest.raises(InputError, match=f"{name}.parquet: 1 row\\(s\\) with {what}.*annotate pull relaionet"):
            read_corrections(path)
    twice = tmp_path / "twice.parquet"
    corrections({"sample_id": "1", "status": "accepted"}, {"sample_id": "1", "status": "unusable"}).write_parquet(twice)
    with pytest.raises(InputError, match="a sample_id that appears more than once"):
        read_corrections(twice)
