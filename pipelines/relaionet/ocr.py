"""reLAIONet's text-in-image flag: is the image's class name written in the image? (LAIONet used OCR.)

Backends (:class:`OcrBackend`) turn image bytes into text, one string per image, in order:

* :class:`TesseractOcr` runs the ``tesseract`` binary (Debian: ``apt-get install tesseract-ocr
  tesseract-ocr-eng``) once per image, the bytes on stdin and the text on stdout, several images
  at a time (``workers`` processes, each limited to one OpenMP thread). No pytesseract: the
  binary is all it needs. Options, measured with tesseract 5.3.0 on 48 generated 500 x 375 JPEGs
  (36 with "goldfish" drawn over blurred noisy blobs in white, black or yellow, 28-56 px, half
  outlined; 12 without text): page segmentation mode 11 ("sparse text, in no particular order",
  as text in photos is scattered) and Sauvola adaptive thresholding (``thresholding_method=2``).
  With tesseract's default global Otsu threshold every mode found the word in only 5-7 of the 36
  images; Sauvola raised that to 17-20 (modes 3, 6 and 11 alike; 11 was the cheapest, about
  0.21 s of CPU per image) at no extra cost. No image without text was flagged. Black text on a
  plain background is read exactly in every setting.
* :class:`NoOcr` reads nothing: every image is recorded as not checked.

A failure for one image (a timeout, bytes that are not an image, tesseract exiting with an error)
never raises: the image's text is ``None`` and :meth:`OcrBackend.read_detailed` says why
(:class:`OcrReading`). Only bytes that start like a JPEG, PNG, WebP, GIF, BMP or TIFF file reach
tesseract: given anything else on stdin, tesseract reads it as a list of file names and OCRs
those files from the local disk.

:func:`text_in_image` turns the texts into the flag of ``schemas.relaionet.TEXT_IN_IMAGE``:
"yes" when a lemma of the image's class appears as whole words in its text, "no" when not,
"not_checked" when there is no text (no backend, or the OCR failed). Both sides are compared in
the casefolded match form of :func:`pipelines.relaionet.classes.match_form` (punctuation becomes
a space): OCR gets case wrong often (small caps, logos), and the caption's case rule concerns
telling "Cardigan" the corgi from "cardigan" the sweater, which is already decided here by the
label. Every lemma of the class counts, not only the lemmas unique to it (:func:`class_lemma_forms`):
uniqueness decides which class a caption names, while here the class is known and the question is
only whether its name is written in the image ("crane" written under a crane names the class; the
6 synsets without a unique lemma, 7 when case is ignored, would otherwise never be flagged).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import as_file
from typing import Protocol, runtime_checkable

import polars as pl

from pipelines.core.errors import CorpusforgeError
from pipelines.relaionet.classes import ClassMap, match_form, read_class_info
from pipelines.relaionet.settings import OcrSettings

PAGE_SEGMENTATION = "11"  # sparse text (see the module docstring)
THRESHOLDING = "2"  # Sauvola, adaptive (see the module docstring)
INSTALL_HINT = (
    "install it (Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-eng; ./dev test does this on first run) "
    'or set relaionet.ocr.backend = "none" to record the text-in-image flag as not_checked'
)
# Leading bytes of the formats tesseract is given (those of pipelines.relaionet.images.ACCEPTED_FORMATS).
IMAGE_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"GIF87a"), (0, b"GIF89a"),
    (0, b"BM"),
    (0, b"II*\x00"), (0, b"MM\x00*"),  # TIFF
    (8, b"WEBP"),  # after b"RIFF" and the size
)
_CHATTER = ("Estimating resolution", "Detected ", "Page ")  # stderr lines that are not problems


class OcrNotAvailableError(CorpusforgeError, FileNotFoundError):
    """The OCR program (or its English data) is not installed."""


@dataclass(frozen=True, slots=True)
class OcrReading:
    """What OCR made of one image: ``text`` (``""`` when it found none), or ``text`` None and
    ``not_read`` saying why there is no text."""

    text: str | None
    not_read: str | None = None


@runtime_checkable
class OcrBackend(Protocol):
    """Image bytes -> the text written in each image, in order.

    ``name``: what reads (for logs and stats); ``version``: changes when the output could.
    :meth:`read` gives ``None`` for an image that was not read; :meth:`read_detailed` also says why.
    Neither raises for a bad image."""

    name: str
    version: str

    def read(self, images: Sequence[bytes]) -> list[str | None]: ...

    def read_detailed(self, images: Sequence[bytes]) -> list[OcrReading]: ...


class NoOcr:
    """No OCR: every image is recorded as not checked (``relaionet.ocr.backend = "none"``)."""

    name = "none"
    version = "none"

    def read(self, images: Sequence[bytes]) -> list[str | None]:
        return [None] * len(images)

    def read_detailed(self, images: Sequence[bytes]) -> list[OcrReading]:
        return [OcrReading(None, 'not checked: relaionet.ocr.backend is "none"')] * len(images)


class TesseractOcr:
    """The tesseract binary, one process per image, ``workers`` at a time.

    ``command``: the program (a name on PATH or a path); ``timeout_s``: per image, after which the
    process is killed and the image recorded as not read; ``workers``: images read in parallel
    (default: the CPUs this process may use); ``language``: tesseract's language data (``eng``).

    Raises :class:`OcrNotAvailableError` when the program is missing, does not run, or lacks the
    language data, with the command to install it. ``version`` is ``"tesseract <x.y.z> psm 11
    thresholding 2 <language>"`` (the program's from ``tesseract --version``)."""

    name = "tesseract"

    def __init__(self, command: str = "tesseract", timeout_s: float = 30, workers: int | None = None,
                 language: str = "eng") -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        path = shutil.which(command)
        if path is None:
            raise OcrNotAvailableError(f"OCR: the tesseract command {command!r} was not found; {INSTALL_HINT}")
        self.command = path
        self.timeout_s = float(timeout_s)
        self.workers = max(1, workers if workers is not None else len(os.sched_getaffinity(0)))
        self.language = language
        self._env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # parallelism comes from the workers
        program = self._tesseract_version()
        # "List of available languages in "<dir>" (2):" then one language per line
        languages = [line.strip() for line in self._run_info("--list-langs").splitlines()[1:] if line.strip()]
        if language not in languages:
            raise OcrNotAvailableError(
                f"OCR: tesseract at {path} has no {language!r} language data (it has: {', '.join(languages) or 'none'}); "
                f"install it (Debian/Ubuntu: apt-get install tesseract-ocr-{language}) "
                'or set relaionet.ocr.backend = "none"'
            )
        self.version = f"tesseract {program} psm {PAGE_SEGMENTATION} thresholding {THRESHOLDING} {language}"

    def _run_info(self, flag: str) -> str:
        try:
            done = subprocess.run([self.command, flag], capture_output=True, timeout=60, env=self._env, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OcrNotAvailableError(f"OCR: {self.command} {flag} did not run ({exc}); {INSTALL_HINT}") from exc
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        if done.returncode != 0:
            raise OcrNotAvailableError(f"OCR: {self.command} {flag} failed ({output.strip()[:300]}); {INSTALL_HINT}")
        return output

    def _tesseract_version(self) -> str:
        output = self._run_info("--version")
        found = re.search(r"tesseract\s+v?(\d[\w.\-]*)", output, re.IGNORECASE)
        if found is None:
            raise OcrNotAvailableError(
                f"OCR: {self.command} --version does not look like tesseract ({output[:200]!r}); {INSTALL_HINT}"
            )
        return found.group(1)

    def read(self, images: Sequence[bytes]) -> list[str | None]:
        return [reading.text for reading in self.read_detailed(images)]

    def read_detailed(self, images: Sequence[bytes]) -> list[OcrReading]:
        if len(images) <= 1 or self.workers == 1:
            return [self._read_one(image) for image in images]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(images))) as pool:
            return list(pool.map(self._read_one, images))

    def _read_one(self, image: bytes | None) -> OcrReading:
        if not image:
            return OcrReading(None, "no image bytes")
        image = bytes(image)
        if not any(image[at : at + len(magic)] == magic for at, magic in IMAGE_SIGNATURES):
            return OcrReading(None, "not a JPEG, PNG, WebP, GIF, BMP or TIFF file (not given to tesseract)")
        argv = [self.command, "stdin", "stdout", "--psm", PAGE_SEGMENTATION, "-l", self.language,
                "-c", f"thresholding_method={THRESHOLDING}"]
        try:
            done = subprocess.run(argv, input=image, capture_output=True, timeout=self.timeout_s, env=self._env, check=False)
        except subprocess.TimeoutExpired:
            return OcrReading(None, f"tesseract took longer than relaionet.ocr.timeout_s = {self.timeout_s:g} s")
        except OSError as exc:
            return OcrReading(None, f"tesseract did not start: {exc}")
        if done.returncode != 0:
            return OcrReading(None, f"tesseract failed (exit {done.returncode}): {_problem(done.stderr)}")
        return OcrReading(done.stdout.decode("utf-8", "replace").replace("\f", "").strip())


