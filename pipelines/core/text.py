"""Shared text utilities: exact, engine-neutral definitions of the cleaning rules.

Each pattern here is written so that Python's ``re`` and polars (Rust ``regex``) give the same
result, which lets the vectorised pipeline and the pure-Python reference build agree to the byte:

* whitespace is an explicit character class (the characters ``str.split()`` splits on), because
  ``\\s`` differs between the two engines;
* patterns use no look-around and no backreferences (Rust ``regex`` has neither).
"""

from __future__ import annotations

import html
import re

import polars as pl

# Every character for which str.isspace() is true (what str.split() splits on).
WHITESPACE_CHARS = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_WS_CLASS = "".join(re.escape(ch) if ch in "-\\]^" else ch for ch in WHITESPACE_CHARS)
WS = f"[{_WS_CLASS}]"
NOT_WS = f"[^{_WS_CLASS}]"

# A line whose first non-blank character is ">" (a Markdown quote), removed with its content.
QUOTE_LINE = r"(?m)^[ \t]*>[^\n]*"
# URLs: scheme or www. prefix up to whitespace or a closing bracket/parenthesis (Markdown links).
URL = rf"(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)[^{_WS_CLASS})\]]+"
COLLAPSE = f"{WS}+"


def footnote_pattern(min_underscores: int) -> str:
    """Matches a whole text; group 1 is what precedes the LAST line made only of underscores.

    The greedy ``(.*)`` makes the underscore line the last one; replace the match by group 1.
    """
    return rf"(?s)\A(.*)(?:\A|\n)[ \t\r]*_{{{min_underscores},}}[ \t\r]*(?:\n.*|$)"


def strip_footnote(text: str, min_underscores: int) -> str:
    return re.sub(footnote_pattern(min_underscores), r"\1", text, count=1)


# --------------------------------------------------------------------------- pure Python


def count_words(text: str) -> int:
    """Words of an already collapsed text: tokens separated by single spaces."""
    return 0 if not text else text.count(" ") + 1


def collapse_whitespace(text: str) -> str:
    return re.sub(COLLAPSE, " ", text).strip(" ")


# --------------------------------------------------------------------------- polars


def unescape_html_expr(expr: pl.Expr) -> pl.Expr:
    """``html.unescape`` on the rows that contain an entity; the others pass untouched.

    polars has no HTML decoder; calling Python only on rows containing '&' keeps it cheap.
    """
    return (
        pl.when(expr.str.contains("&", literal=True))
        .then(expr.map_elements(html.unescape, return_dtype=pl.String, skip_nulls=True))
        .otherwise(expr)
    )


def collapse_whitespace_expr(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_all(COLLAPSE, " ").str.strip_chars(" ")


def count_words_expr(expr: pl.Expr) -> pl.Expr:
    return (
        pl.when(expr.str.len_bytes() == 0)
        .then(0)
        .otherwise(expr.str.count_matches(" ", literal=True) + 1)
        .cast(pl.Int32)
    )
