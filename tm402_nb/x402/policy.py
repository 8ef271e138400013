"""SpendPolicy: which offers may be paid, how much, and which one to pick.

Every refusal happens *before signing* and says what was asked, what the
limit is, and which setting changes it. Money is integer atomic units.

Caps given in dollars (``max_per_call``, ``budget``, ``daily_cap``) apply to USD
stablecoins. Other assets have no dollar price we can trust, so they are
payable only with an explicit per-asset limit in their own units. Naming an
asset, as ``pay_with`` or in ``asset_limits``, configures it even when its
address is unverified::

    SpendPolicy(pay_with="tmai", asset_limits={"TMAI": {"max_per_call": "5", "budget": "100"}})

One request may prefer another asset or carry its own per-call cap: both are
arguments of :meth:`SpendPolicy.select` (and of the cap checks), never changes
to the shared policy.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, ConfigurationError, PaymentRefused, X402ProtocolError
from ..money import AmountLike, format_amount, to_atomic
from .messages import PaymentRequired, PaymentRequirements
from .networks import (
    BASE,
    BASE_SEPOLIA,
    KNOWN_ASSETS,
    Asset,
    Network,
    find_asset,
    get_network,
    is_address,
    same_address,
)

if TYPE_CHECKING:
    from .recorder import SpendCounter

__all__ = ["AssetLimit", "Offer", "SpendPolicy", "SpendScope"]

#: A challenge asking for more than a day to settle is not a real payment window.
MAX_SANE_TIMEOUT = 86_400
DEFAULT_MAX_PER_CALL = "0.10"
#: The longest an authorization we sign stays valid, whatever the server allows. A refused
#: payment counts against the caps until it expires, so a short window frees it soon.
DEFAULT_AUTHORIZATION_SECONDS = 300


@dataclass(frozen=True)
class AssetLimit:
    """Limits for one non-USD asset, in that asset's display units."""

    max_per_call: AmountLike | None = None
    budget: AmountLike | None = None
    daily_cap: AmountLike | None = None


@dataclass(frozen=True)
class Offer:
    """An entry of ``accepts[]`` resolved against the registry: what paying it means."""

    requirements: PaymentRequirements
    network: Network
    asset: Asset

    @property
    def amount(self) -> int:
        return self.requirements.amount

    @property
    def display(self) -> str:
        return f"{format_amount(self.amount, self.asset.decimals, self.asset.symbol)} on {self.network.v1_name}"


@dataclass
class SpendScope:
    """A window of spending with its own optional cap (a notebook cell, a `with` block)."""

    name: str
    cap: dict[tuple[str, str], int] | None = None  # (network, asset) -> atomic cap
    cap_text: str = ""
    spent: dict[tuple[str, str], int] = field(default_factory=dict)
    payments: int = 0

    def remaining(self, key: tuple[str, str]) -> int | None:
        if self.cap is None or key not in self.cap:
            return None
        return self.cap[key] - self.spent.get(key, 0)


