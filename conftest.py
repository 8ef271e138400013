"""Repository-level pytest setup: notebooks (nbmake) run in sandbox mode, in a throwaway home."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config):
    # Kernels started by nbmake inherit this environment: sandbox mode, no real key, no real ledger.
    os.environ["TM402_MODE"] = "sandbox"
    os.environ.setdefault("TM402_HOME", tempfile.mkdtemp(prefix="tm402-test-home-"))
    for secret in ("TM402_PRIVATE_KEY", "TM402_KEY_FILE", "TM_API_KEY"):
        os.environ.pop(secret, None)
