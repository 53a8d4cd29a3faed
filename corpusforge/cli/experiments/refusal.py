"""``corpusforge experiment refusal-directions``: the study lives in :mod:`experiments.refusal`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from corpusforge.cli.common import out

NAME = "refusal-directions"
SUMMARY = "Refusal directions per language (Arditi et al. 2024) on a PolyRefuse release: ablation, transfer, cosine."


def command(
    release: Annotated[str, typer.Option("--release", help="PolyRefuse release folder (or a dataset datasets loads offline).")],
    model: Annotated[Path, typer.Option("--model", help="Local causal LM folder with a chat template (never downloaded).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    languages: Annotated[str, typer.Option("--languages", help="Release configs (language codes), comma-separated.")] = "en,de",
    n_train: Annotated[int, typer.Option("--n-train", help="Train prompts per label (difference in means).")] = 128,
    n_val: Annotated[int, typer.Option("--n-val", help="Validation prompts per label (selection).")] = 32,
    n_eval: Annotated[int, typer.Option("--n-eval", help="Test prompts per label (generations).")] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto (GPU when present), cpu, cuda, cuda:1 ...")] = "auto",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Length of the greedy generations.")] = 64,
    kl_threshold: Annotated[float, typer.Option("--kl-threshold", help="Largest KL on harmless prompts a kept candidate may cause.")] = 0.1,
    steering_threshold: Annotated[Optional[float], typer.Option("--steering-threshold", help="Smallest refusal score activation addition must induce on harmless prompts; omit the rule with --no-steering-filter.")] = 0.0,
    no_steering_filter: Annotated[bool, typer.Option("--no-steering-filter", help="Keep candidates whatever activation addition does (still reported).")] = False,
    layer_stride: Annotated[int, typer.Option("--layer-stride", help="Score every n-th layer only (faster).")] = 1,
    positions: Annotated[Optional[int], typer.Option("--positions", help="Score the last n post-instruction positions only (default: all).")] = None,
) -> None:
    """Find each language's refusal direction, ablate it in every language, and compare the directions."""
    from experiments.refusal import RefusalConfig, run_refusal_directions

    config = RefusalConfig(
        languages=tuple(code.strip() for code in languages.split(",") if code.strip()), n_train=n_train, n_val=n_val,
        n_eval=n_eval, batch_size=batch_size, seed=seed, device=device, max_new_tokens=max_new_tokens, kl_threshold=kl_threshold,
        steering_threshold=None if no_steering_filter else steering_threshold, layer_stride=layer_stride, positions=positions,
    )
    metrics = run_refusal_directions(release, model, out_dir, config)
    for lang, m in metrics["per_language"].items():
        out.print(f"{lang}: direction at layer {m['layer']}, position {m['position']}; refusal rate "
                  f"{m['refusal_rate_before']:.2f} -> {m['refusal_rate_after']:.2f} under ablation", highlight=False)
    out.print(f"Results in {out_dir}", soft_wrap=True, highlight=False)
