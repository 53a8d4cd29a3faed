"""The prose of the reLAIONet dataset card and the statistics it reports.

:func:`release_statistics` summarises the released images (accepted or relabelled rows of the
images table; other statuses in the frame are counted as left out) and the proofreading as plain
data; the release stores it in its manifest and :func:`card_body` renders it.

``corrections_summary``: the ``summary.json`` of the proofreading pull whose corrections the build
applied (``corpusforge annotate pull relaionet``); only its ``agreement`` entry is read
(``annotation.recipes.relaionet.agreement_summary``: ``items``, ``percent_agreement``,
``krippendorff_alpha``, ``fleiss_kappa``). The proofreading counts come from the
``proofread_status`` and ``unusable_reason`` columns of the frame given, which therefore holds
every candidate, not only the released rows.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipelines.relaionet.settings import RelaionetSettings
from pipelines.relaionet.similarity import DEFAULT_THRESHOLDS
from schemas.relaionet import N_CLASSES, PROOFREAD_STATUS, RELEASED_STATUS, UNUSABLE_REASONS, class_names, wnids

TITLE = "reLAIONet: proofread LAION images with ImageNet-1k labels"
SUMMARY = (
    "Out-of-distribution images for ImageNet-1k classifiers and class-conditional generators: LAION images whose "
    "caption names exactly one ImageNet synset (LAIONet's recipe, Shirali & Hardt 2023), filtered for caption-class "
    "similarity, safety, text in the image and near-duplicates, and proofread by people (reLAIONet, arXiv 2603.14186). "
    "Labels are ImageNet-1k class ids; one folder per WordNet id in the per-class export."
)
LICENSE_NOTE = (
    "The images are not ours: each keeps the rights of its owner (see `url` and `license`, the tag LAION found). "
    "The LAION metadata (URLs, captions, tags) is distributed by LAION under CC-BY 4.0; the ImageNet class names and "
    "WordNet ids are WordNet's. For research only; remove an image on its owner's request."
)
TOP_CLASSES = 10  # classes listed at each end of the per-class table
HISTOGRAM_BINS: tuple[tuple[int, int | None], ...] = ((0, 0), (1, 1), (2, 9), (10, 99), (100, 999), (1000, None))


def _per_class(released: pl.DataFrame) -> list[dict[str, Any]]:
    """Every class with at least one image: label, wnid, name, images; most images first."""
    names, ids = class_names(), wnids()
    counts = released.group_by("label").len().sort(["len", "label"], descending=[True, False])
    return [{"label": int(c), "wnid": ids[c], "name": names[c], "images": int(n)} for c, n in counts.iter_rows()]


def _histogram(per_class: list[dict[str, Any]]) -> dict[str, int]:
    """Classes (of the 1,000) per bin of image counts; keys "0", "1", "2-9", ..., "1000+"."""
    counts = [0] * N_CLASSES
    for c in per_class:
        counts[c["label"]] = c["images"]
    out = {}
    for lo, hi in HISTOGRAM_BINS:
        key = str(lo) if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}"
        out[key] = sum(1 for n in counts if n >= lo and (hi is None or n <= hi))
    return out


def _proofreading(images: pl.DataFrame, summary: dict[str, Any] | None) -> dict[str, Any]:
    status = {s: 0 for s in PROOFREAD_STATUS}
    status.update({s: int(n) for s, n in images.group_by("proofread_status").len().iter_rows() if s in status})
    unusable = images.filter(pl.col("proofread_status") == "unusable").group_by("unusable_reason").len()
    found = {str(r if r is not None else "unknown"): int(n) for r, n in unusable.iter_rows()}
    reasons = [r for r in UNUSABLE_REASONS if r in found] + sorted(r for r in found if r not in UNUSABLE_REASONS)
    return {
        "items": sum(n for s, n in status.items() if s != "pending"),
        "accepted": status["accepted"], "relabelled": status["relabelled"], "disputed": status["disputed"],
        "pending": status["pending"],
        "unusable": {r: found[r] for r in reasons},
        "agreement": (summary or {}).get("agreement"),
    }


def release_statistics(images: pl.DataFrame, corrections_summary: dict[str, Any] | None) -> dict[str, Any]:
    """Counts of the release and of its proofreading (see the module docstring for the summary).

    ``images``: rows of the images table (``label``, ``proofread_status``, ``unusable_reason``,
    ``similarity_model``, ``text_in_image``); only released statuses count as released.
    """
    released = images.filter(pl.col("proofread_status").is_in(list(RELEASED_STATUS)))
    per_class = _per_class(released)
    return {
        "images": released.height,
        "classes": len(per_class),
        "per_class": per_class,
        "histogram": _histogram(per_class),
        "left_out": {s: int(n) for s, n in images.group_by("proofread_status").len().sort("proofread_status").iter_rows()
                     if s not in RELEASED_STATUS},
        "relabelled": int((released.get_column("label_source") == "proofreader").sum()),
        "similarity_models": sorted(set(released.get_column("similarity_model").drop_nulls().to_list())),
        "text_in_image": {str(k): int(n) for k, n in released.group_by("text_in_image").len().sort("text_in_image").iter_rows()},
        "proofreading": _proofreading(images, corrections_summary),
    }


def _n(value: Any) -> str:
    return "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _class_rows(classes: list[dict[str, Any]]) -> list[str]:
    return [f"| {c['label']} | {c['wnid']} | {c['name']} | {c['images']:,} |" for c in classes]


def _classes_section(stats: dict[str, Any]) -> list[str]:
    per_class = stats["per_class"]
    lines = [
        "## Images per class", "",
        f"{stats['images']:,} images in {stats['classes']:,} of the {N_CLASSES:,} ImageNet-1k classes "
        f"({stats['relabelled']:,} relabelled by proofreaders).",
        "",
        "Classes per number of images: " + " · ".join(f"{k}: {v:,}" for k, v in stats["histogram"].items()),
        "",
    ]
    if not per_class:
        return lines + ["No images."]
    header = ["| class id | wnid | name | images |", "|---:|---|---|---:|"]
    if len(per_class) <= 2 * TOP_CLASSES:
        return lines + header + _class_rows(per_class)
    return (
        lines + [f"The {TOP_CLASSES} classes with the most images:", ""] + header + _class_rows(per_class[:TOP_CLASSES])
        + ["", f"The {TOP_CLASSES} with the fewest (classes without images are not listed):", ""]
        + header + _class_rows(per_class[-TOP_CLASSES:])
    )


def _proofreading_section(p: dict[str, Any]) -> list[str]:
    lines = [
        "## Proofreading", "",
        "Every released image was looked at by people: accepted with the caption's class, relabelled with another "
        "ImageNet class (`label_source = proofreader`; `caption_class` keeps the caption's), marked unusable (with a "
        "reason) or disputed. Only accepted and relabelled images are released.",
        "",
        "| proofread | accepted | relabelled | unusable | disputed |", "|---:|---:|---:|---:|---:|",
        f"| {_n(p['items'])} | {_n(p['accepted'])} | {_n(p['relabelled'])} | {_n(sum(p['unusable'].values()))} | {_n(p['disputed'])} |",
        "",
        "Unusable by reason: " + (", ".join(f"{r} {n:,}" for r, n in p["unusable"].items()) or "none") + ".",
    ]
    if p.get("pending"):
        lines += ["", f"{p['pending']:,} images were still waiting for proofreading (not released)."]
    agreement = p.get("agreement")
    if agreement and agreement.get("items"):
        coefficients = [f"{name} {agreement[key]:.3f}" for key, name in
                        (("krippendorff_alpha", "Krippendorff's alpha"), ("fleiss_kappa", "Fleiss' kappa")) if agreement.get(key) is not None]
        lines += ["", f"Agreement on the verdict and class of the {_n(agreement['items'])} images proofread twice: "
                  f"{agreement.get('percent_agreement', 0):.1f}%" + (f" ({', '.join(coefficients)})." if coefficients else ".")]
    else:
        lines += ["", "Agreement between proofreaders: not measured for this release."]
    return lines


def _filters_section(settings: RelaionetSettings, stats: dict[str, Any]) -> list[str]:
    sim = settings.similarity
    if sim.encoder == "none":
        similarity = "off (no caption-class similarity filter)"
    else:
        threshold = sim.threshold if sim.threshold is not None else DEFAULT_THRESHOLDS[sim.encoder]
        models = ", ".join(f"`{m}`" for m in stats["similarity_models"]) or "none recorded"
        similarity = f"{sim.encoder} text encoder, keep similarity >= {threshold:g} (models: {models})"
    ocr = settings.ocr
    ocr_text = "not checked (no OCR backend)" if ocr.backend == "none" else (
        f"{ocr.backend}; images naming their class {'dropped' if ocr.drop_flagged else 'kept, flagged for proofreaders'}")
    captions = settings.captions
    dedupe = settings.dedupe
    return [
        "## Filters", "",
        f"- Captions: LAIONet's lemma matching ({'case-sensitive' if captions.case_sensitive else 'casefolded'}, whole words, "
        "lemmas unique to one synset, captions naming several synsets dropped); language "
        + (f"`{captions.language}`" if captions.language else "not checked") + ".",
        f"- Caption-class similarity: {similarity}.",
        f"- NSFW: keep {', '.join(settings.safety.keep_nsfw)}"
        + ("; untagged images kept" if settings.safety.allow_untagged else "; untagged images dropped") + ".",
        f"- Text in the image (OCR): {ocr_text}.",
        f"- Images: decodable, short side >= {settings.images.min_side} px, at most {settings.images.max_pixels:,} pixels.",
        f"- Near-duplicates: pHash within {dedupe.threshold} bits removed"
        + (f", also against `{dedupe.reference.name}`" if dedupe.reference else "") + ".",
    ]


def card_body(settings: RelaionetSettings, stats: dict[str, Any]) -> str:
    """The card's markdown: provenance, images per class, proofreading, filters, license note."""
    lines = [
        "## Provenance", "",
        "LAIONet (Shirali & Hardt 2023) matched LAION-400M captions to ImageNet-1k synsets by their lemmas and kept the "
        "images whose caption is close to the synset's definition; its labels were never checked by people. "
        "reLAIONet (arXiv 2603.14186) adds human proofreading of every label. Labels are ImageNet-1k class ids "
        "(0..999, `label` is a ClassLabel; `wnid` the WordNet id); images are the files as downloaded (upright opaque "
        "RGB JPEG or PNG) or a lossless PNG of their RGB conversion.",
        "",
        *_classes_section(stats), "",
        *_proofreading_section(stats["proofreading"]), "",
        *_filters_section(settings, stats), "",
        "## License", "", LICENSE_NOTE,
    ]
    return "\n".join(lines) + "\n"
