"""What every bundled experiment shares: its output folder, seeds, the device, releases and models.

An experiment reads a release (a local release folder, or anything ``datasets.load_dataset``
accepts offline) and a model from a local folder (never a hub), and writes one run folder::

    <out>/config.json      the resolved configuration (every option, the release, the model and its hash)
    <out>/metrics.json     the headline figures
    <out>/tables/*.csv     per-row or per-group tables
    <out>/plots/*.png      plots
    <out>/report.md        a short report pointing at the above

:class:`RunDir` writes each file atomically (temporary name, rename), so an interrupted run never
leaves a half-written file, and a rerun overwrites. Seeds are fixed (:func:`seed_everything`);
the device is the GPU when one is present, else the CPU (:func:`pick_device`); inference is
batched by the experiments themselves, with rich progress bars (:func:`progress`).
"""

from __future__ import annotations

import json
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from pipelines.core.errors import CorpusforgeError
from pipelines.core.fileio import atomic_write_bytes, atomic_write_json
from pipelines.core.models import ModelNotFoundError, fingerprint_model_dir, require_model_dir


class ExperimentError(CorpusforgeError):
    """A problem with an experiment's inputs; the message says what to do."""


# --------------------------------------------------------------------------- run folder


@dataclass
class RunDir:
    """The output folder of one run; every write is atomic."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / "tables").mkdir(parents=True, exist_ok=True)
        (self.root / "plots").mkdir(parents=True, exist_ok=True)

    def config(self, config: Mapping[str, Any]) -> Path:
        return self._json("config.json", config)

    def metrics(self, metrics: Mapping[str, Any]) -> Path:
        return self._json("metrics.json", metrics)

    def table(self, name: str, frame: Any) -> Path:
        """A polars (or pandas) frame as ``tables/<name>.csv``."""
        path = self.root / "tables" / f"{name}.csv"
        if hasattr(frame, "write_csv"):
            text = frame.write_csv()
        else:
            text = frame.to_csv(index=False)
        atomic_write_bytes(path, text.encode("utf-8"))
        return path

    def plot(self, name: str, figure: Any, dpi: int = 120) -> Path:
        """A matplotlib figure as ``plots/<name>.png`` (closed afterwards)."""
        import io

        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(figure)
        path = self.root / "plots" / f"{name}.png"
        atomic_write_bytes(path, buf.getvalue())
        return path

    def report(self, markdown: str) -> Path:
        path = self.root / "report.md"
        atomic_write_bytes(path, markdown.encode("utf-8"))
        return path

    def _json(self, name: str, data: Mapping[str, Any]) -> Path:
        path = self.root / name
        atomic_write_json(path, json.loads(json.dumps(data, default=str)))
        return path


# --------------------------------------------------------------------------- seeds and device


def seed_everything(seed: int) -> None:
    """Python, numpy and (when installed) torch seeded; deterministic algorithms where cheap."""
    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import numpy as np

    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - experiments without a model
        return
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> str:
    """"auto": cuda when a GPU is present, else cpu; anything else is used as given."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A rich progress bar; yields ``advance(n=1)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bars:
        task = bars.add_task(description, total=total)
        yield lambda n=1: bars.advance(task, n)


# --------------------------------------------------------------------------- releases


def load_release_split(release: str | Path, config: str, split: str | None = None):
    """A config of a release: a local release folder (checked against its manifest, clear errors for
    an unknown config or split) or any name ``datasets.load_dataset`` resolves offline. Returns a
    ``DatasetDict`` (or a ``Dataset`` when ``split`` is given)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    path = Path(release).expanduser()
    if path.is_dir() and (path / "manifest.json").is_file():
        from releases import load_release

        return load_release(path, config, split)
    from datasets import load_dataset

    try:
        return load_dataset(str(release), config, split=split)
    except Exception as exc:  # noqa: BLE001 - any failure gets the same advice
        raise ExperimentError(
            f"cannot load release {release!r} (config {config!r}): {type(exc).__name__}: {exc}. Give a release folder "
            "written by `corpusforge release ...` (it holds manifest.json) or a dataset datasets can load offline"
        ) from None


# --------------------------------------------------------------------------- models


def model_record(model_dir: Path | str) -> dict[str, Any]:
    """What config.json records about a model: its folder and a hash of its files."""
    path = require_model_dir(model_dir, "model")
    return {"path": str(path.resolve()), "fingerprint": fingerprint_model_dir(path)}


def load_causal_lm(model_dir: Path | str, device: str = "auto", dtype: str = "auto"):
    """(model, tokenizer) of a local causal LM folder, in eval mode on ``device``; never downloads.

    ``dtype``: "auto" (float32 on the CPU, bfloat16 on a GPU), or a torch dtype name. The tokenizer
    pads on the left (batched generation) and gets its EOS as pad token when it has none."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    path = require_model_dir(model_dir, "causal language model")
    device = pick_device(device)
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype).to(device).eval()
    return model, tokenizer


def chat_prompts(tokenizer: Any, user_messages: Sequence[str], system: str | None = None) -> list[str]:
    """The model's chat template applied to each message (generation prompt added); plain text when
    the tokenizer has no template."""
    if not getattr(tokenizer, "chat_template", None):
        return list(user_messages)
    prompts = []
    for text in user_messages:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return prompts


def generate_greedy(model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 16,
                    description: str = "generating") -> list[str]:
    """Greedy continuations of ``prompts`` (batched, left-padded), decoded without special tokens."""
    import torch

    outputs: list[str] = []
    with progress(description, len(prompts)) as advance:
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start:start + batch_size])
            enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            new = out[:, enc["input_ids"].shape[1]:]
            outputs.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
            advance(len(batch))
    return outputs


__all__ = [
    "ExperimentError", "ModelNotFoundError", "RunDir", "seed_everything", "pick_device", "progress",
    "load_release_split", "model_record", "load_causal_lm", "chat_prompts", "generate_greedy",
]
