"""``corpusforge experiment sad-benchmark``: the SAD strategy benchmark (see ``experiments/sad_benchmark.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

NAME = "sad-benchmark"
SUMMARY = "SAD: strategy classifier, strategy-conditioned generation (BLEU, ROUGE-L, adherence), strategy usage."


def command(
    release: Annotated[str, typer.Option("--release", help="SAD release folder (or a dataset datasets loads offline).")],
    model: Annotated[Path, typer.Option("--model", help="Local causal LM folder (e.g. from `corpusforge experiment prepare-model`).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder to write (a rerun overwrites).")],
    max_examples: Annotated[Optional[int], typer.Option("--max-examples", help="Generate for the first N evaluation dialogues only.")] = None,
    max_train: Annotated[Optional[int], typer.Option("--max-train", help="Train the classifier on the first N train utterances only.")] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Classifier training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Generation batch size.")] = 8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Longest generated reply, in tokens.")] = 128,
    max_prompt_tokens: Annotated[Optional[int], typer.Option("--max-prompt-tokens", help="Longest prompt, in tokens: the oldest turns are dropped to fit (default: the model's context).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the classifier training and of everything else.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto (GPU when present), cpu, cuda, cuda:1, ...")] = "auto",
    labels: Annotated[str, typer.Option("--labels", help="Strategy labels: human, suggested (the machine suggestion) or auto (human when labelled).")] = "auto",
    threshold: Annotated[float, typer.Option("--threshold", help="Classifier score from which a strategy is predicted.")] = 0.5,
) -> None:
    """Train a strategy classifier on the release, generate strategy-conditioned replies with a local
    model and score them (BLEU, ROUGE-L, strategy adherence), and plot how strategies are used."""
    from corpusforge.cli.common import out
    from experiments.sad_benchmark import BenchmarkOptions, run_sad_benchmark

    options = BenchmarkOptions(release=release, model=str(model), out=str(out_dir), max_examples=max_examples, max_train=max_train,
                               epochs=epochs, batch_size=batch_size, max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens, seed=seed, device=device,
                               labels=labels, threshold=threshold)
    metrics = run_sad_benchmark(options)
    clf, gen = metrics["classifier"], metrics["generation"]
    out.print(f"labels: {metrics['label_source']}; evaluated on {metrics['eval_split']}", highlight=False)
    out.print(f"classifier: micro F1 {clf['micro']['f1']:.3f}, macro F1 {clf['macro']['f1']:.3f} ({clf['n_eval']} utterances)", highlight=False)
    out.print(f"generation ({gen['n']} dialogues): BLEU {gen['bleu']:.2f}, ROUGE-L {gen['rouge_l']:.2f}, "
              f"adherence {gen['adherence']['include']:.3f} (targets included), {gen['adherence']['exact']:.3f} (exact)", highlight=False)
    out.print(f"report: {Path(out_dir) / 'report.md'}", soft_wrap=True, highlight=False)
