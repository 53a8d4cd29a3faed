"""A real browser on the SAD labelling page of a real Label Studio: log in, look, label, pull.

Headless Chromium (Debian's ``chromium`` package at ``/usr/bin/chromium``, driven by
Playwright; Playwright never downloads a browser here) logs in through the web form, opens a
pushed SAD task, checks that topic, dialogue (with speakers), highlighted target and the five
strategies render, ticks two strategies and a stance, and submits. ``backend.pull`` must then
return exactly that judgment, credited to the admin's e-mail.

The screenshot of the filled-in page goes to ``<artifacts>/browser/sad-labelling.png``, where
``<artifacts>`` is ``$CORPUSFORGE_TEST_ARTIFACTS`` or ``<repo>/test-artifacts``; on failure a
``sad-labelling-failure.png`` is written beside it.

The reLAIONet test opens an image proofreading task and checks that the image the page loads
comes from Label Studio's local-files URL (the labelling view draws it on a canvas, so the
``<img>`` checked is the task's own image in the Data Manager beside it, same URL).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import polars as pl
import pytest

from annotation.backends.labelstudio.client import LabelStudioBackend
from annotation.routing import RoutingOptions, route
from annotation.store import ProjectState
from schemas.sad import STRATEGIES
from tests.annotation.browser import artifacts_dir, browser_page, require_chromium

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@contextmanager
def logged_in_page(label_studio, tmp_path: Path, chromium: Path, failure_shot: Path) -> Iterator:
    """A headless Chromium page logged in to ``label_studio`` through the web form; a screenshot
    goes to ``failure_shot`` when the block fails, and the browser is closed in any case."""
    with browser_page(tmp_path, chromium, failure_shot) as page:
        page.goto(f"{label_studio.url}/user/login/")
        page.locator("#login-form input[name=email]").fill(label_studio.username)
        page.locator("#login-form input[name=password]").fill(label_studio.password)
        page.locator("#login-form button[type=submit]").click()
        page.wait_for_url(lambda url: "/user/login" not in url)
        yield page


def test_sad_labelling_page_renders_and_a_submitted_annotation_is_pulled(request, tmp_path):
    # The browser check runs before the server and the sample build are set up, so that a
    # missing browser fails at once (as a failed test, not a fixture error).
    chromium = require_chromium()
    label_studio = request.getfixturevalue("label_studio")
    spec = request.getfixturevalue("spec")
    from playwright.sync_api import expect

    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=3))
    project_id = backend.push(spec, plan, state).project_id
    item_id = plan.item_ids[0]
    task_id = state.task_map()[item_id]
    payload = next(i for i in spec.items if i.id == item_id).payload
    predicted = next(p for p in spec.preannotations if p.item_id == item_id).answers

    # The page opens pre-filled with the prediction: set every box explicitly, and take the
    # stance the prediction did not, so the pulled answer can only come from the browser.
    ticked = ["Analogy", "Causality"]  # ticked out of recipe order on purpose
    stance = "oppose" if predicted["stance"] == "support" else "support"
    expected = {"strategies": [s for s in STRATEGIES if s in ticked], "stance": stance, "unclear": False}

    screenshot = artifacts_dir() / "sad-labelling.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    failure_shot = screenshot.with_name("sad-labelling-failure.png")
    for stale in (screenshot, failure_shot):
        stale.unlink(missing_ok=True)

    with logged_in_page(label_studio, tmp_path, chromium, failure_shot) as page:
        # -- the labelling page of the task (the Data Manager opens it beside the task list)
        page.goto(f"{label_studio.url}/projects/{project_id}/data?task={task_id}")
        area = page.locator(".lsf-main-view__annotation")  # the labelling form, not the task table
        expect(area.get_by_text(payload["topic"], exact=True)).to_be_visible()

        for turn in payload["history"][:2]:
            # a turn block shows the speaker's name together with the turn's text
            block = area.locator("div").filter(has=page.get_by_text(turn["text"], exact=True)).filter(
                has=page.get_by_text(turn["speaker"], exact=True)).last
            expect(block).to_be_visible()
        assert {t["speaker"] for t in payload["history"]} <= {"OP", "challenger"}

        target = area.get_by_text(payload["target"], exact=True)
        expect(target).to_be_visible()
        # `has` locators are relative to the candidate div: build them from the page, not `area`
        highlight = area.locator("div").filter(has=page.get_by_text("Target utterance (label this one)", exact=True)).filter(
            has=page.get_by_text(payload["target"], exact=True)).last
        background = highlight.evaluate("el => getComputedStyle(el).backgroundColor")
        assert background not in ("rgba(0, 0, 0, 0)", "transparent"), f"target is not highlighted: {background}"

        # each choice is an <input> named after its value, inside a label showing that value
        for name in STRATEGIES:
            expect(area.locator(f'label:has(input[type=checkbox][name="{name}"])')).to_contain_text(name)

        # -- label: two strategies, one stance, not unclear
        for name in ticked:
            area.locator(f'input[type=checkbox][name="{name}"]').check()
        for name in STRATEGIES:
            if name not in ticked:
                area.locator(f'input[type=checkbox][name="{name}"]').uncheck()
        area.locator(f'input[type=radio][name="{stance}"]').check()
        area.locator('input[type=checkbox][name="Unclear: I cannot decide"]').uncheck()
        for name in STRATEGIES:
            box = area.locator(f'input[type=checkbox][name="{name}"]')
            expect(box).to_be_checked(checked=name in ticked)
        expect(area.locator(f'input[type=radio][name="{stance}"]')).to_be_checked()

        page.screenshot(path=str(screenshot))

        # -- submit, and wait for the server to store the annotation
        created = re.compile(rf"/api/tasks/{task_id}/annotations/?(\?|$)")
        with page.expect_response(lambda r: r.request.method == "POST" and created.search(r.url) is not None) as posted:
            page.get_by_role("button", name="Submit current annotation").click()
        assert posted.value.status == 201, f"submit answered {posted.value.status}: {posted.value.text()[:500]}"

    assert screenshot.read_bytes()[:8] == PNG_MAGIC

    report = backend.pull(spec, state)
    judgments = pl.read_parquet(report.snapshot / "judgments.parquet")
    assert judgments.height == 1, judgments
    row = judgments.row(0, named=True)
    assert (row["item_id"], row["task_id"]) == (item_id, task_id)
    assert row["annotator"] == label_studio.username and "@" in row["annotator"]  # the admin's e-mail
    assert not row["simulated"]
    assert json.loads(row["answers"]) == expected


def test_relaionet_image_task_loads_its_image_from_local_files(request, tmp_path, monkeypatch):
    """The reLAIONet proofreading page shows the pushed image, served by Label Studio from the
    workspace through a local-files storage (the <img> loads: naturalWidth > 0)."""
    chromium = require_chromium()
    label_studio = request.getfixturevalue("label_studio")
    from playwright.sync_api import expect

    from corpusforge.ops import relaionet_proofread as ops
    from tests.annotation.test_relaionet_proofreading import round_settings
    from tests.pipelines.relaionet.test_corrections import candidate_frame

    settings = round_settings(label_studio, tmp_path, monkeypatch)
    report, _, _ = ops.push(settings, candidate_frame())
    task_id = ops.project_state(settings).task_map()["100003"]
    screenshot = artifacts_dir() / "relaionet-proofreading.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)

    with logged_in_page(label_studio, tmp_path, chromium, screenshot.with_name("relaionet-proofreading-failure.png")) as page:
        served: dict[str, int] = {}  # local-files URL -> status, as the page fetched them
        page.on("response", lambda r: served.__setitem__(r.url, r.status) if "/data/local-files/" in r.url else None)
        page.goto(f"{label_studio.url}/projects/{report.project_id}/data?task={task_id}")
        area = page.locator(".lsf-main-view__annotation")
        expect(area.get_by_text("great white shark poster", exact=True)).to_be_visible()
        expect(area.get_by_text("Image", exact=True)).to_be_visible()
        # the task's image, as an <img> the page loaded from Label Studio's local-files URL
        image = page.locator('img[src*="/data/local-files/?d="][src$="/100003.png"]').first
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        assert image.evaluate("img => img.naturalWidth") == 96
        # and the labelling view fetched it too (it draws the image on a canvas), with success
        page.wait_for_function(
            "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/data/local-files/') && e.name.endsWith('100003.png')).length >= 1")
        assert {u.rsplit("/", 1)[-1]: s for u, s in served.items()}.get("100003.png") in (200, 304)
        page.screenshot(path=str(screenshot))
