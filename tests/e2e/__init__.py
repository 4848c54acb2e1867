"""Browser tests: the notebooks and the playground in JupyterLab, driven by headless Chromium."""
