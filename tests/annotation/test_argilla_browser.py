"""A real browser on a real Argilla: an annotator signs in, answers a record, and the next pull has it.

Headless Chromium (``/usr/bin/chromium``, driven by Playwright, as in ``test_browser.py``, launched by ``browser.py``) signs
in through Argilla's web form as an annotator of the workspace (a user made with a known
password), opens the dataset pushed by :class:`ArgillaBackend`, picks a label of the single
choice question and submits. ``backend.pull`` must then return exactly that judgment, credited
to the annotator. The screenshot goes to ``<artifacts>/browser/argilla-annotation.png`` (on
failure ``argilla-annotation-failure.png``).
"""

from __future__ import annotations

import json
import re
import uuid

import polars as pl
import pytest

from annotation.routing import RoutingOptions, route
from annotation.spec import AnnotationSpec, Display, Item, Question
from annotation.store import ProjectState
from tests.annotation.browser import artifacts_dir, browser_page, require_chromium

pytestmark = pytest.mark.slow


def tiny_spec() -> AnnotationSpec:
    items = tuple(Item(f"doc-{k}", {"text": f"Review {k}: the soup was {'great' if k % 2 else 'cold'}."}) for k in range(3))
    return AnnotationSpec(
        name=f"browser-{uuid.uuid4().hex[:6]}", title="Sentiment of reviews", version="1", guideline="Pick the sentiment.",
        display=(Display("text", "text", "Review", highlight=True),),
        questions=(Question("sentiment", "single_choice", "Sentiment", ("positive", "negative"), required=True),
                   Question("note", "text", "Note (optional)")),
        items=items,
    )


def test_an_annotator_signs_in_submits_and_the_pull_has_it(argilla, tmp_path):
    from playwright.sync_api import expect

    from annotation.backends.argilla.backend import ArgillaBackend

    chromium = require_chromium()
    backend = ArgillaBackend(argilla.url, argilla.api_key, workspace=f"ws-{uuid.uuid4().hex[:6]}")
    spec = tiny_spec()
    state = ProjectState(tmp_path / "state")
    report = backend.push(spec, route(spec, RoutingOptions()), state)
    username, password = f"anna-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    user = backend._json("POST", "/api/v1/users", "user", json={"username": username, "password": password, "first_name": "Anna", "role": "annotator"})
    backend._request("POST", f"/api/v1/workspaces/{backend.workspace_id()}/users", "membership", json={"user_id": user["id"]})

    shots = artifacts_dir()
    with browser_page(tmp_path, chromium, shots / "argilla-annotation-failure.png", full_page=True) as page:
        page.goto(f"{argilla.url}/sign-in")
        page.locator("input:not([type=password])").first.fill(username)
        page.locator("input[type=password]").fill(password)
        page.get_by_role("button", name=re.compile("sign in", re.I)).click()
        page.wait_for_url(re.compile(r"^(?!.*sign-in).*$"))
        page.goto(report.project_url)
        expect(page.get_by_text("the soup was", exact=False).first).to_be_visible()
        page.get_by_text("positive", exact=True).first.click()
        page.screenshot(path=str(shots / "argilla-annotation.png"), full_page=True)
        page.get_by_role("button", name=re.compile(r"submit\s*$", re.I)).first.click()
        page.wait_for_timeout(1500)
        expect(page.get_by_text("the soup was", exact=False).first).to_be_visible()

    pulled = backend.pull(spec, state)
    judgments = pl.read_parquet(pulled.snapshot / "judgments.parquet")
    assert judgments.height == 1, json.loads((pulled.snapshot / "summary.json").read_text())
    row = judgments.row(0, named=True)
    assert row["annotator"] == username and not row["simulated"]
    assert json.loads(row["answers"]) == {"sentiment": "positive"}
    assert row["item_id"] in {i.id for i in spec.items}
