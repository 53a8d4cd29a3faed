"""The bundled reLAIONet sample: 30 synthetic images with LAION-style captions, one of each bad case.

    python -m pipelines.relaionet.sample_data             # rewrites pipelines/relaionet/sample/
    python -m pipelines.relaionet.sample_data OUT_DIR     # or writes elsewhere

:func:`write_sample` writes under ``out_dir``:

* ``images/``: the image files and ``captions.jsonl``, the "folder of images with one
  captions.jsonl" layout of :mod:`pipelines.relaionet.sources`. One row per image (``file``,
  ``caption``, ``sample_id``, ``url``, ``nsfw``, ``license``, ``similarity``, ``width``,
  ``height``), then a row whose image is missing and a repeat of an earlier row (same sample id).
  The LAION fields are written in lower case because the folder reader hands each row to
  ``sources._sample`` as it is, and that reads lower-case keys only. ``similarity`` is LAION's
  image-text CLIP score (made up here), not ours.
* ``answers.jsonl``: one simulated proofreader answer per sample that passes the automatic
  filters, ``{"sample_id", "answers": {"verdict": "confirm" | "other class" | "unusable", ...}}``.
* ``expected.json``: the outcome of every sample id under the LAIONet defaults (written from the
  rules in :data:`CASES`, not by running the pipeline): released (final class id and name after
  proofreading), unusable, or rejected (stage and reason); plus the reader-level rejects and the
  near-duplicate pair.

Images are drawn with Pillow and numpy (gradients at random angles, translucent shapes, blur,
sensor-like noise), 96-200 px, so that no two are within 6 bits of pHash except the intended
near-duplicate (checked on every write: a seed that breaks this is a ``ValueError``). Captions name
8 ImageNet classes through unique lemmas and were chosen so that all-MiniLM-L6-v2 puts every
caption that should pass the similarity filter at >= 0.58 of its class's query text and the
low-similarity one at 0.22 (``pipelines/relaionet/sample/README.md`` lists the scores).

Deterministic: every image has its own generator seeded by ``(seed, case number)``, files are
written in a fixed order with fixed encoder settings, so rerunning writes identical bytes with the
same Pillow (libjpeg, zlib) and numpy. Files in ``out_dir/images`` that this run did not write are
removed: that folder belongs to the generator.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
IMAGES = "images"
CAPTIONS = "captions.jsonl"
ANSWERS = "answers.jsonl"
EXPECTED = "expected.json"
DEDUPE_BITS = 6  # LAIONet's near-duplicate threshold (pHash Hamming distance)
MIN_DISTINCT_BITS = 12  # any two unrelated sample images differ by more than this (margin over 6)

# Class ids in schemas/data/imagenet_class_info.json (class_names() gives the names).
GOLDFISH, TABBY, GOLDEN_RETRIEVER, SCHOOL_BUS = 1, 281, 207, 779
ESPRESSO, STRAWBERRY, LIGHTHOUSE, TEAPOT = 967, 949, 437, 849
TIGER_CAT, MONARCH = 282, 323
LICENSES = ("CC BY 4.0", "CC0 1.0", "?", "CC BY-SA 4.0")


@dataclass(frozen=True)
class Case:
    """One caption row. ``image``: how the file is made (a key of ``_RECIPES``; "missing": no file).
    ``class_id``: the class the caption's lemma names (None when no single class is named).
    ``stage``/``reason``: where the automatic pipeline drops it (None: it reaches proofreading).
    ``answer``: the proofreaders' answer when it reaches them (None: confirm)."""

    sample_id: str
    what: str
    caption: str
    class_id: int | None
    image: str = "photo"
    ext: str = ".jpg"
    nsfw: str = "UNLIKELY"
    stage: str | None = None
    reason: str | None = None
    answer: dict[str, str] | None = None
    text_in_image: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


