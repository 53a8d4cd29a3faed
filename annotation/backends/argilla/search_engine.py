"""``corpusforge-sql``: an Argilla search engine that answers from the server's own database.

Test and local infrastructure only (see docs: annotation-servers.md, "Argilla 2.8.0"). The
argilla-server ships engines for Elasticsearch and OpenSearch, neither of which runs here; its
``SearchEngine`` base class accepts registered engines, chosen by ``ARGILLA_SEARCH_ENGINE``.
This one keeps no index: every write hook does nothing, and every read (search, progress,
metadata metrics, similarity) queries the records, responses, suggestions and vectors that
the server has already stored in its SQL database, then filters, sorts and pages in Python.
That is exact and fast enough for test-sized datasets (about 10^4 records); users who run
Argilla for real bring Elasticsearch.

It runs *inside the argilla-server environment* (importing ``argilla_server``), never in
corpusforge's own: :mod:`annotation.backends.argilla.launcher` imports it before the server's
command line runs, in the web server and in the rq worker alike. It imports nothing from
corpusforge so that it can be loaded as a single file.

Semantics follow the Elasticsearch engine (``argilla_server/search_engine/commons.py``):

* text query: every word must occur in the field (or in any field), case-insensitive,
  ``word*`` matches a prefix; the score is the number of matching words;
* terms filters match when any value matches (lists: any element); range filters are
  inclusive; a response filter with a user only looks at that user's response;
* response status ``pending`` means "no response" (from that user, when the filter has one);
* sorting puts records without the value last, in both directions; without a sort, records
  come by score for a text query, otherwise in a per-user pseudo-random but stable order for
  the current-user search (as Elasticsearch's seeded ``random_score`` does) and in insertion
  order for everything else;
* similarity: Elasticsearch's cosine score ``(1 + cos) / 2``; ``least_similar`` negates the
  query vector; the record searched from is excluded.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, List, Optional, Union
from uuid import UUID

from sqlalchemy import func, select

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, ResponseStatusFilter, SimilarityOrder, SortOrder
from argilla_server.models import (
    Dataset,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    AndFilter,
    Filter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)

ENGINE_NAME = "corpusforge-sql"

_MISSING = object()


@dataclass
class _Doc:
    """What the Elasticsearch engine would index for one record."""

    id: UUID
    external_id: Optional[str]
    status: str
    inserted_at: datetime
    updated_at: datetime
    metadata: dict
    fields: Optional[dict] = None
    responses: list[dict] = field(default_factory=list)  # {"user_id", "status", "values": {question: value}}
    suggestions: dict[str, dict] = field(default_factory=dict)  # question -> {"value", "score", "agent", "type"}
    score: Optional[float] = None


@SearchEngine.register(engine_name=ENGINE_NAME)
class CorpusforgeSqlSearchEngine(SearchEngine):
    """Reads straight from the server's database; keeps no index of its own."""

    @classmethod
    async def new_instance(cls) -> "CorpusforgeSqlSearchEngine":
        return cls()

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"distribution": ENGINE_NAME, "number": "1", "note": "answers from the server's SQL database"}

    # -- write hooks: the database already holds everything ---------------------------------

    async def create_index(self, dataset: Dataset) -> None:
        pass

    async def delete_index(self, dataset: Dataset) -> None:
        pass

    async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty) -> None:
        pass

    async def configure_index_vectors(self, vector_settings: VectorSettings) -> None:
        pass

    async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        pass

    async def partial_record_update(self, record: Record, **update: Any) -> None:
        pass

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        pass

    async def update_record_response(self, response: Response) -> None:
        pass

    async def delete_record_response(self, response: Response) -> None:
        pass

    async def update_record_suggestion(self, suggestion: Suggestion) -> None:
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
        pass

    # -- progress and metrics ----------------------------------------------------------------

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            rows = (await db.execute(
                select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
            )).all()
        counts = {_enum_value(status): count for status, count in rows}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            rows = (await db.execute(
                select(Response.status, func.count())
                .join(Record, Record.id == Response.record_id)
                .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                .group_by(Response.status)
            )).all()
        counts = {_enum_value(status): count for status, count in rows}
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        name = metadata_property.name
        async with AsyncSessionLocal() as db:
            rows = (await db.execute(
                select(Record.metadata_).where(Record.dataset_id == metadata_property.dataset_id)
            )).scalars().all()
        values = [v for metadata in rows if metadata for v in _flatten(metadata.get(name)) if v is not None]
        if metadata_property.type == MetadataPropertyType.terms:
            counts: dict[str, int] = {}
            for value in values:
                counts[str(value)] = counts.get(str(value), 0) + 1
            ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            return TermsMetrics(total=len(values),
                                values=[TermsMetrics.TermCount(term=term, count=count) for term, count in ordered])
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        metrics_class = IntegerMetadataMetrics if metadata_property.type == MetadataPropertyType.integer \
            else FloatMetadataMetrics
        return metrics_class(min=min(numbers) if numbers else None, max=max(numbers) if numbers else None)

    # -- search ------------------------------------------------------------------------------

    async def search(
        self,
        dataset: Dataset,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        sort: Optional[List[Order]] = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Optional[UUID] = None,
    ) -> SearchResponses:
        text = _text_query(query)
        docs = await self._load(dataset, filter=filter, sort=sort, with_fields=text is not None)
        docs = _apply_text_query(docs, text)
        if filter is not None:
            docs = [doc for doc in docs if _matches(doc, filter)]
        if sort:
            docs = _sorted(docs, sort)
        elif text is not None:
            docs = sorted(docs, key=lambda doc: -(doc.score or 0))  # stable: ties stay in insertion order
        elif user_id is not None:
            seed = str(user_id)
            docs = sorted(docs, key=lambda doc: hashlib.sha1(f"{seed}:{doc.id}".encode()).digest())
        page = docs[offset:offset + limit]
        return SearchResponses(items=[SearchResponseItem(record_id=doc.id, score=doc.score) for doc in page],
                               total=len(docs))

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: Optional[List[float]] = None,
        record: Optional[Record] = None,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: Optional[float] = None,
    ) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        excluded = None
        if not value:
            excluded = record.id
            value = record.vector_value_by_vector_settings(vector_settings)
        if not value:
            raise ValueError("Cannot find a vector value to apply with provided info")
        if order == SimilarityOrder.least_similar:
            value = [-x for x in value]

        text = _text_query(query)
        docs = await self._load(dataset, filter=filter, sort=None, with_fields=text is not None)
        docs = _apply_text_query(docs, text)
        if filter is not None:
            docs = [doc for doc in docs if _matches(doc, filter)]
        async with AsyncSessionLocal() as db:
            vectors = dict((await db.execute(
                select(Vector.record_id, Vector.value).where(Vector.vector_settings_id == vector_settings.id)
            )).all())
        scored = []
        for doc in docs:
            vector = vectors.get(doc.id)
            if doc.id == excluded or not vector:
                continue
            score = (1 + _cosine(value, vector)) / 2
            if threshold is None or score >= threshold:
                scored.append((score, doc.id))
        scored.sort(key=lambda item: -item[0])
        items = [SearchResponseItem(record_id=record_id, score=score) for score, record_id in scored[:max_results]]
        return SearchResponses(items=items, total=len(items))

    # -- loading -----------------------------------------------------------------------------

    async def _load(self, dataset: Dataset, *, filter: Optional[Filter], sort: Optional[List[Order]],
                    with_fields: bool) -> list[_Doc]:
        """The dataset's records, with responses and suggestions only where a filter or sort needs them."""
        scopes = [f.scope for f in _leaf_filters(filter)] + [o.scope for o in sort or []]
        need_responses = any(isinstance(s, ResponseFilterScope) for s in scopes)
        need_suggestions = any(isinstance(s, SuggestionFilterScope) for s in scopes)
        columns = [Record.id, Record.external_id, Record.status, Record.inserted_at, Record.updated_at,
                   Record.metadata_]
        if with_fields:
            columns.append(Record.fields)
        async with AsyncSessionLocal() as db:
            rows = (await db.execute(
                select(*columns).where(Record.dataset_id == dataset.id).order_by(Record.inserted_at, Record.id)
            )).all()
            docs = {}
            for row in rows:
                docs[row[0]] = _Doc(id=row[0], external_id=row[1], status=_enum_value(row[2]), inserted_at=row[3],
                                    updated_at=row[4], metadata=row[5] or {},
                                    fields=row[6] if with_fields else None)
            if need_responses:
                responses = (await db.execute(
                    select(Response.record_id, Response.user_id, Response.status, Response.values)
                    .join(Record, Record.id == Response.record_id)
                    .where(Record.dataset_id == dataset.id)
                )).all()
                for record_id, user_id, status, values in responses:
                    values = {question: (answer or {}).get("value") for question, answer in (values or {}).items()}
                    docs[record_id].responses.append({"user_id": user_id, "status": _enum_value(status),
                                                      "values": values})
            if need_suggestions:
                suggestions = (await db.execute(
                    select(Suggestion.record_id, Question.name, Suggestion.value, Suggestion.score, Suggestion.agent,
                           Suggestion.type)
                    .join(Record, Record.id == Suggestion.record_id)
                    .join(Question, Question.id == Suggestion.question_id)
                    .where(Record.dataset_id == dataset.id)
                )).all()
                for record_id, question, value, score, agent, kind in suggestions:
                    docs[record_id].suggestions[question] = {"value": value, "score": score, "agent": agent,
                                                             "type": _enum_value(kind) if kind is not None else None}
        return list(docs.values())


