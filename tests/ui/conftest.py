"""Fixtures for the browser suite: one JupyterLab and one headless Chromium per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.lab import START_TIMEOUT, Lab, chromium, missing

#: Why the suite cannot run here, said loudly in the skip reason (make test also prints it).
LACKS = missing()
SKIP_REASON = (
    "BROWSER SUITE SKIPPED (tests/ui): missing " + "; ".join(LACKS) + ". CI installs them (.ci/run)." if LACKS else ""
)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if LACKS:
        pytest.skip(SKIP_REASON)
    from selenium.webdriver.support.wait import WebDriverWait

    server = Lab(tmp_path_factory.mktemp("lab"))
    server.start()
    try:
        WebDriverWait(server, START_TIMEOUT, poll_frequency=0.2).until(
            lambda s: s.ready(), message="JupyterLab did not answer /api/status"
        )
    except Exception:
        server.stop()
        raise RuntimeError(f"JupyterLab did not start:\n{server.log()}") from None
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = chromium(Path(tmp_path_factory.mktemp("chromium")))
    yield driver
    driver.quit()
