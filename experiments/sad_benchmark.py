"""The SAD strategy benchmark (issue 7, experiment 1): a strategy classifier, strategy-conditioned
generation scored against the gold reply, and how strategies are used in the release.

One run (:func:`run_sad_benchmark`) reads a SAD release (configs ``utterances`` and ``dialogues``)
and a local causal LM and writes a run folder (see :mod:`experiments.common`):

1. **Classifier.** A spaCy ``textcat_multilabel`` (:func:`annotation.assist.train_textcat`) trained
   on the train-split utterances and evaluated on the evaluation split (``test``, else
   ``validation``): per-strategy precision, recall and F1, micro and macro averages
   (``tables/classifier_prf.csv``). It is kept in ``<out>/classifier``; a rerun replaces it.
2. **Generation.** Each evaluation-split dialogue with target strategies becomes a prompt in the
   paper's layout (:func:`debate_prompt`), wrapped in the model's chat template and continued
   greedily in batches. Replies are scored against the gold target with corpus BLEU (sacrebleu)
   and ROUGE-L (:func:`rouge_l`, the mean per-example LCS F1), and for strategy adherence with
   the classifier (:func:`strategy_adherence`). The same adherence of the gold replies is reported
   as the reference the classifier allows.
3. **Usage.** Over every utterance of the release (each stored once, all splits): how many carry
   each strategy (:func:`count_strategy_usage`), how often two strategies share an utterance
   (:func:`count_cooccurrences`) and the share of each strategy by turn (:func:`usage_by_position`).

Labels. ``labels="human"`` uses the human ``strategies`` (``target_strategies`` for dialogues) and
ignores unlabelled rows; ``"suggested"`` uses the machine suggestion ``suggested_strategies``
(``target_suggested_strategies``), present on every row; ``"auto"`` (the default) takes human labels
when both the train and the evaluation split have labelled utterances, else the suggestion. The
choice is recorded in config.json and metrics.json and named in the report: a classifier trained
on the rule-based suggestion learns those rules, not people's judgement.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Mapping, Sequence

from experiments.common import (
    ExperimentError,
    RunDir,
    chat_prompts,
    generate_greedy,
    load_causal_lm,
    load_release_split,
    model_record,
    pick_device,
    progress,
    seed_everything,
)
from schemas.sad import STRATEGIES

if TYPE_CHECKING:  # polars is imported where it is used: listing the experiments stays fast
    import polars as pl

LABEL_SOURCES = ("auto", "human", "suggested")
EVAL_SPLITS = ("test", "validation")  # the first one the release has is evaluated
# Release columns holding the strategies, per label source: (utterances, dialogues).
LABEL_COLUMNS = {"human": ("strategies", "target_strategies"),
                 "suggested": ("suggested_strategies", "target_suggested_strategies")}
# Stance of a turn -> its speaker: the pipeline gives OP stance support (1), challengers oppose (0).
SPEAKERS = {1: "OP", 0: "Challenger"}
STANCE_WORDS = {1: "support", 0: "oppose"}
INSTRUCTION = "Continue the debate: write the next reply, and only the reply."
MAX_TURN = 10  # usage by position: turns from MAX_TURN on are counted together as MAX_TURN


@dataclass(frozen=True)
class BenchmarkOptions:
    """Everything that decides a run; written to config.json as given."""

    release: str
    model: str
    out: str
    max_examples: int | None = None  # generation: the first N evaluation dialogues (release order)
    max_train: int | None = None  # classifier: the first N train utterances
    epochs: int = 10
    batch_size: int = 8  # generation batch
    max_new_tokens: int = 128
    max_prompt_tokens: int | None = None  # None: the model's context less max_new_tokens
    seed: int = 0
    device: str = "auto"
    labels: str = "auto"
    threshold: float = 0.5  # classifier score from which a strategy is predicted

    def check(self) -> None:
        if self.labels not in LABEL_SOURCES:
            raise ExperimentError(f"--labels {self.labels!r}: choose one of {', '.join(LABEL_SOURCES)}")
        for name in ("max_examples", "max_train", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ExperimentError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        for name in ("epochs", "batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ExperimentError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ExperimentError(f"--threshold must be within [0, 1], got {self.threshold}")


# --------------------------------------------------------------------------- text metrics


def rouge_tokens(text: str) -> list[str]:
    """Lowercased runs of letters and digits (the ``rouge_score`` tokenisation, without stemming)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (dynamic programming, O(len a * len b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> dict[str, float]:
    """ROUGE-L of one candidate against one reference: precision = LCS / candidate tokens,
    recall = LCS / reference tokens, F1 = 2PR / (P + R); 0.0 wherever a denominator is 0."""
    cand, ref = rouge_tokens(candidate), rouge_tokens(reference)
    lcs = lcs_length(cand, ref)
    p = lcs / len(cand) if cand else 0.0
    r = lcs / len(ref) if ref else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def corpus_rouge_l(candidates: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 over pairs, x 100 (the scale BLEU is reported on); 0.0 for no pairs."""
    _check_pairs(candidates, references)
    if not candidates:
        return 0.0
    return 100.0 * sum(rouge_l(c, r)["f1"] for c, r in zip(candidates, references)) / len(candidates)


def corpus_bleu(candidates: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU (default 13a tokenisation, one reference each), 0-100; 0.0 for no pairs."""
    import sacrebleu

    _check_pairs(candidates, references)
    if not candidates:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(candidates), [list(references)]).score)


def _check_pairs(candidates: Sequence[Any], references: Sequence[Any]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"got {len(candidates)} candidates but {len(references)} references; they must pair up")


# --------------------------------------------------------------------------- strategy adherence


def strategy_adherence(predicted: Sequence[Collection[str]], targets: Sequence[Collection[str]]) -> dict[str, float | int]:
    """How well replies follow their target strategies, judged by the classifier's predictions.

    For each reply, P is the set of strategies the classifier predicts and T the (non-empty) set of
    target strategies. Over all replies:

    * ``include``: share of replies with T a subset of P (every target used; extra strategies allowed);
    * ``exact``: share of replies with P == T (every target used, nothing else);
    * ``target_recall``: mean of |P & T| / |T| (the share of targets used, averaged over replies);
    * ``n``: the number of replies.

    Raises ValueError if the lists differ in length or a target set is empty.
    """
    _check_pairs(predicted, targets)
    if any(not t for t in targets):
        raise ValueError("every reply needs at least one target strategy")
    n = len(targets)
    if n == 0:
        return {"include": 0.0, "exact": 0.0, "target_recall": 0.0, "n": 0}
    pairs = [(set(p), set(t)) for p, t in zip(predicted, targets)]
    return {
        "include": sum(t <= p for p, t in pairs) / n,
        "exact": sum(t == p for p, t in pairs) / n,
        "target_recall": sum(len(p & t) / len(t) for p, t in pairs) / n,
        "n": n,
    }


# --------------------------------------------------------------------------- prompts


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) as single spaces: one turn, one line."""
    return " ".join(text.split())


def debate_prompt(topic: str, history: Sequence[tuple[int, str]], stance: int, strategies: Sequence[str]) -> str:
    """The user message of one example, in the paper's layout::

        # Topic
        <topic>

        # Debate History
        OP: <text of the first turn>
        Challenger: <text of the second turn>

        # Instruction
        Continue the debate: write the next reply, and only the reply.
        Stance: support (argue for the topic)
        Strategies: Question, Example

    ``history`` holds (stance, text) per earlier turn, oldest first; the speaker of a turn follows
    from its stance (OP supports, challengers oppose). ``stance`` is the reply's (1 support,
    0 oppose) and ``strategies`` its target strategies, listed in the schema's order.
    """
    side = "argue for the topic" if stance == 1 else "argue against the topic"
    ordered = [s for s in STRATEGIES if s in set(strategies)]
    lines = ["# Topic", one_line(topic), "", "# Debate History"]
    lines += [f"{SPEAKERS[turn_stance]}: {one_line(text)}" for turn_stance, text in history]
    lines += ["", "# Instruction", INSTRUCTION, f"Stance: {STANCE_WORDS[stance]} ({side})", f"Strategies: {', '.join(ordered)}"]
    return "\n".join(lines)


def fit_prompt(tokenizer: Any, topic: str, history: Sequence[tuple[int, str]], stance: int, strategies: Sequence[str],
               budget: int) -> tuple[str, int]:
    """The chat-formatted prompt of :func:`debate_prompt` within ``budget`` tokens, and how many of
    the oldest turns were dropped to fit. When even the last turn alone is too long, its text keeps
    only as many leading words as fit (halving until it does); when not even the layout around the
    turns fits, the shortest prompt is returned as it is (the caller's model then sees it all)."""
    turns = list(history)

    def render() -> str:
        return chat_prompts(tokenizer, [debate_prompt(topic, turns, stance, strategies)])[0]

    def fits(prompt: str) -> bool:
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= budget

    prompt, dropped = render(), 0
    while not fits(prompt) and len(turns) > 1:
        turns.pop(0)
        dropped += 1
        prompt = render()
    while turns and not fits(prompt):
        words = turns[-1][1].split()
        if len(words) <= 1:
            break
        turns[-1] = (turns[-1][0], " ".join(words[: len(words) // 2]))
        prompt = render()
    return prompt, dropped


# --------------------------------------------------------------------------- strategy usage


def count_strategy_usage(frame: pl.DataFrame) -> pl.DataFrame:
    """Per strategy (schema order): ``utterances`` carrying it and their ``share`` of all rows of
    ``frame`` (a polars frame with ``strategies``: a list of strategy names per utterance)."""
    import polars as pl

    total = frame.height
    counts = {s: 0 for s in STRATEGIES}
    for labels in frame.get_column("strategies").to_list():
        for s in set(labels):
            counts[s] += 1
    return pl.DataFrame({"strategy": list(STRATEGIES), "utterances": [counts[s] for s in STRATEGIES],
                         "share": [counts[s] / total if total else 0.0 for s in STRATEGIES]},
                        schema={"strategy": pl.String, "utterances": pl.Int64, "share": pl.Float64})


def count_cooccurrences(frame: pl.DataFrame) -> pl.DataFrame:
    """The symmetric strategy x strategy matrix of utterances carrying both (the diagonal: carrying
    the strategy at all); column ``strategy`` names the row, one column per strategy."""
    import polars as pl

    index = {s: i for i, s in enumerate(STRATEGIES)}
    matrix = [[0] * len(STRATEGIES) for _ in STRATEGIES]
    for labels in frame.get_column("strategies").to_list():
        present = sorted({index[s] for s in labels})
        for i in present:
            for j in present:
                matrix[i][j] += 1
    columns: dict[str, list[Any]] = {"strategy": list(STRATEGIES)}
    columns.update({s: [row[j] for row in matrix] for j, s in enumerate(STRATEGIES)})
    return pl.DataFrame(columns, schema={"strategy": pl.String, **{s: pl.Int64 for s in STRATEGIES}})


def usage_by_position(frame: pl.DataFrame, max_turn: int = MAX_TURN) -> pl.DataFrame:
    """Strategy use by position: ``turn`` = depth + 1 (1 = the submission, 2 = a top-level comment,
    ...; turns from ``max_turn`` on count as ``max_turn``), ``utterances`` at that turn, ``with_strategy``
    of them carrying ``strategy`` and their ``share``. ``frame`` needs ``strategies`` and ``depth``.
    One row per (turn present in ``frame``, strategy), turns ascending, strategies in schema order."""
    import polars as pl

    totals: dict[int, int] = {}
    counts: dict[tuple[int, str], int] = {}
    for depth, labels in zip(frame.get_column("depth").to_list(), frame.get_column("strategies").to_list()):
        turn = min(depth + 1, max_turn)
        totals[turn] = totals.get(turn, 0) + 1
        for s in set(labels):
            counts[(turn, s)] = counts.get((turn, s), 0) + 1
    rows = [{"turn": t, "strategy": s, "utterances": totals[t], "with_strategy": counts.get((t, s), 0),
             "share": counts.get((t, s), 0) / totals[t]} for t in sorted(totals) for s in STRATEGIES]
    schema = {"turn": pl.Int64, "strategy": pl.String, "utterances": pl.Int64, "with_strategy": pl.Int64, "share": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def plot_usage(usage) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(usage["strategy"].to_list(), usage["utterances"].to_list(), color="tab:blue")
    for bar, share in zip(bars, usage["share"].to_list()):
        ax.annotate(f"{share:.0%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("utterances")
    ax.set_title("Strategy use (share of utterances)")
    return fig


def plot_cooccurrence(cooc) -> Any:
    plt = _pyplot()
    matrix = [cooc[s].to_list() for s in STRATEGIES]  # symmetric: columns = rows
    fig, ax = plt.subplots(figsize=(5, 4.5))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(STRATEGIES)), STRATEGIES, rotation=45, ha="right")
    ax.set_yticks(range(len(STRATEGIES)), STRATEGIES)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8, color="white" if value > peak / 2 else "black")
    fig.colorbar(image, ax=ax, label="utterances with both")
    ax.set_title("Strategy co-occurrence")
    return fig


def plot_positions(positions, max_turn: int = MAX_TURN) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for strategy in STRATEGIES:
        part = positions.filter(positions["strategy"] == strategy)
        ax.plot(part["turn"].to_list(), part["share"].to_list(), marker="o", label=strategy)
    turns = sorted(set(positions["turn"].to_list()))
    ax.set_xticks(turns, [f"{t}+" if t == max_turn else str(t) for t in turns])
    ax.set_xlabel("turn (1 = the submission)")
    ax.set_ylabel("share of utterances")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("Strategy use by position in the dialogue")
    return fig


# --------------------------------------------------------------------------- release


def _names(indices: Sequence[int] | None) -> list[str] | None:
    return None if indices is None else [STRATEGIES[i] for i in indices]


def release_record(release: str) -> dict[str, Any]:
    """Path and version of a release folder (version None for anything else ``datasets`` loads)."""
    path = Path(release).expanduser()
    if (path / "manifest.json").is_file():
        from releases import read_manifest

        manifest = read_manifest(path)
        return {"path": str(path.resolve()), "dataset": manifest.get("dataset"), "version": manifest.get("version"),
                "created_at": manifest.get("created_at")}
    return {"path": str(release), "dataset": None, "version": None}


def pick_eval_split(splits: Collection[str]) -> str:
    for name in EVAL_SPLITS:
        if name in splits:
            return name
    raise ExperimentError(f"the release has no {' or '.join(EVAL_SPLITS)} split (it has {sorted(splits)}); nothing to evaluate on")


def utterance_frame(utterances, column: str) -> pl.DataFrame:
    """One polars frame of every split's utterances: utterance_id, split, depth, text and
    ``strategies`` (names, from ``column``; null where unlabelled)."""
    import polars as pl

    frames = []
    for split, ds in utterances.items():
        part = ds.select_columns(["utterance_id", "depth", "text", column])
        frames.append(pl.DataFrame({
            "utterance_id": part["utterance_id"], "split": [split] * part.num_rows, "depth": part["depth"], "text": part["text"],
            "strategies": [_names(x) for x in part[column]],
        }, schema={"utterance_id": pl.String, "split": pl.String, "depth": pl.Int64, "text": pl.String,
                   "strategies": pl.List(pl.String)}))
    return pl.concat(frames)


def resolve_label_source(requested: str, frame, eval_split: str) -> str:
    """``auto`` -> ``human`` when the train and the evaluation split both have human-labelled
    utterances (``frame`` from the human column), else ``suggested``."""
    if requested != "auto":
        return requested
    labelled = frame.filter(frame["strategies"].is_not_null())
    splits = set(labelled["split"].to_list())
    return "human" if {"train", eval_split} <= splits else "suggested"


# --------------------------------------------------------------------------- the run


def train_classifier(frame, options: BenchmarkOptions, out_dir: Path):
    """Train on the train split's labelled utterances; returns (StrategyClassifier, TrainResult)."""
    from annotation.assist import StrategyClassifier, train_textcat

    train = frame.filter((frame["split"] == "train") & frame["strategies"].is_not_null())
    if options.max_train is not None:
        train = train.head(options.max_train)
    if train.height == 0:
        raise ExperimentError("the release's train split has no labelled utterances to train the strategy classifier on")
    shutil.rmtree(out_dir, ignore_errors=True)  # a rerun replaces the classifier of the last run
    with progress("training the classifier", options.epochs) as advance:
        result = train_textcat(train["text"].to_list(), [set(x) for x in train["strategies"].to_list()], STRATEGIES, out_dir,
                               epochs=options.epochs, seed=options.seed, progress=lambda epoch, loss: advance())
    return StrategyClassifier.load(out_dir), result


def evaluate_classifier(classifier, frame, eval_split: str, threshold: float) -> tuple[list[dict], int]:
    """:func:`annotation.assist.prf_table` of the classifier on the evaluation split's labelled
    utterances, and how many there were."""
    from annotation.assist import prf_table

    test = frame.filter((frame["split"] == eval_split) & frame["strategies"].is_not_null())
    if test.height == 0:
        raise ExperimentError(f"the {eval_split} split has no labelled utterances to evaluate the strategy classifier on")
    predicted = classifier.predict(test["text"].to_list(), threshold=threshold)
    return prf_table([set(x) for x in test["strategies"].to_list()], predicted, STRATEGIES), test.height


def generation_examples(dialogues, column: str, max_examples: int | None) -> list[dict[str, Any]]:
    """Dialogues (one split) with target strategies, in release order, at most ``max_examples``."""
    examples = []
    for row in dialogues:
        targets = _names(row[column])
        if not targets:
            continue
        examples.append({"example_id": row["example_id"], "topic": row["topic"],
                         "history": [(t["stance"], t["text"]) for t in row["history"]],
                         "stance": row["target_stance"], "targets": targets, "reference": row["target_text"]})
        if max_examples is not None and len(examples) >= max_examples:
            break
    return examples


def generate_replies(examples: list[dict[str, Any]], options: BenchmarkOptions, device: str) -> tuple[list[str], list[int]]:
    """Greedy replies of the local model to each example's prompt; also the turns dropped per prompt."""
    model, tokenizer = load_causal_lm(options.model, device)
    context = getattr(model.config, "max_position_embeddings", None) or 2048
    budget = max(16, context - options.max_new_tokens)
    if options.max_prompt_tokens is not None:
        budget = min(budget, options.max_prompt_tokens)
    fitted = [fit_prompt(tokenizer, e["topic"], e["history"], e["stance"], e["targets"], budget) for e in examples]
    replies = generate_greedy(model, tokenizer, [p for p, _ in fitted], max_new_tokens=options.max_new_tokens,
                              batch_size=options.batch_size, description="generating replies")
    return [r.strip() for r in replies], [d for _, d in fitted]


def run_sad_benchmark(options: BenchmarkOptions) -> dict[str, Any]:
    """Run the benchmark and write the run folder ``options.out``; returns metrics.json's content.

    Raises ExperimentError for an unusable release (no evaluation split, no labelled utterances
    for the chosen label source, no dialogue with target strategies) and ModelNotFoundError for a
    missing model folder; the release and the model are checked before any training."""
    import polars as pl

    options.check()
    started = time.perf_counter()
    seed_everything(options.seed)
    device = pick_device(options.device)
    model_info = model_record(options.model)

    utterances = load_release_split(options.release, "utterances")
    dialogues_all = load_release_split(options.release, "dialogues")
    eval_split = pick_eval_split(set(utterances))
    if eval_split not in dialogues_all:
        raise ExperimentError(f"the dialogues config has no {eval_split} split; the utterances config has it")
    label_source = resolve_label_source(options.labels, utterance_frame(utterances, LABEL_COLUMNS["human"][0]), eval_split)
    utt_column, dlg_column = LABEL_COLUMNS[label_source]
    frame = utterance_frame(utterances, utt_column)
    for split in ("train", eval_split):
        if frame.filter((frame["split"] == split) & frame["strategies"].is_not_null()).height == 0:
            raise ExperimentError(f"the {split} split has no utterances with {label_source} strategies ({utt_column}); "
                                  "label some (`corpusforge annotate ...`, then rebuild and release) or use --labels suggested")
    examples = generation_examples(dialogues_all[eval_split], dlg_column, options.max_examples)
    if not examples:
        raise ExperimentError(f"no {eval_split} dialogue has {label_source} target strategies ({dlg_column}); nothing to generate")

    run = RunDir(Path(options.out))  # only now: a refused run leaves no folder behind
    run.config({"experiment": "sad-benchmark", "options": asdict(options), "device": device, "release": release_record(options.release),
                "model": model_info, "label_source": label_source, "label_columns": {"utterances": utt_column, "dialogues": dlg_column},
                "eval_split": eval_split, "strategies": list(STRATEGIES), "prompt_instruction": INSTRUCTION})

    # 1. classifier
    classifier, trained = train_classifier(frame, options, run.root / "classifier")
    prf, n_eval = evaluate_classifier(classifier, frame, eval_split, options.threshold)
    run.table("classifier_prf", pl.DataFrame(prf))

    # 2. generation
    replies, dropped = generate_replies(examples, options, device)
    references = [e["reference"] for e in examples]
    targets = [e["targets"] for e in examples]
    predicted = classifier.predict(replies, threshold=options.threshold)
    predicted_gold = classifier.predict(references, threshold=options.threshold)
    run.table("generations", pl.DataFrame({
        "example_id": [e["example_id"] for e in examples],
        "target_strategies": ["|".join(t) for t in targets],
        "predicted_strategies": ["|".join(s for s in STRATEGIES if s in p) for p in predicted],
        "gold_predicted_strategies": ["|".join(s for s in STRATEGIES if s in p) for p in predicted_gold],
        "rouge_l_f1": [rouge_l(c, r)["f1"] for c, r in zip(replies, references)],
        "history_turns_dropped": dropped,
        "reply": replies,
        "reference": references,
    }))

    # 3. usage
    labelled = frame.filter(frame["strategies"].is_not_null())
    usage, cooc, positions = count_strategy_usage(labelled), count_cooccurrences(labelled), usage_by_position(labelled)
    run.table("strategy_usage", usage)
    run.table("strategy_cooccurrence", cooc)
    run.table("strategy_by_position", positions)
    run.plot("strategy_usage", plot_usage(usage))
    run.plot("strategy_cooccurrence", plot_cooccurrence(cooc))
    run.plot("strategy_by_position", plot_positions(positions))

    by_label = {row["label"]: {k: row[k] for k in ("precision", "recall", "f1", "support")} for row in prf}
    metrics = {
        "label_source": label_source,
        "eval_split": eval_split,
        "classifier": {"model": trained.model_name, "n_train": trained.n_train, "epochs": trained.epochs,
                       "n_eval": n_eval,
                       "per_strategy": {s: by_label[s] for s in STRATEGIES},
                       "micro": by_label["micro avg"], "macro": by_label["macro avg"]},
        "generation": {"n": len(examples), "bleu": corpus_bleu(replies, references), "rouge_l": corpus_rouge_l(replies, references),
                       "adherence": strategy_adherence(predicted, targets),
                       "adherence_gold_reply": strategy_adherence(predicted_gold, targets),
                       "prompts_with_dropped_turns": sum(1 for d in dropped if d)},
        "usage": {"utterances": labelled.height, **{s: int(n) for s, n in zip(usage["strategy"], usage["utterances"])}},
        "seconds": round(time.perf_counter() - started, 1),
    }
    run.metrics(metrics)
    run.report(report_markdown(metrics, prf, options))
    return metrics


# --------------------------------------------------------------------------- report


def _prf_markdown(prf: list[dict]) -> str:
    lines = ["| strategy | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['label']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |" for r in prf]
    return "\n".join(lines)


def report_markdown(metrics: Mapping[str, Any], prf: list[dict], options: BenchmarkOptions) -> str:
    """report.md: the classifier table, the generation figures, the usage plots."""
    gen = metrics["generation"]
    adh, gold = gen["adherence"], gen["adherence_gold_reply"]
    source = {"human": "human labels (`strategies`, `target_strategies`)",
              "suggested": "the machine suggestion (`suggested_strategies`, `target_suggested_strategies`): "
                           "the classifier learns the suggester's rules, not human judgement"}[metrics["label_source"]]
    return f"""# SAD strategy benchmark

Release `{options.release}`, model `{options.model}`; labels: {source}. Evaluation split: `{metrics['eval_split']}`.
Configuration in `config.json`, figures in `metrics.json`, tables in `tables/`.

## 1. Strategy classifier

spaCy `textcat_multilabel` ({metrics['classifier']['model']}), {metrics['classifier']['n_train']} training utterances,
{metrics['classifier']['epochs']} epochs, a strategy is predicted from score {options.threshold}.

{_prf_markdown(prf)}

## 2. Strategy-conditioned generation

{gen['n']} dialogues, greedy decoding, at most {options.max_new_tokens} new tokens
({gen['prompts_with_dropped_turns']} prompts lost their oldest turns to fit the model's context).

| metric | generated | gold reply |
|---|---:|---:|
| BLEU (corpus, sacrebleu) | {gen['bleu']:.2f} | |
| ROUGE-L F1 (mean, x100) | {gen['rouge_l']:.2f} | |
| adherence: targets included | {adh['include']:.3f} | {gold['include']:.3f} |
| adherence: exact match | {adh['exact']:.3f} | {gold['exact']:.3f} |
| adherence: share of targets used | {adh['target_recall']:.3f} | {gold['target_recall']:.3f} |

Adherence is judged by the classifier above: a reply *includes* its targets when every target
strategy is among the predicted ones, matches *exactly* when the predicted set equals the targets,
and *share of targets used* averages |predicted & targets| / |targets|. The gold-reply column
applies the same classifier to the human replies: the most the classifier lets a model reach.
Replies, targets and predictions: `tables/generations.csv`.

## 3. Strategy usage ({metrics['usage']['utterances']} utterances, each counted once)

![strategy usage](plots/strategy_usage.png)

![strategy co-occurrence](plots/strategy_cooccurrence.png)

![strategy use by position](plots/strategy_by_position.png)

Tables: `tables/strategy_usage.csv`, `tables/strategy_cooccurrence.csv`, `tables/strategy_by_position.csv`.
"""
