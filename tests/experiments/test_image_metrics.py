"""Image metrics with tiny models built here: a scripted module with the TorchScript Inception's
interface, and a random CLIP (vision and text towers) with a character-level tokenizer, all offline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from experiments.common import ExperimentError  # noqa: E402
from experiments.image_metrics import (  # noqa: E402
    ClipScorer,
    clip_score,
    find_settings,
    frechet_distance,
    inception_outputs,
    inception_score,
    list_images,
    load_images,
    load_inception,
    pick_score,
    results_from_folders,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class TinyInception(torch.nn.Module):
    """The interface of inception-2015-12-05.pt: uint8 NCHW in [0, 255]; 2048-d features with
    return_features=True, else a 1008-way softmax (no_output_bias drops the output bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Linear(3 * 4 * 4, 2048)
        self.output = torch.nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(img.float() / 255.0, 4).flatten(1)
        features = torch.relu(self.features(x * 8.0))
        if return_features:
            return features
        logits = torch.nn.functional.linear(features, self.output.weight)
        if not no_output_bias:
            logits = logits + self.output.bias
        return torch.softmax(logits, dim=1)


def build_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """A random CLIPModel (image 32x32, patch 8, width 32) with a character-level CLIPTokenizer and an
    image processor at 32 pixels, saved as a model folder."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": len(vocab), "max_position_embeddings": 77, "bos_token_id": vocab["<|startoftext|>"],
                     "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]},
        vision_config={**tower, "image_size": 32, "patch_size": 8}, projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def write_images(folder: Path, count: int, seed: int, size: int = 40) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        base = rng.integers(0, 256, size=3)
        pixels = np.clip(base + rng.normal(0, 60, size=(size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image-models")
    torch.manual_seed(0)
    torch.jit.script(TinyInception().eval()).save(str(root / "inception.pt"))
    return {"inception": root / "inception.pt", "clip": build_tiny_clip(root / "clip", 0),
            "pickscore": build_tiny_clip(root / "pickscore", 1)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    for c, name in enumerate(("goldfish", "tabby_cat")):
        write_images(root / "reference" / name, 12, seed=c)
        write_images(root / "gen" / "modelA" / "g3_s20" / name, 12, seed=c)  # identical to the reference
        write_images(root / "gen" / "modelA" / "g7.5_s20" / name, 10, seed=10 + c)
        write_images(root / "gen" / "modelB" / "g5_s50" / name, 10, seed=20 + c)
    return {"reference": root / "reference", "gen": root / "gen"}


def sqrtm_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID the direct way (scipy.linalg.sqrtm, as pytorch-fid). FID is invariant under a change to
    orthonormal coordinates, and a - mu_b, b - mu_b lie in the span of the centred rows and the mean
    difference: sqrtm runs there (at most a few dozen dimensions instead of 2048, same value)."""
    from scipy import linalg

    if a.shape[1] > len(a) + len(b):
        basis = linalg.orth(np.vstack([a - a.mean(0), b - b.mean(0), a.mean(0) - b.mean(0)]).T)
        a, b = (a - b.mean(0)) @ basis, (b - b.mean(0)) @ basis
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


def test_fid_matches_sqrtm_and_is_zero_for_identical_sets(models, folders):
    detector = load_inception(models["inception"], "cpu")
    ref, _ = inception_outputs(detector, load_images(list_images(folders["reference"])), 8, "cpu")
    gen, _ = inception_outputs(detector, load_images(list_images(folders["gen"] / "modelB" / "g5_s50")), 8, "cpu")
    assert ref.shape == (24, 2048) and gen.shape == (20, 2048)
    fid = frechet_distance(gen, ref)
    assert fid > 0 and fid == pytest.approx(sqrtm_fid(gen, ref), rel=1e-3)
    same, _ = inception_outputs(detector, load_images(list_images(folders["gen"] / "modelA" / "g3_s20")), 8, "cpu")
    assert frechet_distance(same, ref) == pytest.approx(0.0, abs=1e-6 * np.trace(np.cov(ref, rowvar=False)))
    # low-dimensional, full-rank covariances: agreement to many digits
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 8)), rng.normal(0.3, 1.5, size=(300, 8))
    assert frechet_distance(a, b) == pytest.approx(sqrtm_fid(a, b), rel=1e-9)


