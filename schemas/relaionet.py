"""reLAIONet tables: candidate images (before proofreading) and the released images.

One row per image, keyed by ``sample_id`` (LAION's SAMPLE_ID, img2dataset's key or the file stem;
see ``pipelines/relaionet/sources.py``). The label is an ImageNet-1k class id (0..999) named by
:func:`class_names`: the first lemma of the synset, with the WordNet id added to the two names that
two synsets share ("crane (n02012849)" the bird, "crane (n03126707)" the machine; the same for
"maillot"), since a ClassLabel needs unique names. The class file bundled here
(``schemas/data/imagenet_class_info.json``, a copy of the published ``class_info.json``) is the
label set of every release; a build may read another class file only if it has the same classes.

Stages hold :data:`CANDIDATES` (what the automatic filters kept, ``proofread_status`` pending) and,
after proofreading, :data:`IMAGES` rows with a decided status; a release holds the accepted rows of
:func:`images_table` (the same columns, label as a ClassLabel over the 1,000 names, the image as an
``Image`` feature).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

from schemas.table import Column, Float, ImageData, Int, Label, ListOf, String, Table

CLASS_FILE = files("schemas").joinpath("data/imagenet_class_info.json")
N_CLASSES = 1000

# Proofreading status of an image: waiting for people, or their decision (see
# annotation/recipes/relaionet.py): accepted with the proposed class, accepted with another class
# (relabelled), or unusable. Only accepted and relabelled images are released.
PROOFREAD_STATUS: tuple[str, ...] = ("pending", "accepted", "relabelled", "unusable", "disputed")
RELEASED_STATUS: tuple[str, ...] = ("accepted", "relabelled")
# Where the label comes from: the caption's lemma (LAIONet) or a proofreader who picked another class.
LABEL_SOURCES: tuple[str, ...] = ("caption", "proofreader")
# Text in the image naming the class (OCR): found, not found, or no OCR backend ran.
TEXT_IN_IMAGE: tuple[str, ...] = ("yes", "no", "not_checked")
UNUSABLE_REASONS: tuple[str, ...] = ("not_a_photo", "text_in_image", "unsafe", "other")


@lru_cache(maxsize=1)
def class_records() -> tuple[tuple[int, str, str], ...]:
    """(class id, WordNet id, first lemma) of the bundled ImageNet-1k classes, in id order."""
    data = json.loads(CLASS_FILE.read_text(encoding="utf-8"))
    rows = sorted((int(e["cid"]), str(e["wnid"]), str(e["synset"][0])) for e in data)
    if [r[0] for r in rows] != list(range(N_CLASSES)):
        raise RuntimeError(f"{CLASS_FILE}: class ids are not 0..{N_CLASSES - 1}; restore the bundled copy")
    return tuple(rows)


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1,000 label names (class id order); a name two synsets share gets its WordNet id."""
    records = class_records()
    first = [name for _, _, name in records]
    return tuple(name if first.count(name) == 1 else f"{name} ({wnid})" for _, wnid, name in records)


def wnids() -> tuple[str, ...]:
    return tuple(wnid for _, wnid, _ in class_records())


def class_label() -> Label:
    return Label(names=class_names())


def _columns(label: Label) -> tuple[Column, ...]:
    return (
        Column("sample_id", String(), "LAION SAMPLE_ID, img2dataset key, or the image file's stem; unique.", unique=True),
        Column("image", ImageData(), "The image: the original file when it is an upright opaque RGB JPEG or PNG, else a lossless PNG of its RGB conversion."),
        Column("label", label, "ImageNet-1k class id (0..999): the caption's class, or the proofreader's choice (label_source)."),
        Column("wnid", String(), "WordNet id of the label (the folder name in the per-class export)."),
        Column("caption", String(), "The caption as given by the source."),
        Column("caption_class", Int(64), "Class the caption's lemmas matched (LAIONet rule); differs from label when relabelled.", min_value=0, max_value=N_CLASSES - 1),
        Column("lemmas", ListOf(String()), "Unique lemmas of caption_class found in the caption."),
        Column("text_similarity", Float(), "Cosine similarity of the caption with '<name> which is <gloss>'; null when the filter was off.", nullable=True),
        Column("similarity_model", String(), "Encoder kind:version that scored text_similarity, or 'none'."),
        Column("url", String(), "Where the image was downloaded from (LAION URL); null for local folders.", nullable=True),
        Column("license", String(), "License tag from LAION metadata, when given.", nullable=True),
        Column("nsfw", String(), "LAION's NSFW tag (UNLIKELY kept by default); null when the source had none and untagged images were allowed.", nullable=True),
        Column("laion_similarity", Float(), "LAION's own image-text CLIP similarity, when given.", nullable=True),
        Column("width", Int(64), "Width of the stored image in pixels (upright).", min_value=1),
        Column("height", Int(64), "Height of the stored image in pixels (upright).", min_value=1),
        Column("format", String(), "Format of the file as downloaded (JPEG, PNG, WEBP, ...)."),
        Column("mode", String(), "Pillow mode of the file as downloaded (RGB, CMYK, P, LA, ...)."),
        Column("reencoded", Int(8), "1 when the stored bytes are a PNG re-encoding (conversion to RGB, transparency, rotation), else 0.", allowed=(0, 1)),
        Column("phash", String(), "64-bit perceptual hash (DCT) as 16 hex digits."),
        Column("text_in_image", String(), "Whether OCR found the class name written in the image (yes/no/not_checked).", allowed=TEXT_IN_IMAGE),
        Column("ocr_text", String(), "Text the OCR backend read (null when not checked).", nullable=True),
        Column("proofread_status", String(), "pending, accepted, relabelled, unusable or disputed.", allowed=PROOFREAD_STATUS),
        Column("label_source", String(), "caption (LAIONet match) or proofreader.", allowed=LABEL_SOURCES),
        Column("unusable_reason", String(), "Why proofreaders rejected the image (not released).", nullable=True, allowed=UNUSABLE_REASONS),
        Column("annotators", ListOf(String()), "Who proofread the image (empty while pending)."),
        Column("source", String(), "Input file the sample came from.", released=False),
        Column("position", String(), "Where in the input file (row, key or file name).", released=False),
    )


CANDIDATES = Table(
    name="candidates",
    primary_key="sample_id",
    description="Images that passed the automatic filters (captions, safety, decoding, similarity, duplicates), before proofreading.",
    columns=_columns(Label()),
)


def images_table() -> Table:
    """The released table: label a ClassLabel over :func:`class_names`."""
    return Table(
        name="images",
        primary_key="sample_id",
        description="Proofread LAION images with ImageNet-1k labels (accepted or relabelled by people).",
        columns=_columns(class_label()),
    )
