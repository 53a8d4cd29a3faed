"""reLAIONet card: statistics of the released rows and proofreading, and the markdown they render."""

from __future__ import annotations

from pipelines.relaionet.card import LICENSE_NOTE, SUMMARY, TITLE, card_body, release_statistics
from pipelines.relaionet.settings import RelaionetSettings
from schemas.relaionet import wnids

from .test_release_format import image_frame, image_row, sample_frame

SUMMARY_DICT = {  # a pull's summary.json: only its agreement is read
    "items": 40, "by_status": {"accepted": 30},
    "agreement": {"items": 10, "agreeing": 9, "percent_agreement": 90.0, "krippendorff_alpha": 0.8, "fleiss_kappa": 0.79},
}


def test_statistics_count_released_rows_per_class_and_the_proofreading() -> None:
    stats = release_statistics(sample_frame(), None)
    assert (stats["images"], stats["classes"], stats["relabelled"]) == (6, 4, 1)
    assert stats["per_class"][:2] == [
        {"label": 0, "wnid": wnids()[0], "name": "tench", "images": 2},
        {"label": 281, "wnid": wnids()[281], "name": "tabby", "images": 2},
    ]
    assert stats["histogram"] == {"0": 996, "1": 2, "2-9": 2, "10-99": 0, "100-999": 0, "1000+": 0}
    assert stats["left_out"] == {"pending": 1, "unusable": 1}
    p = stats["proofreading"]
    assert (p["items"], p["accepted"], p["relabelled"], p["pending"], p["unusable"], p["agreement"]) == (7, 5, 1, 1, {"other": 1}, None)
    summary = release_statistics(sample_frame(), SUMMARY_DICT)["proofreading"]
    assert summary["items"] == 7 and summary["agreement"]["krippendorff_alpha"] == 0.8  # counts from the rows, agreement from the pull


def test_card_body_renders_classes_proofreading_filters_and_license() -> None:
    body = card_body(RelaionetSettings(), release_statistics(sample_frame(), SUMMARY_DICT))
    assert "6 images in 4 of the 1,000 ImageNet-1k classes (1 relabelled by proofreaders)" in body
    assert "Classes per number of images: 0: 996 · 1: 2 · 2-9: 2 · 10-99: 0" in body
    assert f"| 0 | {wnids()[0]} | tench | 2 |" in body
    assert "| 7 | 5 | 1 | 1 | 0 |" in body and "Unusable by reason: other 1." in body
    assert ("Agreement on the verdict and class of the 10 images proofread twice: 90.0% "
            "(Krippendorff's alpha 0.800, Fleiss' kappa 0.790).") in body
    assert "clip text encoder, keep similarity >= 0.82 (models: `clip:test`)" in body
    assert "Text in the image (OCR): not checked" in body and "pHash within 6 bits" in body and "keep UNLIKELY" in body
    assert "CC-BY 4.0" in body and "Shirali & Hardt 2023" in body and LICENSE_NOTE in body
    assert TITLE and "LAIONet" in SUMMARY
    tuned = RelaionetSettings(similarity={"encoder": "none"}, ocr={"backend": "tesseract"}, dedupe={"threshold": 4})
    body = card_body(tuned, release_statistics(sample_frame(), None))
    assert "Caption-class similarity: off" in body and "tesseract; images naming their class kept" in body
    assert "pHash within 4 bits" in body and "not measured" in body and "1 images were still waiting" in body


def test_many_classes_list_the_top_and_bottom_ten() -> None:
    counts = {0: 3, 1: 2, **{c: 1 for c in range(2, 30)}}
    frame = image_frame([image_row(f"{c}-{k}", c, seed=100 * c + k) for c, n in counts.items() for k in range(n)])
    stats = release_statistics(frame, None)
    assert stats["classes"] == 30 and [c["label"] for c in stats["per_class"][:3]] == [0, 1, 2]
    body = card_body(RelaionetSettings(), stats)
    assert "The 10 classes with the most images:" in body and "The 10 with the fewest" in body
    assert f"| 29 | {wnids()[29]} |" in body and f"| 15 | {wnids()[15]} |" not in body
