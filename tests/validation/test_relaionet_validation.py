"""reLAIONet validation with GX: a clean candidate passes (left-out statuses counted); a doctored
one fails every rule, each naming its offending sample ids."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipelines.relaionet.settings import RelaionetSettings
from schemas.relaionet import wnids
from tests.pipelines.relaionet.test_release_format import image_frame, image_row, sample_frame
from validation.relaionet import relaionet_checks, validate_relaionet, validated_rows

SETTINGS = RelaionetSettings()
NARROW = RelaionetSettings(validation={"max_side": 150})  # the broken frame's "206" is 64 x 160


def broken_frame() -> pl.DataFrame:
    out_of_range = {**image_row("211", 0, seed=31, label_source="proofreader"), "label": 1000}
    return image_frame([
        image_row("200", 0, seed=20, wnid=wnids()[1]),
        image_row("201", 0, seed=21, proofread_status="acepted"),
        image_row("202", 0, seed=22, phash="xyz"),
        image_row("203", 1, seed=23),
        image_row("204", 1, seed=23),  # the same picture as 203
        image_row("205", 1, seed=25, size=(40, 300)),
        image_row("206", 1, seed=26, size=(64, 160)),
        image_row("207", 0, seed=27, caption="a photo of a goldfish"),
        image_row("208", 281, seed=28, caption_class=207, caption="a photo"),
        image_row("209", 281, seed=29, caption_class=207, label_source="caption"),
        image_row("210", 0, seed=30, image={"bytes": b"", "path": None}),
        out_of_range,
        image_row("212", 0, seed=20, status="pending"),  # a duplicate of 200, but not released
        image_row("213", 1, seed=33, status="disputed"),
    ])


@pytest.fixture(scope="module")
def passing(tmp_path_factory):
    out = tmp_path_factory.mktemp("relaionet-validation")
    return validate_relaionet(sample_frame(), SETTINGS, out), out


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    return validate_relaionet(broken_frame(), NARROW, tmp_path_factory.mktemp("relaionet-broken"), data_docs=False)


RULES = (
    "images.label.in_set", "images.wnid.matches_label", "images.proofread_status.released", "images.phash.valid",
    "images.phash.no_near_duplicates", "images.short_side.at_least_min_side", "images.long_side.at_most_max_side",
    "images.caption.matches_class", "images.image.bytes_not_empty",
)


def test_a_clean_candidate_passes_and_counts_what_was_left_out(passing) -> None:
    report, out = passing
    assert report.success, report.render_text(show_passed=False)
    assert report.counts == {"images": 6, "input": 8, "left_out[pending]": 1, "left_out[unusable]": 1}
    assert set(RULES) <= {c.name for c in report.checks}
    assert report.check("images.proofread_status.released").details == (
        "6 rows validated (accepted 5, relabelled 1); left out by status: pending 1, unusable 1"
    )
    for name in ("results.json", "summary.json", "report.html"):
        assert (out / name).is_file()
    assert report.data_docs_index is not None and report.data_docs_index.is_file()
    assert json.loads((out / "summary.json").read_text())["n_failed"] == 0


def test_every_rule_fails_on_the_doctored_candidate_naming_its_rows(failing) -> None:
    failed = {c.name: c.failing_ids for c in failing.failed}
    assert failed == {
        "images.label.in_set": ["211"],
        "images.wnid.matches_label": ["200"],
        "images.proofread_status.in_set": ["201"],
        "images.proofread_status.released": ["201"],
        "images.phash.valid": ["202"],
        "images.phash.no_near_duplicates": ["203", "204"],
        "images.short_side.at_least_min_side": ["205"],
        "images.long_side.at_most_max_side": ["205", "206"],
        "images.caption.matches_class": ["207", "208", "209"],
        "images.image.bytes_not_empty": ["210"],
    }
    assert failing.counts == {"images": 12, "input": 14, "left_out[pending]": 1, "left_out[disputed]": 1}
    details = {c.name: c.details for c in failing.checks}
    assert details["images.phash.no_near_duplicates"] == "1 near-duplicate pairs: 203 ~ 204 (0 bits)"
    assert "200 (label 0 is n01440764, wnid n01443537)" in details["images.wnid.matches_label"]
    assert details["images.proofread_status.released"].endswith("left out by status: pending 1, disputed 1; not released: 201 (acepted)")
    assert details["images.short_side.at_least_min_side"] == "1 rows: 205 (40 x 300)"
    assert details["images.phash.valid"] == "1 rows: 202 ('xyz')"
    captions = details["images.caption.matches_class"]
    assert captions.startswith("3 rows: 207: the caption matches class 1, expected caption_class 0")
    assert "208: the caption matches no class (no_lemma)" in captions
    assert "209: label 281 differs from caption_class 207 though label_source is caption" in captions


def test_the_case_rule_of_the_settings_is_used_for_captions() -> None:
    frame = image_frame([image_row("300", 0, seed=40, caption="a photo of a Tench")])
    for case_sensitive, expected in ((True, False), (False, True)):
        settings = RelaionetSettings(captions={"case_sensitive": case_sensitive})
        checks, _ = relaionet_checks(frame, settings)
        assert checks.frames["images"].df.get_column("caption_matches").to_list() == [expected]


def test_only_known_non_released_statuses_are_left_out() -> None:
    frame = broken_frame()
    kept = validated_rows(frame).get_column("sample_id").to_list()
    assert "201" in kept and "212" not in kept and "213" not in kept
    with pytest.raises(ValueError, match="lacks columns"):
        relaionet_checks(frame.drop("phash"), SETTINGS)
