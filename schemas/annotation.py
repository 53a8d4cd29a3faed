"""Merged human labels: what the annotation layer hands to a pipeline's next build.

One row per item (``annotation.merge``); ``answers`` and ``votes`` are JSON objects keyed by the
recipe's question names, so one layout serves every recipe.
"""

from __future__ import annotations

from schemas.table import Column, Float, Int, ListOf, String, Table

LABEL_SOURCES = ("majority", "adjudicated", "gold")

LABELS = Table(
    name="labels",
    primary_key="item_id",
    description="Merged human labels with their provenance.",
    columns=(
        Column("item_id", String(), "Id of the labelled item (SAD: the example id, i.e. the target utterance id).", unique=True),
        Column("answers", String(), "JSON object: question -> merged answer."),
        Column("votes", String(), "JSON object: question -> answer -> number of annotators giving it."),
        Column("annotators", ListOf(String()), "Who answered (e-mail or user name)."),
        Column("n_annotators", Int(32), "Number of annotators.", min_value=0),
        Column("agreement", Float(), "Share of annotators agreeing with the merged answer, averaged over questions."),
        Column("source", String(), "majority, adjudicated or gold.", allowed=LABEL_SOURCES),
        Column("adjudicator", String(), "Who decided, for adjudicated items.", nullable=True),
    ),
)
