"""How a session reaches the Token Metrics API."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Mode"]


class Mode(StrEnum):
    """The three ways to call the API; a ``str``, so ``Mode.X402 == "x402"``.

    >>> Mode("api-key") is Mode.API_KEY
    True
    """

    #: Pay per call with x402 from the user's wallet (``x-coinbase-402: true``).
    X402 = "x402"
    #: A Token Metrics subscription key (``x-api-key``); nothing is paid per call.
    API_KEY = "api-key"
    #: The embedded local sandbox with a throwaway funded wallet; no real money.
    SANDBOX = "sandbox"

    @property
    def pays(self) -> bool:
        """True for the modes that answer 402 challenges with a wallet."""
        return self is not Mode.API_KEY
