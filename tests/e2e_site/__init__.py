"""Browser tests of the course site and slide decks (apart from tests/e2e, whose package-scoped JupyterLab
and Playwright are shut down before these start: one Playwright at a time)."""
