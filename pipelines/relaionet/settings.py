"""Settings of the reLAIONet pipeline (section ``[relaionet]`` of ``corpusforge.toml``).

The defaults are LAIONet's rules: the bundled ImageNet-1k class file, case-sensitive whole-word
lemma matching, English captions, NSFW == UNLIKELY, images of at least 64 px on the short side,
a CLIP text encoder at threshold 0.82 (its folder must be given: nothing is downloaded), no OCR
backend (the text-in-image flag is then recorded as ``not_checked``), near-duplicates within 6
bits of pHash removed. Unknown keys are errors; ``docs/relaionet.md`` explains each setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.relaionet.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaptionSettings(_Strict):
    case_sensitive: bool = Field(True, description="Match lemmas case-sensitively (LAIONet); false casefolds both sides.")
    language: str | None = Field(
        "en", description="Captions must be in this language (py3langid); null: no language check. LAIONet used English LAION-400M."
    )
    min_language_probability: float = Field(
        0.9, ge=0, le=1,
        description="A caption is rejected as another language only when the detector gives that other language at least this "
        "probability (short captions are ambiguous; doubtful ones are kept).",
    )


class SafetySettings(_Strict):
    keep_nsfw: tuple[str, ...] = Field(("UNLIKELY",), description="LAION NSFW tags kept (LAIONet: UNLIKELY only).")
    allow_untagged: bool = Field(
        False, description="Keep images whose source has no NSFW tag (local folders); off by default: untagged images are rejected."
    )


class ImageSettings(_Strict):
    min_side: int = Field(DEFAULT_MIN_SIDE, ge=1, description="Smallest accepted short side in pixels.")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="Largest accepted width x height (decompression-bomb limit).")


class SimilaritySettings(_Strict):
    encoder: Literal["clip", "sentence", "none"] = Field(
        "clip", description="Text encoder of the caption-class similarity filter; none: no filter (recorded in every row)."
    )
    model_dir: Path | None = Field(None, description="Local folder of the encoder (required unless encoder is none; never downloaded).")
    threshold: float | None = Field(None, description="Keep similarity >= threshold; null: the encoder's default (CLIP 0.82).")
    batch_size: int = Field(64, ge=1)
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    num_gpus: float = Field(0, ge=0, description="GPUs a similarity task asks the Ray executor for.")


class OcrSettings(_Strict):
    backend: Literal["none", "tesseract"] = Field(
        "none", description="OCR backend for the text-in-image flag; none records not_checked. tesseract needs the tesseract binary."
    )
    drop_flagged: bool = Field(
        False, description="Drop images whose class name OCR finds written in them (LAIONet); false: keep them flagged for proofreaders."
    )
    tesseract: str = Field("tesseract", description="The tesseract command.")
    timeout_s: float = Field(30, gt=0, description="Per-image OCR time limit.")


class DedupeSettings(_Strict):
    threshold: int = Field(6, ge=0, le=63, description="Near-duplicate: pHash within this many bits.")
    reference: Path | None = Field(
        None, description="Reference hashes to dedupe against (e.g. ImageNet validation): a .parquet or .csv with a phash "
        "column (16 hex digits) or a folder of images to hash."
    )
    max_per_class: int | None = Field(None, ge=1, description="Keep at most this many images per class (highest similarity first).")
    target_distribution: Path | None = Field(
        None, description="CSV of wnid,share (or class_id,share): cap each class to match these proportions."
    )


class RelaionetValidation(_Strict):
    max_side: int = Field(20_000, ge=1, description="Released images must have both sides <= this.")


class RelaionetSettings(_Strict):
    class_file: Path | None = Field(None, description="ImageNet class_info.json; null: the copy bundled in schemas/data.")
    captions: CaptionSettings = CaptionSettings()
    safety: SafetySettings = SafetySettings()
    images: ImageSettings = ImageSettings()
    similarity: SimilaritySettings = SimilaritySettings()
    ocr: OcrSettings = OcrSettings()
    dedupe: DedupeSettings = DedupeSettings()
    validation: RelaionetValidation = RelaionetValidation()
    batch_size: int = Field(1000, ge=1, description="Samples per batch while reading, matching and decoding.")

    @field_validator("class_file")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _one_cap(self) -> "RelaionetSettings":
        if self.dedupe.max_per_class is not None and self.dedupe.target_distribution is not None:
            raise ValueError("relaionet.dedupe: set max_per_class or target_distribution, not both")
        return self
