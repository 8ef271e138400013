"""Cost is a contract, measured (``python -m bench.quote``; issue 12).

(a) Quote accuracy: a fixed corpus of requests (every kind of plan: latest values, id lists past
    one batch, daily and hourly ranges over several windows, page limits, a start date only,
    TMAI) is quoted and then run against the sandbox, and again behind a server that clamps
    ``page`` at 2 (it answers page 2 for every page past it). Paid ÷ quoted, in calls and in
    atomic units: never above 1.0, and exactly 1.0 where the quote is exact.
(b) The client's own time per paid call, against an in-process server (an httpx MockTransport)
    whose verify and settle cost nothing: a warm ``get`` (sign + ledger rows), and a frame of a
    ten-call plan (plan + reserve + sign + ledger rows + frame), side by side with the physical
    floor measured in the same run: an EIP-712 digest and a coincurve signature under a
    precomputed domain, plus one row insert into a WAL SQLite file with ``synchronous=NORMAL``.

    python -m bench.quote [--calls N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.table import machine  # noqa: E402


def table(title: str, head: tuple[str, ...], rows: list[tuple[str, ...]], note: str = "") -> str:
    """An aligned markdown table under ``title``, with the machine and the time (as bench.table does)."""
    from datetime import UTC, datetime

    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    out = [f"### {title}", "", f"{machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    if note:
        out += [note, ""]
    out += [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]
    return "\n".join(out)


# =============================================================================================
# (a) quote accuracy
# =============================================================================================


def corpus() -> list[tuple[str, dict[str, Any]]]:
    """Thirty requests, one of each plan shape (dates relative to the sandbox's last day of data)."""
    from tm402_nb.sandbox.market import FIXED_ANCHOR as LAST  # main() pins the sandbox's data to it
    from tm402_nb.sandbox.universe import build_universe

    ids = [t.token_id for t in build_universe()]

    def span(days: int, end_offset: int = 0) -> dict[str, str]:
        end = LAST - timedelta(days=end_offset)
        return {"start": (end - timedelta(days=days - 1)).isoformat(), "end": end.isoformat()}

    return [
        # a row per token: one page per batch of 100 ids (exact)
        ("tm-grade", {"symbol": ["BTC", "ETH"]}),
        ("tm-grade", {"token_id": ids[:150]}),
        ("quantmetrics", {"symbol": ["BTC", "ETH", "SOL"]}),
        ("quantmetrics", {"token_id": ids[:250]}),
        ("price-prediction", {"token_id": ids[:3]}),
        ("resistance-support", {"symbol": "BTC"}),
        ("ai-reports", {"symbol": "ETH", "pay_with": "tmai"}),
        ("correlation", {"symbol": ["BTC", "ETH"]}),
        ("technology-grade", {"token_id": ids[:120], "pay_with": "tmai"}),
        # a row per token per day, windows of 365 days
        ("daily-ohlcv", {"symbol": "BTC", **span(30)}),
        ("daily-ohlcv", {"symbol": "BTC", **span(365)}),
        ("daily-ohlcv", {"symbol": ["BTC", "ETH", "SOL"], **span(400)}),
        ("daily-ohlcv", {"symbol": "BTC", "start": (LAST - timedelta(days=90)).isoformat()}),  # to today
        ("daily-ohlcv", {"symbol": ["BTC", "ETH"], **span(100), "max_pages": 1}),
        ("daily-ohlcv", {"token_id": ids[:150], **span(2)}),
        ("trading-signals", {"symbol": "BTC", **span(200, 400)}),
        ("trading-signals", {"symbol": ["BTC", "ETH"], **span(30), "pay_with": "tmai"}),
        ("tm-grade-history", {"symbol": "BTC", **span(365, 100)}),
        ("technology-grade-history", {"symbol": "ETH", **span(100)}),
        ("fundamental-grade-history", {"symbol": ["BTC", "ETH"], **span(60, 1000)}),
        # 24 rows a day, windows of 31 days
        ("hourly-ohlcv", {"symbol": "BTC", **span(3)}),
        ("hourly-ohlcv", {"symbol": ["BTC", "ETH"], **span(5)}),
        ("hourly-ohlcv", {"symbol": "BTC", **span(32)}),
        # a row a day, no token filter
        ("market-metrics", {**span(50)}),
        ("market-metrics", {**span(400)}),
        ("indices-performance", {"id": 1, **span(200)}),
        # nothing bounds the rows: the first page(s) only; one answer
        ("indices-holdings", {"id": 2}),
        ("moonshot-tokens", {}),
        ("crypto-investors", {"limit": 20}),
        ("tm-grade", {"max_pages": 2}),
        ("hourly-trading-signals", {"symbol": "BTC"}),
    ]


class ClampingTransport(httpx.HTTPTransport):
    """A server that clamps ``page``: past ``last`` it answers page ``last`` again."""

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page")
        if page is not None and int(page) > self.last:
            request.url = request.url.copy_set_param("page", str(self.last))
        return super().handle_request(request)


def accuracy(sb: Any, transport: httpx.BaseTransport | None) -> list[dict[str, Any]]:
    """Each corpus request quoted, then run (paying again): what was quoted, what was paid."""
    from tm402_nb.ledger import Ledger
    from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
    from tm402_nb.tokenmetrics.client import Client
    from tm402_nb.tokenmetrics.errors import DataNotFound
    from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

    wallet = Wallet.create()
    sb.fund(wallet.address, "usdc", "1000")
    sb.fund(wallet.address, "tmai", "100000")
    ledger = Ledger(Path(tempfile.mkdtemp()) / "quote-accuracy.sqlite3")
    policy = SpendPolicy(budget=None, extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA])
    client = Client(
        mode="sandbox",
        base_url=sb.api_url,
        auth=X402Auth(wallet, policy, ledger=ledger),
        ledger=ledger,
        transport=transport,
        progress=False,
    )
    out = []
    try:
        for endpoint, params in corpus():
            params = dict(params)
            kw = {k: params.pop(k) for k in ("pay_with", "max_pages") if k in params}
            q = client.quote(endpoint, **kw, **params)
            before = len(ledger.payments())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MoreRowsWarning: the open-ended ones say so
                with contextlib.suppress(DataNotFound):  # nothing there: nothing paid, still counted
                    client.frame(endpoint, refresh=True, **kw, **params)
            rows = ledger.payments().iloc[before:]
            paid = rows[rows["status"].isin(["settled", "pending", "unknown"])]
            out.append(
                {
                    "endpoint": endpoint,
                    "exact": q.exact,
                    "quoted_calls": q.calls,
                    "quoted": q.total,
                    "paid_calls": len(paid),
                    "paid": sum(int(a) for a in paid["amount_atomic"]),
                }
            )
        settled = len(sb.settlements(payer=wallet.address))
        assert settled == sum(r["paid_calls"] for r in out), "the ledger and the sandbox disagree"
    finally:
        client.close()
        ledger.close()
    return out