CASES: tuple[Case, ...] = (
    Case("s01", "RGB JPEG", "Golden goldfish swimming in a freshwater pond", GOLDFISH),
    Case("s02", "RGB PNG", "A pet goldfish in a freshwater aquarium", GOLDFISH, ext=".png"),
    Case("s03", "RGB JPEG whose row is repeated at the end (duplicate_sample_id)", "My grey tabby cat with a mottled coat", TABBY),
    Case("s04", "relabelled by proofreaders (tabby -> tiger cat)", "Grey tabby cat with black stripes lying on a blanket", TABBY,
         answer={"verdict": "other class", "class": "tiger cat"}),
    Case("s05", "RGB JPEG", "Our golden retriever with his long silky golden coat", GOLDEN_RETRIEVER),
    Case("s06", "RGB PNG", "Happy golden retriever dog with a long golden coat", GOLDEN_RETRIEVER, ext=".png"),
    Case("s07", "RGB JPEG", "Old yellow school bus taking children to school", SCHOOL_BUS),
    Case("s08", "palette PNG with a transparent colour (kept, flattened on white)", "A yellow school bus driving kids home from school",
         SCHOOL_BUS, image="palette", ext=".png"),
    Case("s09", "RGB JPEG", "Strong espresso coffee brewed with finely ground beans", ESPRESSO),
    Case("s10", "CMYK JPEG (kept, converted to RGB)", "A shot of strong espresso coffee, freshly brewed", ESPRESSO, image="cmyk"),
    Case("s11", "RGB PNG", "Sweet red strawberry fruit", STRAWBERRY, ext=".png"),
    Case("s12", "RGB JPEG", "Ripe red strawberry fruit, sweet and fresh", STRAWBERRY),
    Case("s13", "RGB JPEG", "Old lighthouse tower warning ships near the shore", LIGHTHOUSE),
    Case("s14", "flat cartoon: unusable for proofreaders (not_a_photo)", "Cute cartoon of an old lighthouse tower warning ships",
         LIGHTHOUSE, image="cartoon", ext=".png", answer={"verdict": "unusable", "reason": "not a photo"}),
    Case("s15", "RGB JPEG", "Porcelain teapot for brewing tea with a handle and spout", TEAPOT),
    Case("s16", "RGB PNG", "A teapot with a spout and handle for brewing tea", TEAPOT, ext=".png"),
    Case("s17", "the class name written in big letters (OCR flag; kept unless ocr.drop_flagged)",
         "Little goldfish swimming among pond plants", GOLDFISH, image="text", text_in_image=True),
    Case("s18", "RGB JPEG; s19 is its near-duplicate", "Sweet ripe strawberry fruit from the garden", STRAWBERRY),
    Case("s19", "near-duplicate of s18 (brighter, a small mark, re-encoded)", "A juicy red strawberry fruit", STRAWBERRY,
         image="near_copy", stage="dedupe", reason="near_duplicate", extra={"duplicate_of": "s18"}),
    Case("s20", "random bytes named .jpg", "Two goldfish in a garden pond with lily pads", GOLDFISH,
         image="corrupt", stage="images", reason="not_an_image"),
    Case("s21", "JPEG cut after 55% of its bytes", "Yellow school bus parked in front of the school", SCHOOL_BUS,
         image="truncated", stage="images", reason="truncated"),
    Case("s22", "40 x 40 JPEG", "A tabby cat curled up on the sofa", TABBY, image="small", stage="images", reason="too_small"),
    Case("s23", "PNG whose header says 30000 x 30000 (1-bit, all black; a decompression bomb)", "Tea in a brown teapot with a spout",
         TEAPOT, image="bomb", ext=".png", stage="images", reason="too_large"),
    Case("s24", "German caption with an English lemma", "Unser golden retriever spielt im Garten mit seinem Ball", GOLDEN_RETRIEVER,
         stage="language", reason="caption_language", extra={"language": "de"}),
    Case("s25", "French caption with an English lemma", "Le golden retriever de ma voisine joue dans le jardin", GOLDEN_RETRIEVER,
         ext=".png", stage="language", reason="caption_language", extra={"language": "fr"}),
    Case("s26", "empty caption", "", None, stage="captions", reason="empty_caption"),
    Case("s27", "caption naming two synsets", "a tabby cat watching a goldfish in its bowl", None, stage="captions", reason="multiple_synsets"),
    Case("s28", "caption without a lemma", "Sunset over the mountains, 4k wallpaper", None, stage="captions", reason="no_lemma"),
    Case("s29", "NSFW tag POSSIBLE", "Strong black espresso coffee brewed in an espresso machine", ESPRESSO, nsfw="POSSIBLE",
         stage="safety", reason="nsfw"),
    Case("s30", "lemma in another sense (a king, not the butterfly): low similarity", "A monarch waves to the crowd from the royal balcony",
         MONARCH, stage="similarity", reason="low_similarity"),
    Case("s31", "caption row whose image file is missing", "White porcelain teapot for brewing green tea", TEAPOT, image="missing",
         stage="source", reason="missing_image"),
)
REPEATED = "s03"  # its row is written again after the others: duplicate_sample_id
# The pipeline step (pipelines/relaionet/pipeline.py) whose rejects hold each stage's drops.
STEP_OF_STAGE = {
    "source": "samples", "captions": "samples", "language": "samples", "safety": "samples", "images": "samples",
    "similarity": "similarity", "dedupe": "dedupe",
}


