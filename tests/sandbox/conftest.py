"""Fixtures for the sandbox suite: running servers (one per protocol version) and clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tm402_nb.sandbox import SandboxServer, serve


@pytest.fixture(scope="module")
def sb1() -> Iterator[SandboxServer]:
    with serve(x402_version=1) as server:
        yield server


@pytest.fixture(scope="module")
def sb2() -> Iterator[SandboxServer]:
    with serve(x402_version=2) as server:
        yield server


@pytest.fixture(scope="module", params=[1, 2], ids=["v1", "v2"])
def sbv(request: pytest.FixtureRequest, sb1: SandboxServer, sb2: SandboxServer) -> SandboxServer:
    """Both protocol versions, one test run each."""
    return sb1 if request.param == 1 else sb2


@pytest.fixture
def client(sbv: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sbv.url, timeout=10) as c:
        yield c


@pytest.fixture
def c1(sb1: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb1.url, timeout=10) as c:
        yield c


@pytest.fixture
def c2(sb2: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb2.url, timeout=10) as c:
        yield c