# -- filters -----------------------------------------------------------------------------------


def _leaf_filters(filter: Optional[Filter]) -> list[Filter]:
    if filter is None:
        return []
    if isinstance(filter, AndFilter):
        return [leaf for f in filter.filters for leaf in _leaf_filters(f)]
    return [filter]


def _matches(doc: _Doc, filter: Filter) -> bool:
    if isinstance(filter, AndFilter):
        return all(_matches(doc, f) for f in filter.filters)
    scope = filter.scope
    if isinstance(scope, ResponseFilterScope):
        return _matches_response_filter(doc, filter)
    return _value_matches(_scope_value(doc, scope), filter)


def _matches_response_filter(doc: _Doc, filter: Filter) -> bool:
    scope: ResponseFilterScope = filter.scope
    user_id = scope.user.id if scope.user is not None else None
    responses = [r for r in doc.responses if user_id is None or r["user_id"] == user_id]
    if scope.question:
        return any(_value_matches(r["values"].get(scope.question, _MISSING), filter) for r in responses)
    if scope.property == "status" and isinstance(filter, TermsFilter):
        statuses = {str(v) for v in filter.values}
        if ResponseStatusFilter.pending.value in statuses and not responses:
            return True
        return any(r["status"] in statuses for r in responses)
    raise ValueError(f"Cannot process filter scope {scope}")