def _problem(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    return "; ".join([line for line in lines if line and not line.startswith(_CHATTER)][:3])[:300] or "no message"


def make_ocr(settings: OcrSettings) -> OcrBackend:
    """The backend ``settings.backend`` names: :class:`NoOcr` or :class:`TesseractOcr` (which raises
    :class:`OcrNotAvailableError` when tesseract is missing)."""
    if settings.backend == "none":
        return NoOcr()
    if settings.backend == "tesseract":
        return TesseractOcr(settings.tesseract, timeout_s=settings.timeout_s)
    raise ValueError(f'unknown OCR backend {settings.backend!r}; use "none" or "tesseract"')


def class_lemma_forms(class_map: ClassMap | pl.DataFrame | None = None) -> dict[int, tuple[str, ...]]:
    """Class id -> the casefolded match forms of all its lemmas (duplicates removed, file order).

    ``class_map``: a :class:`ClassMap`, a :func:`read_class_info` frame, or None for the bundled
    ImageNet-1k class file (``schemas.relaionet.CLASS_FILE``)."""
    if class_map is None:
        from schemas.relaionet import CLASS_FILE

        with as_file(CLASS_FILE) as path:
            classes = read_class_info(path)
    else:
        classes = class_map.classes if isinstance(class_map, ClassMap) else class_map
    exploded = classes.select("class_id", "lemmas").explode("lemmas")
    forms = match_form(exploded.get_column("lemmas"), casefold=True).to_list()
    by_class: dict[int, dict[str, None]] = {}
    for class_id, form in zip(exploded.get_column("class_id").to_list(), forms):
        if form:
            by_class.setdefault(class_id, {})[form] = None
    return {class_id: tuple(found) for class_id, found in by_class.items()}


def text_in_image(
    ocr_texts: Sequence[str | None], class_ids: Sequence[int | None], lemma_forms_by_class: Mapping[int, Sequence[str]]
) -> list[str]:
    """Per image, "yes" / "no" / "not_checked" (``schemas.relaionet.TEXT_IN_IMAGE``).

    ``ocr_texts``: what the backend read (None: not read); ``class_ids``: each image's class;
    ``lemma_forms_by_class``: :func:`class_lemma_forms`. "yes" when one of the class's lemma forms
    is a run of whole words of the text's casefolded match form. "not_checked" when the text or
    the class is None. Raises ``ValueError`` when the lengths differ or a class has no lemmas."""
    if len(ocr_texts) != len(class_ids):
        raise ValueError(f"{len(ocr_texts)} OCR texts for {len(class_ids)} class ids")
    words = match_form(pl.Series("ocr_text", list(ocr_texts), dtype=pl.String), casefold=True).to_list()
    flags = []
    for text, class_id in zip(words, class_ids):
        if text is None or class_id is None:
            flags.append("not_checked")
            continue
        lemmas = lemma_forms_by_class.get(class_id)
        if not lemmas:
            raise ValueError(f"class {class_id} has no lemmas in lemma_forms_by_class (build it with class_lemma_forms)")
        padded = f" {text} "
        flags.append("yes" if any(f" {lemma} " in padded for lemma in lemmas) else "no")
    return flags
