"""reLAIONet class-folder export: ImageNet layout read back without torchvision, metadata, refusals."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from pipelines.relaionet.export import ExportExistsError, export_class_folders
from schemas.relaionet import class_names, wnids

from .test_release_format import image_frame, image_row, sample_frame


@pytest.fixture(scope="module")
def released() -> pl.DataFrame:
    return sample_frame().filter(pl.col("proofread_status").is_in(["accepted", "relabelled"]))


def read_image_folder(root: Path) -> dict[str, int]:
    """What ImageFolder does: class index = position of the folder among the sorted folders."""
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    return {f.stem: index for index, name in enumerate(folders) for f in (root / name).iterdir()}


def test_sorted_wnid_folders_give_back_the_labels(released, tmp_path) -> None:
    out = tmp_path / "relaionet"
    result = export_class_folders(released, out)
    assert (result.images, result.classes, result.folders) == (6, 4, 1000)
    assert str(result) == "6 images in 4 classes (1,000 class folders), metadata.csv"
    assert read_image_folder(out) == dict(released.select("sample_id", "label").iter_rows())
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == list(wnids())
    assert sorted(p.name for p in (out / wnids()[0]).iterdir()) == ["100.png", "101.jpg"]
    with Image.open(out / wnids()[207] / "103.png") as im:
        assert im.size == (64, 200)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temporary folder is gone

    meta = pl.read_csv(result.metadata, schema_overrides={"sample_id": pl.String})
    assert meta.columns == ["sample_id", "file", "label", "class_name", "wnid", "caption", "url", "license"]
    relabelled = meta.filter(pl.col("sample_id") == "105").row(0, named=True)
    assert relabelled["file"] == f"{wnids()[281]}/105.png" and relabelled["class_name"] == "tabby"
    assert relabelled["caption"] == "a photo of a golden retriever"
    assert all((out / f).is_file() for f in meta.get_column("file"))


def test_only_classes_with_images_when_asked(released, tmp_path) -> None:
    out = tmp_path / "some"
    out.mkdir()  # an existing empty folder is fine
    result = export_class_folders(released, out, all_classes=False)
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert result.folders == 4 and folders == [wnids()[c] for c in (0, 1, 207, 281)]
    # positions are not class ids any more; the folder name still gives the label
    assert {f.stem: wnids().index(f.parent.name) for f in out.glob("*/*")} == dict(released.select("sample_id", "label").iter_rows())
    assert class_names()[wnids().index(folders[-1])] == "tabby"


def test_refusals(released, tmp_path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportExistsError, match="exists and is not empty"):
        export_class_folders(released, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="not released"):
        export_class_folders(sample_frame(), tmp_path / "all")
    broken = image_frame([image_row("1", 0, seed=1), image_row("2", 0, seed=2, image={"bytes": b"not an image", "path": None})])
    with pytest.raises(ValueError, match="sample 2: not an image"):
        export_class_folders(broken, tmp_path / "broken")
    assert not (tmp_path / "broken").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="cannot be file names"):
        export_class_folders(image_frame([image_row("../x", 0, seed=1)]), tmp_path / "unsafe")
