"""``s.approve_permit2(asset, amount)`` and ``s.allowance(asset)``: the one-time approval a
wallet sends before it pays a token (TMAI) by Permit2, and what it allows.

The approval is a real transaction from the session's wallet, paid in ETH, so it is shown
first (token, spender, amount, the most the gas may cost, network; SANDBOX when it is the
sandbox) and asked about, as a payment above ``confirm_above`` is: where no one can answer
it is refused, and ``yes=True`` is how a script says yes in advance.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, NotConfirmed
from ..tokenmetrics.modes import Mode
from ..x402.approval import (
    Allowance,
    ApprovalPlan,
    ApprovalResult,
    amount_text,
    approval_amount,
    eth_text,
    plan_approval,
    read_allowance,
    resolve_token,
    send_approval,
    short_of_gas,
)
from ..x402.chain import ChainReader
from ..x402.networks import Asset, get_network
from .confirm import ask_yes_no

if TYPE_CHECKING:
    from .core import Session

__all__ = ["Approved", "allowance", "approve_permit2"]


@dataclass(frozen=True)
class Approved:
    """A sent and confirmed approval: what was asked, and what the chain answered."""

    label: str
    plan: ApprovalPlan
    result: ApprovalResult

    @property
    def tx_hash(self) -> str:
        return self.result.tx_hash

    @property
    def gas_used(self) -> int:
        return self.result.gas_used

    @property
    def allowance(self) -> Allowance:
        return Allowance(self.plan.token, self.plan.owner, self.result.allowance)

    def text(self) -> str:
        head = f"Permit2 approved [{self.label}]: {amount_text(self.plan.amount, self.plan.token)}"
        return "\n".join([head, *self.plan.lines(sent=True), *self.result.lines()])

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return f"<pre style='margin:0'>{html.escape(self.text())}</pre>"


def _label(s: Session) -> str:
    net = get_network(s.network or "base-sepolia")
    if s.mode is Mode.SANDBOX:
        return f"SANDBOX · {net.label}"
    return f"{net.label} · {'testnet' if net.testnet else 'MAINNET, real ETH and tokens'}"


def _parts(s: Session, asset: str | Asset, decimals: int | None) -> tuple[ChainReader, Asset]:
    if s.wallet is None or s.policy is None or s.network is None:
        raise ConfigurationError("API-key mode has no wallet, so nothing to approve", hint="connect in x402 mode")
    if not s.rpc_url:
        raise ConfigurationError(
            "no JSON-RPC URL: an approval is a transaction, sent and confirmed over JSON-RPC",
            hint="set $TM402_RPC_URL (a node of the session's network) or pass rpc_url= to connect()",
        )
    extra = (*s.policy.extra_assets, *s.policy.allowed_assets)
    return ChainReader(s.rpc_url), resolve_token(s.network, asset, extra, decimals=decimals)


def allowance(s: Session, asset: str | Asset = "tmai", *, decimals: int | None = None) -> Allowance:
    """What Permit2 may move of the wallet's ``asset`` now (a read; sends nothing)."""
    reader, token = _parts(s, asset, decimals)
    assert s.wallet is not None  # _parts checked
    return read_allowance(reader, token, s.wallet.address)


def approve_permit2(
    s: Session, asset: str | Asset, amount: object, *, yes: bool = False, decimals: int | None = None
) -> Approved:
    """Plan, show, ask, send and confirm ``approve(Permit2, amount)`` on ``asset``."""
    reader, token = _parts(s, asset, decimals)
    assert s.wallet is not None  # _parts checked
    plan = plan_approval(
        reader, s.wallet.address, get_network(s.network or ""), token, approval_amount(amount, token.decimals)
    )
    label = _label(s)
    short = short_of_gas(plan)
    if short is not None:
        raise short
    if not yes:
        print("\n".join([f"Approve Permit2 [{label}]:", *plan.lines()]))
        what = f"approve(Permit2, {amount_text(plan.amount, token)})"
        if not ask_yes_no(f"Send {what} on {label}, gas up to {eth_text(plan.max_gas_cost)}? [y/N] ", _no_one(what)):
            raise NotConfirmed(f"declined: {what} on {label}", hint="nothing was sent")
    approved = Approved(label, plan, send_approval(reader, s.wallet, plan))
    if s.auth is not None:
        s.auth.forget_allowance(token.address)  # a cached reading of the old allowance is stale now
    return approved


def _no_one(what: str) -> Callable[[str], NotConfirmed]:
    def refuse(why: str) -> NotConfirmed:
        return NotConfirmed(
            f"{what} is a transaction from your wallet and needs a yes, and {why}",
            hint="pass yes=True (--yes on the command line) to send it unasked; nothing was sent",
        )

    return refuse
