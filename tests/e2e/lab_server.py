"""A throwaway JupyterLab server for the browser tests.

It serves a copy of the notebooks (so runs never modify the stored ones) on
127.0.0.1 with a random port and token, and keeps all of its state (config,
settings, workspaces, runtime files) in a temporary folder, so nothing from
a person's own JupyterLab setup leaks in and nothing is left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

# User settings that keep the page quiet and the DOM complete:
# - windowingMode "none": every cell stays in the DOM (the default windowing
#   removes cells scrolled out of view, so they could not be inspected);
# - no news or update notifications popping over the outputs.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """`jupyter lab` in its own process group, with its state under `home`."""

    def __init__(self, root_dir: Path, home: Path) -> None:
        self.root_dir = root_dir
        self.home = home
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyter-lab.log"
        self.process: subprocess.Popen | None = None

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            # The user data dir moves, but sys.prefix/share/jupyter (where the
            # widgets lab extension and the kernel spec live) stays on the path.
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTERLAB_SETTINGS_DIR=str(self.home / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"),
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            PYTHONHASHSEED="0",
        )
        env.pop("MTL_TEACH_HEADLESS", None)  # the kernel must see a person at the page
        env.pop("JUPYTER_PREFER_ENV_PATH", None)
        return env

    def _write_settings(self) -> None:
        for relative, values in LAB_SETTINGS.items():
            path = self.home / "settings" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the server and wait until its REST API answers."""
        self._write_settings()
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.news_url=",
            "--ServerApp.log_level=WARN",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=self.root_dir,
            env=self._environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches all of it
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.25)
        raise TimeoutError(f"jupyter lab did not answer within {timeout_s} s:\n{self.log_tail()}")

    def url(self, path: str) -> str:
        """The address of `path` (e.g. "lab/tree/x.ipynb"), with the token and ?reset."""
        return f"{self.base_url}/{path}?reset&token={self.token}"

    def api(self, method: str, path: str) -> object:
        """Call the server's REST API; returns the decoded JSON answer (or None)."""
        request = urllib.request.Request(
            self.base_url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session and kernel (between notebooks, so each starts fresh)."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def log_tail(self, n_chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n_chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server and every process it started, whatever state it is in."""
        if self.process is None:
            return
        # Kernels run in process groups of their own: note them before the server goes.
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        try:
            self.api("POST", "/api/shutdown")  # shuts kernels down cleanly
            self.process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _, alive = psutil.wait_procs(children, timeout=5)
        for child in alive:
            child.kill()
        self.process = None