def _scope_value(doc: _Doc, scope: Any) -> Any:
    if isinstance(scope, RecordFilterScope):
        return getattr(doc, str(scope.property), _MISSING)
    if isinstance(scope, MetadataFilterScope):
        return doc.metadata.get(scope.metadata_property, _MISSING)
    if isinstance(scope, SuggestionFilterScope):
        suggestion = doc.suggestions.get(scope.question)
        return _MISSING if suggestion is None else suggestion.get(scope.property or "value", _MISSING)
    raise ValueError(f"Cannot process request for search scope {scope}")


def _value_matches(value: Any, filter: Filter) -> bool:
    values = [v for v in _flatten(value) if v is not None and v is not _MISSING]
    if isinstance(filter, TermsFilter):
        wanted = {_term(v) for v in filter.values}
        return any(_term(v) in wanted for v in values)
    if isinstance(filter, RangeFilter):
        return any(_in_range(v, filter.ge, filter.le) for v in values)
    raise ValueError(f"Cannot process request for filter {filter}")


def _in_range(value: Any, ge: Optional[float], le: Optional[float]) -> bool:
    if isinstance(value, datetime):
        value = value.timestamp()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return False
    return (ge is None or value >= ge) and (le is None or value <= le)


def _term(value: Any) -> str:
    value = _enum_value(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _flatten(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flatten(item)]
    return [value]


# -- sorting -----------------------------------------------------------------------------------


def _sorted(docs: list[_Doc], sort: List[Order]) -> list[_Doc]:
    """Stable passes from the least to the most significant key; missing values always last."""
    for order in reversed(sort):
        descending = str(order.order) == SortOrder.desc.value
        key = _sort_key_function(order.scope, descending)
        keyed = [(key(doc), doc) for doc in docs]
        present = [(k, doc) for k, doc in keyed if k is not _MISSING]
        missing = [doc for k, doc in keyed if k is _MISSING]
        present.sort(key=lambda item: item[0], reverse=descending)
        docs = [doc for _, doc in present] + missing
    return docs


def _sort_key_function(scope: Any, descending: bool) -> Callable[[_Doc], Any]:
    pick = max if descending else min  # lists sort by their largest / smallest element, as in Elasticsearch

    def comparable(value: Any) -> Any:
        values = [_comparable(v) for v in _flatten(value) if v is not None and v is not _MISSING]
        return pick(values) if values else _MISSING

    if isinstance(scope, ResponseFilterScope):
        user_id = scope.user.id if scope.user is not None else None
        prop = scope.question or scope.property

        def key(doc: _Doc) -> Any:
            responses = [r for r in doc.responses if user_id is None or r["user_id"] == user_id]
            if scope.question:
                return comparable([r["values"].get(prop) for r in responses])
            return comparable([r.get(prop) for r in responses])
        return key
    return lambda doc: comparable(_scope_value(doc, scope))


def _comparable(value: Any) -> tuple:
    value = _enum_value(value)
    if isinstance(value, datetime):
        return (0, value.timestamp(), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


# -- text and vectors ----------------------------------------------------------------------------


@dataclass
class _Text:
    words: list[str]
    field: Optional[str]


def _text_query(query: Optional[Union[TextQuery, str]]) -> Optional[_Text]:
    if query is None:
        return None
    if isinstance(query, str):
        query = TextQuery(q=query)
    words = [w for w in re.findall(r"[\w*]+", query.q.lower()) if w.strip("*")]
    return _Text(words=words, field=query.field)


def _apply_text_query(docs: list[_Doc], text: Optional[_Text]) -> list[_Doc]:
    if text is None:
        return docs
    found = []
    for doc in docs:
        fields = doc.fields or {}
        source = fields.get(text.field) if text.field else list(fields.values())
        tokens = re.findall(r"\w+", " ".join(_strings(source)).lower())
        score = 0
        for word in text.words:
            if word.endswith("*"):
                hits = sum(1 for token in tokens if token.startswith(word.rstrip("*")))
            else:
                hits = tokens.count(word)
            if hits == 0:
                break
            score += hits
        else:
            if text.words:
                doc.score = float(score)
                found.append(doc)
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    return []


def _cosine(a: List[float], b: List[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)
