"""A local instruction-tuned (decoder-only) model prompted to translate.

Each request becomes the instruction of :func:`~.base.build_prompt` (``prompt_template``; by
default "Translate the following text from English to German. Reply with the translation only.
<blank line> <text>"). When the tokenizer has a chat template (``use_chat_template=None``: when it
has one) the instruction is sent as one user turn with the generation prompt appended; otherwise
the plain instruction followed by a blank line is the prompt. Batches are left-padded, decoding is
greedy (deterministic), and only the generated tokens are decoded (the prompt is cut off), with
special tokens dropped and surrounding whitespace stripped.

The model is loaded from a local directory only (``local_files_only=True``), lazily on the first
batch. Requests in one call are sorted by length for batching and returned in request order.
``model_version`` = fingerprint of the model files + fingerprint of the prompt template, chat
template use, ``max_new_tokens`` and dtype. Failure modes: a missing directory
(``FileNotFoundError``), a language code without an English name
(:class:`~.base.UnsupportedLanguageError`). Needs the ``models`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import (
    DTYPES,
    LANGUAGE_NAMES,
    PROMPT_TEMPLATE,
    TranslationRequest,
    build_prompt,
    check_languages,
    fingerprint_model_dir,
    fingerprint_settings,
    length_order,
    require_model_dir,
    resolve_device,
    torch_dtype,
)


class CausalBackend:
    """Translation by prompting a local instruction model (see the module docstring)."""

    name = "causal"

    def __init__(
        self,
        model_dir: Path | str,
        *,
        device: str = "auto",
        batch_size: int = 8,
        max_new_tokens: int = 256,
        prompt_template: str = PROMPT_TEMPLATE,
        use_chat_template: bool | None = None,
        dtype: str = "float32",
        model_name: str | None = None,
    ) -> None:
        self.model_dir = require_model_dir(model_dir, "causal")
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir} has no config.json: not a model directory")
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be at least 1")
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
        for field in ("{source}", "{target}", "{text}"):
            if field not in prompt_template:
                raise ValueError(f"prompt_template must contain {field}")
        self.model = model_name or self.model_dir.name
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.prompt_template = prompt_template
        self.use_chat_template = use_chat_template
        self.dtype = dtype
        settings = {
            "prompt_template": prompt_template,
            "use_chat_template": use_chat_template,
            "max_new_tokens": max_new_tokens,
            "dtype": dtype,
        }
        self._model_version = f"{fingerprint_model_dir(self.model_dir)}-{fingerprint_settings(settings)}"
        self._tokenizer: Any = None
        self._model: Any = None
        self.generate_calls = 0  # model.generate calls so far (for tests and benchmarks)

    @property
    def model_version(self) -> str:
        return self._model_version

    def __repr__(self) -> str:
        return f"CausalBackend({str(self.model_dir)!r}, device={self.device!r})"

    def build_prompt(self, request: TranslationRequest) -> str:
        """The exact text given to the model for one request (chat template applied when used)."""
        tokenizer, _ = self._load()
        instruction = build_prompt(request, self.prompt_template)
        if self._uses_chat(tokenizer):
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": instruction}], add_generation_prompt=True, tokenize=False
            )
        return instruction + "\n\n"

    def translate_batch(self, requests: Sequence[TranslationRequest]) -> list[str | None]:
        """One output per request, in order (the prompt and surrounding whitespace removed)."""
        check_languages(requests, LANGUAGE_NAMES, "causal")
        prompts = [self.build_prompt(request) for request in requests]
        outputs: list[str | None] = [None] * len(requests)
        order = length_order(prompts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for index, text in zip(chunk, self._generate([prompts[i] for i in chunk])):
                outputs[index] = text
        return outputs

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            tokenizer.padding_side = "left"  # generation continues at the right edge
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(
                self.model_dir, local_files_only=True, dtype=torch_dtype(self.dtype)
            )
            model.to(self.device).eval()
            self._tokenizer, self._model = tokenizer, model
        return self._tokenizer, self._model

    def _generate(self, prompts: list[str]) -> list[str]:
        import torch

        tokenizer, model = self._load()
        # Chat templates write their own special tokens; a plain prompt gets the tokenizer's (BOS).
        chat = self._uses_chat(tokenizer)
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not chat)
        inputs = {name: encoded[name].to(self.device) for name in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            generated = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=tokenizer.pad_token_id,
            )
        self.generate_calls += 1
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def _uses_chat(self, tokenizer: Any) -> bool:
        return self.use_chat_template if self.use_chat_template is not None else bool(tokenizer.chat_template)
