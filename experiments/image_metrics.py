"""FID, Inception Score, CLIP score and PickScore of generated images, from local model files only;
the rows of the results table that :mod:`experiments.mmhm` reads.

Needs the ``models`` extra (torch, transformers): ``pip install 'corpusforge[models]'``; every heavy
import is inside a function. All images are read as RGB and resized to 256x256 (bicubic) first, as on
reLAIONet (seed notes, section 3).

Models (never downloaded):

* Inception: the TorchScript InceptionV3 of the TensorFlow 2015-12-05 graph that StyleGAN2-ADA,
  clean-fid and EDM use (``inception-2015-12-05.pt``), loaded with ``torch.jit.load`` (no
  torchvision). It takes uint8-valued NCHW images in [0, 255] at any size (it resizes to 299 inside);
  ``model(x, return_features=True)`` gives the 2048-d pool3 features (FID) and
  ``model(x, no_output_bias=True)`` the 1008-way softmax (IS, as in the original TF code). A module
  that returns logits instead of probabilities is accepted (rows that are not distributions are
  softmaxed). pytorch-fid's ``pt_inception-2015-12-05-*.pth`` is a state dict, not TorchScript, and is
  refused with that advice.
* CLIP score: a ``CLIPModel`` folder (with its processor files); per image
  ``100 * max(cos(image, text), 0)`` with the text ``"a photo of a {class}"``; averaged.
* PickScore: the same model class with the PickScore weights (processor files copied into the same
  folder); per image ``logit_scale.exp() * cos(image, text)`` with the same prompt; averaged.

Folder layout read by :func:`results_from_folders`::

    <generated>/<model>/g<guidance>_s<steps>/<class>/*.png|jpg|jpeg|webp
    <reference>/<class>/*.png|...          real images (reLAIONet: one folder per ImageNet class)

``<class>`` is the prompt's class name (underscores read as spaces), or a WordNet id / class id
looked up in a class_info.json (``[{"cid", "wnid", "synset": [name, ...]}, ...]``) when one is given.
FID compares all images of a setting with all reference images; IS uses the images of the setting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from experiments.common import ExperimentError, pick_device, progress
from pipelines.core.models import require_model_dir

IMAGE_SIZE = 256
PROMPT = "a photo of a {class}"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SETTING = re.compile(r"^g(?P<guidance>[0-9]+(?:\.[0-9]+)?)_s(?P<steps>[0-9]+)$")
EXTRA = "models"


def _require_torch():
    try:
        import torch
        import transformers  # noqa: F401 - part of the same extra
    except ImportError as exc:
        raise ExperimentError(f"image metrics need the '{EXTRA}' extra ({exc.name} is missing): "
                              f"pip install 'corpusforge[{EXTRA}]' (torch: see requirements/README.md)") from None
    return torch


# --------------------------------------------------------------------------- images


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_images(paths: Sequence[Path], size: int = IMAGE_SIZE) -> np.ndarray:
    """uint8 array [N, size, size, 3]: RGB, bicubic resize."""
    from PIL import Image

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            out[i] = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
    return out


# --------------------------------------------------------------------------- Inception: FID and IS


def load_inception(path: Path | str, device: str = "auto"):
    """The TorchScript Inception at ``path`` on ``device``, in eval mode."""
    torch = _require_torch()
    path = Path(path).expanduser()
    if not path.is_file():
        raise ExperimentError(f"Inception file {path} does not exist; save the TorchScript inception-2015-12-05.pt "
                              "(StyleGAN2-ADA / clean-fid) there: nothing is downloaded")
    try:
        model = torch.jit.load(str(path), map_location=pick_device(device))
    except RuntimeError as exc:
        raise ExperimentError(f"{path} is not a TorchScript file ({str(exc).splitlines()[0]}); give the TorchScript "
                              "inception-2015-12-05.pt (pytorch-fid's .pth is a state dict and cannot be used)") from None
    return model.eval()


def inception_outputs(model: Any, images: np.ndarray, batch_size: int = 64, device: str = "auto",
                      description: str = "inception") -> tuple[np.ndarray, np.ndarray]:
    """(features [N, 2048], class probabilities [N, C]) as float64 for uint8 images [N, H, W, 3]."""
    torch = _require_torch()
    device = pick_device(device)
    features, probs = [], []
    with progress(description, len(images)) as advance, torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).contiguous().to(device)
            features.append(model(batch, return_features=True).double().cpu().numpy())
            out = model(batch, no_output_bias=True).double()
            is_distribution = bool(((out >= 0).all(dim=1) & ((out.sum(dim=1) - 1).abs() < 1e-3)).all())
            probs.append((out if is_distribution else torch.softmax(out, dim=1)).cpu().numpy())
            advance(len(batch))
    if not features:
        raise ExperimentError("no images to score")
    return np.concatenate(features), np.concatenate(probs)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets: |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2).

    The last trace is the sum of square roots of the eigenvalues of S_a S_b. With at most d images on
    each side those equal the squared singular values of A B^T / sqrt((n_a - 1)(n_b - 1)) (A, B the
    centred features), an n_a x n_b problem; otherwise they are the eigenvalues of the symmetric PSD
    S_a^1/2 S_b S_a^1/2 (d x d). Either way no complex round-off as with sqrtm on rank-deficient
    covariances, and the value is the one sqrtm gives."""
    (n_a, dim), n_b = features_a.shape, len(features_b)
    if n_a < 2 or n_b < 2:
        raise ExperimentError("FID needs at least 2 images on each side")
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    centred_a, centred_b = features_a - mu_a, features_b - mu_b
    trace_a, trace_b = (centred_a ** 2).sum() / (n_a - 1), (centred_b ** 2).sum() / (n_b - 1)
    if max(n_a, n_b) <= dim:
        cross = centred_a @ centred_b.T / np.sqrt((n_a - 1) * (n_b - 1))
        trace_root = np.linalg.svd(cross, compute_uv=False).sum()
    else:
        sigma_a, sigma_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
        values, vectors = np.linalg.eigh(sigma_a)
        root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
        middle = root_a @ sigma_b @ root_a
        trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu_a - mu_b
    return float(max(diff @ diff + trace_a + trace_b - 2 * trace_root, 0.0))


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` equal parts of exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016)."""
    n = len(probs)
    if n < splits:
        raise ExperimentError(f"Inception Score with {splits} splits needs at least {splits} images, got {n}; "
                              "generate more images or lower the splits")
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------- CLIP score and PickScore


@dataclass
class ClipScorer:
    """A CLIPModel and its processor from a local folder; ``scores`` gives cosine similarities."""

    model: Any
    processor: Any
    device: str

    @classmethod
    def load(cls, model_dir: Path | str, device: str = "auto") -> "ClipScorer":
        _require_torch()
        from transformers import CLIPModel, CLIPProcessor

        path = require_model_dir(model_dir, "CLIP")
        device = pick_device(device)
        try:
            processor = CLIPProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise ExperimentError(f"{path}: no CLIP processor files ({exc}); copy the tokenizer and preprocessor "
                                  "files of the model (for PickScore: of laion/CLIP-ViT-H-14) into the folder") from None
        model = CLIPModel.from_pretrained(path, local_files_only=True).to(device).eval()
        return cls(model, processor, device)

    def cosines(self, images: np.ndarray, texts: Sequence[str], batch_size: int = 32,
                description: str = "clip") -> np.ndarray:
        """cos(image_i, text_i) for paired uint8 images [N, H, W, 3] and texts."""
        import torch

        out = []
        with progress(description, len(images)) as advance, torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = self.processor(text=list(texts[start:start + batch_size]), images=list(images[start:start + batch_size]),
                                       return_tensors="pt", padding=True, truncation=True).to(self.device)
                image = self.model.get_image_features(pixel_values=batch["pixel_values"])
                text = self.model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                image, text = _embedding(image), _embedding(text)
                out.append(torch.nn.functional.cosine_similarity(image, text, dim=-1).double().cpu().numpy())
                advance(len(image))
        return np.concatenate(out) if out else np.zeros(0)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp().item())


def _embedding(output: Any):
    # transformers 5 may return a model output instead of a tensor from get_*_features
    return output if hasattr(output, "shape") else output.pooler_output


def clip_score(scorer: ClipScorer, images: np.ndarray, texts: Sequence[str]) -> float:
    """Mean of 100 * max(cos, 0)."""
    return float((100 * np.clip(scorer.cosines(images, texts, description="CLIP score"), 0, None)).mean())


def pick_score(scorer: ClipScorer, images: np.ndarray, texts: Sequence[str]) -> float:
    """Mean of logit_scale * cos (the PickScore model's own logit scale)."""
    return float((scorer.logit_scale * scorer.cosines(images, texts, description="PickScore")).mean())


# --------------------------------------------------------------------------- the results table


def class_names(class_info: Path | str | None) -> dict[str, str]:
    """Folder name -> class name from a class_info.json (wnid and cid both map to the first lemma)."""
    if class_info is None:
        return {}
    rows = json.loads(Path(class_info).read_text(encoding="utf-8"))
    names = {}
    for row in rows:
        names[str(row["wnid"])] = names[str(row["cid"])] = str(row["synset"][0])
    return names


def _prompts(paths: Sequence[Path], names: Mapping[str, str], template: str) -> list[str]:
    return [template.replace("{class}", names.get(p.parent.name, p.parent.name.replace("_", " "))) for p in paths]


def find_settings(generated: Path | str) -> list[tuple[str, float, int, Path]]:
    """(model, guidance, steps, folder) for every ``<generated>/<model>/g<guidance>_s<steps>``."""
    generated = Path(generated)
    if not generated.is_dir():
        raise ExperimentError(f"generated-images folder {generated} does not exist")
    settings, strays = [], []
    for model_dir in sorted(p for p in generated.iterdir() if p.is_dir()):
        for setting in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            match = SETTING.match(setting.name)
            if match is None:
                strays.append(setting)
                continue
            settings.append((model_dir.name, float(match["guidance"]), int(match["steps"]), setting))
    if strays:
        raise ExperimentError(f"{strays[0]}: setting folders are named g<guidance>_s<steps> (e.g. g7.5_s50); "
                              f"rename it ({len(strays)} folder(s) do not match)")
    if not settings:
        raise ExperimentError(f"{generated}: no <model>/g<guidance>_s<steps>/<class>/ image folders found")
    return settings


def results_from_folders(generated: Path | str, reference: Path | str, *, inception: Path | str,
                         clip: Path | str, pickscore: Path | str, class_info: Path | str | None = None,
                         prompt: str = PROMPT, is_splits: int = 10, batch_size: int = 32,
                         device: str = "auto"):
    """The results table (polars): one row per setting with model, guidance, steps, FID, IS, CLIP,
    PickScore, IS_std and images. Raises :class:`ExperimentError` for a missing folder or model, a
    badly named setting folder, or too few images."""
    import polars as pl

    device = pick_device(device)
    settings = find_settings(generated)
    reference_paths = list_images(reference)
    if len(reference_paths) < 2:
        raise ExperimentError(f"reference folder {reference}: needs at least 2 images (<reference>/<class>/*.png)")
    names = class_names(class_info)
    detector = load_inception(inception, device)
    clip_scorer, pick_scorer = ClipScorer.load(clip, device), ClipScorer.load(pickscore, device)
    reference_features, _ = inception_outputs(detector, load_images(reference_paths), batch_size, device, "reference")
    rows = []
    for model, guidance, steps, folder in settings:
        paths = list_images(folder)
        if len(paths) < 2:
            raise ExperimentError(f"{folder}: needs at least 2 images in <class>/ subfolders")
        images = load_images(paths)
        features, probs = inception_outputs(detector, images, batch_size, device, folder.name)
        texts = _prompts(paths, names, prompt)
        is_mean, is_std = inception_score(probs, is_splits)
        rows.append({"model": model, "guidance": guidance, "steps": steps,
                     "FID": frechet_distance(features, reference_features), "IS": is_mean,
                     "CLIP": clip_score(clip_scorer, images, texts), "PickScore": pick_score(pick_scorer, images, texts),
                     "IS_std": is_std, "images": len(paths)})
    return pl.DataFrame(rows)


__all__ = [
    "IMAGE_SIZE", "PROMPT", "list_images", "load_images", "load_inception", "inception_outputs", "frechet_distance",
    "inception_score", "ClipScorer", "clip_score", "pick_score", "class_names", "find_settings", "results_from_folders",
]
