"""The real argilla-server 2.8.0 (own environment, Redis, rq worker, corpusforge-sql search engine).

Driven through the argilla 2.8.0 SDK in corpusforge's environment, as the backend will be. One
flow over one session server (``argilla`` fixture): owner creates a workspace and a dataset,
logs 50 records with suggestions and metadata, an annotator answers with their own API key,
the owner reads the answer back, filters and progress go through the search engine, and a
restart keeps everything.
"""

from __future__ import annotations

import urllib.request
import uuid

import pytest

rg = pytest.importorskip("argilla", reason="the Argilla SDK is the `argilla` extra: pip install -e .[argilla]")

from annotation.backends.argilla.server import LocalArgilla  # noqa: E402

N_RECORDS = 50
SOURCES = ["news", "forum", "wiki"]


def _status(url: str) -> dict:
    import json

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/api/v1/status", timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def _records() -> list:
    return [
        rg.Record(
            id=f"doc-{i:03d}",
            fields={"text": f"Document number {i} about {SOURCES[i % 3]}."},
            metadata={"source": SOURCES[i % 3], "length": 10 + i},
            suggestions=[
                rg.Suggestion("sentiment", "positive" if i % 2 == 0 else "negative", score=0.5 + i / 200,
                              agent="model-a"),
                rg.Suggestion("topics", ["a", "b"] if i % 5 == 0 else ["c"], agent="model-a"),
            ],
        )
        for i in range(N_RECORDS)
    ]


@pytest.fixture(scope="module")
def flow(argilla: LocalArgilla) -> dict:
    """Owner client, workspace, dataset with 50 records, and an annotator (client + user)."""
    owner = rg.Argilla(api_url=argilla.url, api_key=argilla.api_key)
    suffix = uuid.uuid4().hex[:8]
    workspace = rg.Workspace(name=f"ws-{suffix}", client=owner).create()
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[
            rg.LabelQuestion(name="sentiment", labels=["positive", "negative"]),
            rg.MultiLabelQuestion(name="topics", labels=["a", "b", "c"]),
            rg.TextQuestion(name="comment", required=False),
        ],
        metadata=[rg.TermsMetadataProperty(name="source"), rg.IntegerMetadataProperty(name="length")],
    )
    dataset = rg.Dataset(name=f"ds-{suffix}", workspace=workspace, settings=settings, client=owner).create()
    dataset.records.log(_records())

    password = uuid.uuid4().hex
    annotator = rg.User(username=f"ann-{suffix}", password=password, role="annotator", client=owner).create()
    annotator.add_to_workspace(workspace)
    # the SDK's User hides the API key; the owner reads it from the REST API (the UI shows it the same way)
    api_key = owner.http_client.get(f"/api/v1/users/{annotator.id}").raise_for_status().json()["api_key"]
    return {"owner": owner, "workspace": workspace, "dataset": dataset, "annotator": annotator,
            "annotator_client": rg.Argilla(api_url=argilla.url, api_key=api_key), "password": password}


def test_status_endpoint_answers_with_our_search_engine(argilla: LocalArgilla) -> None:
    status = _status(argilla.url)
    assert status["version"] == "2.8.0"
    assert status["search_engine"]["distribution"] == "corpusforge-sql"
    assert argilla.is_running()


def test_records_read_back_with_metadata_and_suggestions(flow: dict) -> None:
    records = list(flow["dataset"].records(with_suggestions=True))
    assert len(records) == N_RECORDS
    by_id = {record.id: record for record in records}
    record = by_id["doc-005"]
    assert record.fields["text"] == "Document number 5 about wiki."
    assert record.metadata["source"] == "wiki" and record.metadata["length"] == 15
    assert record.suggestions["sentiment"].value == "negative"
    assert record.suggestions["sentiment"].agent == "model-a"
    assert record.suggestions["sentiment"].score == pytest.approx(0.525)
    assert sorted(record.suggestions["topics"].value) == ["a", "b"]