class SpendPolicy:
    """What the wallet may pay.

    >>> p = SpendPolicy(max_per_call="0.05")
    >>> p.max_per_call_text
    '0.05 USD'
    >>> p.networks
    ('eip155:84532',)
    """

    def __init__(
        self,
        max_per_call: AmountLike | float | None = DEFAULT_MAX_PER_CALL,
        budget: AmountLike | float | None = None,
        daily_cap: AmountLike | float | None = None,
        *,
        network: str | None = None,
        networks: Iterable[str] | None = None,
        allow_mainnet: bool = False,
        assets: Iterable[str | Asset] | None = None,
        extra_assets: Iterable[Asset] = (),
        payees: Iterable[str] | None = None,
        pin_payee: bool = True,
        pay_with: str = "usdc",
        asset_limits: Mapping[str, AssetLimit | Mapping[str, Any]] | None = None,
        max_timeout_seconds: int = MAX_SANE_TIMEOUT,
        authorization_seconds: int = DEFAULT_AUTHORIZATION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self._usd_decimals = 6
        self.max_per_call = self._usd(max_per_call, "max_per_call")
        self.budget = self._usd(budget, "budget")
        self.daily_cap = self._usd(daily_cap, "daily_cap")

        # Networks: testnet only unless the user names mainnet.
        if networks is None:
            nets = [get_network(network)] if network else [BASE_SEPOLIA]
        else:
            nets = [get_network(n) for n in networks]
        if not nets:
            raise ConfigurationError("networks must not be empty")
        for n in nets:
            if not n.testnet and not (allow_mainnet or network or networks is not None):
                raise ConfigurationError(f"{n.v1_name} is mainnet", hint="pass allow_mainnet=True")
        if allow_mainnet and BASE not in nets:
            nets.append(BASE)
        self.networks: tuple[str, ...] = tuple(dict.fromkeys(n.caip2 for n in nets))

        self.extra_assets: tuple[Asset, ...] = tuple(extra_assets)
        self.pay_with = pay_with.strip().lower() if isinstance(pay_with, str) else ""
        symbols = sorted({a.symbol.lower() for a in (*self.extra_assets, *KNOWN_ASSETS)})
        if self.pay_with not in symbols:
            raise ConfigurationError(
                f"pay_with must name a known asset ({', '.join(symbols)}), got {pay_with!r}",
                hint="describe another token with extra_assets=[Asset(...)]",
            )
        self.asset_limits: dict[str, AssetLimit] = {}
        for sym, lim in (asset_limits or {}).items():
            self.asset_limits[sym.upper()] = lim if isinstance(lim, AssetLimit) else AssetLimit(**dict(lim))
        self._allowed_assets = self._resolve_assets(assets)
        self.payees: tuple[str, ...] | None = None
        if payees is not None:
            bad = [p for p in payees if not is_address(p)]
            if bad:
                raise ConfigurationError(f"payee {bad[0]!r} is not an address")
            self.payees = tuple(p.lower() for p in payees)
        self.pin_payee = pin_payee
        self._pinned: dict[str, str] = {}
        if not 0 < max_timeout_seconds <= 7 * MAX_SANE_TIMEOUT:
            raise ConfigurationError("max_timeout_seconds must be between 1 s and 7 days")
        self.max_timeout_seconds = max_timeout_seconds
        if not 10 <= authorization_seconds <= MAX_SANE_TIMEOUT:
            raise ConfigurationError("authorization_seconds must be between 10 s and 1 day")
        self.authorization_seconds = authorization_seconds
        self._clock = clock
        # Session accounting, keyed by (network, asset address lower): every signed payment
        # that settled or still may. A refused one stays here until its authorization expires.
        self._spent: dict[tuple[str, str], int] = {}
        # Refused payments whose signed authorization is still valid: (release at, tie, offer, scopes).
        self._reserved: list[tuple[float, int, Offer, tuple[SpendScope, ...]]] = []
        self._tie = itertools.count()
        self._scopes: list[SpendScope] = []

    # -- configuration helpers ---------------------------------------------------
    def _usd(self, value: AmountLike | float | None, name: str) -> int | None:
        if value is None:
            return None
        return to_atomic(value, self._usd_decimals, what=name)

    def _usd_per_call(self, override: AmountLike | float | None) -> int | None:
        """The USD per-call cap for one request: the one it brings, else the policy's."""
        return self.max_per_call if override is None else self._usd(override, "max_per_call")

    def _resolve_assets(self, assets: Iterable[str | Asset] | None) -> tuple[Asset, ...]:
        pool = (*self.extra_assets, *KNOWN_ASSETS)
        if assets is None:
            chosen = [a for a in pool if a.network in self.networks and (a.verified or a in self.extra_assets)]
            # Naming an asset (to pay with, or to limit) is the user's say-so for an unverified address.
            named = {self.pay_with.upper(), *self.asset_limits}
            chosen += [a for a in pool if a.symbol.upper() in named and a.network in self.networks]
            return tuple(dict.fromkeys(chosen))
        chosen = []
        for a in assets:
            if isinstance(a, Asset):
                chosen.append(a)
                continue
            text = str(a).strip()
            if is_address(text):
                hits = [x for x in pool if same_address(x.address, text)]
                if not hits:
                    raise ConfigurationError(
                        f"asset {text} is not a known token",
                        hint="pass an Asset(...) in extra_assets with its decimals",
                    )
                chosen += hits
            else:
                hits = [x for x in pool if x.symbol.upper() == text.upper() and x.network in self.networks]
                if not hits:
                    raise ConfigurationError(f"no asset {text!r} on {', '.join(self.networks)}")
                chosen += hits
        return tuple(dict.fromkeys(chosen))

    @property
    def allowed_assets(self) -> tuple[Asset, ...]:
        return self._allowed_assets

    @property
    def max_per_call_text(self) -> str:
        if self.max_per_call is None:
            return "no cap"
        return format_amount(self.max_per_call, self._usd_decimals, "USD")

    def set_max_per_call(self, value: AmountLike | float | None) -> None:
        with self.lock:
            self.max_per_call = self._usd(value, "max_per_call")

    def set_budget(self, value: AmountLike | float | None) -> None:
        with self.lock:
            self.budget = self._usd(value, "budget")

    # -- offer screening ---------------------------------------------------------------
    def screen(self, req: PaymentRequirements, *, origin: str | None = None) -> Offer | str:
        """Resolve one requirement into an :class:`Offer`, or the reason it cannot be paid."""
        if req.scheme != "exact":
            return f"scheme {req.scheme!r} is not supported (only 'exact')"
        try:
            network = get_network(req.network)
        except X402ProtocolError:
            return f"unknown network {req.network[:40]!r}"
        if req.x402_version == 2 and req.network != network.caip2:
            return f"v2 requirement names network {req.network!r} instead of a CAIP-2 id"
        if network.caip2 not in self.networks:
            if not network.testnet:
                return (
                    f"{network.label} mainnet is not allowed (this session is on testnet: "
                    "use network='base' or allow_mainnet=True to pay real money)"
                )
            return f"network {network.v1_name} is not allowed (allowed: {', '.join(self.networks)})"
        if not is_address(req.asset):
            return f"asset {req.asset[:42]!r} is not a token address"
        if not is_address(req.pay_to):
            return f"payTo {req.pay_to[:42]!r} is not an address"
        asset = next(
            (a for a in self._allowed_assets if a.network == network.caip2 and same_address(a.address, req.asset)), None
        )
        if asset is None:
            known = find_asset(network, req.asset, self.extra_assets)
            if known is not None and not known.verified:
                return (
                    f"asset {known.symbol} ({req.asset}) has an unverified address and is not configured: "
                    f"pass pay_with='{known.symbol.lower()}' or assets=[...] to allow it"
                )
            if known is not None:
                return f"asset {known.symbol} is not in the allowed assets"
            return f"unknown asset {req.asset}"
        if not (req.eip712_name and req.eip712_version) and not (asset.eip712_name and asset.eip712_version):
            return f"the challenge gives no EIP-712 name/version for {asset.symbol} and none is known"
        if req.max_timeout_seconds <= 0 or req.max_timeout_seconds > self.max_timeout_seconds:
            return f"maxTimeoutSeconds {req.max_timeout_seconds} is outside 1..{self.max_timeout_seconds}"
        if self.payees is not None and req.pay_to.lower() not in self.payees:
            return f"payee {req.pay_to} is not in the allowed payees"
        # An explicit allow-list is the user's pin: a switch among its payees is allowed
        # (what the refusal below advises); without one, the first payee paid is pinned.
        if self.pin_payee and self.payees is None and origin is not None:
            pinned = self._pinned.get(origin)
            if pinned is not None and pinned != req.pay_to.lower():
                return (
                    f"payee changed for {origin}: was {pinned}, now {req.pay_to} "
                    "(refusing a mid-session payee switch; pass payees=[...] to allow several)"
                )
        return Offer(req, network, asset)

    def select(
        self,
        required: PaymentRequired,
        *,
        origin: str | None = None,
        pay_with: str | None = None,
        max_per_call: AmountLike | float | None = None,
    ) -> Offer:
        """Pick the offer to pay: cheapest allowed in the preferred asset, then the others.

        ``pay_with`` (an asset symbol) and ``max_per_call`` (USD) apply to this one
        choice instead of the policy's own; None keeps the policy's. They choose
        among the assets the policy allows and never widen them.

        Raises PaymentRefused (or BudgetExceeded when only caps stand in the way)
        naming what was asked and what limit blocked it.
        """
        with self.lock:
            usd_per_call = self._usd_per_call(max_per_call)
            preference = (pay_with or self.pay_with).strip().lower()
            offers: list[Offer] = []
            reasons: list[str] = [f"accepts[{i}]: {why}" for i, why in required.rejected]
            for req in required.accepts:
                res = self.screen(req, origin=origin)
                if isinstance(res, Offer):
                    offers.append(res)
                else:
                    reasons.append(res)
            if not offers:
                raise PaymentRefused(
                    "x402 payment refused before signing: " + "; ".join(list(dict.fromkeys(reasons))[:4]),
                    hint="nothing was signed or paid",
                    offers=required.accepts,
                )
            # The preferred asset when it is offered; another asset only when it is not.
            # Never switch assets to get around a cap: a budget that says stop, stops.
            preferred = [o for o in offers if o.asset.symbol.lower() == preference]
            offers = preferred or offers
            affordable: list[Offer] = []
            cap_errors: list[BudgetExceeded] = []
            for offer in offers:
                err = self._cap_error(offer, usd_per_call)
                if err is None:
                    affordable.append(offer)
                else:
                    cap_errors.append(err)
            if not affordable:
                cheapest = min(cap_errors, key=lambda e: e.details.get("asked_atomic", 0))
                raise cheapest
            return min(affordable, key=lambda o: o.amount)

    # -- caps ---------------------------------------------------------------------------
    def _limits_for(self, asset: Asset, usd_per_call: int | None) -> tuple[int | None, int | None, int | None, str]:
        """(per-call, budget, daily) in atomic units of ``asset``, and the setting prefix.

        ``usd_per_call`` is the USD per-call cap in force for this request.
        """
        if asset.usd_stable and asset.decimals == self._usd_decimals:
            return usd_per_call, self.budget, self.daily_cap, ""
        if asset.usd_stable:
            conv = lambda v: None if v is None else v * 10 ** (asset.decimals - self._usd_decimals)  # noqa: E731
            return conv(usd_per_call), conv(self.budget), conv(self.daily_cap), ""
        lim = self.asset_limits.get(asset.symbol.upper())
        if lim is None:
            return None, None, None, "missing"
        conv2 = lambda v, n: None if v is None else to_atomic(v, asset.decimals, what=n)  # noqa: E731
        return (
            conv2(lim.max_per_call, "max_per_call"),
            conv2(lim.budget, "budget"),
            conv2(lim.daily_cap, "daily_cap"),
            f"asset_limits['{asset.symbol}']",
        )

    def _cap_error(
        self, offer: Offer, usd_per_call: int | None, *, spent_today: int | None = None
    ) -> BudgetExceeded | None:
        self._release_expired()
        asset = offer.asset
        per_call, budget, daily, prefix = self._limits_for(asset, usd_per_call)
        fmt = lambda v: format_amount(v, asset.decimals, asset.symbol)  # noqa: E731
        asked = offer.amount
        common = {"asked_atomic": asked, "asset": asset.symbol, "network": offer.network.v1_name}
        if prefix == "missing":
            return BudgetExceeded(
                f"server asks {offer.display}, and no limit is configured for {asset.symbol}",
                hint=f"set SpendPolicy(asset_limits={{'{asset.symbol}': {{'max_per_call': '…'}}}}) or pay with USDC",
                setting="asset_limits",
                **common,
            )
        name = (lambda n: f"{prefix}['{n}']") if prefix else (lambda n: n)
        if per_call is not None and asked > per_call:
            return BudgetExceeded(
                f"server asks {offer.display}; the per-call cap is {fmt(per_call)}",
                hint=f"raise it: {name('max_per_call')}={format_amount(asked, asset.decimals).split()[0]}",
                setting="max_per_call",
                limit_atomic=per_call,
                **common,
            )
        key = (offer.network.caip2, asset.address.lower())
        if budget is not None:
            left = budget - self._spent.get(key, 0)
            if asked > left:
                return BudgetExceeded(
                    f"server asks {offer.display}; {fmt(max(left, 0))} is left of the session budget {fmt(budget)}",
                    hint=f"raise it: {name('budget')}=…",
                    setting="budget",
                    limit_atomic=left,
                    **common,
                )
        if daily is not None and spent_today is not None and asked > daily - spent_today:
            return BudgetExceeded(
                f"server asks {offer.display}; {fmt(max(daily - spent_today, 0))} is left of today's cap {fmt(daily)}",
                hint=f"raise it: {name('daily_cap')}=…, or wait until 00:00 UTC",
                setting="daily_cap",
                limit_atomic=daily - spent_today,
                **common,
            )
        for scope in self._scopes:
            scope_left = scope.remaining(key)
            if scope_left is not None and asked > scope_left:
                return BudgetExceeded(
                    f"server asks {offer.display}; {fmt(max(scope_left, 0))} is left of the {scope.name} cap "
                    f"{scope.cap_text}",
                    hint=f"raise the {scope.name} cap",
                    setting=scope.name,
                    limit_atomic=scope_left,
                    # The cap that would let this payment through: what the scope spent, plus it.
                    needed_atomic=(scope.cap or {}).get(key, 0) - scope_left + asked,
                    **common,
                )
        return None

    def check_batch(self, offer: Offer, calls: int, *, max_per_call: AmountLike | float | None = None) -> None:
        """Refuse a whole batch up front when ``calls`` payments of ``offer`` cannot all fit.

        Checked before the first payment, so a batch never stops half paid.
        ``max_per_call`` (USD) replaces the policy's per-call cap for this batch.
        """
        with self.lock:
            self._release_expired()
            usd_per_call = self._usd_per_call(max_per_call)
            err = self._cap_error(offer, usd_per_call)
            if err is not None:
                raise err
            asset = offer.asset
            total = offer.amount * calls
            fmt = lambda v: format_amount(v, asset.decimals, asset.symbol)  # noqa: E731
            _, budget, _, prefix = self._limits_for(asset, usd_per_call)
            key = (offer.network.caip2, asset.address.lower())
            limits: list[tuple[str, int, int | None, str]] = []  # (label, left, whole, setting)
            if budget is not None:
                limits.append(
                    (
                        "session budget",
                        budget - self._spent.get(key, 0),
                        budget,
                        f"{prefix}['budget']" if prefix else "budget",
                    )
                )
            for scope in self._scopes:
                left = scope.remaining(key)
                if left is not None:
                    limits.append((f"{scope.name} cap", left, (scope.cap or {}).get(key), scope.name))
            for label, left, whole, setting in limits:
                if total > left:
                    of_whole = f" of the {fmt(whole)}" if whole is not None else ""
                    raise BudgetExceeded(
                        f"this request needs {calls} paid calls × {fmt(offer.amount)} = {fmt(total)}; "
                        f"{fmt(max(left, 0))} is left{of_whole} {label}",
                        hint=f"raise {setting}, or ask for fewer tokens or a shorter date range; nothing was paid",
                        setting=setting,
                        asked_atomic=total,
                        limit_atomic=left,
                        needed_atomic=None if whole is None else whole - left + total,
                        calls=calls,
                    )

    def needs_ledger(self, offer: Offer) -> bool:
        return self._limits_for(offer.asset, self.max_per_call)[2] is not None

    def authorize(
        self, offer: Offer, tx: SpendCounter | None = None, *, max_per_call: AmountLike | float | None = None
    ) -> None:
        """Final check under the lock (and inside the ledger transaction, for the daily cap).

        ``max_per_call`` (USD) replaces the policy's per-call cap for this payment only.
        Raises BudgetExceeded. Call with ``self.lock`` held, then sign, record, and :meth:`commit`.
        """
        usd_per_call = self._usd_per_call(max_per_call)
        spent_today = None
        if self.needs_ledger(offer):
            if tx is None:
                raise ConfigurationError("a daily cap needs a ledger to count today's spending")
            midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            spent_today = tx.spent(offer.asset.address, offer.network.caip2, since=midnight)
        err = self._cap_error(offer, usd_per_call, spent_today=spent_today)
        if err is not None:
            raise err

    def commit(self, offer: Offer, origin: str | None = None) -> tuple[SpendScope, ...]:
        """Count a signed payment against the session and open scopes; pin the payee.

        Returns the scopes it was counted in, so a refusal can give it back to exactly those.
        """
        key = (offer.network.caip2, offer.asset.address.lower())
        with self.lock:
            self._spent[key] = self._spent.get(key, 0) + offer.amount
            scopes = tuple(self._scopes)
            for scope in scopes:
                scope.spent[key] = scope.spent.get(key, 0) + offer.amount
                scope.payments += 1
            if self.pin_payee and origin is not None:
                self._pinned.setdefault(origin, offer.requirements.pay_to.lower())
            return scopes

    def release(self, offer: Offer, scopes: tuple[SpendScope, ...] = (), *, after: float | None = None) -> None:
        """Give back a payment the server refused, to the session and to the scopes it was
        counted in (not whichever scopes are open now).

        A refusal does not void the signature: whoever holds it can still settle it until
        its ``validBefore``. So with ``after`` (that time, epoch seconds) the amount stays
        counted, as *reserved*, and is given back only once the clock has passed it.
        """
        with self.lock:
            if after is not None and after > self._clock():
                heapq.heappush(self._reserved, (after, next(self._tie), offer, scopes))
                return
            self._give_back(offer, scopes)

    def _give_back(self, offer: Offer, scopes: tuple[SpendScope, ...]) -> None:
        key = (offer.network.caip2, offer.asset.address.lower())
        self._spent[key] = max(0, self._spent.get(key, 0) - offer.amount)
        for scope in scopes:
            if key in scope.spent:
                scope.spent[key] = max(0, scope.spent[key] - offer.amount)

    def _release_expired(self) -> None:
        """Give back the reservations whose authorizations can no longer settle. Lock held."""
        now = self._clock()
        while self._reserved and self._reserved[0][0] <= now:
            _, _, offer, scopes = heapq.heappop(self._reserved)
            self._give_back(offer, scopes)

    def spent(self) -> dict[tuple[str, str], int]:
        """Atomic units counted per (network, asset): settled, unknown, pending and reserved."""
        with self.lock:
            self._release_expired()
            return dict(self._spent)

    def reserved(self) -> dict[tuple[str, str], int]:
        """The part of :meth:`spent` that the server refused but could still settle until it expires."""
        with self.lock:
            self._release_expired()
            out: dict[tuple[str, str], int] = {}
            for _, _, offer, _ in self._reserved:
                key = (offer.network.caip2, offer.asset.address.lower())
                out[key] = out.get(key, 0) + offer.amount
            return out

    def reserved_usd(self) -> int:
        """:meth:`reserved` in atomic USD (6 decimals) across USD stablecoins."""
        return self._usd_total(self.reserved())

    def spent_usd(self) -> int:
        """Atomic USD (6 decimals) counted this session across USD stablecoins (reserved included)."""
        return self._usd_total(self.spent())

    def _usd_total(self, amounts: Mapping[tuple[str, str], int]) -> int:
        total = 0
        for (net, addr), amount in amounts.items():
            asset = find_asset(net, addr, self.extra_assets)
            if asset is not None and asset.usd_stable:
                total += amount // 10 ** (asset.decimals - self._usd_decimals) if asset.decimals >= 6 else amount
        return total

    # -- scopes --------------------------------------------------------------------------------
    def open_scope(self, name: str, cap_usd: AmountLike | float | None = None) -> SpendScope:
        cap = None
        cap_text = ""
        if cap_usd is not None:
            atomic = to_atomic(cap_usd, self._usd_decimals, what=f"{name} cap")
            cap = {}
            for a in self._allowed_assets:
                if a.usd_stable:
                    cap[(a.network, a.address.lower())] = atomic * 10 ** (a.decimals - self._usd_decimals)
            cap_text = format_amount(atomic, self._usd_decimals, "USD")
        scope = SpendScope(name, cap, cap_text)
        with self.lock:
            self._scopes.append(scope)
        return scope

    def close_scope(self, scope: SpendScope) -> None:
        with self.lock:
            if scope in self._scopes:
                self._scopes.remove(scope)

    def __repr__(self) -> str:
        parts = [f"max_per_call={self.max_per_call_text}"]
        if self.budget is not None:
            parts.append(f"budget={format_amount(self.budget, 6, 'USD')}")
        if self.daily_cap is not None:
            parts.append(f"daily_cap={format_amount(self.daily_cap, 6, 'USD')}")
        parts.append("networks=" + ",".join(get_network(n).v1_name for n in self.networks))
        parts.append(f"pay_with={self.pay_with}")
        return f"SpendPolicy({', '.join(parts)})"
