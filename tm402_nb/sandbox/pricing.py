"""What each sandbox endpoint costs: one table, as data.

Tiers follow the reference (§5.3): the community tier list for the endpoints it
names; an endpoint it does not name takes its nearest kin's tier (latest grades
tier 1, histories and signals tier 2, reports, predictions and quant tier 3).
TMAI is 10 % cheaper in USD terms and is converted to TMAI at a fixed sandbox
rate. All arithmetic is exact (Decimal → integer atomic units); no floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

#: USD price of each tier.
TIER_USD = MappingProxyType({0: Decimal("0"), 1: Decimal("0.017"), 2: Decimal("0.034"), 3: Decimal("0.068")})

#: Endpoint path (under /v2) → tier.
ENDPOINT_TIER = MappingProxyType(
    {
        # free
        "tokens": 0,
        "price": 0,
        "top-market-cap-tokens": 0,
        # tier 1: $0.017
        "trading-signals": 1,
        "daily-ohlcv": 1,
        "hourly-ohlcv": 1,
        "tm-grade": 1,
        "technology-grade": 1,
        "fundamental-grade": 1,
        # tier 2: $0.034
        "hourly-trading-signals": 2,
        "resistance-support": 2,
        "market-metrics": 2,
        "indices": 2,
        "indices-holdings": 2,
        "indices-performance": 2,
        "tm-grade-history": 2,
        "technology-grade-history": 2,
        "fundamental-grade-history": 2,
        "moonshot-tokens": 2,
        # tier 3: $0.068
        "correlation": 3,
        "ai-reports": 3,
        "quantmetrics": 3,
        "crypto-investors": 3,
        "price-prediction": 3,
        # POST /v2/tmai, the AI agent: no published price, so the top tier.
        "tmai": 3,
    }
)

#: TMAI is charged 10 % less than USDC, in USD terms.
TMAI_DISCOUNT = Decimal("0.10")
#: Fixed sandbox conversion rate: 1 TMAI = $0.01 (the sandbox's TMAI price path ends there too).
TMAI_USD_RATE = Decimal("0.01")


#: The tier a free endpoint takes when a profile prices every endpoint (``free_endpoints="paid"``):
#: the official blog says all public endpoints are priced; these have no published price, so the
#: lowest tier, as an endpoint listed without a price takes its nearest kin's.
PAID_FREE_TIER = 1


@dataclass(frozen=True)
class PriceList:
    """What each endpoint costs under one profile: the table above, with the free endpoints
    priced at :data:`PAID_FREE_TIER` when ``free_is_paid``."""

    free_is_paid: bool = False

    def tier(self, endpoint: str) -> int:
        t = ENDPOINT_TIER[endpoint]
        return PAID_FREE_TIER if t == 0 and self.free_is_paid else t

    def free(self, endpoint: str) -> bool:
        return self.tier(endpoint) == 0

    def usd(self, endpoint: str, token: str = "usdc") -> Decimal:
        """USD charged for one call, after the TMAI discount when ``token`` is ``tmai``."""
        usd = TIER_USD[self.tier(endpoint)]
        if token.lower() == "tmai":
            usd = usd * (1 - TMAI_DISCOUNT)
        return usd

    def atomic(self, endpoint: str, token: str, decimals: int) -> int:
        """Price of one call in the asset's atomic units (exact; raises if not representable)."""
        usd = self.usd(endpoint, token)
        amount = usd if token.lower() == "usdc" else usd / TMAI_USD_RATE
        atomic = amount.scaleb(decimals)
        if atomic != atomic.to_integral_value():
            raise ValueError(f"{endpoint}: {amount} {token} is not representable with {decimals} decimals")
        return int(atomic)


#: Under ``upto`` the TMAI agent's tier price is a ceiling: an answer this long (bytes delivered,
#: the thread included) or longer pays all of it, a shorter one its share.
UPTO_FULL_ANSWER_BYTES = 4096


def upto_charge(ceiling: int, delivered: int) -> int:
    """What an ``upto`` call is charged for ``delivered`` bytes: the ceiling's share, rounded up,
    never more than the ceiling (``upto_charge(1000, 1024) == 250``)."""
    if delivered >= UPTO_FULL_ANSWER_BYTES:
        return ceiling
    return -(-ceiling * max(delivered, 0) // UPTO_FULL_ANSWER_BYTES)
