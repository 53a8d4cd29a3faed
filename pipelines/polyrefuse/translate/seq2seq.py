"""Local encoder-decoder translation models: Marian (opus-mt), NLLB-200 and M2M100.

Models are loaded from local directories only (``local_files_only=True``; nothing is downloaded),
lazily on the first batch that needs them, so that a run served entirely from the cache never
loads a model. Decoding is deterministic (greedy by default; ``num_beams`` > 1 is beam search,
still deterministic).

Layouts (``model_dir``):

* ``nllb`` / ``m2m100``: one multilingual model directory. The source language is set on the
  tokenizer (``src_lang``) and the target language is forced as the first generated token
  (``forced_bos_token_id``); codes come from :data:`~.base.NLLB_CODES` / :data:`~.base.M2M100_CODES`.
* ``marian``: one model per language pair. Either a root directory holding one model directory per
  pair, named ``<src>-<tgt>`` (e.g. ``marian/en-de``; ``opus-mt-en-de`` also works), or a single pair
  directory whose tokenizer declares ``source_lang``/``target_lang`` (as the opus-mt releases do)
  or whose name ends in ``<src>-<tgt>``. Only one pair's model is held in memory at a time.
  Multi-target models get their target token (``>>deu<<``...) from :data:`~.base.MARIAN_TARGET_TOKENS`.
* ``auto``: decided from ``config.json`` (``model_type``) and the tokenizer class.

Within a call of :meth:`Seq2SeqBackend.translate_batch`, requests are grouped by language pair and
sorted by length (less padding), generated in batches of ``batch_size`` and returned in request
order. ``model_version`` = fingerprint of the model files + fingerprint of the decoding settings.
Failure modes: a missing directory (``FileNotFoundError``), an unknown language code or one the
model's tokenizer lacks (:class:`~.base.UnsupportedLanguageError`), a text longer than the model's
positions (:class:`~.base.BackendError`). Needs the ``models`` extra (torch, transformers,
sentencepiece for Marian/M2M100).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from .base import (
    DTYPES,
    LANGUAGE_NAMES,
    M2M100_CODES,
    MARIAN_TARGET_TOKENS,
    NLLB_CODES,
    BackendError,
    TranslationRequest,
    UnsupportedLanguageError,
    check_languages,
    fingerprint_model_dir,
    fingerprint_settings,
    language_code,
    length_order,
    require_model_dir,
    resolve_device,
    torch_dtype,
)

Kind = Literal["marian", "nllb", "m2m100", "auto"]
KINDS = ("marian", "nllb", "m2m100")
_CODE_TABLES = {"marian": LANGUAGE_NAMES, "nllb": NLLB_CODES, "m2m100": M2M100_CODES}
_PAIR_NAME = re.compile(r"(?:^|[-_])([a-z]{2,3})-([a-z]{2,3})$")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def detect_kind(model_dir: Path) -> str:
    """ "marian", "nllb" or "m2m100" for a model directory (or a Marian root of pair directories)."""
    config = _read_json(model_dir / "config.json")
    if not config:
        if any((sub / "config.json").is_file() for sub in model_dir.iterdir() if sub.is_dir()):
            return "marian"  # the root layout: one directory per language pair
        raise FileNotFoundError(f"{model_dir} has no config.json (and no model subdirectories): not a model directory")
    model_type = config.get("model_type", "")
    tokenizer_class = str(_read_json(model_dir / "tokenizer_config.json").get("tokenizer_class", ""))
    if model_type == "marian":
        return "marian"
    if model_type in ("m2m_100", "nllb-moe"):
        return "nllb" if "nllb" in tokenizer_class.lower() or model_type == "nllb-moe" else "m2m100"
    raise ValueError(
        f"cannot tell which kind of translation model {model_dir} holds (model_type {model_type!r}, "
        f"tokenizer {tokenizer_class!r}); pass kind= one of {', '.join(KINDS)}"
    )


def _declared_pair(pair_dir: Path) -> tuple[str, str] | None:
    """The pair of a single Marian directory: its name when that names two of our languages, else
    what its tokenizer declares (opus-mt releases write source_lang/target_lang), else its name."""
    match = _PAIR_NAME.search(pair_dir.name)
    named = (match.group(1), match.group(2)) if match else None
    if named and all(code in LANGUAGE_NAMES for code in named):
        return named
    tokenizer_config = _read_json(pair_dir / "tokenizer_config.json")
    source, target = tokenizer_config.get("source_lang"), tokenizer_config.get("target_lang")
    if isinstance(source, str) and isinstance(target, str) and source and target:
        return source, target
    return named


def marian_pairs(model_dir: Path) -> dict[tuple[str, str], Path]:
    """(source, target) -> model directory, for a single pair directory or a root of pair directories."""
    if (model_dir / "config.json").is_file():
        pair = _declared_pair(model_dir)
        if pair is None:
            raise ValueError(
                f"cannot tell which language pair the Marian model in {model_dir} translates: its tokenizer "
                "declares no source_lang/target_lang and its name does not end in <src>-<tgt>; rename it "
                "(e.g. en-de) or put it in a root directory as <root>/en-de"
            )
        return {pair: model_dir}
    pairs: dict[tuple[str, str], Path] = {}
    for sub in sorted(model_dir.iterdir()):
        if sub.is_dir() and (sub / "config.json").is_file():
            match = _PAIR_NAME.search(sub.name)
            if match:
                pairs[(match.group(1), match.group(2))] = sub
    if not pairs:
        raise FileNotFoundError(f"{model_dir} holds no Marian model directories named <src>-<tgt> (e.g. en-de)")
    return pairs


class Seq2SeqBackend:
    """Translation with a local encoder-decoder model (see the module docstring for layouts)."""

    name = "seq2seq"

    def __init__(
        self,
        model_dir: Path | str,
        *,
        kind: Kind = "auto",
        device: str = "auto",
        batch_size: int = 16,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        dtype: str = "float32",
        model_name: str | None = None,
    ) -> None:
        self.model_dir = require_model_dir(model_dir, "seq2seq")
        if kind != "auto" and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of auto, {', '.join(KINDS)}")
        if batch_size < 1 or max_new_tokens < 1 or num_beams < 1:
            raise ValueError("batch_size, max_new_tokens and num_beams must be at least 1")
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
        self.kind = detect_kind(self.model_dir) if kind == "auto" else kind
        self.pairs = marian_pairs(self.model_dir) if self.kind == "marian" else {}
        if self.kind != "marian" and not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir} has no config.json: not a {self.kind} model directory")
        self.model = model_name or self.model_dir.name
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.dtype = dtype
        settings = {"kind": self.kind, "max_new_tokens": max_new_tokens, "num_beams": num_beams, "dtype": dtype}
        self._model_version = f"{fingerprint_model_dir(self.model_dir)}-{fingerprint_settings(settings)}"
        self._loaded: tuple[Path, Any, Any] | None = None
        self.generate_calls = 0  # model.generate calls so far (for tests and benchmarks)

    @property
    def model_version(self) -> str:
        return self._model_version

    def __repr__(self) -> str:
        return f"Seq2SeqBackend({str(self.model_dir)!r}, kind={self.kind!r}, device={self.device!r})"

    # ----------------------------------------------------------------------- public

    def translate_batch(self, requests: Sequence[TranslationRequest]) -> list[str | None]:
        """One output per request, in order. Languages are checked before any model is loaded."""
        table = _CODE_TABLES[self.kind]
        check_languages(requests, table, f"seq2seq ({self.kind})")
        by_pair: dict[tuple[str, str], list[int]] = {}
        for index, request in enumerate(requests):
            by_pair.setdefault((request.source_lang, request.target_lang), []).append(index)
        if self.kind == "marian":
            missing = [pair for pair in by_pair if pair not in self.pairs]
            if missing:
                have = ", ".join(f"{s}-{t}" for s, t in sorted(self.pairs))
                raise UnsupportedLanguageError(
                    f"no Marian model for {', '.join(f'{s}-{t}' for s, t in missing)} in {self.model_dir}; "
                    f"supported pairs: {have}"
                )

        outputs: list[str | None] = [None] * len(requests)
        for (source, target), indices in by_pair.items():
            tokenizer, model = self._load((source, target))
            prefix, forced_bos = self._prepare_languages(tokenizer, source, target)
            texts = [prefix + requests[i].text for i in indices]
            order = length_order(texts)
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                decoded = self._generate(
                    tokenizer, model, [texts[i] for i in chunk], forced_bos, [requests[indices[i]].key for i in chunk]
                )
                for position, text in zip(chunk, decoded):
                    outputs[indices[position]] = text
        return outputs

    # ----------------------------------------------------------------------- internals

    def _load(self, pair: tuple[str, str]) -> tuple[Any, Any]:
        path = self.pairs[pair] if self.kind == "marian" else self.model_dir
        if self._loaded is not None and self._loaded[0] == path:
            return self._loaded[1], self._loaded[2]
        self._loaded = None  # free the previous pair's model before loading the next
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype(self.dtype))
        model.to(self.device).eval()
        self._loaded = (path, tokenizer, model)
        return tokenizer, model

    def _prepare_languages(self, tokenizer: Any, source: str, target: str) -> tuple[str, int | None]:
        """(text prefix, forced first token id) for a pair; sets the tokenizer's source language."""
        if self.kind == "nllb":
            source_code, target_code = NLLB_CODES[source], NLLB_CODES[target]
            for code in (source_code, target_code):
                if tokenizer.convert_tokens_to_ids(code) in (None, tokenizer.unk_token_id):
                    raise UnsupportedLanguageError(
                        f"the NLLB tokenizer in {self.model_dir} has no language token {code!r}"
                    )
            tokenizer.src_lang = source_code
            return "", tokenizer.convert_tokens_to_ids(target_code)
        if self.kind == "m2m100":
            known = getattr(tokenizer, "lang_code_to_token", {})
            for code in (M2M100_CODES[source], M2M100_CODES[target]):
                if code not in known:
                    raise UnsupportedLanguageError(
                        f"the M2M100 tokenizer in {self.model_dir} has no language code {code!r}; "
                        f"it knows: {', '.join(sorted(known))}"
                    )
            tokenizer.src_lang = M2M100_CODES[source]
            return "", tokenizer.get_lang_id(M2M100_CODES[target])
        supported = getattr(tokenizer, "supported_language_codes", None) or []
        if not supported:
            return "", None
        token = language_code(target, MARIAN_TARGET_TOKENS, "seq2seq (marian)")
        if token not in supported:
            raise UnsupportedLanguageError(
                f"the multi-target Marian model for {source}-{target} has no target token {token}; "
                f"it knows: {', '.join(supported)}"
            )
        return token + " ", None

    def _generate(
        self, tokenizer: Any, model: Any, texts: list[str], forced_bos: int | None, keys: list[str]
    ) -> list[str]:
        import torch

        encoded = tokenizer(texts, return_tensors="pt", padding=True)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and encoded["input_ids"].shape[1] > limit:
            lengths = encoded["attention_mask"].sum(dim=1).tolist()
            too_long = [f"{key} ({n} tokens)" for key, n in zip(keys, lengths) if n > limit]
            raise BackendError(
                f"{', '.join(too_long)}: longer than the {limit} tokens the model in {self.model_dir} reads; "
                "split such texts before translating"
            )
        inputs = {name: encoded[name].to(self.device) for name in ("input_ids", "attention_mask")}
        # The decoder cannot go past its positions (the decoder start token takes one).
        max_new = min(self.max_new_tokens, limit - 1) if limit else self.max_new_tokens
        options: dict[str, Any] = {"max_new_tokens": max_new, "num_beams": self.num_beams, "do_sample": False}
        if forced_bos is not None:
            options["forced_bos_token_id"] = forced_bos
        with torch.inference_mode():
            generated = model.generate(**inputs, **options)
        self.generate_calls += 1
        return [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
