"""Build one static slide deck per notebook: `make slides` (output in _build/slides/).

    python tools/build_slides.py [--notebooks notebooks] [--out _build/slides]

Each deck is one HTML file, <out>/<language>/<notebook>.slides.html, made by
nbconvert's reveal.js exporter from the notebook's stored outputs (nothing is
executed) with the slide boundaries marked in the notebook's own metadata
(tools/mark_slides.py; a cell without a mark gets one by the same rule here,
so a new notebook still makes a deck). Figures are embedded in the file;
reveal.js (and MathJax, for a deck with formulas) are copied from the npm
packages `npm ci` installed into <out>/_assets/, so a deck opens from disk
with no network. <out>/index.html lists the decks.

In a deck: the arrow keys, space or page keys step through every slide; a
slide taller than the screen scrolls; S opens the speaker view.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path

import nbformat
from course_notebooks import NOTEBOOKS, REPO, Edition, editions_present, for_reading, notebooks_of, summary
from mark_slides import mark
from nbconvert import SlidesExporter

BUILD = REPO / "_build"
TEMPLATES = REPO / "site" / "slides"  # the mtl_reveal template: nbconvert's reveal template, CDN-free
REVEAL = REPO / "node_modules" / "reveal.js" / "dist"
MATHJAX = REPO / "node_modules" / "mathjax" / "es5"
# What the decks load of each library (copied once into <out>/_assets/).
REVEAL_PARTS = ["reveal.js", "reveal.css", "theme/white.css", "plugin/notes.js"]
MATHJAX_PARTS = ["tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions"]
MATH = re.compile(r"\$[^$\n]+\$|\\\(|\\\[|\$\$")


class SlidesError(Exception):
    """The decks cannot be built as asked."""


def copy_parts(source: Path, parts: list[str], dest: Path) -> None:
    """Copy the listed files and folders of `source` into `dest`, keeping their relative paths."""
    if not source.is_dir():
        raise SlidesError(f"{source} is missing: run `npm ci` in {REPO} (make slides does)")
    for part in parts:
        if (source / part).is_dir():
            shutil.copytree(source / part, dest / part, dirs_exist_ok=True)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, dest / part)


def deck(path: Path, edition: Edition, exporter: SlidesExporter) -> str:
    """The notebook as one reveal.js deck (HTML text), its stored outputs as they are."""
    nb = for_reading(nbformat.read(path, as_version=4), edition)
    mark(nb)  # cells the notebook has not marked yet get the rule's marks (the stored file is not changed)
    has_math = any(MATH.search(c.source) for c in nb.cells if c.cell_type == "markdown")
    resources = {
        "metadata": {"name": summary(path).title},
        "language_code": edition.language,
        "mtl": {
            "assets": "../_assets",
            "has_math": has_math,
            "home": "../index.html",
            "home_label": edition.labels["slides"],
        },
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def index_page(decks: dict[Edition, list[Path]]) -> str:
    """<out>/index.html: every deck, by edition, with the notebook's title and question."""
    sections = []
    for edition, notebooks in decks.items():
        items = "\n".join(
            f'<li><a href="{edition.language}/{p.stem}.slides.html">{html.escape(summary(p).title)}</a>'
            f" <span>{html.escape(summary(p).question)}</span></li>"
            for p in notebooks
        )
        sections.append(
            f'<section lang="{edition.language}">\n<h2>{edition.labels["slides"]}: '
            f"{html.escape(edition.labels['course_title'])}</h2>\n<ul>\n{items}\n</ul>\n</section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n'
        "<title>Slides</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.5}"
        "li span{color:#555}</style>\n</head>\n<body>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def build(root: Path = NOTEBOOKS, out: Path = BUILD / "slides") -> dict[Edition, list[Path]]:
    """Write a deck for every notebook of every edition under `root` into `out`; return them by edition."""
    editions = editions_present(root)
    if not editions:
        raise SlidesError(f"no notebooks (NN_name.ipynb) in {root}")
    copy_parts(REVEAL, REVEAL_PARTS, out / "_assets" / "reveal.js" / "dist")
    copy_parts(MATHJAX, MATHJAX_PARTS, out / "_assets" / "mathjax")
    exporter = SlidesExporter(
        template_name="mtl_reveal",
        extra_template_basedirs=[str(TEMPLATES)],
        reveal_url_prefix="../_assets/reveal.js",  # the copy made above, next to the decks
        reveal_theme="white",  # its fonts are embedded in the CSS file
    )
    decks = {}
    for edition in editions:
        decks[edition] = notebooks_of(edition, root)
        folder = out / edition.language
        folder.mkdir(parents=True, exist_ok=True)
        for stale in set(folder.glob("*.slides.html")) - {folder / f"{p.stem}.slides.html" for p in decks[edition]}:
            stale.unlink()
        for path in decks[edition]:
            (folder / f"{path.stem}.slides.html").write_text(deck(path, edition, exporter), encoding="utf-8")
    (out / "index.html").write_text(index_page(decks), encoding="utf-8")
    return decks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--notebooks", type=Path, default=NOTEBOOKS, help="English notebooks; translations in sub-folders"
    )
    parser.add_argument("--out", type=Path, default=BUILD / "slides")
    args = parser.parse_args(argv)
    try:
        decks = build(args.notebooks, args.out)
    except SlidesError as error:
        print(f"make slides: {error}", file=sys.stderr)
        return 1
    for edition, notebooks in decks.items():
        print(f"{args.out / edition.language}: {len(notebooks)} decks")
    print(f"open {args.out / 'index.html'} in a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
