"""Where the browser tests find the notebooks and the browser, and where they leave artifacts."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / ".e2e-artifacts"  # screenshots, logs and the latency report (git-ignored)
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never a browser downloaded by Playwright
