"""Language identification shared by the pipelines: py3langid 0.4.0, batched.

:class:`LanguageDetector` scores many texts in one call (numpy over py3langid's model arrays);
:func:`default_detector` loads it once per process. :func:`language_mismatch` is the check a
pipeline applies to texts that should be in one language (reLAIONet's captions): it flags a text
only when the detector is confident that it is in another language.

Failure modes: py3langid missing or of another version is an ``ImportError`` / ``RuntimeError``
naming ``py3langid==0.4.0``; an expected language the detector does not know is a ``ValueError``
listing the known ones. Nothing is downloaded: the model ships inside the py3langid wheel.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

class LanguageDetector:
    """py3langid 0.4.0 (naive Bayes over byte n-grams, 139 languages; model inside the wheel).

    :meth:`probabilities` scores many texts at once: the byte automaton walks all texts in
    lockstep with numpy and the n-gram counts meet the model in one sparse product, which is
    about 10x faster than scoring text by text. It uses the identifier's model arrays directly, so
    py3langid is pinned (0.4.0); a test checks it against the public :meth:`rank`.
    """

    def __init__(self) -> None:
        try:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Language detection needs py3langid==0.4.0 (its model ships in the wheel; "
                "nothing is downloaded): pip install py3langid==0.4.0"
            ) from exc
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        needed = ("tk_nextmove", "tk_row", "tk_output", "nb_ptc", "nb_pc", "nb_classes", "_alias_pairs", "_encode")
        missing = [name for name in needed if not hasattr(identifier, name)]
        if missing:
            raise RuntimeError(
                f"py3langid's model layout is not the one this module reads (missing {missing}); "
                "install py3langid==0.4.0"
            )
        self._identifier = identifier
        self.labels: tuple[str, ...] = tuple(identifier.nb_classes)
        # A label listed twice (script variants) is folded into its first column.
        self.column_of: dict[str, int] = {}
        for index, label in enumerate(self.labels):
            self.column_of.setdefault(label, index)
        nextmove = identifier.tk_nextmove
        self._nextmove = np.frombuffer(nextmove, dtype=np.dtype(f"u{nextmove.itemsize}"))
        self._rowbase = np.asarray(identifier.tk_row, dtype=np.int64) << 8
        self._output = np.asarray(identifier.tk_output, dtype=np.int64)
        self._ptc = np.asarray(identifier.nb_ptc, dtype=np.float32)
        self._pc = np.asarray(identifier.nb_pc, dtype=np.float32)
        self._alias_pairs = list(identifier._alias_pairs)

    def rank(self, text: str) -> dict[str, float]:
        """Probability per language of one text (py3langid's public API)."""
        return dict(self._identifier.rank(text))

    def probabilities(self, texts: Sequence[str], batch_size: int = 50_000) -> np.ndarray:
        """Probabilities, shape (len(texts), len(self.labels)); columns as :attr:`column_of`."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.concatenate([self._score(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])

    def _score(self, texts: Sequence[str]) -> np.ndarray:
        try:
            import scipy.sparse
        except ImportError as exc:  # pragma: no cover - scipy comes with great-expectations
            raise ImportError("Batched language detection needs scipy: pip install scipy") from exc

        n_classes = len(self.labels)
        encoded = [self._identifier._encode(t) for t in texts]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        order = np.argsort(-lengths, kind="stable")  # longest first: the active texts are a prefix
        sorted_lengths = lengths[order]
        flat = np.frombuffer(b"".join(encoded[i] for i in order), dtype=np.uint8)
        offsets = np.concatenate(([0], np.cumsum(sorted_lengths)[:-1]))
        n = len(encoded)
        max_length = int(sorted_lengths[0])
        active = np.searchsorted(-sorted_lengths, -np.arange(max_length), side="left")
        state = np.zeros(n, dtype=np.int64)
        hit_texts: list[np.ndarray] = []
        hit_features: list[np.ndarray] = []
        for position in range(max_length):
            k = int(active[position])
            current = self._nextmove[self._rowbase[state[:k]] + flat[offsets[:k] + position]].astype(np.int64)
            state[:k] = current
            feature = self._output[current]
            hits = np.flatnonzero(feature >= 0)
            if hits.size:
                hit_texts.append(hits)
                hit_features.append(feature[hits])
        scores = np.zeros((n, n_classes), dtype=np.float32)
        if hit_texts:
            rows = np.concatenate(hit_texts)
            cols = np.concatenate(hit_features)
            counts = scipy.sparse.csr_matrix(
                (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, self._ptc.shape[0])
            )
            counts.sum_duplicates()
            counts.data = np.log1p(counts.data)
            scores = np.asarray(counts @ self._ptc, dtype=np.float32)
            has_features = np.diff(counts.indptr) > 0
            scores[has_features] += self._pc  # featureless texts stay uniform, as in py3langid
        # py3langid's calibration: divide the log-scores by sqrt(bytes), then softmax.
        scores *= (1.0 / np.sqrt(np.maximum(sorted_lengths, 1))).astype(np.float32)[:, None]
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        for first, duplicate in self._alias_pairs:
            scores[:, first] += scores[:, duplicate]
            scores[:, duplicate] = 0.0
        result = np.empty_like(scores)
        result[order] = scores
        return result


@functools.lru_cache(maxsize=1)
def default_detector() -> LanguageDetector:
    """The detector, loaded once per process (about 1 s)."""
    return LanguageDetector()


def language_mismatch(
    texts: Sequence[str | None], expected: str, min_probability: float, detector: LanguageDetector | None = None
) -> list[tuple[str, float] | None]:
    """Per text, ``None`` when it may be in ``expected`` language, else ``(language, probability)``
    of the language the detector prefers.

    A text is fine (``None``) when it is null or blank, when the detector's first choice is
    ``expected``, or when that first choice gets less than ``min_probability``: short texts
    ("Red car", "Corgi") spread the probability over many languages and are kept, since a doubtful
    caption is not evidence of another language. Texts are stripped of surrounding whitespace and
    scored once per distinct text, in one batched call. Raises ``ValueError`` when the detector
    has no label ``expected`` or ``min_probability`` is outside 0..1.
    """
    detector = detector or default_detector()
    if expected not in detector.column_of:
        raise ValueError(
            f"language {expected!r} is not one the detector knows (py3langid labels, ISO 639-1 where it exists: "
            f"{', '.join(sorted(detector.column_of))})"
        )
    if not 0 <= min_probability <= 1:
        raise ValueError(f"min_probability must be within 0..1, got {min_probability}")
    cleaned = [text.strip() if text is not None else "" for text in texts]
    distinct = list(dict.fromkeys(text for text in cleaned if text))
    verdicts: dict[str, tuple[str, float] | None] = {}
    if distinct:
        probs = detector.probabilities(distinct)
        top = probs.argmax(axis=1)
        top_prob = probs[np.arange(len(distinct)), top]
        for text, column, probability in zip(distinct, top.tolist(), top_prob.tolist()):
            language = detector.labels[column]
            fine = language == expected or probability < min_probability
            verdicts[text] = None if fine else (language, float(probability))
    return [verdicts[text] if text else None for text in cleaned]
