"""Benchmark: PolyRefuse translation throughput (prompts/s) of the local backends over batch sizes.

    python bench/polyrefuse_translate.py --prompts 64                      # base sizes, CPU or GPU (auto)
    python bench/polyrefuse_translate.py --size tiny --prompts 8 --batch-sizes 1,4   # smoke run, seconds
    PYTHONPATH=. python3 bench/polyrefuse_translate.py --sources bench/data --device cuda   # a bare GPU machine

What runs is the real thing: ``translate_all`` with a fresh ``TranslationCache`` (SQLite, in a
temporary folder) per measurement, over ``Seq2SeqBackend`` (a Marian model) and ``CausalBackend``
(a Llama model prompted with the chat template), translating the first ``--prompts`` distinct
English prompts of the PolyRefuse split files from en to de. The models are built here from a
config with RANDOM weights (``tests/pipelines/polyrefuse/tiny_models.py``; nothing is downloaded):
the figures measure the machinery and the model size, not translation quality. ``--size base``:
Marian with opus-mt-en-de's shape (d_model 512, 6 + 6 layers, 8 heads, ffn 2048; 32,000 tokens,
about 60M parameters) and a Llama of about 106M parameters (8 layers of 768, 12 heads, MLP 2048,
32,000 tokens); their tokenizers are trained on the prompts read. ``--size tiny``: the test models
(positions raised to 1,024 so that real prompts fit).

Output length: random weights emit end-of-sequence at random steps, and a batch runs until its
longest output ends, so lengths would differ between batch sizes. The bench writes
``min_new_tokens = max_new_tokens`` into each model's ``generation_config.json`` (the backends do
not take ``min_new_tokens``; ``generate`` reads its defaults from there), so every output is
exactly ``--max-new-tokens`` tokens at every batch size; the tokens generated are counted and
printed to show it.

Per backend and batch size B: ``translate_all(batch_size=B)`` with the backend's own batch size
B (so each model call generates B prompts), one warm-up batch (untimed, no cache), then the timed
run over the N prompts with a fresh cache, then the same run again over that cache (every
prompt served from SQLite, no model call). Baseline: batch size 1 (one prompt per model call).
"same as B=1": outputs identical to the baseline's (batching pads inputs, which can change the
last bits of the logits and so a greedy choice).

Sources: ``--sources`` is a folder of split files (JSON lists of objects with an ``instruction``
field; the six PolyRefuse split names in order harmful_train, harmful_val, harmful_test,
harmless_train, harmless_val, harmless_test when present, else every ``*.json`` by name) or one
such file. Default: ``../shared/data/polyrefuse-sources/splits`` relative to the repo root. On
a machine without ``../shared``, copy the split files into a folder (``bench/data/``, not to be
committed) and pass ``--sources bench/data``.

Imports only the standard library, torch, transformers, tokenizers, sentencepiece and the
translation modules (no polars, pydantic, typer, rich, pytest; the project need not be installed:
run from the repo root with ``PYTHONPATH=.``). Writes ``--json`` (default
``bench/out/polyrefuse_translate.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded; never wait on a network

from pipelines.polyrefuse.translate import (  # noqa: E402
    PROMPT_TEMPLATE,
    CausalBackend,
    Seq2SeqBackend,
    TranslationCache,
    TranslationRequest,
    translate_all,
)
from pipelines.polyrefuse.translate.base import resolve_device  # noqa: E402
from tests.pipelines.polyrefuse import tiny_models  # noqa: E402

DEFAULT_SOURCES = REPO.parent / "shared" / "data" / "polyrefuse-sources" / "splits"
SPLITS = ("harmful_train", "harmful_val", "harmful_test", "harmless_train", "harmless_val", "harmless_test")
BACKENDS = ("seq2seq", "causal")
BASELINE = "batch size 1 (one prompt per model call)"
SIZES = {
    # The test models; positions raised from 64/256 so that real prompts (up to ~850 characters,
    # about one token per character with these 80-300-token vocabularies) fit.
    "tiny": {
        "seq2seq": dataclasses.replace(tiny_models.TINY_SEQ2SEQ, max_positions=1024),
        "causal": dataclasses.replace(tiny_models.TINY_LLAMA, max_positions=1024),
    },
    "base": {"seq2seq": tiny_models.MARIAN_BASE, "causal": tiny_models.LLAMA_BASE},
}
SOURCE, TARGET = "en", "de"


# --------------------------------------------------------------------------- inputs


def load_prompts(sources: Path, limit: int) -> tuple[list[str], list[str], list[Path]]:
    """(the first ``limit`` distinct non-blank instructions, all of them, the files read).

    ``sources``: a folder of split files or one file (see the module docstring). Raises
    ``SystemExit`` with what to do when there is nothing to read."""
    if sources.is_dir():
        files = [sources / f"{split}.json" for split in SPLITS if (sources / f"{split}.json").is_file()]
        files = files or sorted(sources.glob("*.json"))
    elif sources.is_file():
        files = [sources]
    else:
        raise SystemExit(
            f"no prompts: {sources} does not exist. Pass --sources DIR, a folder holding the PolyRefuse "
            "split files (harmful_train.json...; e.g. copied to bench/data/ on a machine without ../shared)."
        )
    texts: list[str] = []
    for file in files:
        records = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            raise SystemExit(f"{file}: expected a JSON list of objects with an 'instruction' field")
        texts.extend(r["instruction"] for r in records if isinstance(r, dict) and isinstance(r.get("instruction"), str))
    distinct = [t for t in dict.fromkeys(texts) if t.strip()]
    if not distinct:
        raise SystemExit(f"no prompts: no 'instruction' field in the JSON files of {sources}")
    return distinct[:limit], distinct, files


# --------------------------------------------------------------------------- models


def force_output_length(model_dir: Path, tokens: int) -> None:
    """Write ``min_new_tokens = tokens`` into the model's generation_config.json: ``generate``
    then never ends an output before ``tokens`` tokens (and ``max_new_tokens`` stops it there)."""
    from transformers import AutoConfig, GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(model_dir, local_files_only=True)
    except OSError:  # no generation_config.json: start from the model's config
        config = GenerationConfig.from_model_config(AutoConfig.from_pretrained(model_dir, local_files_only=True))
    config.min_new_tokens = tokens
    config.save_pretrained(model_dir)


def build_model(kind: str, size_name: str, root: Path, texts: Sequence[str], seed: int) -> Path:
    """The model directory the backend of ``kind`` reads (Marian: a root holding en-de)."""
    size = SIZES[size_name][kind]
    if kind == "seq2seq":
        # base: a tokenizer trained on the prompts (realistic token counts); tiny: the tests' one.
        spm = (
            tiny_models.train_sentencepiece(texts, size.vocab)
            if size_name == "base"
            else tiny_models.train_sentencepiece()
        )
        tiny_models.build_marian(root / "marian" / f"{SOURCE}-{TARGET}", spm, seed, size=size)
        return root / "marian"
    sentences = [*texts, PROMPT_TEMPLATE.format(source="English", target="German", text="")]
    return tiny_models.build_llama(
        root / "llama", seed, size=size, sentences=sentences if size_name == "base" else None
    )


def make_backend(kind: str, model_dir: Path, device: str, args: argparse.Namespace) -> Seq2SeqBackend | CausalBackend:
    common = dict(device=device, batch_size=1, max_new_tokens=args.max_new_tokens, dtype=args.dtype)
    if kind == "seq2seq":
        return Seq2SeqBackend(model_dir, kind="marian", model_name=f"marian-{args.size}-random", **common)
    return CausalBackend(model_dir, model_name=f"llama-{args.size}-random", **common)


def load_model(backend: Seq2SeqBackend | CausalBackend) -> Any:
    """Load the backend's model now (it loads lazily on the first batch) and return it."""
    if isinstance(backend, Seq2SeqBackend):
        return backend._load((SOURCE, TARGET))[1]
    return backend._load()[1]


