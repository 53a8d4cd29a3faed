"""reLAIONet rows as a release: ``images_table()`` rows written by ``write_release`` load with
``datasets``; the images decode to PIL images of the stored size and the label names its class.

Also the small row builder the reLAIONet validation, card and export tests share.
"""

from __future__ import annotations

import io
import os

import numpy as np
import polars as pl
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402

from pipelines.relaionet.images import phash_batch  # noqa: E402
from releases import CardText, ReleaseSpec, load_release, write_release  # noqa: E402
from schemas.relaionet import class_names, images_table, wnids  # noqa: E402

datasets.disable_progress_bars()

# Classes whose first lemma is unique to them: the caption "a photo of a <lemma>" matches them
# (other classes get their name, which the validation's caption check may not match).
LEMMA = {0: "tench", 1: "goldfish", 207: "golden retriever", 281: "tabby"}


def encode(im: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt)
    return out.getvalue()


def picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """Random RGB noise, upscaled from 8 x 8 blocks: pHashes of two seeds lie far apart."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.NEAREST)


def image_row(
    sample_id: str,
    label: int,
    *,
    seed: int,
    size: tuple[int, int] = (96, 80),
    fmt: str = "PNG",
    status: str = "accepted",
    caption_class: int | None = None,
    caption: str | None = None,
    **overrides,
) -> dict:
    """One row of ``images_table()``: a PIL-made image, its pHash, a caption matching
    ``caption_class`` (default: the label). A different ``caption_class`` means a relabelled row."""
    caption_class = label if caption_class is None else caption_class
    lemma = LEMMA.get(caption_class, class_names()[caption_class])
    im = picture(seed, size)
    relabelled = caption_class != label
    row = {
        "sample_id": sample_id,
        "image": {"bytes": encode(im, fmt), "path": None},
        "label": label,
        "wnid": wnids()[label],
        "caption": caption if caption is not None else f"a photo of a {lemma}",
        "caption_class": caption_class,
        "lemmas": [lemma],
        "text_similarity": 0.9,
        "similarity_model": "clip:test",
        "url": f"https://example.org/{sample_id}.{fmt.lower()}",
        "license": "cc-by",
        "nsfw": "UNLIKELY",
        "laion_similarity": 0.31,
        "width": size[0],
        "height": size[1],
        "format": fmt,
        "mode": "RGB",
        "reencoded": 0,
        "phash": f"{int(phash_batch([im])[0]):016x}",
        "text_in_image": "not_checked",
        "ocr_text": None,
        "proofread_status": "relabelled" if relabelled and status == "accepted" else status,
        "label_source": "proofreader" if relabelled else "caption",
        "unusable_reason": "other" if status == "unusable" else None,
        "annotators": [] if status == "pending" else ["ann1"],
        "source": "test.parquet",
        "position": sample_id,
    }
    row.update(overrides)
    return row


def image_frame(rows: list[dict]) -> pl.DataFrame:
    return images_table().conform(pl.DataFrame(rows, schema=images_table().polars_schema()))


def sample_frame() -> pl.DataFrame:
    """Six released images over four classes (one relabelled, one JPEG) and two left-out rows."""
    return image_frame([
        image_row("100", 0, seed=1),
        image_row("101", 0, seed=2, fmt="JPEG", size=(120, 90)),
        image_row("102", 1, seed=3),
        image_row("103", 207, seed=4, size=(64, 200)),
        image_row("104", 281, seed=5),
        image_row("105", 281, seed=6, caption_class=207),  # a golden retriever caption, a tabby in the image
        image_row("106", 1, seed=7, status="pending"),
        image_row("107", 1, seed=8, status="unusable"),
    ])


def test_images_rows_load_with_datasets_as_images_and_class_labels(tmp_path) -> None:
    frame = sample_frame().filter(pl.col("proofread_status").is_in(["accepted", "relabelled"]))
    card = CardText(title="reLAIONet (test)", summary="Six images.")
    spec = ReleaseSpec(dataset="relaionet", version="0.1.0", configs={"images": images_table()},
                       tables={"images": frame}, card=card, split_column=None)
    release = write_release(spec, tmp_path)
    ds = load_release(release, "images", split="train")
    assert ds.num_rows == 6 and "source" not in ds.column_names
    label = ds.features["label"]
    assert isinstance(label, datasets.ClassLabel) and label.num_classes == 1000
    assert isinstance(ds.features["image"], datasets.Image)
    by_id = {r["sample_id"]: r for r in frame.iter_rows(named=True)}
    for item in ds:
        expected = by_id[item["sample_id"]]
        assert isinstance(item["image"], Image.Image)
        assert item["image"].size == (expected["width"], expected["height"])
        assert item["image"].format == expected["format"]
        assert label.int2str(item["label"]) == class_names()[expected["label"]]
    assert label.int2str(by_id["105"]["label"]) == "tabby" and label.str2int("golden retriever") == 207