def test_inception_score_matches_the_formula(models, folders):
    detector = load_inception(models["inception"], "cpu")
    _, probs = inception_outputs(detector, load_images(list_images(folders["gen"] / "modelA")), 8, "cpu")
    assert probs.shape == (44, 1008) and np.allclose(probs.sum(1), 1)
    marginal = probs.mean(0)
    direct = np.exp(np.mean([np.sum(p * np.log(p / marginal)) for p in probs]))
    assert inception_score(probs, splits=1)[0] == pytest.approx(direct, rel=1e-9)
    halves = [np.exp(np.mean([np.sum(p * np.log(p / part.mean(0))) for p in part])) for part in (probs[:22], probs[22:])]
    assert inception_score(probs, splits=2) == pytest.approx((np.mean(halves), np.std(halves)), rel=1e-9)
    assert inception_score(np.full((5, 10), 0.1), splits=1)[0] == pytest.approx(1.0)  # no information: IS = 1
    with pytest.raises(ExperimentError, match="at least 10 images"):
        inception_score(probs[:5])


def test_clip_score_and_pickscore_match_a_direct_computation(models, folders):
    paths = list_images(folders["reference"])
    images = load_images(paths)
    assert images.shape == (24, 256, 256, 3)
    texts = [f"a photo of a {p.parent.name.replace('_', ' ')}" for p in paths]
    for name, score in (("clip", clip_score), ("pickscore", pick_score)):
        scorer = ClipScorer.load(models[name], "cpu")
        inputs = scorer.processor(text=texts, images=list(images), return_tensors="pt", padding=True)
        with torch.no_grad():
            out = scorer.model(**inputs)
        cos = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds, dim=-1).numpy()
        scale = scorer.model.logit_scale.exp().item()
        expected = (100 * np.clip(cos, 0, None)).mean() if name == "clip" else scale * cos.mean()
        assert score(scorer, images, texts) == pytest.approx(float(expected), rel=1e-4, abs=1e-5)


def test_results_table_from_folders_feeds_mmhm(models, folders, tmp_path):
    from experiments.mmhm import read_results, score_mmhm

    table = results_from_folders(folders["gen"], folders["reference"], inception=models["inception"], clip=models["clip"],
                                 pickscore=models["pickscore"], is_splits=2, batch_size=8, device="cpu")
    assert table.columns == ["model", "guidance", "steps", "FID", "IS", "CLIP", "PickScore", "IS_std", "images"]
    assert table.select("model", "guidance", "steps").rows() == [("modelA", 3.0, 20), ("modelA", 7.5, 20), ("modelB", 5.0, 50)]
    assert table["images"].to_list() == [24, 20, 20]
    assert table["FID"][0] == pytest.approx(0.0, abs=1e-3) and table["FID"][1] > 1e-3
    path = tmp_path / "results.csv"
    table.write_csv(path)
    assert score_mmhm(read_results(path))["mmhm"].to_list()[0] > 0


def test_bad_inputs(models, folders, tmp_path):
    (tmp_path / "state_dict.pth").write_bytes(b"not torchscript")
    with pytest.raises(ExperimentError, match="not a TorchScript file"):
        load_inception(tmp_path / "state_dict.pth")
    with pytest.raises(ExperimentError, match="does not exist"):
        load_inception(tmp_path / "missing.pt")
    (tmp_path / "gen" / "m" / "guidance7").mkdir(parents=True)
    with pytest.raises(ExperimentError, match="g<guidance>_s<steps>"):
        find_settings(tmp_path / "gen")


def test_cli_writes_the_results_csv(models, folders, tmp_path):
    import polars as pl

    from tests.corpusforge.test_cli_sad import REPO, cf

    results = tmp_path / "results.csv"
    proc = cf("experiment", "image-metrics", "--generated", str(folders["gen"]), "--reference", str(folders["reference"]),
              "--inception", str(models["inception"]), "--clip", str(models["clip"]), "--pickscore", str(models["pickscore"]),
              "--results", str(results), "--is-splits", "2", "--batch-size", "8", "--device", "cpu", cwd=REPO)
    assert "Wrote 3 settings" in proc.stdout
    assert pl.read_csv(results).height == 3
    cf("experiment", "mmhm", "--results", str(results), "--out", str(tmp_path / "run"), cwd=REPO)
    assert (tmp_path / "run" / "mmhm.csv").is_file()