def count_output_tokens(model: Any, decoder_only: bool, counts: list[int]) -> None:
    """Wrap ``model.generate`` so that each call appends the new tokens of every output (up to and
    including its first end-of-sequence) to ``counts``."""
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    generate: Callable[..., Any] = model.generate

    def counting_generate(*args: Any, **kwargs: Any) -> Any:
        out = generate(*args, **kwargs)
        start = kwargs["input_ids"].shape[1] if decoder_only else 1  # seq2seq: after the start token
        for row in out[:, start:].tolist():
            counts.append(next((i + 1 for i, token in enumerate(row) if token in eos_ids), len(row)))
        return out

    model.generate = counting_generate


# --------------------------------------------------------------------------- measuring


def measure(
    backend: Seq2SeqBackend | CausalBackend,
    requests: list[TranslationRequest],
    batch_size: int,
    counts: list[int],
    cache_path: Path,
) -> tuple[dict[str, Any], list[str | None]]:
    """One row: warm-up batch, timed run with a fresh cache at ``cache_path`` (must not exist),
    then the cached rerun. ``counts``: where the wrapped ``generate`` appends output lengths."""
    backend.batch_size = batch_size
    translate_all(requests[:batch_size], backend, None, batch_size=batch_size)  # warm-up, untimed
    counts.clear()
    calls = backend.generate_calls
    with TranslationCache(cache_path) as cache:
        began = time.perf_counter()
        report = translate_all(requests, backend, cache, batch_size=batch_size)
        seconds = time.perf_counter() - began
        tokens = list(counts)
        model_calls = backend.generate_calls - calls
        began = time.perf_counter()
        again = translate_all(requests, backend, cache, batch_size=batch_size)
        cached_seconds = time.perf_counter() - began
    outputs = [t.text for t in report.translations]
    n = len(requests)
    row = {
        "backend": backend.name,
        "batch_size": batch_size,
        "prompts": n,
        "seconds": seconds,
        "prompts_per_s": n / seconds,
        "output_tokens_per_s": sum(tokens) / seconds,
        "output_tokens_mean": statistics.fmean(tokens) if tokens else 0.0,
        "output_tokens_min": min(tokens, default=0),
        "output_tokens_max": max(tokens, default=0),
        "model_calls": model_calls,
        "translated": report.translated,
        "failed": report.failed,
        "outputs": sum(1 for text in outputs if text and text.strip()),
        "cached_seconds": cached_seconds,
        "cached_prompts_per_s": n / cached_seconds,
        "cached_hits": again.cached,
    }
    return row, outputs


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str, dtype: str) -> dict[str, Any]:
    import tokenizers
    import torch
    import transformers

    return {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "dtype": dtype,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
    prompts, every_prompt, files = load_prompts(args.sources, args.prompts)
    requests = [TranslationRequest(f"p{i}:{TARGET}", text, SOURCE, TARGET) for i, text in enumerate(prompts)]
    device = resolve_device(args.device)
    result: dict[str, Any] = {
        "baseline": BASELINE,
        "weights": "random (models built from a config; nothing downloaded): figures measure the machinery "
        "and the model size, not translation quality",
        "settings": {
            "size": args.size,
            "prompts": len(prompts),
            "prompt_chars_mean": statistics.fmean(len(p) for p in prompts),
            "sources": [str(f) for f in files],
            "source_lang": SOURCE,
            "target_lang": TARGET,
            "max_new_tokens": args.max_new_tokens,
            "forced_output_tokens": args.max_new_tokens,
            "batch_sizes": args.batch_sizes,
            "backends": args.backends,
        },
        "environment": environment(device, args.dtype),
        "models": {},
        "rows": [],
    }
    outputs: dict[tuple[str, int], list[str | None]] = {}
    with tempfile.TemporaryDirectory(prefix="polyrefuse-translate-bench-") as tmp:
        root = Path(tmp)
        for kind in args.backends:
            began = time.perf_counter()
            model_dir = build_model(kind, args.size, root / "models", every_prompt, args.seed)
            for config_dir in {p.parent for p in model_dir.rglob("config.json")}:
                force_output_length(config_dir, args.max_new_tokens)
            built = time.perf_counter() - began
            backend = make_backend(kind, model_dir, device, args)
            began = time.perf_counter()
            model = load_model(backend)
            loaded = time.perf_counter() - began
            counts: list[int] = []
            count_output_tokens(model, decoder_only=kind == "causal", counts=counts)
            size = SIZES[args.size][kind]
            result["models"][kind] = {
                "model": backend.model,
                "architecture": type(model).__name__,
                "parameters": sum(p.numel() for p in model.parameters()),
                "vocab": model.config.vocab_size,
                "size": dataclasses.asdict(size),
                "build_seconds": built,
                "load_seconds": loaded,
            }
            for index, batch_size in enumerate(args.batch_sizes):
                cache_path = root / "caches" / f"{kind}-{index}-b{batch_size}.sqlite"
                row, outputs[kind, batch_size] = measure(backend, requests, batch_size, counts, cache_path)
                result["rows"].append(row)
                print(
                    f"  {kind} batch {batch_size}: {row['seconds']:.2f} s, {row['prompts_per_s']:.2f} prompts/s",
                    file=sys.stderr,
                    flush=True,
                )
            del backend, model
    for row in result["rows"]:  # against the baseline: batch size 1 of the same backend
        base = next((r for r in result["rows"] if r["backend"] == row["backend"] and r["batch_size"] == 1), None)
        row["speed_up"] = row["prompts_per_s"] / base["prompts_per_s"] if base else None
        base_outputs = outputs.get((row["backend"], 1))
        mine = outputs[row["backend"], row["batch_size"]]
        row["same_as_baseline"] = sum(a == b for a, b in zip(mine, base_outputs)) if base_outputs else None
    return result


# --------------------------------------------------------------------------- report


def print_report(result: dict[str, Any]) -> None:
    env, settings = result["environment"], result["settings"]
    print()
    print(
        f"PolyRefuse translation throughput: {settings['prompts']} prompts {settings['source_lang']}->"
        f"{settings['target_lang']} (mean {settings['prompt_chars_mean']:.0f} characters), size {settings['size']}"
    )
    print(
        f"device {env['device']} ({env['device_name']}), dtype {env['dtype']}, {env['cpu_count']} CPUs, "
        f"{env['torch_threads']} torch threads; Python {env['python']}, torch {env['torch']}, "
        f"transformers {env['transformers']}, tokenizers {env['tokenizers']}"
    )
    print(f"weights: {result['weights']}")
    for kind, model in result["models"].items():
        s = model["size"]
        print(
            f"{kind}: {model['architecture']}, {model['parameters']:,} parameters (d_model {s['d_model']}, "
            f"{s['layers']}{' + ' + str(s['layers']) if kind == 'seq2seq' else ''} layers, {s['heads']} heads, "
            f"ffn {s['ffn']}, vocab {model['vocab']:,}); built in {model['build_seconds']:.1f} s, "
            f"loaded in {model['load_seconds']:.1f} s (not timed)"
        )
    lengths = {(r["output_tokens_min"], r["output_tokens_max"]) for r in result["rows"]}
    tokens = settings["max_new_tokens"]
    if lengths == {(tokens, tokens)}:
        print(
            f"output length: every output is exactly {tokens} tokens at every batch size (max_new_tokens = "
            f"min_new_tokens = {tokens}, set in the models' generation_config.json)"
        )
    else:
        means = ", ".join(f"{r['backend']} b{r['batch_size']} {r['output_tokens_mean']:.1f}" for r in result["rows"])
        print(f"output length: what the models produced (max_new_tokens {tokens}); mean tokens per output: {means}")
    print(f"speed-up: against the baseline, {result['baseline']}; cached: the same run again over its cache")
    header = (
        f"{'backend':<9}{'batch':>6}{'prompts':>8}{'seconds':>9}{'prompts/s':>11}{'tokens/s':>10}"
        f"{'model calls':>12}{'speed-up':>10}{'same as b=1':>13}{'cached prompts/s':>18}"
    )
    print(header)
    for r in result["rows"]:
        speed = f"{r['speed_up']:.1f}x" if r["speed_up"] is not None else "n/a"
        same = f"{r['same_as_baseline']}/{r['prompts']}" if r["same_as_baseline"] is not None else "n/a"
        print(
            f"{r['backend']:<9}{r['batch_size']:>6}{r['prompts']:>8}{r['seconds']:>9.2f}{r['prompts_per_s']:>11.2f}"
            f"{r['output_tokens_per_s']:>10.0f}{r['model_calls']:>12}{speed:>10}{same:>13}"
            f"{r['cached_prompts_per_s']:>18,.0f}"
        )
    failed = [r for r in result["rows"] if r["failed"]]
    if failed:
        print(
            "empty outputs (failures, not cached, sent again by the cached run): "
            + ", ".join(f"{r['backend']} b{r['batch_size']} {r['failed']}" for r in failed)
        )


def _int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def _backend_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [v for v in values if v not in BACKENDS]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"backends: comma-separated names out of {', '.join(BACKENDS)}, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", type=_backend_list, default=list(BACKENDS), help="Default: seq2seq,causal.")
    ap.add_argument("--batch-sizes", type=_int_list, default=[1, 4, 16, 64], help="Default: 1,4,16,64.")
    ap.add_argument("--prompts", type=int, default=256, help="The first N distinct prompts (default 256).")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="Tokens generated per output, exactly (default 32).")
    ap.add_argument("--size", choices=sorted(SIZES), default="base", help="Model sizes (default base).")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    ap.add_argument("--sources", type=Path, default=DEFAULT_SOURCES, help="Folder of split files, or one file.")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads (default 0: torch's default). On a small shared CPU, 1 can be "
        "faster for small models: threads that wait for a busy core spin.",
    )
    ap.add_argument("--seed", type=int, default=0, help="Seed of the random weights.")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "out" / "polyrefuse_translate.json")
    args = ap.parse_args(argv)
    if args.prompts < 1 or args.max_new_tokens < 1:
        ap.error("--prompts and --max-new-tokens must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write ``--json``; returns what was written."""
    args = parse_args(argv)
    result = run(args)
    print_report(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {args.json}")
    return result


if __name__ == "__main__":
    main()
