"""Fixtures for the browser tests: one JupyterLab server and one Chromium for the whole package.

Both are package-scoped, so they are started once, shared by every test in
tests/e2e, and torn down (server, kernels, browser) as soon as the last of
them ends, pass or fail. A failing test leaves a screenshot, the browser
console and the server log under .e2e-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest

from .lab_server import LabServer
from .paths import ARTIFACTS, CHROMIUM, NOTEBOOKS

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    """In CI a missing browser is a failure; on a person's machine, a skip that says why."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI; .ci/run installs Debian's chromium)")
    pytest.skip(f"{reason}; install it with `apt-get install chromium` to run the browser tests")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 serving a throwaway copy of notebooks/."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed")
    # A first import builds matplotlib's font cache if there is none; the notice it
    # prints would otherwise show as a warning in the first kernel's output.
    import matplotlib.font_manager  # noqa: F401

    root = tmp_path_factory.mktemp("lab-root")
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")) + sorted(NOTEBOOKS.glob("*/*.ipynb")):  # zh-CN/ too
        (root / notebook.relative_to(NOTEBOOKS)).parent.mkdir(exist_ok=True)
        shutil.copy2(notebook, root / notebook.relative_to(NOTEBOOKS))
    server = LabServer(root, tmp_path_factory.mktemp("lab-home"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser(lab_server: LabServer) -> Iterator:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator:
    """A fresh browser page; on failure its screenshot and console go to .e2e-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"[{message.type}] {message.text}"))
    page.on("pageerror", lambda error: console.append(f"[pageerror] {error}"))
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            _save_artifacts(page, console, lab_server.log_tail(), request.node.name)
        context.close()
        lab_server.shut_down_kernels()


def _save_artifacts(page, console: list[str], server_log: str, test_name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{stem}.png"), full_page=True)
    except Exception as err:  # a crashed page cannot be photographed; say so instead
        console.append(f"[screenshot failed] {err}")
    (ARTIFACTS / f"{stem}.console.txt").write_text("\n".join(console))
    (ARTIFACTS / f"{stem}.server.log").write_text(server_log)
