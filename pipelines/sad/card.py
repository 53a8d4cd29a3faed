"""The prose of the SAD dataset card: description and construction rules with their settings."""

from __future__ import annotations

from pipelines.sad.settings import SadSettings
from schemas.sad import STRATEGIES

TITLE = "SAD: Strategic Argumentative Dialogues"
SUMMARY = (
    "Multi-turn argumentative dialogues between the original poster (OP) and challengers, mined "
    "from r/ChangeMyView discussion trees. Each utterance carries a stance towards the topic and "
    "argument-strategy labels (Question, Causality, Example, Analogy, Statement)."
)
LICENSE_NOTE = (
    "Research, non-commercial use only. Texts are Reddit user content; author names are not "
    "released (each utterance carries its speaker's role only)."
)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def human_labels_section(human: dict | None) -> str:
    """The card's account of human labels: how many, from where, and the measured agreement."""
    if not human or not human.get("utterances"):
        return "\n## Human labels\n\nNo utterance carries human strategy labels in this release (only suggestions).\n"
    sources = ", ".join(f"{k} {v:,}" for k, v in sorted(human.get("by_source", {}).items()))
    lines = [
        "", "## Human labels", "",
        f"{human['utterances']:,} of {human['of_utterances']:,} utterances ({human['dialogue_targets']:,} dialogue targets) carry "
        f"strategy labels merged from human annotation ({sources}).",
    ]
    merge = human.get("merge") or {}
    if merge.get("policy"):
        lines.append(f"Merge policy: {merge['policy']}.")
    agreement = human.get("agreement")
    if agreement:
        lines += [
            "", f"Agreement over {agreement.get('items') or 0:,} items with at least two of {agreement.get('annotators') or 0} annotators "
            "(Krippendorff's alpha; >= 0.8 reliable, 0.667-0.8 tentative):", "",
            "| measure | value |", "|---|---|",
            f"| strategies, label sets (MASI) | {_fmt(agreement.get('strategies_alpha_masi'))} |",
            *[f"| strategy {k} (binary) | {_fmt(v)} |" for k, v in (agreement.get("strategies_alpha_per_label") or {}).items()],
            f"| stance (alpha) | {_fmt(agreement.get('stance_alpha'))} |",
            f"| stance (Fleiss' kappa) | {_fmt(agreement.get('stance_fleiss_kappa'))} |",
        ]
    return "\n".join(lines) + "\n"


def card_body(settings: SadSettings, source_kind: str, human: dict | None = None) -> str:
    r, s = settings.rules, settings.splits
    source = (
        "Pushshift-style r/ChangeMyView dumps (submissions and comments)"
        if source_kind == "reddit"
        else "the published SAD release files (`sent.json`, `argument.json`)"
    )
    return f"""## Description

Each example of the `dialogues` config is a chain of utterances from one CMV discussion tree,
alternating between the original poster (OP) and one challenger; the last utterance is the
target reply. Utterances are stored once in the `utterances` config and referenced by their
Reddit ids (`t3_` for the submission, `t1_` for comments), so examples share history prefixes.

Built from {source} by corpusforge.

## Construction rules

- **Subreddit**: `{r.subreddit}` (case-insensitive).
- **Topic**: the submission title without a leading `CMV:`/`CMV -` (pattern `{r.topic_prefix_pattern}`),
  HTML entities unescaped: {r.unescape_title_entities}, whitespace collapsed.
- **Root utterance**: the submission's selftext, spoken by OP; moderators' footnote (everything from the
  last line made only of at least {r.footnote_min_underscores} underscores) removed: {r.strip_footnote}.
- **Cleaning** of every utterance, in order: HTML entities unescaped ({r.unescape_html}); lines whose
  first non-blank character is `>` removed ({r.drop_quote_lines}); URLs replaced by
  `{r.url_placeholder}`; whitespace collapsed. Words are whitespace-separated tokens of the result.
- **Invalid utterances**: text {", ".join(f"`{t}`" for t in r.invalid_texts)} or empty; author
  `{r.deleted_author}`; bots {", ".join(f"`{b}`" for b in r.bots)}; distinguished as
  {", ".join(f"`{d}`" for d in r.invalid_distinguished)}; fewer than {r.min_words} words.
  An invalid node ends the branch before it; its subtree is not used.
- **Dialogues**: root (OP) -> top-level comment by a challenger X != OP -> reply by OP -> reply by X ...;
  every valid child by the expected speaker continues its own branch. One example per maximal chain
  of at least {r.min_utterances} utterances; the last utterance is the target.
- **Stance**: OP = 1 (`support`), challenger = 0 (`oppose`).
- **Strategies**: `strategies` / `target_strategies` hold labels given by people (null until labelled);
  `suggested_strategies` are rule-based suggestions (source in `suggestion_source`), not labels.
  Label names: {", ".join(STRATEGIES)}.
- **Splits** by topic: submissions with the same lowercased topic form a group; SHA-256 of
  `"{s.salt}:<smallest submission id>"` assigns the group to train/validation/test
  ({s.train:.0%}/{s.validation:.0%}/{s.test:.0%}). No topic is in two splits.
""" + human_labels_section(human)
