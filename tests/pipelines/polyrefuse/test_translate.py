"""PolyRefuse translation backends: the cached, resumable loop, the local models, the HTTP client.

The local-model tests use tiny random models (Marian, NLLB, M2M100, Llama) built offline, once per
session (about 1 s), by ``tiny_models`` (see there how). Their weights are drawn with std 1.0
(instead of 0.02) so that different inputs give different (garbage) outputs: these tests check
mechanics (batching, order, caching, resume, versions, failures), never translation quality. The
HTTP tests run a real server on 127.0.0.1 (``openai_stub``). Nothing is downloaded
(tests/conftest.py sets HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.core.progress import Progress
from pipelines.polyrefuse.checks import LANGUAGES
from pipelines.polyrefuse.translate import (
    LANGUAGE_NAMES,
    M2M100_CODES,
    NLLB_CODES,
    BackendError,
    BackendUnreachableError,
    CausalBackend,
    HttpBackend,
    Seq2SeqBackend,
    TranslationCache,
    TranslationRequest,
    UnsupportedLanguageError,
    cache_key,
    language_code,
    translate_all,
)
from pipelines.polyrefuse.translate.seq2seq import detect_kind
from tests.pipelines.polyrefuse.openai_stub import OpenAIStub, fake_translation, undo_fake_translation
from tests.pipelines.polyrefuse.tiny_models import (
    TEXTS,
    build_llama,
    build_m2m100,
    build_marian,
    build_nllb,
    train_sentencepiece,
)

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")


def make_requests(texts: Sequence[str] = TEXTS, source: str = "en", target: str = "de") -> list[TranslationRequest]:
    return [TranslationRequest(f"p{i}:{target}", text, source, target) for i, text in enumerate(texts)]


# --------------------------------------------------------------------------- test backends


class FakeBackend:
    """Reverses the text; "<empty>" in a text gives "", "<none>" gives None."""

    name = "fake"
    model = "reverser"

    def __init__(self, version: str = "v1") -> None:
        self.model_version = version
        self.calls: list[list[str]] = []

    def translate_batch(self, requests: Sequence[TranslationRequest]) -> list[str | None]:
        self.calls.append([r.key for r in requests])
        out: list[str | None] = []
        for request in requests:
            if "<empty>" in request.text:
                out.append("  ")
            elif "<none>" in request.text:
                out.append(None)
            else:
                out.append(request.text[::-1])
        return out


class CountingBackend:
    """Wraps a backend, counts its batches, and raises on batch number ``crash_on`` (1-based)."""

    def __init__(self, inner, crash_on: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.crash_on = crash_on
        self.batch_sizes: list[int] = []

    @property
    def model_version(self) -> str:
        return self.inner.model_version

    def translate_batch(self, requests):
        self.batch_sizes.append(len(requests))
        if self.crash_on == len(self.batch_sizes):
            raise RuntimeError("simulated crash")
        return self.inner.translate_batch(requests)


class RecordingProgress(Progress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def step_started(self, step, total, unit):
        self.events.append(("start", step, total))

    def advance(self, step, n=1):
        self.events.append(("advance", n))

    def step_finished(self, step, skipped, stats):
        self.events.append(("finish", stats))


# --------------------------------------------------------------------------- languages


def test_language_tables_cover_polyrefuse_languages():
    assert set(LANGUAGE_NAMES) == set(LANGUAGES)
    assert set(NLLB_CODES) == set(LANGUAGES) == set(M2M100_CODES)
    pytest.importorskip("transformers")
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB

    assert set(NLLB_CODES.values()) <= set(NLLB)
    assert set(M2M100_CODES.values()) <= set(M2M["m2m100"])


def test_unknown_language_names_the_code_and_the_supported_ones():
    with pytest.raises(UnsupportedLanguageError) as error:
        language_code("xx", NLLB_CODES, "seq2seq (nllb)")
    message = str(error.value)
    assert "'xx'" in message and "nllb" in message
    assert "ar, de, en, es" in message and "yo" in message
    assert isinstance(error.value, ValueError)


# --------------------------------------------------------------------------- cache and loop


def test_batches_keep_request_order_and_counts(tmp_path):
    backend = FakeBackend()
    progress = RecordingProgress()
    with TranslationCache(tmp_path / "cache.sqlite") as cache:
        report = translate_all(make_requests(), backend, cache, batch_size=4, progress=progress)
    assert [len(call) for call in backend.calls] == [4, 4, 2]
    assert [t.key for t in report.translations] == [r.key for r in make_requests()]
    assert [t.text for t in report.translations] == [text[::-1] for text in TEXTS]
    assert (report.cached, report.translated, report.failed, report.backend_calls) == (0, 10, 0, 3)
    assert all(t.backend == "fake" and t.model == "reverser" and t.model_version == "v1" for t in report.translations)
    assert progress.events[0] == ("start", "translate:fake", 10)
    assert sum(e[1] for e in progress.events if e[0] == "advance") == 10
    assert progress.events[-1] == ("finish", {"cached": 0, "translated": 10, "failed": 0})


def test_second_run_is_served_from_the_cache(tmp_path):
    path = tmp_path / "cache.sqlite"
    with TranslationCache(path) as cache:
        first = translate_all(make_requests(), FakeBackend(), cache, batch_size=3)
    backend = FakeBackend()
    with TranslationCache(path) as cache:  # reopened: the cache persists
        second = translate_all(make_requests(), backend, cache, batch_size=3)
    assert backend.calls == []
    assert (second.cached, second.translated, second.backend_calls) == (10, 0, 0)
    assert [t.text for t in second.translations] == [t.text for t in first.translations]
    assert all(t.cached for t in second.translations) and not any(t.cached for t in first.translations)
    # Another model version is another cache entry.
    with TranslationCache(path) as cache:
        third = translate_all(make_requests(), FakeBackend(version="v2"), cache, batch_size=3)
    assert third.cached == 0 and third.translated == 10


def test_resume_after_a_crash_translates_only_what_is_missing(tmp_path):
    path = tmp_path / "cache.sqlite"
    crashing = CountingBackend(FakeBackend(), crash_on=3)
    with TranslationCache(path) as cache, pytest.raises(RuntimeError, match="simulated crash"):
        translate_all(make_requests(), crashing, cache, batch_size=4)
    assert crashing.batch_sizes == [4, 4, 2]
    with TranslationCache(path) as cache:
        assert len(cache) == 8  # two committed batches; the one in flight is lost
    resumed = CountingBackend(FakeBackend())
    with TranslationCache(path) as cache:
        report = translate_all(make_requests(), resumed, cache, batch_size=4)
    assert resumed.batch_sizes == [2]
    assert (report.cached, report.translated) == (8, 2)
    assert [t.text for t in report.translations] == [text[::-1] for text in TEXTS]


def test_duplicate_texts_are_sent_once(tmp_path):
    requests = make_requests(["same text", "other", "same text"])
    backend = FakeBackend()
    report = translate_all(requests, backend, None, batch_size=10)
    assert backend.calls == [["p0:de", "p1:de"]]
    assert report.texts_sent == 2 and report.translated == 3
    assert [t.key for t in report.translations] == ["p0:de", "p1:de", "p2:de"]
    assert report.translations[2].text == "txet emas"


def test_empty_outputs_are_failures_and_not_cached(tmp_path):
    requests = make_requests(["fine", "gives <empty>", "gives <none>", "   "])
    with TranslationCache(tmp_path / "c.sqlite") as cache:
        report = translate_all(requests, FakeBackend(), cache, batch_size=2)
        assert [t.text for t in report.translations] == ["enif", "  ", None, "   "]  # returned as-is
        assert [(f.key, f.reason) for f in report.failures] == [
            ("p1:de", "empty"),
            ("p2:de", "empty"),
            ("p3:de", "empty_source"),
        ]
        assert (report.translated, report.failed, report.texts_sent) == (1, 3, 3)  # blank source not sent
        assert report.failure_reasons == {"empty": 2, "empty_source": 1}
        assert len(cache) == 1
        again = translate_all(requests, FakeBackend(), cache, batch_size=2)
    assert (again.cached, again.failed, again.texts_sent) == (1, 3, 2)  # failures are asked again


def test_backend_answering_with_wrong_count_is_an_error():
    class Short(FakeBackend):
        def translate_batch(self, requests):
            return super().translate_batch(requests)[:-1]

    with pytest.raises(BackendError, match="returned 1 outputs for 2 requests"):
        translate_all(make_requests(["a", "b"]), Short(), None, batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        translate_all(make_requests(), FakeBackend(), None, batch_size=0)


def test_cache_key_covers_every_field_and_cache_uses_wal(tmp_path):
    base = ("text", "en", "de", "seq2seq", "m", "v1")
    keys = {cache_key(*base)}
    for position, other in enumerate(("text!", "es", "fr", "causal", "m2", "v2")):
        changed = list(base)
        changed[position] = other
        keys.add(cache_key(*changed))
    assert len(keys) == 7
    with TranslationCache(tmp_path / "sub" / "c.sqlite"):
        pass
    connection = sqlite3.connect(tmp_path / "sub" / "c.sqlite")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


# --------------------------------------------------------------------------- tiny local models


@dataclass(frozen=True)
class TinyModels:
    marian_root: Path  # <root>/en-de
    marian_mute: Path  # a Marian en-de whose first token is always </s>: empty outputs
    nllb: Path
    m2m100: Path
    llama: Path
    llama_plain: Path  # the same model without a chat template


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models on a small CPU: one intra-op thread is about 10x faster than several fighting
    over two cores. Restored when this module is done."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("sentencepiece")
    root = tmp_path_factory.mktemp("tiny-models")
    spm_bytes = train_sentencepiece()
    return TinyModels(
        marian_root=build_marian(root / "marian" / "en-de", spm_bytes, seed=0).parent,
        marian_mute=build_marian(root / "mute" / "en-de", spm_bytes, seed=0, mute=True),
        nllb=build_nllb(root / "nllb", seed=0),
        m2m100=build_m2m100(root / "m2m100", spm_bytes, seed=0),
        llama=build_llama(root / "llama", seed=0),
        llama_plain=build_llama(root / "llama-plain", seed=0, chat_template=False),
    )


def test_seq2seq_kind_is_detected_from_the_directory(tiny, tmp_path):
    assert detect_kind(tiny.marian_root) == "marian"
    assert detect_kind(tiny.marian_root / "en-de") == "marian"
    assert detect_kind(tiny.nllb) == "nllb"
    assert detect_kind(tiny.m2m100) == "m2m100"
    single = Seq2SeqBackend(tiny.marian_root / "en-de", device="cpu")
    assert single.pairs == {("en", "de"): tiny.marian_root / "en-de"}
    renamed = tmp_path / "my-marian"
    shutil.copytree(tiny.marian_root / "en-de", renamed)
    assert Seq2SeqBackend(renamed, device="cpu").pairs == {("en", "de"): renamed}  # declared by its tokenizer


def test_missing_model_directory_says_nothing_is_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        Seq2SeqBackend(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        CausalBackend("facebook/nllb-200-distilled-600M")  # a hub name is not a directory


def test_marian_batch_sizes_agree_and_order_is_restored(tiny):
    requests = make_requests()
    one = Seq2SeqBackend(tiny.marian_root, device="cpu", batch_size=1, max_new_tokens=8)
    four = Seq2SeqBackend(tiny.marian_root, device="cpu", batch_size=4, max_new_tokens=8)
    by_one, by_four = one.translate_batch(requests), four.translate_batch(requests)
    assert by_one == by_four
    assert len(set(by_four)) > 3  # different inputs, different outputs: the order check means something
    assert (one.generate_calls, four.generate_calls) == (10, 3)
    assert all(isinstance(text, str) and text == text.strip() for text in by_four)
    # Reversed input order gives reversed outputs (sorting by length inside is undone).
    assert four.translate_batch(requests[::-1]) == by_four[::-1]


def test_nllb_sets_source_language_and_forces_the_target(tiny, monkeypatch):
    backend = Seq2SeqBackend(tiny.nllb, kind="nllb", device="cpu", batch_size=3, max_new_tokens=6)
    tokenizer, model = backend._load(("en", "de"))
    seen: list[dict] = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: seen.append(kw) or generate(**kw))
    german = backend.translate_batch(make_requests(TEXTS[:4], target="de"))
    french = backend.translate_batch(make_requests(TEXTS[:4], target="fr"))
    assert tokenizer.src_lang == "eng_Latn"
    assert {kw["forced_bos_token_id"] for kw in seen} == {
        tokenizer.convert_tokens_to_ids("deu_Latn"),
        tokenizer.convert_tokens_to_ids("fra_Latn"),
    }
    assert all(kw["do_sample"] is False and kw["num_beams"] == 1 for kw in seen)
    assert german != french
    single = Seq2SeqBackend(tiny.nllb, device="cpu", batch_size=1, max_new_tokens=6)
    assert single.translate_batch(make_requests(TEXTS[:4], target="de")) == german


def test_m2m100_forces_the_target_language(tiny, monkeypatch):
    backend = Seq2SeqBackend(tiny.m2m100, device="cpu", max_new_tokens=5)
    assert backend.kind == "m2m100"
    tokenizer, model = backend._load(("en", "de"))
    seen: list[dict] = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: seen.append(kw) or generate(**kw))
    outputs = backend.translate_batch(make_requests(TEXTS[:3], target="yo"))
    assert len(outputs) == 3 and tokenizer.src_lang == "en"
    assert seen[0]["forced_bos_token_id"] == tokenizer.get_lang_id("yo")


def test_seq2seq_unsupported_languages_fail_before_loading(tiny):
    nllb = Seq2SeqBackend(tiny.nllb, device="cpu")
    with pytest.raises(UnsupportedLanguageError, match=r"'xx'.*supported: ar, de, en"):
        nllb.translate_batch(make_requests(["a"], target="xx"))
    assert nllb._loaded is None  # checked before the model was loaded
    with pytest.raises(UnsupportedLanguageError, match="jpn_Jpan"):  # a known code the tiny tokenizer lacks
        nllb.translate_batch(make_requests(["a"], target="ja"))
    marian = Seq2SeqBackend(tiny.marian_root, device="cpu")
    with pytest.raises(UnsupportedLanguageError, match=r"no Marian model for en-fr .*supported pairs: en-de"):
        marian.translate_batch(make_requests(["a"], target="fr"))


def test_cached_rerun_makes_no_model_call_and_resumes_after_crash(tiny, tmp_path):
    path = tmp_path / "cache.sqlite"
    model = Seq2SeqBackend(tiny.marian_root, device="cpu", batch_size=4, max_new_tokens=6)
    crashing = CountingBackend(model, crash_on=2)
    with TranslationCache(path) as cache, pytest.raises(RuntimeError):
        translate_all(make_requests(), crashing, cache, batch_size=3)
    resumed = CountingBackend(model)
    with TranslationCache(path) as cache:
        report = translate_all(make_requests(), resumed, cache, batch_size=3)
    assert resumed.batch_sizes == [3, 3, 1]  # 3 were committed before the crash
    assert (report.cached, report.translated, report.failed) == (3, 7, 0)

    calls_before = model.generate_calls
    again = CountingBackend(model)
    with TranslationCache(path) as cache:
        second = translate_all(make_requests(), again, cache, batch_size=3)
    assert again.batch_sizes == [] and model.generate_calls == calls_before
    assert second.cached == 10
    assert [t.text for t in second.translations] == model.translate_batch(make_requests())


def test_model_version_is_recorded_and_follows_the_model(tiny, tmp_path):
    backend = Seq2SeqBackend(tiny.marian_root, device="cpu", max_new_tokens=4)
    version = backend.model_version
    report = translate_all(make_requests(TEXTS[:2]), backend, None, batch_size=2)
    assert {t.model_version for t in report.translations} == {version}
    assert {t.model for t in report.translations} == {"marian"} and report.translations[0].backend == "seq2seq"

    copy = tmp_path / "copy"
    shutil.copytree(tiny.marian_root, copy)
    assert Seq2SeqBackend(copy, device="cpu", max_new_tokens=4).model_version == version  # same files
    assert Seq2SeqBackend(copy, device="cpu", max_new_tokens=5).model_version != version  # decoding counts
    (copy / "README.md").write_text("a model card edit does not change outputs")
    assert Seq2SeqBackend(copy, device="cpu", max_new_tokens=4).model_version == version

    retrained = tmp_path / "retrained"
    build_marian(retrained / "en-de", train_sentencepiece(), seed=1)  # same shapes, new weights
    changed = Seq2SeqBackend(retrained, device="cpu", max_new_tokens=4, model_name="marian")
    assert changed.model_version != version
    with TranslationCache(tmp_path / "c.sqlite") as cache:
        translate_all(make_requests(TEXTS[:2]), backend, cache, batch_size=2)
        after = translate_all(make_requests(TEXTS[:2]), changed, cache, batch_size=2)
    assert after.cached == 0 and after.translated == 2


def test_empty_model_output_is_recorded_as_failure(tiny, tmp_path):
    backend = Seq2SeqBackend(tiny.marian_mute.parent, device="cpu", max_new_tokens=5)
    with TranslationCache(tmp_path / "c.sqlite") as cache:
        report = translate_all(make_requests(TEXTS[:3]), backend, cache, batch_size=2)
        assert len(cache) == 0
    assert [t.text for t in report.translations] == ["", "", ""]
    assert report.failure_reasons == {"empty": 3} and report.translated == 0


def test_causal_backend_prompts_batches_and_strips(tiny):
    one = CausalBackend(tiny.llama, device="cpu", batch_size=1, max_new_tokens=6)
    four = CausalBackend(tiny.llama, device="cpu", batch_size=4, max_new_tokens=6)
    requests = make_requests(TEXTS[:6])
    prompt = four.build_prompt(requests[0])
    assert prompt == (
        "<s>user\nTranslate the following text from English to German. Reply with the translation only.\n\n"
        f"{TEXTS[0]}</s>\n<s>assistant\n"
    )
    by_one, by_four = one.translate_batch(requests), four.translate_batch(requests)
    assert by_one == by_four
    assert len(set(by_four)) > 2
    assert all(text == text.strip() and TEXTS[0] not in text for text in by_four)
    assert (one.generate_calls, four.generate_calls) == (6, 2)
    with pytest.raises(UnsupportedLanguageError, match="'xx'"):
        four.translate_batch(make_requests(["a"], target="xx"))


def test_causal_backend_without_chat_template_uses_the_plain_prompt(tiny):
    backend = CausalBackend(tiny.llama_plain, device="cpu", max_new_tokens=4)
    request = make_requests(["Hi"], target="fr")[0]
    assert backend.build_prompt(request) == (
        "Translate the following text from English to French. Reply with the translation only.\n\nHi\n\n"
    )
    assert len(backend.translate_batch([request])) == 1
    custom = CausalBackend(
        tiny.llama_plain, device="cpu", max_new_tokens=4, prompt_template="{source} -> {target}: {text}"
    )
    assert custom.build_prompt(request) == "English -> French: Hi\n\n"
    assert custom.model_version != backend.model_version  # the prompt is part of the version


# --------------------------------------------------------------------------- HTTP backend


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_http_translates_concurrently_in_order(stub):
    backend = HttpBackend(stub.url + "/v1", stub.model_id, concurrency=3, backoff=0)
    requests = make_requests(TEXTS[:4], target="de") + make_requests(TEXTS[4:7], target="ja")
    outputs = backend.translate_batch(requests)
    assert outputs == [fake_translation(r.text, LANGUAGE_NAMES[r.target_lang]) for r in requests]
    assert undo_fake_translation(outputs[4]) == ("Japanese", TEXTS[4])
    bodies = [entry.body for entry in stub.completions()]
    assert len(bodies) == 7
    assert all(b["temperature"] == 0 and b["model"] == stub.model_id and len(b["messages"]) == 1 for b in bodies)
    assert backend.model_version.startswith(f"{stub.model_id}@/models/stub-translator-v1-")
    stub.root = "/models/stub-translator-v2"  # the server now serves other weights
    assert HttpBackend(stub.url, stub.model_id).model_version != backend.model_version


def test_http_empty_content_is_a_failure_and_wrong_language_passes(stub, tmp_path):
    backend = HttpBackend(stub.url, stub.model_id, backoff=0)
    requests = make_requests(["ok", "[[empty]] x", "[[null]] y", "[[english]] z"])
    with TranslationCache(tmp_path / "c.sqlite") as cache:
        report = translate_all(requests, backend, cache, batch_size=4)
    assert [t.text for t in report.translations] == [fake_translation("ok", "German"), "", None, "[[english]] z"]
    assert [(f.key, f.reason) for f in report.failures] == [("p1:de", "empty"), ("p2:de", "empty")]
    assert report.translated == 2  # the untranslated answer is left to the language checks


def test_http_retries_server_errors_and_timeouts(stub):
    backend = HttpBackend(stub.url, stub.model_id, max_retries=2, backoff=0, timeout=0.5)
    text = "[[status=500 times=2]] recovers"
    assert backend.translate_batch(make_requests([text])) == [fake_translation(text, "German")]
    assert len(stub.completions()) == 3
    slow = "[[slow=1.5 times=1]] answers late once"
    assert backend.translate_batch(make_requests([slow])) == [fake_translation(slow, "German")]
    with pytest.raises(BackendError) as error:
        backend.translate_batch(make_requests(["[[status=503]] never"]))
    assert f"{stub.url}/v1/chat/completions failed 3 times" in str(error.value)
    assert "HTTP 503" in str(error.value)
    assert not isinstance(error.value, BackendUnreachableError)


def test_http_unreachable_server_error_names_the_url():
    url = f"http://127.0.0.1:{_closed_port()}"
    backend = HttpBackend(url, "any", max_retries=1, backoff=0, timeout=2)
    with pytest.raises(
        BackendUnreachableError, match=rf"cannot reach the translation server at {url}/v1/chat/completions"
    ):
        backend.translate_batch(make_requests(["hello"]))
    with pytest.raises(BackendUnreachableError, match=rf"{url}/v1/models"):
        translate_all(make_requests(["hello"]), backend, None, batch_size=1)  # model_version asks first


def test_http_api_key_is_sent_but_never_shown(stub, monkeypatch):
    secret = "sk-test-Zq81-very-secret"
    monkeypatch.setenv("CORPUSFORGE_TRANSLATION_API_KEY", secret)
    backend = HttpBackend(stub.url, stub.model_id, backoff=0)
    backend.translate_batch(make_requests(["hello"]))
    assert stub.completions()[-1].authorization == f"Bearer {secret}"
    with pytest.raises(BackendError) as error:
        backend.translate_batch(make_requests(["[[echo_auth]] please"]))
    message = str(error.value)
    assert "HTTP 401" in message and "***" in message and secret not in message
    assert secret not in repr(backend) and secret not in repr(vars(backend))
    unreachable = HttpBackend(f"http://127.0.0.1:{_closed_port()}", "m", max_retries=0)
    with pytest.raises(BackendUnreachableError) as error:
        unreachable.translate_batch(make_requests(["x"]))
    assert secret not in str(error.value)


def test_http_rejects_unknown_languages_before_sending(stub):
    backend = HttpBackend(stub.url, stub.model_id)
    with pytest.raises(UnsupportedLanguageError, match=r"'tlh'.*supported: ar, de"):
        backend.translate_batch(make_requests(["Qapla'"], target="tlh"))
    assert stub.log == []


def _open_cache_when_released(path, barrier) -> None:
    barrier.wait()
    with TranslationCache(path) as cache:
        assert len(cache) == 0


def test_processes_opening_a_new_cache_at_once_all_succeed(tmp_path):
    """Parallel translation tasks create the cache together: switching to WAL takes a lock that
    SQLite's busy timeout does not always wait for (this failed about 1 open in 15 before)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    failed = 0
    for round_no in range(15):
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open_cache_when_released, args=(tmp_path / f"c{round_no}.sqlite", barrier)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        failed += sum(proc.exitcode != 0 for proc in procs)
    assert failed == 0
