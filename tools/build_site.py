"""Build the course site from the stored, executed notebooks: `make site` (output in _build/site/).

    python tools/build_site.py [--notebooks notebooks] [--out _build/site]

For each edition of the course (tools/course_notebooks.py: English, and each
translation once its notebooks exist) this writes a Sphinx source folder under
_build/site-src/<language>/ and builds it into <out>/<language>/:

- index: the course's question, the answer in short (the "## Answer" cell of
  notebook 00) and the map of the course (each notebook's title and question,
  read from its first cell, so the map is never out of date);
- one page per notebook, rendered by myst-nb from its stored outputs (never
  executed here): figures, each playground's final frame, a "run it" box,
  solutions collapsed;
- api: the package's functions and classes that the notebooks use, from their
  docstrings (found by reading the notebooks' imports).

A Sphinx warning about a page fails the build (a page left out of the table
of contents, a broken internal link); one about a docstring's formatting is
printed (see run_sphinx). After Sphinx,
`check_toc` checks that every notebook has a page linked from the navigation.
Nothing is downloaded: the theme comes from PyPI (furo), MathJax from the npm
package installed by `npm ci` (package-lock.json), copied into the site.
"""

from __future__ import annotations

import argparse
import ast
import html
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from course_notebooks import (
    NOTEBOOKS,
    REPO,
    Edition,
    answer,
    colab_link,
    editions_present,
    for_reading,
    is_colab_cell,
    is_hidden,
    notebooks_of,
    summary,
)

SITE = REPO / "site"  # conf.py, templates, styles
BUILD = REPO / "_build"
MATHJAX = REPO / "node_modules" / "mathjax" / "es5"
# What the site needs of MathJax 3: the TeX-to-HTML component, its fonts, the TeX extensions it loads on demand.
MATHJAX_PARTS = ["tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions"]


class SiteError(Exception):
    """The site cannot be built as asked, or a built page misses what it must show."""


def write_if_changed(path: Path, text: str) -> None:
    """Write `text` unless the file already holds it (Sphinx then rebuilds only what changed)."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def vendor_mathjax(dest: Path) -> Path:
    """Copy the parts of MathJax the pages load into `dest`/mathjax (served from the site's _static)."""
    if not (MATHJAX / "tex-chtml.js").exists():
        raise SiteError(f"{MATHJAX} is missing: run `npm ci` in {REPO} (make site does)")
    for part in MATHJAX_PARTS:
        source, target = MATHJAX / part, dest / "mathjax" / part
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def notebook_page(path: Path, edition: Edition) -> str:
    """The notebook as the site shows it: badge off, a "run it" box after the title, solutions collapsed."""
    nb = for_reading(nbformat.read(path, as_version=4), edition)
    labels = edition.labels
    run_it = (
        '<div class="run-it">\n'
        f"<p><strong>{labels['run_it']}:</strong> "
        f'<a class="run-it-colab" href="{html.escape(colab_link(edition, path))}">{labels["open_in_colab"]}</a></p>\n'
        f"<p>{labels['run_locally']}</p>\n"
        "</div>"
    )
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(run_it))
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if is_colab_cell(cell):
            tags.append("remove-cell")
        elif is_hidden(cell):  # a solution, with what it prints: closed until the reader opens it
            tags.append("hide-cell")
            cell.metadata["mystnb"] = {
                "code_prompt_show": labels["show_solution"],
                "code_prompt_hide": labels["hide_solution"],
            }
    return nbformat.writes(nb)


def landing_page(edition: Edition, notebooks: list[Path], with_api: bool) -> str:
    """index.md: the question, the answer in short (notebook 00's "## Answer") and the map of the course."""
    labels = edition.labels
    start = next((p for p in notebooks if p.name.startswith("00")), notebooks[0])
    rows = []
    for path in notebooks:
        s = summary(path)
        rows.append(f"* - [{s.title}]({s.name}.ipynb)\n  - {s.question}")
    toctree = [p.stem for p in notebooks] + (["api"] if with_api else [])
    return "\n".join(
        [
            f"# {labels['course_title']}",
            "",
            f"> {labels['course_question']}",
            "",
            f"## {labels['answer']}",
            "",
            answer(start),
            "",
            f"## {labels['map']}",
            "",
            "```{list-table}",
            ":header-rows: 1",
            ":class: course-map",
            "",
            f"* - {labels['notebook']}\n  - {labels['question']}",
            *rows,
            "```",
            "",
            "```{toctree}",
            ":hidden:",
            ":maxdepth: 1",
            "",
            *toctree,
            "```",
            "",
        ]
    )


