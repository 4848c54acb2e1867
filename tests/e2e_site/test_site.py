"""The course site and the slide decks, built from the notebooks and opened in headless Chromium.

The site is built (tools/build_site.py, what `make site` runs) into a
temporary folder and served on 127.0.0.1; the decks (tools/build_slides.py,
`make slides`) are opened from disk, as an instructor opens a file. Every
request the pages make is routed through the test: one that would leave the
machine is refused and fails the test.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never a browser downloaded by Playwright
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def missing(reason: str) -> None:
    """In CI a missing browser or library is a failure; on a person's machine, a skip that says why."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: the site tests must run in CI)")
    pytest.skip(reason)


sys.path.insert(0, str(REPO / "tools"))
import build_site  # noqa: E402  (tools/ is not a package)
import build_slides  # noqa: E402
import course_notebooks  # noqa: E402
from mark_slides import mark, slide_type_of  # noqa: E402
from notebook_header import colab_url  # noqa: E402

pytestmark = pytest.mark.e2e

NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
WCAG_TEXT_CONTRAST = 4.5  # WCAG 2 level AA for normal text: what a figure's labels need against their background


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site (root/site/) and the decks (root/slides/) of the notebooks in notebooks/, built the make way."""
    if not (REPO / "node_modules" / "reveal.js").is_dir():
        missing("node_modules/ is missing (run `npm ci`; make test does)")
    root = tmp_path_factory.mktemp("course")
    build_site.build(NOTEBOOKS, root / "site", root / "site-src")
    build_slides.build(NOTEBOOKS, root / "slides")
    return root


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what matters
        pass


@functools.cache
def _server(directory: str) -> str:
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    """Debian's Chromium, headless (never a browser downloaded by Playwright)."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """A browser page that refuses (and records) every request leaving the machine, and records console errors."""

    def __init__(self, browser, local: tuple[str, ...], color_scheme: str = "light", theme: str | None = None):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)
        self.context.set_default_timeout(30_000)
        if theme:  # furo keeps the reader's choice in localStorage
            self.context.add_init_script(f"localStorage.setItem('theme', '{theme}')")
        self.left_the_machine: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", functools.partial(self._route, local))
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, local: tuple[str, ...], route) -> None:
        if route.request.url.startswith(local):
            route.continue_()
        else:
            self.left_the_machine.append(route.request.url)
            route.abort()

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="load")
        # Load every image now (a lazy one below the fold would not have loaded yet), then wait for them.
        self.page.evaluate(
            """async () => { for (const img of document.images) { img.loading = "eager";
                 try { await img.decode(); } catch (e) {} } }"""
        )

    def broken_images(self) -> list[str]:
        return self.page.evaluate(
            "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"
        )

    def close(self) -> None:
        self.context.close()


def site_pages(built: Path, language: str = "en") -> list[str]:
    return sorted(p.name for p in (built / "site" / language).glob("*.html"))


def expected_figures(path: Path) -> int:
    """Figures a notebook's page must show: every stored image/png output (a playground's final frame included)."""
    nb = course_notebooks.for_reading(nbformat.read(path, as_version=4), course_notebooks.EDITIONS[0])
    cells = [c for c in nb.cells if c.cell_type == "code" and not course_notebooks.is_colab_cell(c)]
    return sum("image/png" in out.get("data", {}) for c in cells for out in c.outputs)


def test_every_notebook_has_a_page_in_the_navigation(built: Path, chromium) -> None:
    base = _server(str(built / "site"))
    visit = Visit(chromium, (base,))
    try:
        visit.page.goto(f"{base}/index.html")  # the site's root sends the reader on to the first edition
        visit.page.wait_for_url(f"{base}/en/index.html")
        nav = visit.page.eval_on_selector_all(".sidebar-tree a", "links => links.map(a => a.getAttribute('href'))")
        map_links = visit.page.eval_on_selector_all(
            "table.course-map a", "links => links.map(a => a.getAttribute('href'))"
        )
        for path in NOTEBOOK_PATHS:
            assert f"{path.stem}.html" in nav, f"{path.name} is missing from the navigation"
            assert f"{path.stem}.html" in map_links, f"{path.name} is missing from the map on the landing page"
            visit.open(f"{base}/en/{path.stem}.html")
            title = course_notebooks.summary(path).title
            assert visit.page.locator("h1").first.inner_text().strip().rstrip("#").strip() == title
    finally:
        visit.close()
    assert visit.errors == [] and visit.left_the_machine == []


