from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.toyserver import ToyConfig, ToyX402, serve_app
from tm402_nb.ledger import Ledger
from tm402_nb.x402 import SpendPolicy, Wallet


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    # No test may touch the user's real ledger or key.
    monkeypatch.setenv("TM402_HOME", str(tmp_path / "tm402home"))
    monkeypatch.delenv("TM402_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("TM402_KEY_FILE", raising=False)
    monkeypatch.delenv("TM_API_KEY", raising=False)
    monkeypatch.delenv("TM402_MODE", raising=False)  # the root conftest sets it for nbmake kernels


@pytest.fixture
def wallet() -> Wallet:
    return Wallet.create()


@pytest.fixture
def ledger(tmp_path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


@pytest.fixture
def policy() -> SpendPolicy:
    return SpendPolicy()


@pytest.fixture
def toy() -> Iterator[ToyX402]:
    server = ToyX402(ToyConfig(version=1))
    with serve_app(server.app) as url:
        server.url = url  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def toy2() -> Iterator[ToyX402]:
    server = ToyX402(ToyConfig(version=2))
    with serve_app(server.app) as url:
        server.url = url  # type: ignore[attr-defined]
        yield server
