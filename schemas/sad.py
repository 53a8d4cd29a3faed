"""SAD (Strategic Argumentative Dialogue) tables: utterances, dialogues, topics.

Utterances are stored once and referenced by their Reddit id (``t3_`` for the submission that
opens a topic, ``t1_`` for comments). A dialogue (one example) is a chain of utterance ids whose
last element is the target reply. Author names never leave the workspace: released rows carry the
speaker's role only.
"""

from __future__ import annotations

from schemas.table import Column, Float, Int, Label, ListOf, String, StructOf, Table

STRATEGIES: tuple[str, ...] = ("Question", "Causality", "Example", "Analogy", "Statement")
STANCE = Label(names=("oppose", "support"))  # OP = 1 (supports the topic), challenger = 0
SPEAKER = Label(names=("challenger", "op"))
STRATEGY = Label(names=STRATEGIES)
SPLITS: tuple[str, ...] = ("train", "validation", "test")

SUGGESTION_SCORES = StructOf(fields=tuple((s.lower(), Float()) for s in STRATEGIES))

UTTERANCES = Table(
    name="utterances",
    primary_key="utterance_id",
    description="Every utterance used by at least one dialogue, stored once.",
    columns=(
        Column("utterance_id", String(), "Reddit id with kind prefix: t3_ (submission) or t1_ (comment).", unique=True),
        Column("submission_id", String(), "Id (t3_...) of the submission whose tree holds the utterance."),
        Column("parent_id", String(), "Id of the utterance replied to; null for the submission.", nullable=True),
        Column("speaker", SPEAKER, "Role of the author in the dialogue: op or challenger."),
        Column("stance", STANCE, "Stance towards the topic: OP supports (1), a challenger opposes (0)."),
        Column("text", String(), "Cleaned text (see the construction rules in the card)."),
        Column("n_words", Int(32), "Whitespace-separated tokens of the cleaned text.", min_value=10),
        Column("depth", Int(32), "0 for the submission, 1 for a top-level comment, and so on.", min_value=0),
        Column("created_utc", Int(64), "Creation time, Unix seconds (UTC); null when the source lacks it.", nullable=True),
        Column("split", String(), "train, validation or test (by topic).", allowed=SPLITS),
        Column(
            "strategies",
            ListOf(STRATEGY),
            "Argument strategies assigned by people; null until the utterance is labelled.",
            nullable=True,
        ),
        Column("strategies_source", String(), "Where the human labels come from; null when unlabelled.", nullable=True),
        Column("suggested_strategies", ListOf(STRATEGY), "Machine suggestion (never a human label)."),
        Column("suggestion_scores", SUGGESTION_SCORES, "Score in [0, 1] per strategy from the suggester."),
        Column("suggestion_source", String(), "Name and version of the suggester."),
        Column("author", String(), "Reddit author name: workspace only, never released.", released=False),
    ),
)

HISTORY_TURN = StructOf(fields=(("stance", STANCE), ("text", String())))

DIALOGUES = Table(
    name="dialogues",
    primary_key="example_id",
    description="One example per maximal OP/challenger chain; the last utterance is the target.",
    columns=(
        Column("example_id", String(), "Id of the example: the id of its target utterance.", unique=True),
        Column("submission_id", String(), "Id (t3_...) of the submission (topic) of the dialogue."),
        Column("topic", String(), "Submission title without the CMV prefix."),
        Column("split", String(), "train, validation or test (by topic).", allowed=SPLITS),
        Column("context_ids", ListOf(String()), "Utterance ids from the submission to the target (last)."),
        Column("history", ListOf(HISTORY_TURN), "Turns before the target: stance and text of each."),
        Column("target_id", String(), "Utterance id of the target (the last context id)."),
        Column("target_text", String(), "Text of the target utterance."),
        Column("target_stance", STANCE, "Stance of the target utterance."),
        Column(
            "target_strategies",
            ListOf(STRATEGY),
            "Human strategy labels of the target; null until labelled.",
            nullable=True,
        ),
        Column("target_suggested_strategies", ListOf(STRATEGY), "Machine-suggested strategies of the target."),
        Column("n_turns", Int(32), "Number of utterances in the context (>= 3).", min_value=3),
    ),
)

TOPICS = Table(
    name="topics",
    primary_key="submission_id",
    description="One row per submission that yields at least one dialogue.",
    columns=(
        Column("submission_id", String(), "Id (t3_...) of the submission.", unique=True),
        Column("topic", String(), "Submission title without the CMV prefix."),
        Column("topic_key", String(), "Casefolded topic: submissions sharing it share a split."),
        Column("split", String(), "train, validation or test.", allowed=SPLITS),
        Column("n_dialogues", Int(32), "Dialogues built from this submission.", min_value=1),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (UTTERANCES, DIALOGUES, TOPICS)}
# The release publishes these tables as `datasets` configs.
RELEASE_CONFIGS: tuple[str, ...] = ("dialogues", "utterances")