def _dotted(node: ast.AST) -> str | None:
    """'a.b.c' for a Name or a chain of attribute accesses, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def package_names_used(sources: list[str]) -> set[str]:
    """Dotted names of `mtl_teach` objects that a notebook's code cells import or reach through an imported module.

    An import in one cell holds for the cells after it, so the cells are read together.
    """
    trees = []
    for source in sources:
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            trees.append(ast.parse("\n".join(lines)))
        except SyntaxError:
            continue
    aliases: dict[str, str] = {}  # name bound by an import -> dotted name in the package
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtl_teach"):
            for name in node.names:
                aliases[name.asname or name.name] = f"{node.module}.{name.name}"
        elif isinstance(node, ast.Import):
            for name in node.names:
                if name.name.startswith("mtl_teach"):
                    aliases[name.asname or "mtl_teach"] = name.name if name.asname else "mtl_teach"
    used = set(aliases.values())
    for node in (n for tree in trees for n in ast.walk(tree)):
        dotted = _dotted(node) if isinstance(node, ast.Attribute) else None
        if dotted and dotted.split(".")[0] in aliases:
            head, _, rest = dotted.partition(".")
            used.add(f"{aliases[head]}.{rest}")
    return used


def resolve(dotted: str) -> tuple[str, object] | None:
    """(module name, object) for a public package object named `dotted`, or None (private, missing, a module)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        module = obj
        for attr in parts[cut:]:
            if attr.startswith("_") or not hasattr(obj, attr):
                return None
            obj = getattr(obj, attr)
        if isinstance(obj, types.ModuleType) or len(parts) - cut != 1:
            return None  # a module, or a method/attribute of a class: documented with its class
        return module.__name__, obj
    return None


def api_entries(notebooks: list[Path]) -> dict[str, dict[str, list[str]]]:
    """{module: {qualified name: [notebook stems using it]}} for the package objects the notebooks use."""
    entries: dict[str, dict[str, list[str]]] = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        used = package_names_used([c.source for c in nb.cells if c.cell_type == "code"])
        for dotted in used:
            found = resolve(dotted)
            if found is None:
                continue
            module, obj = found
            users = entries.setdefault(module, {}).setdefault(f"{module}.{dotted.rsplit('.', 1)[1]}", [])
            if path.stem not in users:
                users.append(path.stem)
    return {m: dict(sorted(entries[m].items())) for m in sorted(entries)}


def constant_comment(module: str, name: str) -> str:
    """The comment after `NAME = ...` where a module defines a constant ('' if there is none)."""
    short = name.rsplit(".", 1)[1]
    for line in inspect.getsource(importlib.import_module(module)).splitlines():
        if line.startswith(f"{short} =") and "  # " in line:
            return line.split("  # ", 1)[1].strip()
    return ""


def api_page(edition: Edition, notebooks: list[Path]) -> str:
    """api.rst: autodoc entries for every package object the notebooks use, with links back to them."""
    labels = edition.labels
    lines = [labels["api"], "=" * len(labels["api"]) * 2, "", labels["api_intro"], ""]
    for module, names in api_entries(notebooks).items():
        lines += [module, "-" * len(module), "", f".. automodule:: {module}", "   :no-members:", ""]
        for name, users in names.items():
            obj = importlib.import_module(module).__dict__[name.rsplit(".", 1)[1]]
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                directive = "autoexception"
            elif inspect.isclass(obj):
                directive = "autoclass"
            elif callable(obj):
                directive = "autofunction"
            else:  # a constant: its value, and the comment on the line that defines it
                directive = "py:data"
            links = ", ".join(f":doc:`{stem[:2]} <{stem}>`" for stem in sorted(users))
            options = {"autoclass": ["   :members:"], "py:data": [f"   :value: {obj!r}"]}.get(directive, [])
            body = [f"   {constant_comment(module, name)}", ""] if directive == "py:data" else []
            target = name.rsplit(".", 1)[1] if directive == "py:data" else name  # py:data is inside its module
            lines += [f".. {directive}:: {target}", *options, "", *body, f"   {labels['used_in']}: {links}", ""]
    return "\n".join(lines)


def write_sources(edition: Edition, notebooks: list[Path], src: Path, with_api: bool) -> list[str]:
    """Write the edition's Sphinx sources into `src`; return its page names."""
    wanted = {"index.md"} | {f"{p.stem}.ipynb" for p in notebooks} | ({"api.rst"} if with_api else set())
    for stale in src.glob("*.*"):
        if stale.name not in wanted:
            stale.unlink()
    write_if_changed(src / "index.md", landing_page(edition, notebooks, with_api))
    for path in notebooks:
        write_if_changed(src / f"{path.stem}.ipynb", notebook_page(path, edition))
    if with_api:
        write_if_changed(src / "api.rst", api_page(edition, notebooks))
    return sorted(Path(name).stem for name in wanted)


