"""An in-process Token Metrics–like API (for ``httpx.MockTransport``) that plays the documented variants.

``live-api-2026.md`` lists what public sources disagree on; each is a switch here, so a test
can put the client in front of any one of them without a socket: field case (UPPER, lower),
the 2026 trading-signals field set, a 29-day date-range limit (refused, or silently cut),
"free" endpoints that charge, a challenge listing both assets or only the one asked for, v1
(body) or v2 (header) challenges, ``resource`` with or without the query string, the network
(Base or Base Sepolia), lenient paging (page 0 is the first page, ``page`` ignored). Every
paid request is checked as a facilitator would (amount, payee, network, asset, signature,
nonce) and answered with a settlement receipt.

Nothing here imports the sandbox: the server's every line is in front of the test reader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tm402_nb.errors import X402ProtocolError
from tm402_nb.x402.eip3009 import Eip712Domain, recover_signer
from tm402_nb.x402.encoding import b64json_encode
from tm402_nb.x402.messages import PaymentPayload, SettlementResponse
from tm402_nb.x402.networks import TMAI_BASE, USDC_BASE, USDC_BASE_SEPOLIA, get_network

BASE_URL = "https://tm.test/v2"
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
TMAI_SEPOLIA = "0x7E57000000000000000000000000000000007A1a"
#: The last day the server has data for (fixed: no test depends on the wall clock).
DATA_END = date(2025, 10, 31)


@dataclass(frozen=True)
class Token:
    token_id: int
    symbol: str
    name: str
    market_cap: float
    first: date = date(2019, 1, 1)


TOKENS = (
    Token(3375, "BTC", "Bitcoin", 2.0e12),
    Token(3306, "ETH", "Ethereum", 4.0e11),
    Token(9001, "ETH", "Ether Imitation", 1.0e6),  # shares ETH's symbol: the market cap decides
    Token(3988, "SOL", "Solana", 8.0e10),
    Token(9002, "NEW", "Newcoin", 1.0e7, first=date(2025, 3, 10)),
)
BY_ID = {t.token_id: t for t in TOKENS}

#: USDC atomic units per call; TMAI is 10% cheaper at $0.01 a TMAI.
PRICES = {"tm-grade": 17_000, "daily-ohlcv": 17_000, "trading-signals": 17_000, "tm-grade-history": 34_000}
FREE_PRICE = 17_000  # what a "free" endpoint costs when the server charges for it


@dataclass
class Variant:
    """One reading of the real API (defaults: today's sandbox, ``classic``)."""

    case: str = "upper"  # "upper" | "lower": every row key
    signals_2026: bool = False  # trading-signals rows as the 2026 docs list them
    grades_as_text: bool = False  # grades sent as strings ("72.5"), as the MCP server types them
    range_limit: str | None = None  # None | "error" | "truncate" (keep the first 29 days)
    limit_days: int = 29
    paid_free: bool = False  # tokens / top-market-cap-tokens answer 402 too
    offers: str = "both"  # "both" | "requested"
    version: int = 1
    resource_query: bool = True
    network: str = "base-sepolia"
    lenient_paging: bool = True  # page 0 is the first page; limit > 100 is clamped
    ignore_page: bool = False  # every page answers the first page again
    market_cap_in_tokens: bool = True


@dataclass
class Seen:
    path: str
    params: dict[str, str]
    paid: bool
    status: int


@dataclass
class VariantServer:
    variant: Variant = field(default_factory=Variant)
    seen: list[Seen] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)
    _nonces: set[str] = field(default_factory=set)

    # -- bookkeeping --------------------------------------------------------------------------
    def requests(self, endpoint: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith("/" + endpoint)]

    def paid(self, endpoint: str | None = None) -> int:
        return sum(1 for s in self.seen if s.paid and (endpoint is None or s.path.endswith("/" + endpoint)))

    # -- entry points ---------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.rsplit("/", 1)[-1]
        params = dict(request.url.params)
        header = request.headers.get("X-PAYMENT" if self.variant.version == 1 else "PAYMENT-SIGNATURE")
        response = self._route(request, endpoint, params, header)
        self.seen.append(Seen(request.url.path, params, header is not None, response.status_code))
        return response

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        return self.handle(request)

    def _route(
        self, request: httpx.Request, endpoint: str, params: dict[str, str], header: str | None
    ) -> httpx.Response:
        # A plan's API key pays nothing per call; x402 calls pay.
        price = 0 if request.headers.get("x-api-key") else self._price(endpoint)
        receipt: dict[str, str] = {}
        if price:
            if header is None:
                return self._challenge(request, price)
            refused = self._verify(header, price)
            if refused:
                return self._challenge(request, price, error=refused)
            receipt = self._receipt(header)
        try:
            rows = self._rows(endpoint, params)
        except _Refused as exc:
            return httpx.Response(400, json={"success": False, "message": str(exc)})
        if rows is None:
            return httpx.Response(404, json={"success": False, "message": "Endpoint not found"})
        if not rows:
            return httpx.Response(404, json={"success": False, "message": "Data not found"}, headers=receipt)
        page = self._page(endpoint, params, rows)
        data = [self._cased(r) for r in page]
        return httpx.Response(
            200, json={"success": True, "message": "ok", "length": len(data), "data": data}, headers=receipt
        )

    # -- money ----------------------------------------------------------------------------------------
    def _price(self, endpoint: str) -> int:
        if endpoint in ("tokens", "top-market-cap-tokens", "price"):
            return FREE_PRICE if self.variant.paid_free else 0
        return PRICES.get(endpoint, 17_000)

    def _assets(self) -> dict[str, tuple[str, int, dict[str, str]]]:
        """Asset name → (address, decimals, EIP-712 extra) on the server's network."""
        base = get_network(self.variant.network).v1_name == "base"
        usdc = USDC_BASE if base else USDC_BASE_SEPOLIA
        return {
            "usdc": (usdc.address, 6, {"name": usdc.eip712_name or "", "version": usdc.eip712_version or ""}),
            "tmai": (TMAI_BASE.address if base else TMAI_SEPOLIA, 18, {"name": "Token Metrics AI", "version": "1"}),
        }

    def _amount(self, asset: str, price: int) -> int:
        return price if asset == "usdc" else price * 9 // 10 * 10**12 * 100  # 10% off, $0.01 a TMAI

    def _requirement(self, request: httpx.Request, asset: str, price: int) -> dict[str, Any]:
        v = self.variant
        net = get_network(v.network)
        address, _, extra = self._assets()[asset]
        url = str(request.url) if v.resource_query else str(request.url.copy_with(query=None))
        req: dict[str, Any] = {"scheme": "exact"}
        if v.version == 1:
            req.update(
                network=net.v1_name,
                maxAmountRequired=str(self._amount(asset, price)),
                resource=url,
                description="Token Metrics data",
                mimeType="application/json",
                outputSchema={"input": {"type": "http", "method": "GET"}},
            )
        else:
            req.update(network=net.caip2, amount=str(self._amount(asset, price)))
        req.update(asset=address, payTo=PAY_TO, maxTimeoutSeconds=60, extra=extra)
        return req

    def _challenge(self, request: httpx.Request, price: int, *, error: str | None = None) -> httpx.Response:
        v = self.variant
        asked = (request.headers.get("x-payment-token") or "usdc").lower()
        assets = ["usdc", "tmai"] if v.offers == "both" else [asked]
        accepts = [self._requirement(request, a, price) for a in assets]
        header = "X-PAYMENT" if v.version == 1 else "PAYMENT-SIGNATURE"
        error = error or f"{header} header is required"
        if v.version == 1:
            return httpx.Response(402, json={"x402Version": 1, "error": error, "accepts": accepts})
        url = str(request.url) if v.resource_query else str(request.url.copy_with(query=None))
        body = {"x402Version": 2, "error": error, "resource": {"url": url}, "accepts": accepts, "extensions": {}}
        return httpx.Response(402, json={}, headers={"PAYMENT-REQUIRED": b64json_encode(body)})

    def _verify(self, header: str, price: int) -> str | None:
        v = self.variant
        try:
            payload = PaymentPayload.decode(header)
        except X402ProtocolError:
            return "invalid_payload"
        net = get_network(v.network)
        if payload.x402_version != v.version or get_network(payload.network) != net:
            return "network_mismatch"
        auth = payload.authorization
        found = [(a, spec) for a, spec in self._assets().items() if auth.value == self._amount(a, price)]
        if not found or auth.to.lower() != PAY_TO.lower():
            return "invalid_exact_evm_payload_authorization_value_mismatch"
        _, (address, _, extra) = found[0]
        domain = Eip712Domain(extra["name"], extra["version"], net.chain_id, address)
        if recover_signer(auth, domain, payload.signature).lower() != auth.from_.lower():
            return "invalid_exact_evm_payload_signature"
        if auth.nonce in self._nonces:
            return "invalid_exact_evm_nonce_already_used"
        self._nonces.add(auth.nonce)
        self.settled.append(auth.value)
        return None

    def _receipt(self, header: str) -> dict[str, str]:
        payload = PaymentPayload.decode(header)
        net = get_network(self.variant.network)
        rec = SettlementResponse(
            True,
            "0x" + payload.authorization.nonce[2:],
            net.v1_name if self.variant.version == 1 else net.caip2,
            payload.authorization.from_,
            None,
            None,
        )
        return {("X-PAYMENT-RESPONSE" if self.variant.version == 1 else "PAYMENT-RESPONSE"): rec.encode()}

    # -- data -----------------------------------------------------------------------------------------
    def _tokens_asked(self, params: dict[str, str]) -> list[Token]:
        if "token_id" in params:
            return [BY_ID[int(i)] for i in params["token_id"].split(",") if int(i) in BY_ID]
        if "symbol" in params:
            wanted = {s.upper() for s in params["symbol"].split(",")}
            return [t for t in TOKENS if t.symbol in wanted]
        return list(TOKENS)

    def _rows(self, endpoint: str, params: dict[str, str]) -> list[dict[str, Any]] | None:
        ident = lambda t: {"TOKEN_ID": t.token_id, "TOKEN_NAME": t.name, "TOKEN_SYMBOL": t.symbol}  # noqa: E731
        if endpoint == "tokens":
            out = []
            for t in self._tokens_asked(params):
                row = {**ident(t), "EXCHANGE_LIST": ["binance"], "CATEGORY_LIST": ["layer-1"]}
                if self.variant.market_cap_in_tokens:
                    row["MARKET_CAP"] = t.market_cap
                out.append(row)
            return out
        if endpoint == "top-market-cap-tokens":
            return [ident(t) for t in sorted(TOKENS, key=lambda t: -t.market_cap)]
        if endpoint == "tm-grade":
            return [
                {**ident(t), "DATE": f"{DATA_END}T00:00:00.000Z", **self._grades(t, DATA_END)}
                for t in self._tokens_asked(params)
            ]
        if endpoint not in ("daily-ohlcv", "trading-signals", "tm-grade-history"):
            return None
        days = self._days(params)
        out = []
        for day in sorted(days, reverse=True):  # newest first, as the API serves them
            for t in self._tokens_asked(params):
                if t.first <= day <= DATA_END:
                    out.append(self._dated_row(endpoint, t, day))
        return out

    def _days(self, params: dict[str, str]) -> list[date]:
        v = self.variant
        if "startDate" not in params:
            end = date.fromisoformat(params["endDate"]) if "endDate" in params else DATA_END
            return [end - timedelta(days=i) for i in range(100)]
        start = date.fromisoformat(params["startDate"])
        end = date.fromisoformat(params.get("endDate", DATA_END.isoformat()))
        if v.range_limit and (end - start).days + 1 > v.limit_days:
            if v.range_limit == "error":
                raise _Refused(f"date range cannot exceed {v.limit_days} days")
            end = start + timedelta(days=v.limit_days - 1)  # silently cut: the first days only
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]

    def _grades(self, t: Token, day: date) -> dict[str, Any]:
        g = 50 + 40 * math.sin(t.token_id * 0.37 + day.toordinal() * 0.11)
        out: dict[str, Any] = {"TM_GRADE": round(g, 2), "FUNDAMENTAL_GRADE": round(100 - g, 2)}
        if self.variant.grades_as_text:
            out = {k: str(val) for k, val in out.items()}
        return out

    def _dated_row(self, endpoint: str, t: Token, day: date) -> dict[str, Any]:
        base = {"TOKEN_ID": t.token_id, "TOKEN_NAME": t.name, "TOKEN_SYMBOL": t.symbol}
        when = f"{day}T00:00:00.000Z"
        x = t.token_id * 0.01 + day.toordinal() * 0.05
        if endpoint == "daily-ohlcv":
            close = round(100 + 10 * math.sin(x), 4)
            return {
                **base,
                "DATE": when,
                "OPEN": close - 1,
                "HIGH": close + 2,
                "LOW": close - 2,
                "CLOSE": close,
                "VOLUME": 1e6,
            }
        if endpoint == "tm-grade-history":
            return {**base, "DATE": when, **self._grades(t, day)}
        signal = 1 if math.sin(x) > 0.3 else -1 if math.sin(x) < -0.3 else 0
        returns = {"TRADING_SIGNALS_RETURNS": round(math.cos(x), 4), "HOLDING_RETURNS": round(math.sin(x), 4)}
        if self.variant.signals_2026:
            return {
                **base,
                "SLUG": t.name.lower(),
                "DATE": when,
                "TRADING_SIGNAL": signal,
                "TOKEN_SIGNAL_STR": {1: "bullish", -1: "bearish", 0: "neutral"}[signal],
                "TOKEN_TREND": signal,
                "TOKEN_TREND_STR": "up" if signal >= 0 else "down",
                **returns,
                "APP_LINK": f"https://app.tokenmetrics.test/{t.name.lower()}",
                **self._grades(t, day),
            }
        grades = self._grades(t, day)
        return {
            **base,
            "DATE": when,
            "TRADING_SIGNAL": signal,
            "TOKEN_TREND": signal,
            **returns,
            "TM_TRADER_GRADE": grades["TM_GRADE"],
            "TM_INVESTOR_GRADE": grades["FUNDAMENTAL_GRADE"],
            "TM_LINK": f"https://app.tokenmetrics.test/{t.name.lower()}",
        }

    def _page(self, endpoint: str, params: dict[str, str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        v = self.variant
        limit_param = "top_k" if endpoint == "top-market-cap-tokens" else "limit"
        size = int(params.get(limit_param, 50))
        page = int(params.get("page", 1))
        if not v.lenient_paging and (page < 1 or size > 100):
            raise _Refused("page must be ≥ 1 and limit ≤ 100")
        size = min(size, 100)
        page = 1 if v.ignore_page else max(page, 1)  # lenient: page 0 is the first page
        return rows[(page - 1) * size : page * size]

    def _cased(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.variant.case == "lower" or (self.variant.signals_2026 and "TRADING_SIGNAL" in row):
            return {k.lower(): v for k, v in row.items()}
        return row


class _Refused(Exception):
    """A 400: the server refuses the parameters."""


def transport(server: VariantServer) -> httpx.MockTransport:
    """An ``httpx.MockTransport`` answering from ``server``."""
    return httpx.MockTransport(server.handle)