def accuracy_rows(runs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, ...]]:
    def spread(values: list[float]) -> str:
        return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"

    def column(rs: list[dict[str, Any]]) -> dict[str, str]:
        calls = [r["paid_calls"] / r["quoted_calls"] for r in rs]
        amounts = [r["paid"] / r["quoted"] for r in rs]
        exact = [r for r in rs if r["exact"]]
        bound = [r["paid_calls"] / r["quoted_calls"] for r in rs if not r["exact"]]
        return {
            "requests": f"{len(rs)} ({len(exact)} exact quotes)",
            "calls": spread(calls),
            "amounts": spread(amounts),
            "exact": f"{sum(r['paid_calls'] == r['quoted_calls'] and r['paid'] == r['quoted'] for r in exact)} / {len(exact)}",
            "bound": spread(bound) if bound else "-",
            "total": f"{sum(r['paid_calls'] for r in rs)} / {sum(r['quoted_calls'] for r in rs)}",
            "above": str(sum(r["paid_calls"] > r["quoted_calls"] or r["paid"] > r["quoted"] for r in rs)),
        }

    cols = [column(rs) for rs in runs.values()]
    spec = [
        ("requests", "requests run", ""),
        ("calls", "paid ÷ quoted calls: min / median / max", "never above 1.00"),
        ("amounts", "paid ÷ quoted amount: min / median / max", "never above 1.00"),
        ("exact", "exact quotes paid exactly (calls and amount)", "all"),
        ("bound", "bound quotes (not exact): paid ÷ quoted calls", "≤ 1.00"),
        ("total", "paid calls / quoted calls, all requests", ""),
        ("above", "requests that paid more than quoted", "0"),
    ]
    return [(label, *(c[key] for c in cols), goal) for key, label, goal in spec]


# =============================================================================================
# (b) the client's own cost per paid call, and the physical floor
# =============================================================================================

PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
BASE_URL = "https://tm.bench.invalid/v2"