# --------------------------------------------------------------------------- drawing


def _photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A photo-like picture: a two-colour gradient at a random angle, 4-7 translucent shapes,
    a slight blur and Gaussian noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-9)
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    im = Image.fromarray((start + (end - start) * ramp[..., None]).astype(np.uint8))
    draw = ImageDraw.Draw(im, "RGBA")
    for _ in range(int(rng.integers(4, 8))):
        x0, x1 = sorted(rng.integers(-width // 4, width + width // 4, 2).tolist())
        y0, y1 = sorted(rng.integers(-height // 4, height + height // 4, 2).tolist())
        fill = (*rng.integers(0, 256, 3).tolist(), int(rng.integers(140, 256)))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((x0, y0, x1 + 8, y1 + 8), fill=fill)
        elif shape == 1:
            draw.rectangle((x0, y0, x1 + 8, y1 + 8), fill=fill)
        else:
            points = rng.integers(0, [width, height], (int(rng.integers(3, 6)), 2)).tolist()
            draw.polygon([tuple(p) for p in points], fill=fill)
    im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.6))))
    noisy = np.asarray(im, dtype=np.float64) + rng.normal(0, 3.0, (height, width, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def _size(rng: np.random.Generator) -> tuple[int, int]:
    width, height = rng.integers(96, 201, 2).tolist()
    return int(width), int(height)


def _encode(im: Image.Image, ext: str, quality: int = 88) -> bytes:
    out = io.BytesIO()
    if ext == ".png":
        im.save(out, "PNG", compress_level=9)
    else:
        im.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _palette_with_transparency(rng: np.random.Generator) -> Image.Image:
    """A photo quantised to 31 colours; index 31 (transparent) fills the rounded-off corners."""
    width, height = _size(rng)
    quantised = _photo(rng, width, height).quantize(colors=31, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    mask = Image.new("L", (width, height), 255)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, width - 1, height - 1), radius=min(width, height) // 4, fill=0)
    pixels = np.asarray(quantised).copy()
    pixels[np.asarray(mask) > 0] = 31
    palette = (quantised.getpalette() or [])[: 31 * 3]
    palette += [0] * (31 * 3 - len(palette)) + [255, 0, 255]
    out = Image.fromarray(pixels, "P")
    out.putpalette(palette)
    out.info["transparency"] = 31
    return out


def _cartoon(rng: np.random.Generator) -> Image.Image:
    """Flat colours, no texture: a drawing of a lighthouse on a hill (not a photo)."""
    width, height = 160, 192
    sky = tuple(int(v) for v in rng.integers([90, 160, 210], [130, 200, 250]))
    im = Image.new("RGB", (width, height), sky)
    draw = ImageDraw.Draw(im)
    draw.ellipse((-40, 140, 200, 260), fill=(80, 170, 70))
    for band in range(5):  # red and white stripes, narrowing upwards
        top, bottom = 150 - 22 * (band + 1), 150 - 22 * band
        inset_top, inset_bottom = 4 + 2 * (band + 1), 4 + 2 * band
        colour = (220, 40, 40) if band % 2 == 0 else (250, 250, 250)
        draw.polygon([(55 + inset_bottom, bottom), (105 - inset_bottom, bottom), (105 - inset_top, top), (55 + inset_top, top)],
                     fill=colour, outline=(20, 20, 20))
    draw.rectangle((64, 20, 96, 40), fill=(255, 220, 40), outline=(20, 20, 20))
    draw.polygon([(58, 20), (102, 20), (80, 4)], fill=(40, 40, 40))
    draw.ellipse((118, 14, 150, 46), fill=(255, 240, 120))
    return im


def _with_text(rng: np.random.Generator, word: str) -> Image.Image:
    """A pale photo-like background with ``word`` in big black letters across it."""
    width, height = 200, 128
    background = Image.blend(_photo(rng, width, height), Image.new("RGB", (width, height), (255, 255, 255)), 0.75)
    draw = ImageDraw.Draw(background)
    font = ImageFont.load_default(size=40)
    left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
    draw.text(((width - (right - left)) // 2 - left, (height - (bottom - top)) // 2 - top), word, fill=(0, 0, 0), font=font)
    return background


def _near_copy(original: Image.Image) -> Image.Image:
    """The same picture 4% brighter with a small mark in a corner (a re-upload)."""
    copy = ImageEnhance.Brightness(original).enhance(1.04)
    ImageDraw.Draw(copy).rectangle((3, 3, 10, 8), fill=(250, 250, 250))
    return copy


def _bomb_png(side: int = 30_000) -> bytes:
    """A valid 1-bit greyscale PNG of side x side black pixels: about 110 KB on disk, 900
    megapixels decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = bytes(1 + (side + 7) // 8)  # filter type 0 and the packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- files


def _image_file(case: Case, rng: np.random.Generator, drawn: dict[str, Image.Image]) -> tuple[bytes, tuple[int, int] | None]:
    """(file bytes, stored size or None) of a case; pictures are remembered in ``drawn``."""
    recipes: dict[str, Callable[[], Image.Image]] = {
        "photo": lambda: _photo(rng, *_size(rng)),
        "cmyk": lambda: _photo(rng, *_size(rng)).convert("CMYK"),
        "palette": lambda: _palette_with_transparency(rng),
        "cartoon": lambda: _cartoon(rng),
        "text": lambda: _with_text(rng, "goldfish"),
        "near_copy": lambda: _near_copy(drawn[case.extra["duplicate_of"]]),
        "small": lambda: _photo(rng, 40, 40),
    }
    if case.image == "corrupt":
        return rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), (160, 120)
    if case.image == "bomb":
        return _bomb_png(), (30_000, 30_000)
    if case.image == "truncated":
        data = _encode(_photo(rng, *_size(rng)), ".jpg")
        return data[: len(data) * 55 // 100], None
    im = recipes[case.image]()
    drawn[case.sample_id] = im
    return _encode(im, case.ext, quality=80 if case.image == "near_copy" else 88), im.size


def _caption_row(case: Case, rng: np.random.Generator, size: tuple[int, int] | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "file": f"{case.sample_id}{case.ext}",
        "caption": case.caption,
        "sample_id": case.sample_id,
        "url": f"https://example.org/relaionet-sample/{case.sample_id}{case.ext}",
        "nsfw": case.nsfw,
        "license": LICENSES[int(rng.integers(len(LICENSES)))],
        "similarity": round(float(rng.uniform(0.28, 0.40)), 4),
    }
    if size is not None:
        row["width"], row["height"] = size
    return row


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def expected_outcomes() -> dict[str, Any]:
    """What the pipeline should produce for the sample under the LAIONet defaults (see the module
    docstring); the content of ``expected.json``."""
    from schemas.relaionet import class_names

    names = class_names()
    samples: dict[str, dict[str, Any]] = {}
    for case in CASES:
        entry: dict[str, Any] = {"case": case.what, "file": f"{case.sample_id}{case.ext}", "caption_class_id": case.class_id}
        if case.stage is not None:
            entry |= {"outcome": "rejected", "stage": case.stage, "step": STEP_OF_STAGE[case.stage], "drop_reason": case.reason,
                      **case.extra}
        else:
            answer = case.answer or {"verdict": "confirm"}
            final = names.index(answer["class"]) if answer["verdict"] == "other class" else case.class_id
            entry |= {
                "outcome": "unusable" if answer["verdict"] == "unusable" else "released",
                "proofread_status": {"confirm": "accepted", "other class": "relabelled", "unusable": "unusable"}[answer["verdict"]],
                "class_id": final,
                "class_name": names[final],
                "label_source": "proofreader" if answer["verdict"] == "other class" else "caption",
                "unusable_reason": answer["reason"].replace(" ", "_") if "reason" in answer else None,
                "text_in_image": "yes" if case.text_in_image else "no",
                **_stored_as(case),
            }
        samples[case.sample_id] = entry
    lines = {case.sample_id: line for line, case in enumerate(CASES, start=1)}
    outcomes = [entry["outcome"] for entry in samples.values()]
    return {
        "about": (
            "Expected outcome of pipelines/relaionet/sample/images under the defaults below, written from the rules "
            "(pipelines/relaionet/sample_data.py CASES), not by running the pipeline. stage: the check that drops a "
            "sample (source, captions, language, safety, images, similarity, dedupe); step: the pipeline step whose "
            "rejects hold it; then proofreading (answers.jsonl)."
        ),
        "settings": {
            "class_file": "schemas/data/imagenet_class_info.json", "case_sensitive": True, "language": "en",
            "min_language_probability": 0.9, "keep_nsfw": ["UNLIKELY"], "min_side": 64, "max_pixels": 40_000_000,
            "similarity": {"encoder": "sentence", "model": "all-MiniLM-L6-v2", "threshold": 0.5},
            "dedupe_threshold": DEDUPE_BITS, "ocr": {"backend": "tesseract", "drop_flagged": False},
        },
        "counts": {
            "caption_rows": len(CASES) + 1,
            "image_files": sum(case.image != "missing" for case in CASES),
            "samples": len(CASES),
            "to_proofreading": sum(case.stage is None for case in CASES),
            **{outcome: outcomes.count(outcome) for outcome in ("released", "unusable", "rejected")},
        },
        "source_rejects": [
            {"record_id": "s31", "drop_reason": "missing_image", "step": "samples", "line": lines["s31"]},
            {"record_id": REPEATED, "drop_reason": "duplicate_sample_id", "step": "samples", "line": len(CASES) + 1},
        ],
        "near_duplicates": [[case.extra["duplicate_of"], case.sample_id] for case in CASES if case.image == "near_copy"],
        "samples": samples,
    }


def _stored_as(case: Case) -> dict[str, Any]:
    """How check_image should see a kept file: format, mode, re-encoded, flattened."""
    fmt = "PNG" if case.ext == ".png" else "JPEG"
    mode = {"cmyk": "CMYK", "palette": "P"}.get(case.image, "RGB")
    return {"format": fmt, "mode": mode, "reencoded": mode != "RGB", "flattened": case.image == "palette"}


def _check_distinct(images: dict[str, bytes]) -> None:
    """Raise ValueError when two decodable images other than the intended pair are within
    MIN_DISTINCT_BITS of pHash, or the intended pair is not within DEDUPE_BITS."""
    from pipelines.relaionet.images import check_image, near_duplicates, phash_batch

    checks = {sid: check_image(data) for sid, data in images.items()}
    ids = [sid for sid, check in checks.items() if check.ok]
    hashes = phash_batch(np.stack([checks[sid].hash_input for sid in ids]))
    close = {(ids[i], ids[j]): distance for i, j, distance in near_duplicates(hashes, MIN_DISTINCT_BITS)}
    for case in CASES:
        if case.image == "near_copy" and close.pop((case.extra["duplicate_of"], case.sample_id), DEDUPE_BITS + 1) > DEDUPE_BITS:
            raise ValueError(f"{case.sample_id} should be within {DEDUPE_BITS} bits of {case.extra['duplicate_of']}")
    if close:
        raise ValueError(f"images within {MIN_DISTINCT_BITS} bits of pHash: {sorted(close.items())}; use another seed")


def write_sample(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Write the sample under ``out_dir`` (``images/`` with ``captions.jsonl``, ``answers.jsonl``,
    ``expected.json``); returns counts and the written paths relative to ``out_dir``.

    Raises ValueError when ``seed`` draws two unrelated images within 12 bits of pHash."""
    out_dir = Path(out_dir)
    images_dir = out_dir / IMAGES
    images_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    rows: list[dict[str, Any]] = []
    drawn: dict[str, Image.Image] = {}
    image_files: dict[str, bytes] = {}
    for number, case in enumerate(CASES):
        rng = np.random.default_rng([seed, number])
        size = None
        if case.image != "missing":
            data, size = _image_file(case, rng, drawn)
            files[f"{IMAGES}/{case.sample_id}{case.ext}"] = data
            image_files[case.sample_id] = data
        rows.append(_caption_row(case, rng, size))
    rows.append(next(row for row in rows if row["sample_id"] == REPEATED))
    _check_distinct(image_files)
    expected = expected_outcomes()
    answers = [{"sample_id": case.sample_id, "answers": case.answer or {"verdict": "confirm"}} for case in CASES if case.stage is None]
    files[f"{IMAGES}/{CAPTIONS}"] = _jsonl(rows)
    files[ANSWERS] = _jsonl(answers)
    files[EXPECTED] = (json.dumps(expected, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    for stale in sorted(images_dir.iterdir()):
        if stale.is_file() and f"{IMAGES}/{stale.name}" not in files:
            stale.unlink()
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    return {
        "out_dir": str(out_dir),
        "files": sorted(files),
        "images": len(image_files),
        "caption_rows": len(rows),
        "answers": len(answers),
        "bytes": sum(len(data) for data in files.values()),
        "counts": expected["counts"],
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    summary = write_sample(Path(args[0]) if args else SAMPLE_DIR)
    print(f"wrote {len(summary['files'])} files ({summary['bytes']:,} bytes) to {summary['out_dir']}")


if __name__ == "__main__":
    main()
