"""A call's options travel with its requests: the asset header and payment options on each request,
never on the shared client, so concurrent calls paying in different assets cannot see each other's."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from tm402_nb.errors import ConfigurationError
from tm402_nb.tokenmetrics.client import AsyncClient, Client
from tm402_nb.tokenmetrics.options import CallOptions
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth
from tm402_nb.x402.options import PaymentOptions

SYMBOLS = {"BTC": 3375, "ETH": 3306}


def envelope(request: httpx.Request) -> httpx.Response:
    """A free answer shaped like the API's: the tokens asked for, one row each."""
    params = request.url.params
    if request.url.path.endswith("/tokens"):
        rows = [{"TOKEN_ID": SYMBOLS[s], "TOKEN_SYMBOL": s} for s in params["symbol"].split(",")]
    else:
        rows = [{"TOKEN_ID": int(i), "TOKEN_SYMBOL": f"T{i}", "TM_GRADE": 50} for i in params["token_id"].split(",")]
    return httpx.Response(200, json={"success": True, "message": "ok", "length": len(rows), "data": rows})


class Recorder:
    """A transport that answers like the API and keeps every request it was sent."""

    def __init__(self, before_answer=None) -> None:
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()
        self._before_answer = before_answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        if self._before_answer is not None:
            self._before_answer(request)
        return envelope(request)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        if self._before_answer is not None:
            await self._before_answer(request)
        return envelope(request)

    def assets(self) -> list[str]:
        return [r.headers.get("x-payment-token") for r in self.requests]


def x402_client(cls=Client, transport=None, **kw):
    auth = X402Auth(Wallet.create(), SpendPolicy())
    return cls(mode="sandbox", base_url="https://tm.test/v2", auth=auth, transport=transport, progress=False, **kw)


def test_each_request_carries_its_calls_asset_and_payment_options():
    rec = Recorder()
    with x402_client(transport=httpx.MockTransport(rec.handle)) as client:
        client.frame("tm-grade", symbol="BTC", pay_with="TMAI", max_per_call="0.5")
        assert rec.assets() == ["tmai", "tmai"]  # the symbol lookup and the call itself
        assert {PaymentOptions.of(r) for r in rec.requests} == {PaymentOptions(pay_with="tmai", max_per_call="0.5")}

        client.frame("tm-grade", token_id=3306)  # the next call pays in the client's asset again
        assert rec.assets()[-1] == "usdc"
        assert PaymentOptions.of(rec.requests[-1]) == PaymentOptions(pay_with="usdc")

        client.get("tm-grade", token_id=3375, pay_with="tmai")
        client.quote("tm-grade", token_id=3375, pay_with="tmai")  # its unpaid price check too
        assert rec.assets()[-2:] == ["tmai", "tmai"]
        assert "x-payment-token" not in client.headers  # nothing of one call on the shared client
        assert client.pay_with == "usdc"


def test_api_key_calls_carry_no_payment_token():
    rec = Recorder()
    with Client(
        mode="api-key", api_key="k", base_url="https://tm.test/v2", transport=httpx.MockTransport(rec.handle)
    ) as c:
        c.frame("tm-grade", token_id=3375, pay_with="tmai")
    assert rec.assets() == [None] and rec.requests[0].headers["x-api-key"] == "k"


@pytest.mark.parametrize(
    "options, text",
    [
        ({"pay_with": "eth"}, "usdc or tmai"),
        ({"max_per_call": "$1"}, r"max_per_call '\$1' has a '\$' sign"),
        ({"max_pages": 0}, "max_pages"),
    ],
)
def test_bad_options_are_refused_before_anything_is_sent(options, text):
    rec = Recorder()
    with (
        x402_client(transport=httpx.MockTransport(rec.handle)) as client,
        pytest.raises(ConfigurationError, match=text),
    ):
        client.frame("tm-grade", token_id=3375, **options)
    assert rec.requests == []


def test_options_are_immutable():
    options = CallOptions(pay_with="tmai")
    with pytest.raises(AttributeError):
        options.pay_with = "usdc"  # type: ignore[misc]


def test_concurrent_calls_in_different_assets_keep_their_own():
    """Both calls are in flight at once (each request waits for the other's): neither sees the other's asset."""
    both_sent = threading.Barrier(2, timeout=30)
    rec = Recorder(before_answer=lambda request: both_sent.wait())
    with x402_client(transport=httpx.MockTransport(rec.handle)) as client:
        calls = [
            threading.Thread(target=client.frame, args=("tm-grade",), kwargs={"token_id": 3375, "pay_with": "tmai"}),
            threading.Thread(target=client.frame, args=("tm-grade",), kwargs={"token_id": 3306}),
        ]
        for t in calls:
            t.start()
        for t in calls:
            t.join(timeout=60)
    asset_of = {r.url.params["token_id"]: r.headers["x-payment-token"] for r in rec.requests}
    assert asset_of == {"3375": "tmai", "3306": "usdc"}


def test_concurrent_async_calls_in_different_assets_keep_their_own():
    async def main() -> dict[str, str]:
        both_sent = asyncio.Barrier(2)

        async def wait_for_the_other(request: httpx.Request) -> None:
            await asyncio.wait_for(both_sent.wait(), timeout=30)

        rec = Recorder(before_answer=wait_for_the_other)
        async with x402_client(AsyncClient, transport=httpx.MockTransport(rec.ahandle)) as client:
            await asyncio.gather(
                client.frame("tm-grade", token_id=3375, pay_with="tmai"),
                client.frame("tm-grade", token_id=3306),
            )
        return {r.url.params["token_id"]: r.headers["x-payment-token"] for r in rec.requests}

    assert asyncio.run(main()) == {"3375": "tmai", "3306": "usdc"}


MANY_IDS = list(range(1, 251))  # three batches of at most 100 ids


@pytest.mark.parametrize("cls", [Client, AsyncClient], ids=["sync", "async"])
def test_a_calls_progress_hook_sees_every_batch_and_leaves_the_client_default(cls):
    seen: list[tuple[int, int, str]] = []
    client = x402_client(
        cls, transport=httpx.MockTransport(Recorder().ahandle if cls is AsyncClient else Recorder().handle)
    )
    client.progress = True

    def hook(done: int, total: int, stage: str) -> None:
        seen.append((done, total, stage))

    async def run_async() -> int:
        async with client:
            return len(await client.frame("tm-grade", token_id=MANY_IDS, on_progress=hook))

    if cls is AsyncClient:
        rows = asyncio.run(run_async())
    else:
        with client:
            rows = len(client.frame("tm-grade", token_id=MANY_IDS, on_progress=hook))
    assert rows == 250
    assert seen[0] == (0, 3, "start") and seen[-1] == (3, 3, "done")
    assert [s for s in seen if s[2] == "progress"] == [(1, 3, "progress"), (2, 3, "progress"), (3, 3, "progress")]
    assert client.on_progress is None
