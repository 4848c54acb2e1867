"""Sphinx configuration of the course site (used by tools/build_site.py; run `make site`).

The pages are the stored, executed notebooks: myst-nb renders the outputs nbval
validated and never runs a cell. Everything a page needs (theme, search,
MathJax) is served from the built site itself, so it builds and reads offline.
tools/build_site.py writes the source folder and passes the edition's settings
in the environment variables read below.
"""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # autodoc imports mtl_teach from this checkout

EDITION = json.loads(os.environ.get("MTL_SITE_EDITION", "{}"))  # written by tools/build_site.py

project = EDITION.get("course_title", "mtl-teach")
author = "the mtl-teach authors"
copyright = "the mtl-teach authors"
language = EDITION.get("sphinx_language", "en")

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]  # notebooks start at "## ..." after their "# title"
default_role = "literal"  # docstrings write `name` for code, as in Markdown
smartquotes = False  # show the notebooks' quotes and apostrophes as written

# Notebooks: stored outputs only, never executed here.
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget JavaScript from a CDN: playgrounds show their final frame (image/png)
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath"]  # $...$ as in JupyterLab
myst_heading_anchors = 3

# API reference from the docstrings.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": False}
python_display_short_literal_types = True

# MathJax from the site's own _static (copied from the npm package by tools/build_site.py).
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "furo"
html_title = project
html_static_path = ["_static", *EDITION.get("extra_static", [])]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"  # a local icon, so the browser asks for no /favicon.ico
templates_path = ["_templates"]
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
html_context = {"editions": EDITION.get("editions", []), "edition": EDITION.get("language", "en")}
html_theme_options = {
    "navigation_with_keys": True,
    "top_of_page_buttons": [],
}
html_sidebars = {
    "**": [
        "sidebar/brand.html",
        "sidebar/language.html",
        "sidebar/search.html",
        "sidebar/scroll-start.html",
        "sidebar/navigation.html",
        "sidebar/scroll-end.html",
    ]
}


def plain_text_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """Keep a docstring's |x| (a norm) and a * b (a product) as written.

    The package's docstrings are plain text for `help()`; reStructuredText
    would read |x| as a substitution and a lone * as the start of emphasis.
    Both are escaped outside `code` and outside literal blocks (after "::").
    """
    literal_indent = None  # inside a literal block: the indent of the line that opened it
    for index, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and (not line.strip() or indent > literal_indent):
            continue
        literal_indent = indent if line.rstrip().endswith("::") else None
        parts = line.split("`")
        for i in range(0, len(parts), 2):  # the even parts are outside backticks
            parts[i] = parts[i].replace("|", "\\|").replace("*", "\\*")
        lines[index] = "`".join(parts)


def setup(app) -> None:
    app.connect("autodoc-process-docstring", plain_text_docstring)
    if language.startswith("zh"):
        # Sphinx 9.0's Chinese search loads the English stemmer (for Latin words) but names it
        # ChineseStemmer, so the search page fails with "ChineseStemmer is not defined".
        from sphinx.search import zh

        if zh.SearchChinese.js_stemmer_rawcode == "english-stemmer.js":
            zh.SearchChinese.language_name = "English"
