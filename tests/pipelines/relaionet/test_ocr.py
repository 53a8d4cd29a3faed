"""reLAIONet OCR: tesseract reads a class name drawn in an image and the image is flagged; photos
without text are not; bad images, timeouts and failures are recorded per image; a missing
tesseract is a clear error; lemma matching follows the match form, casefolded, all lemmas.

The tests that run the real tesseract skip when it is not installed (./dev test installs it); the
others use a stand-in shell script."""

from __future__ import annotations

import io
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipelines.relaionet.classes import load_class_map
from pipelines.relaionet.ocr import (
    NoOcr,
    OcrBackend,
    OcrNotAvailableError,
    OcrReading,
    TesseractOcr,
    class_lemma_forms,
    make_ocr,
    text_in_image,
)
from pipelines.relaionet.settings import OcrSettings
from schemas.relaionet import CLASS_FILE, TEXT_IN_IMAGE

GOLDFISH, TENCH = 1, 0
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng; ./dev test installs it)",
)


def text_image(text: str, *, background=(255, 255, 255), ink=(0, 0, 0), fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", (420, 160), background)
    ImageDraw.Draw(image).text((30, 55), text, fill=ink, font=ImageFont.load_default(size=40))
    return encode(image, fmt)


def photo_like(seed: int = 0) -> bytes:
    """A colour gradient with noise: no text in it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:300, 0:400]
    pixels = np.stack([x / 400 * 220, y / 300 * 200 + 30, (x + y) / 700 * 180 + 40], axis=-1)
    pixels += rng.normal(0, 25, pixels.shape)
    return encode(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "JPEG")


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lemma_forms() -> dict[int, tuple[str, ...]]:
    return class_lemma_forms()


@pytest.fixture(scope="module")
def tesseract() -> TesseractOcr:
    return TesseractOcr(workers=2)


def fake_tesseract(tmp_path: Path, body: str, languages: str = "eng") -> str:
    """A stand-in for the tesseract program (a Python script): answers --version and --list-langs,
    else reads the image from stdin and runs ``body``."""
    script = tmp_path / "tesseract"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        'if sys.argv[1] == "--version":\n'
        '    print("tesseract 5.9.9\\n leptonica-1.82.0"); sys.exit(0)\n'
        'if sys.argv[1] == "--list-langs":\n'
        f'    print(\'List of available languages in "/nowhere/" (1):\\n{languages}\'); sys.exit(0)\n'
        "sys.stdin.buffer.read()\n"
        f"{body}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


# --------------------------------------------------------------------------- the real tesseract


@needs_tesseract
def test_class_name_written_in_the_image_is_read_and_flagged(tesseract, lemma_forms):
    images = [
        text_image("GOLDFISH"),
        text_image("Fresh goldfish!", background=(200, 230, 255), ink=(20, 20, 120), fmt="JPEG"),
        text_image("GOLDFISH"),  # the same text under another class: not its name
    ]
    texts = tesseract.read(images)
    assert "GOLDFISH" in texts[0] and "goldfish" in texts[1].lower()
    assert text_in_image(texts, [GOLDFISH, GOLDFISH, TENCH], lemma_forms) == ["yes", "yes", "no"]


@needs_tesseract
def test_photo_without_text_is_not_flagged(tesseract, lemma_forms):
    readings = tesseract.read_detailed([photo_like(0), photo_like(1)])
    assert all(r.text is not None and r.not_read is None for r in readings)  # read (perhaps noise), not failed
    assert text_in_image([r.text for r in readings], [GOLDFISH, GOLDFISH], lemma_forms) == ["no", "no"]


@needs_tesseract
def test_bad_images_are_recorded_per_image_not_raised(tesseract, lemma_forms):
    good = text_image("GOLDFISH")
    images = [
        b"\x00garbage\xff" * 100,
        b"",
        good[:200],  # a PNG cut short
        b"/etc/hostname\n",  # tesseract would read text on stdin as a list of files to OCR
        good,
    ]
    readings = tesseract.read_detailed(images)
    assert [r.text is None for r in readings] == [True, True, True, True, False]
    assert "not a JPEG, PNG" in readings[0].not_read and "not given to tesseract" in readings[3].not_read
    assert readings[1].not_read == "no image bytes"
    assert readings[2].not_read.startswith("tesseract failed (exit 1)")
    assert text_in_image(tesseract.read(images), [GOLDFISH] * 5, lemma_forms) == ["not_checked"] * 4 + ["yes"]


@needs_tesseract
def test_tesseract_backend_from_settings(lemma_forms):
    backend = make_ocr(OcrSettings(backend="tesseract", timeout_s=20))
    assert isinstance(backend, TesseractOcr) and isinstance(backend, OcrBackend)
    assert backend.name == "tesseract" and backend.version.startswith("tesseract 5.") and backend.timeout_s == 20
    images = [text_image("GOLDFISH") if i % 2 else photo_like(i) for i in range(6)]
    assert text_in_image(backend.read(images), [GOLDFISH] * 6, lemma_forms) == ["no", "yes"] * 3  # order kept


# --------------------------------------------------------------------------- without tesseract


def test_no_ocr_records_not_checked(lemma_forms):
    backend = make_ocr(OcrSettings())
    assert isinstance(backend, NoOcr) and isinstance(backend, OcrBackend)
    assert backend.read([b"x", b"y"]) == [None, None]
    assert backend.read_detailed([b"x"])[0].not_read.startswith("not checked")
    assert text_in_image(backend.read([b"x", b"y"]), [GOLDFISH, TENCH], lemma_forms) == ["not_checked"] * 2


def test_missing_binary_says_how_to_install_or_turn_ocr_off():
    settings = OcrSettings(backend="tesseract", tesseract="/nonexistent/bin/tesseract")
    with pytest.raises(OcrNotAvailableError) as caught:
        make_ocr(settings)
    message = str(caught.value)
    assert "/nonexistent/bin/tesseract" in message and "apt-get install tesseract-ocr" in message
    assert 'relaionet.ocr.backend = "none"' in message
    assert isinstance(caught.value, FileNotFoundError)


def test_missing_language_data_is_a_clear_error(tmp_path):
    with pytest.raises(OcrNotAvailableError, match="no 'eng' language data.*apt-get install tesseract-ocr-eng"):
        TesseractOcr(fake_tesseract(tmp_path, "", languages="osd"))


def test_version_comes_from_the_program(tmp_path):
    backend = TesseractOcr(fake_tesseract(tmp_path, 'print("GOLDFISH")'))
    assert backend.version == "tesseract 5.9.9 psm 11 thresholding 2 eng"
    assert backend.read_detailed([text_image("x")]) == [OcrReading("GOLDFISH")]


def test_timeout_is_recorded_for_the_image(tmp_path):
    backend = TesseractOcr(fake_tesseract(tmp_path, "time.sleep(10)"), timeout_s=0.3, workers=2)
    readings = backend.read_detailed([text_image("a"), text_image("b")])
    assert [r.text for r in readings] == [None, None]
    assert all("longer than relaionet.ocr.timeout_s = 0.3 s" in r.not_read for r in readings)


def test_failure_is_recorded_with_tesseract_message(tmp_path):
    body = 'sys.exit("Estimating resolution as 300\\nError in pixReadMem: no pix")'  # exit status 1
    reading = TesseractOcr(fake_tesseract(tmp_path, body)).read_detailed([text_image("a")])[0]
    assert reading == OcrReading(None, "tesseract failed (exit 1): Error in pixReadMem: no pix")


# --------------------------------------------------------------------------- matching


def test_lemmas_match_as_whole_words_casefolded_in_match_form(lemma_forms):
    cases = {
        "GOLDFISH": "yes",
        "a gold-fish? no: goldfish.": "yes",
        "Carassius\nAURATUS": "yes",  # a two-word lemma across a line break
        "carassius. auratus": "yes",  # punctuation is a space
        "GOLDFISHES": "no",
        "gold fish": "no",
        "": "no",
        None: "not_checked",
    }
    assert text_in_image(list(cases), [GOLDFISH] * len(cases), lemma_forms) == list(cases.values())
    assert text_in_image(["GOLDFISH"], [None], lemma_forms) == ["not_checked"]
    assert set(text_in_image(list(cases), [GOLDFISH] * len(cases), lemma_forms)) <= set(TEXT_IN_IMAGE)


def test_every_lemma_of_the_class_counts_even_shared_ones(lemma_forms):
    cranes = [class_id for class_id, forms in lemma_forms.items() if "crane" in forms]
    assert len(cranes) == 2  # the bird and the machine: "crane" is unique to neither
    assert text_in_image(["CRANE"] * 2, cranes, lemma_forms) == ["yes", "yes"]


def test_lemma_forms_from_a_class_map_equal_the_bundled_ones(lemma_forms):
    class_map = load_class_map(Path(str(CLASS_FILE)))
    assert class_lemma_forms(class_map) == lemma_forms == class_lemma_forms(class_map.classes)
    assert len(lemma_forms) == 1000 and lemma_forms[GOLDFISH] == ("goldfish", "carassius auratus")


def test_bad_arguments_are_errors(lemma_forms):
    with pytest.raises(ValueError, match="2 OCR texts for 1 class ids"):
        text_in_image(["a", "b"], [GOLDFISH], lemma_forms)
    with pytest.raises(ValueError, match="class 5000 has no lemmas"):
        text_in_image(["a"], [5000], lemma_forms)
