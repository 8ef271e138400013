"""JupyterLab on 127.0.0.1 and Debian's Chromium driving it, for the browser suite.

Everything is throwaway and local: a random free port, a token, a temporary home, Jupyter
config/data/runtime dirs and JupyterLab settings; ``TM402_MODE=sandbox`` and a temporary
``TM402_HOME`` for the kernel. JupyterLab is configured not to reach the internet (no news
feed, no update check, the read-only extension manager) and Chromium resolves no host name
but 127.0.0.1. Selenium is handed the driver and browser paths, so Selenium Manager never
downloads anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("TM402_UI_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TM402_UI_CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOTS = ROOT / "build" / "ui"
#: Bounded waits (seconds): a first JupyterLab start, a kernel, a cell.
START_TIMEOUT = 60
CELL_TIMEOUT = 60
WINDOW = (1400, 1000)


def missing() -> list[str]:
    """What the suite needs and this machine lacks (empty: it can run)."""
    lacks = []
    if not CHROMIUM.exists():
        lacks.append(f"{CHROMIUM} (apt-get install chromium)")
    if not CHROMEDRIVER.exists():
        lacks.append(f"{CHROMEDRIVER} (apt-get install chromium-driver)")
    for module, extra in (("selenium", "test"), ("jupyterlab", "test")):
        if importlib.util.find_spec(module) is None:
            lacks.append(f"the {module} package (pip install -e '.[{extra}]')")
    return lacks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: JupyterLab's server side: nothing fetched from outside (news feed, update check, PyPI).
SERVER_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
        "expose_app_in_browser": True,  # window.jupyterapp: the suite runs JupyterLab's own commands
    },
    "ServerApp": {"open_browser": False, "allow_root": True},  # CI runs as root
}

#: JupyterLab's front end: no news prompt, every cell in the DOM (no windowing), no autosave.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": "JupyterLab Light"},
}


class Lab:
    """A JupyterLab server for one test session, serving a copy of the tutorials."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.notebooks = tmp / "notebooks"
        self.log_path = tmp / "jupyterlab.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        home = self.tmp / "home"
        dirs = {
            "HOME": home,
            "JUPYTER_CONFIG_DIR": self.tmp / "jupyter-config",
            "JUPYTER_DATA_DIR": self.tmp / "jupyter-data",
            "JUPYTER_RUNTIME_DIR": self.tmp / "jupyter-runtime",
            "JUPYTERLAB_SETTINGS_DIR": self.tmp / "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": self.tmp / "lab-workspaces",
            "IPYTHONDIR": self.tmp / "ipython",
            "MPLCONFIGDIR": self.tmp / "matplotlib",
            "TM402_HOME": self.tmp / "tm402-home",
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TM402_", "TM_API", "JUPYTER"))}
        env.update({k: str(v) for k, v in dirs.items()})
        env["TM402_MODE"] = "sandbox"
        # The kernel imports tm402_nb from this checkout, whatever the venv has installed.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> None:
        env = self.env()
        config = Path(env["JUPYTER_CONFIG_DIR"])
        for name in ("jupyter_server_config.json", "jupyter_lab_config.json"):
            (config / name).write_text(json.dumps(SERVER_CONFIG))
        settings = Path(env["JUPYTERLAB_SETTINGS_DIR"])
        for rel, value in USER_SETTINGS.items():
            path = settings / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        # A copy: running the tutorial must never rewrite the committed one.
        self.notebooks.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "notebooks" / "00_quickstart.ipynb", self.notebooks)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.notebooks}",
            ],
            env=env,
            cwd=self.notebooks,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def ready(self) -> bool:
        import httpx

        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log()}")
        try:
            r = httpx.get(f"{self.url}/api/status", params={"token": self.token}, timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def chromium(tmp: Path) -> Any:
    """Headless Debian Chromium through its chromedriver; no Selenium Manager, no download."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, if anything reached it, must not download
    os.environ["SE_AVOID_BROWSER_DOWNLOAD"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--metrics-recording-only",
        "--password-store=basic",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        # Nothing leaves 127.0.0.1: every other host name resolves to nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(CELL_TIMEOUT)
    driver.set_page_load_timeout(START_TIMEOUT)
    return driver


# -- colours (WCAG 2.x) -------------------------------------------------------------------------------------
_RGB = re.compile(r"rgba?\(([^)]*)\)")


def parse_colour(text: str) -> tuple[float, float, float, float]:
    """A computed CSS colour (``rgb(…)``/``rgba(…)``, as getComputedStyle writes them) as r, g, b (0-255), alpha."""
    if text == "transparent":
        return (0.0, 0.0, 0.0, 0.0)
    m = _RGB.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not an rgb() colour: {text!r}")
    parts = [float(p) for p in re.split(r"[,\s/]+", m.group(1).strip()) if p]
    r, g, b = parts[:3]
    return (r, g, b, parts[3] if len(parts) > 3 else 1.0)


def over(top: tuple[float, float, float, float], below: tuple[float, float, float]) -> tuple[float, float, float]:
    """``top`` composited over an opaque ``below``."""
    a = top[3]
    return (top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a), top[2] * a + below[2] * (1 - a))


def luminance(rgb: tuple[float, float, float]) -> float:
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def effective_background(chain: list[str]) -> tuple[float, float, float]:
    """The opaque colour behind an element: its and its ancestors' backgrounds, over the white canvas."""
    colour = (255.0, 255.0, 255.0)
    for text in reversed(chain):  # from <html> down to the element
        colour = over(parse_colour(text), colour)
    return colour