def run_sphinx(src: Path, dest: Path, settings: dict) -> list[str]:
    """Build one edition; fail on any warning except a docstring's formatting (returned, to print).

    A warning about a page (a document left out of the table of contents, a
    broken link, an output that cannot be shown) fails the build. The package's
    docstrings are plain text written for `help()`: a line that reStructuredText
    reads oddly is reported, but does not stop the site.
    """
    env = dict(os.environ, MTL_SITE_EDITION=json.dumps(settings), PYTHONHASHSEED="0")
    log = src.parent / f"{src.name}-warnings.log"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-w", str(log), "-c", str(SITE)]
    command += ["-d", str(src.parent / ".doctrees" / src.name), str(src), str(dest)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    warnings = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()] if log.exists() else []
    fatal = [line for line in warnings if ":docstring of " not in line]
    if done.returncode != 0 or fatal:
        raise SiteError(f"sphinx-build failed for {src.name}:\n" + "\n".join(fatal or [done.stdout + done.stderr]))
    return warnings


class _Links(HTMLParser):
    """Collects the href of every <a> inside the element with class `sidebar-tree` (furo's navigation)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # > 0 inside the navigation
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self.depth:
            self.depth += 1
        elif "sidebar-tree" in (attributes.get("class") or "").split():
            self.depth = 1
        if self.depth and tag == "a" and attributes.get("href"):
            self.hrefs.append(attributes["href"])

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1


def check_toc(built: Path, notebooks: list[Path]) -> None:
    """Fail unless every notebook has a page, linked from the navigation of the landing page."""
    parser = _Links()
    parser.feed((built / "index.html").read_text(encoding="utf-8"))
    linked = {href.split("#")[0] for href in parser.hrefs}
    missing = [p.name for p in notebooks if f"{p.stem}.html" not in linked or not (built / f"{p.stem}.html").exists()]
    if missing:
        raise SiteError(f"{built}: notebooks missing from the site's table of contents: {', '.join(missing)}")


def redirect_page(editions: list[Edition]) -> str:
    """The site's root page: straight on to the first edition, with a link to each."""
    links = "\n".join(f'<li><a href="{e.language}/index.html">{e.labels["label"]}</a></li>' for e in editions)
    first = editions[0].language
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0; url={first}/index.html">\n'
        f"<title>{editions[0].labels['course_title']}</title>\n</head>\n"
        f"<body>\n<ul>\n{links}\n</ul>\n</body>\n</html>\n"
    )


def build(root: Path = NOTEBOOKS, out: Path = BUILD / "site", work: Path = BUILD / "site-src", with_api: bool = True):
    """Build every edition found under `root` into `out`; return the editions built."""
    editions = editions_present(root)
    if not editions:
        raise SiteError(f"no notebooks (NN_name.ipynb) in {root}")
    vendor = vendor_mathjax(work / "_vendor")
    pages = {}
    for edition in editions:
        pages[edition.language] = write_sources(edition, notebooks_of(edition, root), work / edition.language, with_api)
    sphinx_pages = ["search", "genindex"]  # pages Sphinx adds to every edition
    switch = [{"language": e.language, "label": e.labels["label"], "pages": pages[e.language]} for e in editions]
    for entry in switch:
        entry["pages"] += sphinx_pages
    for edition in editions:
        settings = {
            "language": edition.language,
            "sphinx_language": edition.sphinx_language,
            "course_title": edition.labels["course_title"],
            "editions": switch,
            "extra_static": [str(vendor)],
        }
        for warning in run_sphinx(work / edition.language, out / edition.language, settings):
            print(f"make site: docstring formatting: {warning}", file=sys.stderr)
        check_toc(out / edition.language, notebooks_of(edition, root))
    write_if_changed(out / "index.html", redirect_page(editions))
    return editions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--notebooks", type=Path, default=NOTEBOOKS, help="English notebooks; translations in sub-folders"
    )
    parser.add_argument("--out", type=Path, default=BUILD / "site")
    parser.add_argument("--work", type=Path, default=BUILD / "site-src", help="where the Sphinx sources are written")
    parser.add_argument("--no-api", action="store_true", help="leave out the API reference")
    args = parser.parse_args(argv)
    try:
        editions = build(args.notebooks, args.out, args.work, with_api=not args.no_api)
    except SiteError as error:
        print(f"make site: {error}", file=sys.stderr)
        return 1
    for edition in editions:
        print(f"{args.out / edition.language / 'index.html'}: {len(notebooks_of(edition, args.notebooks))} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