def _links_resolve(built_site: Path, base: str, hrefs: set[str]) -> list[str]:
    """Internal links (same server) whose file, or whose #fragment in that file, does not exist."""
    broken = []
    ids: dict[Path, set[str]] = {}
    for href in sorted(hrefs):
        if not href.startswith(base):
            continue
        parts = urlsplit(href)
        target = built_site / unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(href)
        elif parts.fragment and target.suffix == ".html":
            if target not in ids:
                ids[target] = set(re.findall(r'\bid="([^"]+)"', target.read_text(encoding="utf-8")))
            if unquote(parts.fragment) not in ids[target]:
                broken.append(href)
    return broken


def test_every_page_loads_offline_with_its_figures(built: Path, chromium) -> None:
    """Each page: no request off the machine, no console error, every image loads, every internal link resolves."""
    base = _server(str(built / "site"))
    visit = Visit(chromium, (base, "data:"))
    problems, hrefs = [], set()
    try:
        for name in site_pages(built):
            visit.open(f"{base}/en/{name}")
            problems += [f"{name}: image did not load: {src}" for src in visit.broken_images()]
            hrefs |= set(visit.page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"))
            notebook = NOTEBOOKS / name.replace(".html", ".ipynb")
            if notebook.exists():
                shown = visit.page.locator(".cell_output img").count()
                if shown != expected_figures(notebook):
                    problems.append(f"{name}: {shown} figures shown, {expected_figures(notebook)} stored")
    finally:
        visit.close()
    problems += [f"console error: {e}" for e in visit.errors]
    problems += [f"request left the machine: {url}" for url in visit.left_the_machine]
    problems += [f"broken internal link: {href}" for href in _links_resolve(built / "site", base, hrefs)]
    assert problems == []


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def figure_contrast(png: bytes) -> tuple[float, float]:
    """(luminance of the figure's background as shown, contrast of its darkest ink against that background)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height)
    background = max(colours)[1]  # the most common colour: what the lines and labels are drawn on
    luminances = sorted(_luminance(colour) for count, colour in colours for _ in range(min(count, 50)))
    ink = luminances[len(luminances) // 200]  # the darkest 0.5%: axis labels, ticks, text
    return _luminance(background), _contrast(_luminance(background), ink)


@pytest.mark.parametrize("how", ["system dark", "chosen dark"])
def test_dark_theme_keeps_every_figure_readable(built: Path, chromium, how: str) -> None:
    """In the dark theme (the system's choice, or the reader's toggle) each figure sits on a light card."""
    base = _server(str(built / "site"))
    if how == "system dark":
        visit = Visit(chromium, (base, "data:"), color_scheme="dark")
    else:
        visit = Visit(chromium, (base, "data:"), color_scheme="light", theme="dark")
    problems, checked = [], 0
    try:
        for path in NOTEBOOK_PATHS:
            visit.open(f"{base}/en/{path.stem}.html")
            page_background = visit.page.evaluate("getComputedStyle(document.body).backgroundColor")
            rgb = tuple(int(x) for x in re.findall(r"\d+", page_background)[:3])
            assert _luminance(rgb) < 0.1, f"{path.stem}: the page is not dark ({page_background})"
            images = visit.page.locator("article img")
            for index in range(images.count()):
                image = images.nth(index)
                if not image.is_visible():
                    continue  # inside a closed solution
                image.scroll_into_view_if_needed()
                background, contrast = figure_contrast(image.screenshot())
                checked += 1
                if background < 0.8 or contrast < WCAG_TEXT_CONTRAST:
                    problems.append(f"{path.stem} figure {index}: background {background:.2f}, contrast {contrast:.1f}")
    finally:
        visit.close()
    assert checked >= len(NOTEBOOK_PATHS), "expected at least a figure per notebook"
    assert problems == [] and visit.errors == []


def test_search_finds_the_notebook_about_a_term(built: Path, chromium) -> None:
    base = _server(str(built / "site"))
    visit = Visit(chromium, (base,))
    try:
        visit.open(f"{base}/en/search.html?q=retain_graph")
        results = visit.page.locator("#search-results ul.search li a")
        results.first.wait_for()
        hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    finally:
        visit.close()
    assert any(h.startswith("02_sum_vs_separate_backward.html") for h in hrefs), hrefs
    assert visit.errors == [] and visit.left_the_machine == []


def test_solutions_are_collapsed_until_opened_and_run_it_goes_to_colab(built: Path, chromium) -> None:
    base = _server(str(built / "site"))
    visit = Visit(chromium, (base,))
    try:
        for path in NOTEBOOK_PATHS:
            visit.open(f"{base}/en/{path.stem}.html")
            assert visit.page.locator("a.run-it-colab").get_attribute("href") == colab_url(path.name)
            hidden = [c for c in nbformat.read(path, as_version=4).cells if course_notebooks.is_hidden(c)]
            solutions = visit.page.locator("details.hide.above-input")
            assert solutions.count() == len(hidden), path.name
            if not hidden:
                continue
            first_line = hidden[0].source.splitlines()[0].strip()
            code = solutions.first.locator(".cell_input")
            assert not code.is_visible(), f"{path.name}: a solution shows before it is opened"
            solutions.first.locator("summary").click()
            assert code.is_visible() and first_line in code.inner_text()
    finally:
        visit.close()
    assert visit.errors == [] and visit.left_the_machine == []


def test_api_reference_documents_what_the_notebooks_use(built: Path, chromium) -> None:
    base = _server(str(built / "site"))
    visit = Visit(chromium, (base,))
    try:
        visit.open(f"{base}/en/api.html")
        ids = set(visit.page.eval_on_selector_all("dt[id]", "items => items.map(d => d.id)"))
    finally:
        visit.close()
    for names in build_site.api_entries(NOTEBOOK_PATHS).values():
        assert set(names) <= ids
    assert "mtl_teach.train.train" in ids and "mtl_teach.playground.playground" in ids


def test_every_page_switches_to_its_twin_in_the_other_edition(built: Path, chromium) -> None:
    """Both editions are built (notebooks/ and notebooks/zh-CN/); each page's language switch opens its twin."""
    assert (built / "site" / "en" / "index.html").is_file() and (built / "site" / "zh-CN" / "index.html").is_file()
    assert site_pages(built, "zh-CN") == site_pages(built, "en")
    base = _server(str(built / "site"))
    visit = Visit(chromium, (base,))
    try:
        for page in ["index", *(path.stem for path in NOTEBOOK_PATHS), "search"]:
            visit.open(f"{base}/en/{page}.html")
            visit.page.locator(".language-switch a[hreflang='zh-CN']").click()
            visit.page.wait_for_url(f"{base}/zh-CN/{page}.html")
            assert visit.page.locator("html").get_attribute("lang") == "zh-CN"
            assert visit.broken_images() == []
            visit.page.locator(".language-switch a[hreflang='en']").click()
            visit.page.wait_for_url(f"{base}/en/{page}.html")
    finally:
        visit.close()
    assert visit.errors == [] and visit.left_the_machine == []


def expected_slides(path: Path) -> int:
    """Slides in a notebook's deck: its cells that start a slide or sub-slide, skipped cells left out."""
    nb = nbformat.read(path, as_version=4)
    mark(nb)
    return sum(slide_type_of(c) in ("slide", "subslide") for c in nb.cells)


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_deck_opens_from_disk_and_steps_through_with_the_keyboard(built: Path, chromium, path: Path) -> None:
    deck = built / "slides" / "en" / f"{path.stem}.slides.html"
    visit = Visit(chromium, ("file://", "data:"))
    try:
        visit.open(deck.as_uri())
        visit.page.wait_for_function("window.Reveal && Reveal.isReady()")
        total = visit.page.evaluate("Reveal.getTotalSlides()")
        assert total == expected_slides(path)
        assert visit.broken_images() == []
        for step in range(1, total):
            visit.page.keyboard.press("ArrowRight" if step % 2 else "Space")
            assert visit.page.evaluate("Reveal.getSlidePastCount()") == step, f"key {step} did not advance"
        assert visit.page.evaluate("Reveal.isLastSlide()")
        visit.page.keyboard.press("Home")
        assert visit.page.evaluate("Reveal.getSlidePastCount()") == 0
        text = visit.page.locator(".reveal .slides").text_content()
        for cell in nbformat.read(path, as_version=4).cells:
            if course_notebooks.is_hidden(cell):
                assert cell.source.splitlines()[0] not in text, "a solution is on a slide"
    finally:
        visit.close()
    assert visit.errors == [] and visit.left_the_machine == []


def test_slides_index_lists_every_deck(built: Path) -> None:
    index = (built / "slides" / "index.html").read_text(encoding="utf-8")
    for path in NOTEBOOK_PATHS:
        assert f'href="en/{path.stem}.slides.html"' in index
        assert (built / "slides" / "en" / f"{path.stem}.slides.html").is_file()
