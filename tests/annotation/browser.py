"""Headless Chromium for the browser tests (Label Studio's and Argilla's).

Debian's ``chromium`` package at ``/usr/bin/chromium``, driven by Playwright; Playwright never
downloads a browser here. Screenshots go to ``<artifacts>/browser/``, where ``<artifacts>`` is
``$CORPUSFORGE_TEST_ARTIFACTS`` or ``<repo>/test-artifacts``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# The machine's network is closed: without these flags Chromium stalls on outbound connections.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 30_000  # per wait: the first page load compiles a large JS bundle on a small machine


def artifacts_dir() -> Path:
    root = os.environ.get("CORPUSFORGE_TEST_ARTIFACTS")
    return (Path(root) if root else REPO_ROOT / "test-artifacts") / "browser"


def require_chromium() -> Path:
    # A failure, not a skip: CI installs the browser, and a silent skip would hide that it did not.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`). "
                    "Do not run `playwright install`: the test uses the system browser.")
    return CHROMIUM


@contextmanager
def browser_page(tmp_path: Path, chromium: Path, failure_shot: Path, *, full_page: bool = False) -> Iterator:
    """A page of a fresh headless Chromium (profile under ``tmp_path``) with the tests' waits; a
    screenshot goes to ``failure_shot`` when the block fails, and the browser is closed in any case."""
    from playwright.sync_api import expect, sync_playwright

    failure_shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(chromium), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        try:
            yield page
        except BaseException:
            try:
                page.screenshot(path=str(failure_shot), full_page=full_page)
            except Exception:
                pass  # the browser itself may be gone; the original error matters
            raise
        finally:
            context.close()
