"""Client benchmark against the sandbox, side by side with the official x402 SDK client.

    python -m bench.client [--symbols 100] [--latency-ms 20]

For each added latency (0 and 20 ms per request, injected by the sandbox):

* enriching N symbols with the TM grade: our batched client (comma lists of up
  to 100 ids, one paid call per batch) vs a per-symbol loop with the official
  SDK's httpx client: wall time and paid calls;
* round trips per warm paid call, counted on the server;
* paid ÷ free call time for both clients.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.table import render  # noqa: E402


def _official_client(wallet):
    from eth_account import Account
    from x402 import x402Client
    from x402.mechanisms.evm.exact import register_exact_evm_client
    from x402.mechanisms.evm.signers import EthAccountSigner

    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(wallet._export_key_hex())))
    return client


def run(symbols: int, latency_ms: int, calls: int) -> dict[str, float]:
    from x402.http.clients import x402HttpxClient

    from tm402_nb.ledger import Ledger
    from tm402_nb.sandbox import serve
    from tm402_nb.tokenmetrics.client import Client
    from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

    out: dict[str, float] = {}
    import tempfile

    with serve(x402_version=2, rate_limit=100_000, rate_burst=100_000, fund=False) as sb:
        ours_w, ref_w = Wallet.create(), Wallet.create()
        for w in (ours_w, ref_w):
            sb.fund(w.address, "usdc", "100")
        ledger = Ledger(Path(tempfile.mkdtemp()) / "bench.sqlite3")
        client = Client(
            mode="sandbox",
            base_url=sb.api_url,
            auth=X402Auth(ours_w, SpendPolicy(budget="50"), ledger=ledger),
            ledger=ledger,
            cache=False,
            progress=False,
        )
        top = client.frame("top-market-cap-tokens", top_k=100)
        ids = top["TOKEN_ID"].astype(int).tolist()[:symbols]
        client.frame("tm-grade", token_id=ids[:1])  # warm both clients alike: learn the price once
        sb.set_faults(latency_ms=latency_ms)

        # -- enrichment --------------------------------------------------------------
        sb.reset_stats()
        t = time.perf_counter()
        df = client.frame("tm-grade", token_id=ids)
        out["ours_enrich_s"] = time.perf_counter() - t
        out["ours_enrich_paid"] = df.attrs["tm402"]["paid"]
        assert len(df) == len(ids)

        async def reference_enrich() -> tuple[float, int]:
            async with x402HttpxClient(_official_client(ref_w), base_url=sb.url, timeout=30) as http:
                h = {"x-coinbase-402": "true"}
                await http.get("/v2/tm-grade", params={"token_id": str(ids[0])}, headers=h)
                sb.reset_stats()
                t = time.perf_counter()
                paid = 0
                for token_id in ids:  # what a user writes with the reference client: one call per symbol
                    r = await http.get("/v2/tm-grade", params={"token_id": str(token_id)}, headers=h)
                    assert r.status_code == 200, (token_id, r.status_code, r.text[:300])
                    paid += 1
                return time.perf_counter() - t, paid

        out["ref_enrich_s"], out["ref_enrich_paid"] = asyncio.run(reference_enrich())

        # -- warm paid calls: time and round trips ------------------------------------
        def ours_calls() -> None:
            for kind, path, params in (
                ("free", "price", {"token_id": [3375]}),
                ("paid", "quantmetrics", {"token_id": [3375]}),
            ):
                client.get(path, **params)
                sb.reset_stats()
                samples = []
                for _ in range(calls):
                    t = time.perf_counter()
                    client.get(path, **params)
                    samples.append(time.perf_counter() - t)
                out[f"ours_{kind}_s"] = statistics.median(samples)
                if kind == "paid":
                    out["ours_rt"] = sb.stats()["requests"] / calls

        async def ref_calls() -> None:
            async with x402HttpxClient(_official_client(ref_w), base_url=sb.url, timeout=30) as http:
                h = {"x-coinbase-402": "true"}
                for kind, path in (("free", "/v2/price"), ("paid", "/v2/quantmetrics")):
                    await http.get(path, params={"token_id": "3375"}, headers=h)
                    sb.reset_stats()
                    samples = []
                    for _ in range(calls):
                        t = time.perf_counter()
                        r = await http.get(path, params={"token_id": "3375"}, headers=h)
                        samples.append(time.perf_counter() - t)
                        assert r.status_code == 200
                    out[f"ref_{kind}_s"] = statistics.median(samples)
                    if kind == "paid":
                        out["ref_rt"] = sb.stats()["requests"] / calls

        ours_calls()
        asyncio.run(ref_calls())
        client.close()
    return out


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--latency-ms", type=int, action="append", default=None)
    args = parser.parse_args(argv)
    texts = []
    for latency in args.latency_ms or [0, 20]:
        r = run(args.symbols, latency, args.calls)
        ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
        rows = [
            (
                f"enrich {args.symbols} symbols: wall time",
                f"{r['ours_enrich_s']:.2f} s",
                f"{r['ref_enrich_s']:.2f} s",
                f"{r['ref_enrich_s'] / r['ours_enrich_s']:.0f}× faster (goal ≥ 20×)",
            ),
            (
                f"enrich {args.symbols} symbols: paid calls",
                f"{r['ours_enrich_paid']:.0f}",
                f"{r['ref_enrich_paid']:.0f}",
                "goal ≤ 2 vs 100",
            ),
            ("round trips per warm paid call", f"{r['ours_rt']:.2f}", f"{r['ref_rt']:.2f}", "goal 1 (reference 2)"),
            ("free call, median", ms(r["ours_free_s"]), ms(r["ref_free_s"]), ""),
            (
                "paid call, median",
                ms(r["ours_paid_s"]),
                ms(r["ref_paid_s"]),
                f"{r['ref_paid_s'] / r['ours_paid_s']:.1f}× faster",
            ),
            (
                "paid ÷ free",
                f"{r['ours_paid_s'] / r['ours_free_s']:.2f}×",
                f"{r['ref_paid_s'] / r['ref_free_s']:.2f}×",
                "goal ≤ 1.5× for us",
            ),
        ]
        text = render(f"Token Metrics client vs official x402 SDK, sandbox v2, +{latency} ms per request", rows)
        print(text + "\n")
        texts.append(text)
    return "\n\n".join(texts)


if __name__ == "__main__":
    main()