def test_search_engine_filters_and_metrics(flow: dict) -> None:
    dataset = flow["dataset"]
    news = list(dataset.records(query=rg.Query(filter=rg.Filter(("metadata.source", "==", "news")))))
    assert len(news) == 17 and all(r.metadata["source"] == "news" for r in news)
    long_ones = list(dataset.records(query=rg.Query(filter=rg.Filter(("metadata.length", ">=", 55)))))
    assert sorted(r.id for r in long_ones) == [f"doc-{i:03d}" for i in range(45, 50)]
    suggested = list(dataset.records(query=rg.Query(filter=rg.Filter(("topics.suggestion", "in", ["b"])))))
    assert len(suggested) == 10
    confident = list(dataset.records(query=rg.Query(filter=rg.Filter(("sentiment.score", ">=", 0.7025)))))
    assert sorted(r.id for r in confident) == [f"doc-{i:03d}" for i in range(41, 50)]
    text_hits = list(dataset.records(query=rg.Query(query="forum")))
    assert len(text_hits) == 17
    metrics = flow["owner"].http_client.get(
        f"/api/v1/metadata-properties/{dataset.settings.metadata['source'].id}/metrics").raise_for_status().json()
    assert metrics["total"] == N_RECORDS and {v["term"]: v["count"] for v in metrics["values"]}["news"] == 17


def test_annotator_submits_and_owner_reads_the_response(flow: dict) -> None:
    owner, annotator_client, dataset = flow["owner"], flow["annotator_client"], flow["dataset"]
    me = annotator_client.me
    assert me.username == flow["annotator"].username and str(me.role.value) == "annotator"
    http = annotator_client.http_client

    def my_records(status: str) -> dict:
        body = {"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                     "values": [status]}]},
                "sort": [{"scope": {"entity": "record", "property": "inserted_at"}, "order": "asc"}]}
        return http.post(f"/api/v1/me/datasets/{dataset.id}/records/search", params={"limit": 5},
                         json=body).raise_for_status().json()

    queue = my_records("pending")
    assert queue["total"] == N_RECORDS and len(queue["items"]) == 5
    first = queue["items"][0]["record"]
    assert first["external_id"] == "doc-000"  # sorted by inserted_at
    http.post(f"/api/v1/records/{first['id']}/responses", json={
        "values": {"sentiment": {"value": "positive"}, "topics": {"value": ["a", "c"]},
                   "comment": {"value": "looks fine"}},
        "status": "submitted",
    }).raise_for_status()
    assert my_records("pending")["total"] == N_RECORDS - 1
    assert my_records("submitted")["total"] == 1

    record = next(r for r in dataset.records(with_responses=True) if r.id == "doc-000")
    responses = {response.question_name: response for response in record.responses}
    assert responses["sentiment"].value == "positive"
    assert sorted(responses["topics"].value) == ["a", "c"]
    assert responses["comment"].value == "looks fine"
    assert responses["sentiment"].user_id == me.id
    assert str(responses["sentiment"].status.value if hasattr(responses["sentiment"].status, "value")
               else responses["sentiment"].status) == "submitted"
    submitted = list(dataset.records(query=rg.Query(filter=rg.Filter(("response.status", "==", "submitted")))))
    assert [r.id for r in submitted] == ["doc-000"]
    progress = dataset.progress()
    assert progress["total"] == N_RECORDS and progress["completed"] == 1 and progress["pending"] == N_RECORDS - 1


def test_restart_keeps_the_data(argilla: LocalArgilla, flow: dict) -> None:
    argilla.stop()
    assert not argilla.is_running()
    argilla.start()
    owner = rg.Argilla(api_url=argilla.url, api_key=argilla.api_key)
    dataset = owner.datasets(name=flow["dataset"].name, workspace=flow["workspace"].name)
    records = list(dataset.records(with_suggestions=True))
    assert len(records) == N_RECORDS
    assert {r.id: r for r in records}["doc-007"].metadata["length"] == 17
