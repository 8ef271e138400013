"""Review: an RPC URL carries the provider's API key in its path or query; ChainReader's repr
and every error it or an approval raises show only scheme://host[:port]/…"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.x402.test_approval import TMAI, Node
from tm402_nb.errors import TM402Error
from tm402_nb.x402.approval import plan_approval, send_approval
from tm402_nb.x402.chain import ChainReader, redact_rpc
from tm402_nb.x402.networks import TMAI_BASE
from tm402_nb.x402.wallet import Wallet

SECRETS = ("PATHKEY0123456789", "QUERYKEY9876543210")
URLS = [
    "https://base-mainnet.g.alchemy.com/v2/PATHKEY0123456789",
    "https://rpc.example:8443/v1/PATHKEY0123456789?apikey=QUERYKEY9876543210",
    "http://user:PATHKEY0123456789@node.example/?key=QUERYKEY9876543210",
]


def _no_secret(*texts: Any) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"{secret} shown in {text!r}"


def _texts(exc: TM402Error) -> list[Any]:
    return [str(exc), repr(exc), exc.message, exc.hint, exc.details, exc.args]


@pytest.mark.parametrize("url", URLS)
def test_repr_and_redaction_hide_the_key(url: str) -> None:
    reader = ChainReader(url)
    _no_secret(repr(reader), str(reader), redact_rpc(url))
    assert repr(reader).startswith("ChainReader(http") and "/…" in repr(reader)
    assert repr(ChainReader("http://127.0.0.1:8545")) == "ChainReader(http://127.0.0.1:8545)"


def _echoing(kind: str) -> httpx.MockTransport:
    """A node (or a transport) whose failure text repeats the URL it was asked, key and all."""

    def handle(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if kind == "connect":
            raise httpx.ConnectError(f"cannot reach {url}", request=request)
        if kind == "status":
            response = httpx.Response(401, request=request, text="no")
            raise httpx.HTTPStatusError(f"401 for url {url}", request=request, response=response)
        if kind == "not-json":
            return httpx.Response(502, text=f"<html>bad gateway {url}</html>")
        body = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": {"message": f"bad key {url}"}})

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("kind", ["connect", "status", "not-json", "rpc-error"])
def test_errors_never_show_the_key(url: str, kind: str) -> None:
    reader = ChainReader(url, transport=_echoing(kind))
    with pytest.raises(TM402Error) as info:
        reader.chain_id()
    _no_secret(*_texts(info.value))
    with pytest.raises(TM402Error) as planned:
        plan_approval(reader, Wallet.create().address, "base-sepolia", TMAI, 10**18)
    _no_secret(*_texts(planned.value))


class KeyedNode(Node):
    def reader(self) -> ChainReader:
        return ChainReader(URLS[1], transport=httpx.MockTransport(self.handle))


def test_approval_refusals_never_show_the_key() -> None:
    node = KeyedNode()
    with pytest.raises(TM402Error) as other_chain:
        plan_approval(node.reader(), Wallet.create().address, "base", TMAI_BASE, 10**18)
    _no_secret(*_texts(other_chain.value))
    wallet = Wallet.create()
    plan = plan_approval(node.reader(), wallet.address, "base-sepolia", TMAI, 10**18)
    node.answers["eth_sendRawTransaction"] = "0x" + "ab" * 32  # a foreign hash
    with pytest.raises(TM402Error) as foreign:
        send_approval(node.reader(), wallet, plan)
    _no_secret(*_texts(foreign.value))