class FreeServer:
    """An x402 server whose verify and settle cost nothing: an unpaid request gets the 402
    challenge (v1, in the body), a paid one its rows and a receipt, nothing checked."""

    def __init__(self) -> None:
        from tm402_nb.x402.encoding import b64json_encode
        from tm402_nb.x402.networks import USDC_BASE_SEPOLIA

        self.requirement = {
            "scheme": "exact",
            "network": "base-sepolia",
            "maxAmountRequired": "17000",
            "resource": BASE_URL + "/tm-grade",
            "description": "TM grade",
            "mimeType": "application/json",
            "asset": USDC_BASE_SEPOLIA.address,
            "payTo": PAY_TO,
            "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"},
        }
        self.challenge = httpx.Response(
            402, json={"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [self.requirement]}
        ).content
        self.receipt = b64json_encode({"success": True, "transaction": "0x" + "ab" * 32, "network": "base-sepolia"})
        self.bodies: dict[tuple[str, str | None], bytes] = {}
        self.paid = 0

    def body(self, params: httpx.QueryParams) -> bytes:
        """A row per id (per ``startDate`` too: one-day windows), built once per query: serving
        costs nothing."""
        ids, day = params.get("token_id", ""), params.get("startDate")
        body = self.bodies.get((ids, day))
        if body is None:
            dated = {"DATE": day, "CLOSE": 1.0} if day else {"TM_GRADE": 50.0}
            data = [{"TOKEN_ID": int(i), "TOKEN_SYMBOL": f"T{i}", **dated} for i in ids.split(",") if i]
            envelope = {"success": True, "message": "ok", "length": len(data), "data": data}
            body = self.bodies[(ids, day)] = httpx.Response(200, json=envelope).content
        return body

    def handle(self, request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json"}
        free = request.url.path.endswith("/price")
        if not free and "x-payment" not in request.headers:
            return httpx.Response(402, content=self.challenge, headers=headers)
        if not free:
            self.paid += 1
            headers["x-payment-response"] = self.receipt
        return httpx.Response(200, content=self.body(request.url.params), headers=headers)


def median_ms(fn: Callable[[], Any], n: int, *, per: int = 1) -> float:
    """Median milliseconds of ``fn()`` over ``n`` runs, divided by ``per`` (calls per run)."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000 / per


def floor_sign(n: int) -> float:
    """EIP-712 digest of a fresh TransferWithAuthorization + a coincurve signature, the domain
    separator and the fixed words precomputed: ms per signature."""
    import coincurve
    from eth_hash.auto import keccak

    from tm402_nb.x402.eip3009 import TRANSFER_TYPEHASH, Eip712Domain
    from tm402_nb.x402.networks import USDC_BASE_SEPOLIA

    key = coincurve.PrivateKey()
    payer = bytes(12) + os.urandom(20)
    separator = Eip712Domain("USDC", "2", 84532, USDC_BASE_SEPOLIA.address).separator()
    head = TRANSFER_TYPEHASH + payer + bytes(12) + bytes.fromhex(PAY_TO[2:]) + (17000).to_bytes(32, "big")

    def once() -> None:
        now = int(time.time())
        struct = keccak(head + (now - 600).to_bytes(32, "big") + (now + 60).to_bytes(32, "big") + os.urandom(32))
        key.sign_recoverable(keccak(b"\x19\x01" + separator + struct), hasher=None)

    return median_ms(once, n)


def floor_insert(n: int, folder: Path) -> float:
    """One payment-shaped row in its own transaction, WAL, ``synchronous=NORMAL``: ms per row."""
    conn = sqlite3.connect(folder / f"floor-{uuid.uuid4().hex}.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE payments (id TEXT PRIMARY KEY, created_at REAL, status TEXT, url TEXT, network TEXT, "
        "asset TEXT, amount TEXT, pay_to TEXT, payer TEXT, nonce TEXT, valid_before INTEGER, tx TEXT)"
    )
    row = ["", 0.0, "pending", BASE_URL + "/tm-grade?token_id=3375", "base-sepolia", "0x036c", "17000", PAY_TO]

    def once() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO payments VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [uuid.uuid4().hex, time.time(), *row[2:], PAY_TO, "0x" + os.urandom(32).hex(), 0, None],
        )
        conn.execute("COMMIT")

    try:
        return median_ms(once, n)
    finally:
        conn.close()


def client_cost(n: int, folder: Path) -> dict[str, float]:
    """Our client against the free server: warm paid and free ``get``, and two ten-call frames:
    ten one-day windows of a row each, and ten batches of 100 ids (100 rows each)."""
    from tm402_nb.ledger import Ledger
    from tm402_nb.tokenmetrics.client import Client
    from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

    server = FreeServer()
    ledger = Ledger(folder / "client.sqlite3")
    client = Client(
        mode="x402",
        base_url=BASE_URL,
        auth=X402Auth(Wallet.create(), SpendPolicy(budget=None), ledger=ledger),
        ledger=ledger,
        transport=httpx.MockTransport(server.handle),
        cache=False,
        progress=False,
        max_concurrency=1,  # one call after another: the client's own time, not the pool's overlap
        window_days=1,  # a ten-day range is a plan of ten one-row requests
    )
    frames = {
        "frame_days": ("daily-ohlcv", {"token_id": [3375], "start": "2026-01-01", "end": "2026-01-10"}),
        "frame_ids": ("tm-grade", {"token_id": list(range(1, 1001))}),  # ten batches of 100 ids
    }
    out: dict[str, float] = {}
    try:
        for _ in range(5):  # warm: the challenges learnt, every code path loaded
            client.get("tm-grade", token_id=[3375])
            client.get("price", token_id=[3375])
            for endpoint, params in frames.values():
                client.frame(endpoint, **params)
        paid = server.paid
        out["paid_get"] = median_ms(lambda: client.get("tm-grade", token_id=[3375]), n)
        assert server.paid - paid == n, "every warm get pays once"
        out["free_get"] = median_ms(lambda: client.get("price", token_id=[3375]), n)
        runs = max(5, n // 10)
        for name, (endpoint, params) in frames.items():
            paid = server.paid
            out[name] = median_ms(lambda e=endpoint, p=params: client.frame(e, **p), runs, per=10)
            assert server.paid - paid == 10 * runs, "a ten-call plan pays ten calls"
    finally:
        client.close()
        ledger.close()
    return out


def cost_rows(c: dict[str, float], sign: float, insert: float) -> list[tuple[str, ...]]:
    floor = sign + insert
    ms = lambda v: f"{v:.3f} ms"  # noqa: E731
    ratio = lambda v: f"{v / floor:.1f}×"  # noqa: E731
    return [
        ("EIP-712 digest + coincurve sign, domain precomputed", ms(sign), "", ""),
        ("one WAL row insert, synchronous=NORMAL", ms(insert), "", ""),
        ("physical floor per paid call (sign + insert)", ms(floor), ms(floor), "1.0×"),
        ("warm paid get: sign + payment rows + call row + HTTP", ms(c["paid_get"]), ms(floor), ratio(c["paid_get"])),
        ("free get, same transport: nothing signed", ms(c["free_get"]), "", ""),
        (
            "paid − free: the payment's own cost",
            ms(c["paid_get"] - c["free_get"]),
            ms(floor),
            ratio(c["paid_get"] - c["free_get"]),
        ),
        (
            "frame, 10 one-row windows: per paid call (plan + reserve + sign + ledger + frame)",
            ms(c["frame_days"]),
            ms(floor),
            ratio(c["frame_days"]),
        ),
        (
            "frame, 10 batches of 100 ids (a 100-row answer each): per paid call",
            ms(c["frame_ids"]),
            ms(floor),
            ratio(c["frame_ids"]),
        ),
    ]


# =============================================================================================


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per measurement in (b)")
    args = parser.parse_args(argv)

    from tm402_nb.sandbox import FIXED_ANCHOR, serve

    with serve(fund=False, rate_limit=100_000, rate_burst=100_000, anchor=FIXED_ANCHOR) as sb:
        runs = {"sandbox": accuracy(sb, None), "clamps page at 2": accuracy(sb, ClampingTransport(2))}
    first = table(
        "Quote accuracy: paid ÷ quoted over a fixed corpus (sandbox, and behind a server that clamps page)",
        ("metric", "sandbox", "server clamps page at 2", "goal"),
        accuracy_rows(runs),
        note=f"{len(corpus())} requests, each quoted then run with refresh=True; paid = settled payments in the ledger "
        "(checked against the sandbox's settlements). Where paid < quoted: short last pages, a start date running "
        "to today past the data's last day, and the clamping server's repeated page ending the paging early.",
    )
    print(first + "\n")

    folder = Path(tempfile.mkdtemp())
    sign, insert = floor_sign(args.calls * 10), floor_insert(args.calls, folder)
    costs = client_cost(args.calls, folder)
    sign, insert = min(sign, floor_sign(args.calls * 10)), min(insert, floor_insert(args.calls, folder))
    second = table(
        "The client's own time per paid call vs the physical floor (server verify + settle cost nothing)",
        ("metric", "ms per call", "floor", "ratio to floor"),
        cost_rows(costs, sign, insert),
        note=f"An httpx MockTransport answers 402 then 200 with a receipt, in-process; medians of {args.calls} calls "
        "(the frame: of its runs, per paid call), one call at a time. The floor is measured in the same run, "
        "before and after (the lower kept).",
    )
    print(second)
    return first + "\n\n" + second


if __name__ == "__main__":
    main()
