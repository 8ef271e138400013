"""Repository-level pytest setup: notebooks (nbmake) run in sandbox mode, in a throwaway home."""

from __future__ import annotations

import os
import shutil
import tempfile

_CREATED: list[str] = []


def pytest_configure(config):
    # Kernels started by nbmake inherit this environment: sandbox mode, no real key, no real ledger.
    os.environ["TM402_MODE"] = "sandbox"
    if "TM402_HOME" not in os.environ:
        os.environ["TM402_HOME"] = home = tempfile.mkdtemp(prefix="tm402-test-home-")
        _CREATED.append(home)  # xdist workers inherit it; the process that made it removes it
    for secret in ("TM402_PRIVATE_KEY", "TM402_KEY_FILE", "TM_API_KEY"):
        os.environ.pop(secret, None)


def pytest_unconfigure(config):
    for home in _CREATED:
        shutil.rmtree(home, ignore_errors=True)
