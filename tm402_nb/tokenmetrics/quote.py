"""What a call would cost, read from the server's 402 challenge before anything is paid."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PaymentRefused, X402ProtocolError
from ..money import format_amount
from ..x402.messages import PaymentRequired
from ..x402.networks import find_asset, get_network
from ..x402.policy import SpendPolicy
from .catalogue import Endpoint
from .modes import Mode

__all__ = ["Quote", "quote_from"]


@dataclass(frozen=True)
class Quote:
    """What a request would cost, read from the 402 challenge; nothing paid. Amounts are atomic units."""

    endpoint: str
    params: dict[str, str]
    calls: int
    per_call: int = 0
    asset: str | None = None
    decimals: int = 6
    network: str | None = None
    pay_to: str | None = None
    offers: tuple[str, ...] = ()
    refused: str | None = None
    mode: str = Mode.X402

    @property
    def free(self) -> bool:
        return self.per_call == 0

    @property
    def total(self) -> int:
        return self.per_call * self.calls

    @property
    def total_text(self) -> str:
        return format_amount(self.total, self.decimals, self.asset or "USDC")

    def __repr__(self) -> str:
        if self.mode == Mode.API_KEY:
            return f"<Quote {self.endpoint}: {self.calls} call(s), API-key mode: no payment>"
        if self.free:
            return f"<Quote {self.endpoint}: {self.calls} call(s), free>"
        each = format_amount(self.per_call, self.decimals, self.asset or "")
        s = f"<Quote {self.endpoint}: {self.calls} call(s) × {each} = {self.total_text} on {self.network}"
        if self.refused:
            s += f"; would be refused: {self.refused}"
        return s + ">"


def quote_from(
    endpoint: Endpoint,
    wire: dict[str, str],
    calls: int,
    required: PaymentRequired | None,
    *,
    mode: Mode,
    policy: SpendPolicy | None,
    pay_with: str | None = None,
) -> Quote:
    """The quote for ``calls`` requests like ``wire``, given the challenge (None: the answer was free)."""
    if not mode.pays:
        return Quote(endpoint.name, wire, calls, mode=mode)
    if required is None or policy is None:
        return Quote(endpoint.name, wire, calls, mode=mode)
    offers = tuple(f"{r.amount} of {r.asset} on {r.network}" for r in required.accepts)
    try:
        offer = policy.select(required, pay_with=pay_with)
    except PaymentRefused as exc:
        # Still say what it would cost, in the first offer's terms, and why it would be refused.
        first = required.accepts[0]
        try:
            known = find_asset(get_network(first.network), first.asset, policy.extra_assets)
        except X402ProtocolError:
            known = None
        return Quote(
            endpoint.name,
            wire,
            calls,
            first.amount,
            known.symbol if known else first.asset[:10],
            known.decimals if known else 6,
            first.network,
            first.pay_to,
            offers,
            refused=exc.message,
            mode=mode,
        )
    return Quote(
        endpoint.name,
        wire,
        calls,
        offer.amount,
        offer.asset.symbol,
        offer.asset.decimals,
        offer.network.v1_name,
        offer.requirements.pay_to,
        offers,
        mode=mode,
    )
