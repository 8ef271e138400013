"""The sandbox's endpoint catalogue: path, parameters and builder of each (prices: :mod:`.pricing`).

Every active v2 endpoint of the reference catalogue (§4) is here, under the
same path. Removed endpoints (trader-grades, investor-grades, sentiments,
scenario-analysis, the old index endpoints) are not served, as on the real API.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import params as P
from .pricing import ENDPOINT_TIER


@dataclass(frozen=True)
class EndpointSpec:
    name: str  # path under /v2
    query: type[P.QueryModel] | type[P.TmaiBody]  # the query's model, or a POST body's
    builder: str  # DataService method
    summary: str

    @property
    def path(self) -> str:
        return f"/v2/{self.name}"


ENDPOINTS: tuple[EndpointSpec, ...] = (
    EndpointSpec("tokens", P.TokensQuery, "tokens", "Token universe and TOKEN_ID lookup."),
    EndpointSpec("price", P.PriceQuery, "price", "Current price by token (token_id, symbol or token_name required)."),
    EndpointSpec("top-market-cap-tokens", P.TopMarketCapQuery, "top_market_cap", "Top tokens by market cap."),
    EndpointSpec("daily-ohlcv", P.SeriesQuery, "daily_ohlcv", "Daily OHLCV, newest first."),
    EndpointSpec("hourly-ohlcv", P.SeriesQuery, "hourly_ohlcv", "Hourly OHLCV (TIMESTAMP), newest first."),
    EndpointSpec("trading-signals", P.TradingSignalsQuery, "trading_signals", "Daily long/short signals with ROI."),
    EndpointSpec(
        "hourly-trading-signals",
        P.HourlySignalsQuery,
        "hourly_trading_signals",
        "Hourly signals (token_id, symbol or token_name required).",
    ),
    EndpointSpec("tm-grade", P.LatestQuery, "tm_grade", "Latest TM Grade per token."),
    EndpointSpec("tm-grade-history", P.SeriesQuery, "tm_grade_history", "TM Grade history."),
    EndpointSpec("technology-grade", P.LatestQuery, "technology_grade", "Latest technology grade per token."),
    EndpointSpec("technology-grade-history", P.SeriesQuery, "technology_grade_history", "Technology grade history."),
    EndpointSpec("fundamental-grade", P.LatestQuery, "fundamental_grade", "Latest fundamental grade per token."),
    EndpointSpec("fundamental-grade-history", P.SeriesQuery, "fundamental_grade_history", "Fundamental grade history."),
    EndpointSpec("market-metrics", P.MarketMetricsQuery, "market_metrics", "Market-wide bull/bear indicator."),
    EndpointSpec("moonshot-tokens", P.MoonshotQuery, "moonshot_tokens", "AI-curated breakout picks."),
    EndpointSpec("resistance-support", P.LatestQuery, "resistance_support", "Historical resistance/support levels."),
    EndpointSpec("price-prediction", P.LatestQuery, "price_prediction", "Bear/base/moon price scenarios."),
    EndpointSpec("correlation", P.LatestFilteredQuery, "correlation", "Top/bottom-10 correlations vs the top 100."),
    EndpointSpec("quantmetrics", P.LatestFilteredQuery, "quantmetrics", "Sharpe, Sortino, drawdown and more."),
    EndpointSpec("ai-reports", P.LatestQuery, "ai_reports", "AI-written reports (Markdown)."),
    EndpointSpec("crypto-investors", P.CryptoInvestorsQuery, "crypto_investors", "Investor ROI scores."),
    EndpointSpec("indices", P.IndicesQuery, "indices", "Token Metrics-style crypto indices."),
    EndpointSpec("indices-holdings", P.IndexHoldingsQuery, "indices_holdings", "Holdings of one index (id required)."),
    EndpointSpec(
        "indices-performance", P.IndexPerformanceQuery, "indices_performance", "Daily performance of one index."
    ),
)

#: ``POST /v2/tmai``, the AI agent: a JSON body in (``{"messages": [{"user": "..."}]}``), an answer
#: and the conversation thread out (no ``data`` rows). Served apart from the GET endpoints above.
TMAI = EndpointSpec("tmai", P.TmaiBody, "tmai_answer", "TMAI, the AI agent: a question in, an answer out.")

BY_NAME: dict[str, EndpointSpec] = {e.name: e for e in (*ENDPOINTS, TMAI)}
BY_PATH: dict[str, EndpointSpec] = {e.path: e for e in (*ENDPOINTS, TMAI)}

assert set(BY_NAME) == set(ENDPOINT_TIER), "every endpoint needs a price tier and vice versa"
