"""SpendPolicy: which offers may be paid, how much, and which one to pick.

Every refusal happens *before signing* and says what was asked, what the
limit is, and which setting changes it. Money is integer atomic units.

**Caps are in US dollars, across assets.** ``max_per_call``, ``max_per_cell``,
``budget``, ``daily_cap``, a scope's cap and a request's ``max_cost`` count every
payment at its USD value, whatever it was paid in: a stablecoin at par; another
asset (TMAI) at the highest price the same challenge asks in a USD stablecoin the
policy would itself pay (same network, allowed asset, supported scheme; an upper
bound: TMAI is documented as 10% cheaper), else at a rate the user gives
(``usd_rates={"TMAI": "0.05"}``, USD per token). A payment that cannot be valued
is refused before signing, naming the setting that would value it.
``asset_limits`` adds limits in an asset's own units on top.

**Reserve, then pay.** A request that needs several payments reserves their sum
(:meth:`SpendPolicy.reserve`) against every cap before the first one is signed;
its payments then draw on the :class:`Reservation`, which never lets more calls
or more dollars through than it holds, and gives back what was not used when
it closes. A cap that cannot hold the plan refuses it whole: nothing is paid.

One request may prefer another asset or carry its own per-call cap: both are
arguments of :meth:`SpendPolicy.select` (and of the cap checks), never changes
to the shared policy.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..cells import current_cell_run
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
from .permit2 import TRANSFER_METHODS, permit2_offer_problem, transfer_method

if TYPE_CHECKING:
    from .recorder import SpendCounter

__all__ = ["AssetLimit", "Offer", "Reservation", "SpendPolicy", "SpendScope"]

#: A challenge asking for more than a day to settle is not a real payment window.
MAX_SANE_TIMEOUT = 86_400
DEFAULT_MAX_PER_CALL = "0.10"
#: The longest an authorization we sign stays valid, whatever the server allows. A refused
#: payment counts against the caps until it expires, so a short window frees it soon.
DEFAULT_AUTHORIZATION_SECONDS = 300
#: Dollar amounts are counted in micro-dollars (6 decimals, as USDC).
USD_DECIMALS = 6
#: How many cell runs the per-cell cap remembers (old runs cannot pay any more).
_CELLS_KEPT = 256
#: The schemes this client can pay, in its default order of preference at an equal price:
#: ``exact`` first, since what it signs is what it pays (a quote is the cost, not a bound) and
#: EIP-3009 needs no Permit2 approval; ``upto`` (a Permit2 ceiling the server settles at most)
#: wins only when its ceiling is lower. ``schemes=("upto", "exact")`` prefers upto at a tie.
SCHEMES = ("exact", "upto")


def usd_text(atomic: int) -> str:
    """``usd_text(50_000) == "0.05 USD"``."""
    return format_amount(atomic, USD_DECIMALS, "USD")


def _usd_hint(atomic: int) -> str:
    """A cap a user can type that holds ``atomic`` micro-dollars: cents, rounded up, unless smaller."""
    if atomic <= 10_000:
        return format_amount(atomic, USD_DECIMALS).split()[0]
    cents = math.ceil(atomic / 10_000)
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class AssetLimit:
    """Limits for one asset in its own display units, on top of the USD caps."""

    max_per_call: AmountLike | None = None
    budget: AmountLike | None = None
    daily_cap: AmountLike | None = None


@dataclass(frozen=True)
class Offer:
    """An entry of ``accepts[]`` resolved against the registry: what paying it means."""

    requirements: PaymentRequirements
    network: Network
    asset: Asset
    #: What paying it is worth in micro-dollars (None: it cannot be valued, so it is not paid).
    usd: int | None = None
    #: Where ``usd`` comes from, for messages.
    usd_source: str = ""

    @property
    def amount(self) -> int:
        """What paying it can cost: the price, or an ``upto`` offer's ceiling."""
        return self.requirements.amount

    @property
    def upto(self) -> bool:
        """A ceiling the server settles at most (scheme ``upto``), not a fixed price."""
        return self.requirements.scheme == "upto"

    @property
    def display(self) -> str:
        up = "up to " if self.upto else ""
        return f"{up}{format_amount(self.amount, self.asset.decimals, self.asset.symbol)} on {self.network.v1_name}"

    @property
    def transfer(self) -> str:
        """How paying it moves the tokens: ``eip3009`` or ``permit2`` (``extra.assetTransferMethod``;
        ``upto`` is always Permit2)."""
        return _transfer(self.requirements)

    @property
    def price_text(self) -> str:
        """The amount with its asset, and its dollar value when the asset is not a dollar."""
        text = ("up to " if self.upto else "") + format_amount(self.amount, self.asset.decimals, self.asset.symbol)
        if not self.asset.usd_stable and self.usd is not None:
            text += f" (≈ {usd_text(self.usd)} at {self.usd_source})"
        return text


@dataclass(eq=False)
class SpendScope:
    """A window of spending with its own optional cap in USD (a `with session.scope()` block)."""

    name: str
    cap: int | None = None  # micro-dollars
    spent: int = 0  # micro-dollars counted in this scope
    payments: int = 0

    @property
    def cap_text(self) -> str:
        return usd_text(self.cap) if self.cap is not None else "no cap"


class Reservation:
    """Dollars set aside for one planned request before its first payment.

    Opened by :meth:`SpendPolicy.reserve` once every cap has agreed to the whole plan;
    the plan's payments draw on it (:class:`~tm402_nb.x402.options.PaymentOptions`
    carries it to each request), and it refuses a payment that would take more calls
    or more dollars than it holds. ``close()`` (or leaving the ``with`` block) gives
    back what was not used.
    """

    def __init__(
        self, policy: SpendPolicy, offer: Offer, calls: int, cell: str | None, scopes: tuple[SpendScope, ...]
    ) -> None:
        self.policy = policy
        self.offer = offer
        self.calls = calls
        #: Micro-dollars the plan may pay in all.
        self.total = (offer.usd or 0) * calls
        #: What it may still pay.
        self.remaining = self.total
        #: Micro-dollars its upto payments signed for but did not settle (given back to the caps).
        self.given_back = 0
        #: Payments drawn on it so far.
        self.payments = 0
        self.cell = cell
        self.scopes = scopes
        self.closed = False

    @property
    def total_text(self) -> str:
        return usd_text(self.total)

    def close(self) -> None:
        """Give back what the plan did not use. Idempotent."""
        self.policy._end(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        back = f", {usd_text(self.given_back)} not settled (upto) given back" if self.given_back else ""
        return (
            f"<Reservation {self.payments}/{self.calls} calls, {usd_text(self.remaining)} left of "
            f"{self.total_text}{back}{' (closed)' if self.closed else ''}>"
        )


@dataclass(frozen=True)
class _Limit:
    """One cap as it stands for a payment or a plan: what is left of how much, and its setting."""

    label: str
    left: int
    whole: int
    setting: str


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
        max_per_cell: AmountLike | float | None = None,
        network: str | None = None,
        networks: Iterable[str] | None = None,
        allow_mainnet: bool = False,
        assets: Iterable[str | Asset] | None = None,
        extra_assets: Iterable[Asset] = (),
        payees: Iterable[str] | None = None,
        pin_payee: bool = True,
        pay_with: str = "usdc",
        asset_limits: Mapping[str, AssetLimit | Mapping[str, Any]] | None = None,
        usd_rates: Mapping[str, AmountLike | float] | None = None,
        max_timeout_seconds: int = MAX_SANE_TIMEOUT,
        authorization_seconds: int = DEFAULT_AUTHORIZATION_SECONDS,
        clock: Callable[[], float] = time.time,
        schemes: Iterable[str] = SCHEMES,
    ) -> None:
        self.lock = threading.RLock()
        #: The schemes that may be paid, most preferred first (a tie in price goes to the first).
        self.schemes = _schemes(schemes)
        self.max_per_call = self._usd(max_per_call, "max_per_call")
        self.budget = self._usd(budget, "budget")
        self.daily_cap = self._usd(daily_cap, "daily_cap")
        self.max_per_cell = self._usd(max_per_cell, "max_per_cell")

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
        self.usd_rates: dict[str, Decimal] = {}
        for sym, rate in (usd_rates or {}).items():
            value = Decimal(to_atomic(rate, 18, what=f"usd_rates[{sym!r}]")).scaleb(-18)
            if value <= 0:
                raise ConfigurationError(f"usd_rates[{sym!r}] must be a positive USD price per token")
            self.usd_rates[sym.upper()] = value
        # Session accounting. Every signed payment that settled or still may counts, in
        # micro-dollars (caps) and in its own atomic units per (network, asset) (asset limits,
        # display). A refused one stays counted until its authorization expires.
        self._spent_usd = 0
        self._spent: dict[tuple[str, str], int] = {}
        # Refused payments whose signed authorization is still valid: (release at, tie, offer, cell, scopes).
        self._reserved: list[tuple[float, int, Offer, str | None, tuple[SpendScope, ...]]] = []
        self._tie = itertools.count()
        self._scopes: list[SpendScope] = []
        # Micro-dollars counted per cell run (the per-cell cap), the most recent runs only.
        self._cells: OrderedDict[str, SpendScope] = OrderedDict()
        # Plans reserved and not yet closed: their unused dollars are held against every cap.
        self._holds: list[Reservation] = []

    # -- configuration helpers ---------------------------------------------------
    @staticmethod
    def _usd(value: AmountLike | float | None, name: str) -> int | None:
        if value is None:
            return None
        return to_atomic(value, USD_DECIMALS, what=name)

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
        return usd_text(self.max_per_call)

    def set_max_per_call(self, value: AmountLike | float | None) -> None:
        with self.lock:
            self.max_per_call = self._usd(value, "max_per_call")

    def set_budget(self, value: AmountLike | float | None) -> None:
        with self.lock:
            self.budget = self._usd(value, "budget")

    def set_max_per_cell(self, value: AmountLike | float | None) -> None:
        """The most one notebook cell run may pay, in USD (None: no per-cell cap)."""
        with self.lock:
            self.max_per_cell = self._usd(value, "max_per_cell")

    # -- offer screening ---------------------------------------------------------------
    def screen(self, req: PaymentRequirements, *, origin: str | None = None) -> Offer | str:
        """Resolve one requirement into an :class:`Offer`, or the reason it cannot be paid."""
        if req.scheme not in self.schemes:
            return f"scheme {req.scheme[:30]!r} is not supported (this policy pays {', '.join(self.schemes)})"
        if req.scheme == "upto":
            why = _upto_problem(req)
            if why is not None:
                return why
        method = _transfer(req)
        if method not in TRANSFER_METHODS:
            return (
                f"assetTransferMethod {method!r} is not supported (this wallet pays by {' or '.join(TRANSFER_METHODS)})"
            )
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
            allowed = ", ".join(get_network(n).v1_name for n in self.networks)
            return (
                f"network {network.v1_name} is not allowed (this session pays on {allowed}: a payment signed "
                f"for one network is worthless on another; connect with network='{network.v1_name}' to pay there)"
            )
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
        if method == "permit2":
            # Signed under Permit2's own EIP-712 domain: the token's name/version play no part.
            problem = permit2_offer_problem(req)
            if problem is not None:
                return problem
        elif not (req.eip712_name and req.eip712_version) and not (asset.eip712_name and asset.eip712_version):
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
        reservation: Reservation | None = None,
        schemes: Iterable[str] | None = None,
    ) -> Offer:
        """Pick the offer to pay: cheapest allowed in the preferred asset, then the others.

        ``pay_with`` (an asset symbol) and ``max_per_call`` (USD) apply to this one
        choice instead of the policy's own; None keeps the policy's. They choose
        among the assets the policy allows and never widen them. A payment of a
        reserved plan is checked against its ``reservation`` (what the plan holds is
        already counted against the caps).

        An ``upto`` offer is judged by its ceiling (its ``amount``): the most it can cost.
        At an equal price the scheme first in ``schemes`` (this choice's order of
        preference, among the policy's own; default the policy's) is taken.

        Raises PaymentRefused (or BudgetExceeded when only caps stand in the way)
        naming what was asked and what limit blocked it.
        """
        with self.lock:
            usd_per_call = self._usd_per_call(max_per_call)
            order = self.schemes if schemes is None else tuple(x for x in _schemes(schemes) if x in self.schemes)
            preference = (pay_with or self.pay_with).strip().lower()
            offers: list[Offer] = []
            reasons: list[str] = [f"accepts[{i}]: {why}" for i, why in required.rejected]
            for req in required.accepts:
                res = self.screen(req, origin=origin)
                if isinstance(res, Offer) and res.requirements.scheme not in order:
                    res = f"scheme {res.requirements.scheme!r} is not among this request's schemes ({', '.join(order)})"
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
            offers = [self._valued(o, required, origin) for o in (preferred or offers)]
            affordable: list[Offer] = []
            cap_errors: list[BudgetExceeded] = []
            for offer in offers:
                err = self._refusal(offer, 1, usd_per_call=usd_per_call, reservation=reservation)
                if err is None:
                    affordable.append(offer)
                else:
                    cap_errors.append(err)
            if not affordable:
                raise min(cap_errors, key=lambda e: e.details.get("asked_usd") or 0)
            return min(affordable, key=lambda o: (o.usd or 0, order.index(o.requirements.scheme), o.amount))

    # -- dollar values -----------------------------------------------------------------
    def _valued(self, offer: Offer, required: PaymentRequired, origin: str | None = None) -> Offer:
        """``offer`` with its dollar value: at par for a stablecoin, else the highest of the same
        challenge's payable stablecoin prices (on the offer's network) and ``usd_rates``;
        unvalued when none applies."""
        asset = offer.asset
        if asset.usd_stable:
            return replace(offer, usd=_to_usd(offer.amount, asset.decimals), usd_source="stablecoin")
        if offer.amount == 0:
            return replace(offer, usd=0, usd_source="free")
        values: list[tuple[int, str]] = []
        for req in required.accepts:
            # The same call's dollar price: an upper bound of what the other asset is worth. Only a
            # price this policy would itself pay counts (same network, allowed asset, supported
            # scheme and terms): an unpayable 1-unit USDC price must not make TMAI look free.
            anchor = self.screen(req, origin=origin)
            if isinstance(anchor, Offer) and anchor.asset.usd_stable and anchor.network.caip2 == offer.network.caip2:
                values.append((_to_usd(anchor.amount, anchor.asset.decimals), "the same call's USDC price"))
        rate = self.usd_rates.get(asset.symbol.upper())
        if rate is not None:
            # The user's own rate bounds it too: a server cannot make a token look cheap by
            # naming a low dollar price beside it.
            value = Decimal(offer.amount).scaleb(-asset.decimals) * rate
            values.append((math.ceil(value.scaleb(USD_DECIMALS)), f"usd_rates['{asset.symbol}']"))
        if not values:
            return offer
        usd, source = max(values)
        return replace(offer, usd=usd, usd_source=source)

    # -- caps ---------------------------------------------------------------------------
    def _asset_limits(self, asset: Asset) -> tuple[int | None, int | None, int | None]:
        """``asset_limits`` for ``asset`` in its atomic units: (per call, budget, daily)."""
        lim = self.asset_limits.get(asset.symbol.upper())
        if lim is None:
            return None, None, None
        conv = lambda v, n: None if v is None else to_atomic(v, asset.decimals, what=n)  # noqa: E731
        return (
            conv(lim.max_per_call, "max_per_call"),
            conv(lim.budget, "budget"),
            conv(lim.daily_cap, "daily_cap"),
        )

    def _cell_scope(self) -> SpendScope | None:
        """The running notebook cell's spending (None outside a cell), created on first use."""
        run = current_cell_run.get()
        if run is None:
            return None
        scope = self._cells.get(run)
        if scope is None:
            scope = self._cells[run] = SpendScope("cell")
            while len(self._cells) > _CELLS_KEPT:
                self._cells.popitem(last=False)
        return scope

    def _held(self, scope: SpendScope | None = None, *, exclude: Reservation | None = None) -> int:
        """Micro-dollars open plans still hold (in ``scope`` only, when given)."""
        return sum(r.remaining for r in self._holds if r is not exclude and (scope is None or scope in r.scopes))

    def _limits(self, cell: SpendScope | None, spent_today: int | None, exclude: Reservation | None) -> list[_Limit]:
        """Every dollar cap as it stands now, less what open plans (but ``exclude``) hold."""
        held = self._held(exclude=exclude)
        out = []
        if self.budget is not None:
            out.append(_Limit("session budget", self.budget - self._spent_usd - held, self.budget, "budget"))
        if self.max_per_cell is not None and cell is not None:
            left = self.max_per_cell - cell.spent - self._held(cell, exclude=exclude)
            out.append(_Limit("per-cell cap", left, self.max_per_cell, "max_per_cell"))
        for scope in self._scopes:
            if scope.cap is not None:
                left = scope.cap - scope.spent - self._held(scope, exclude=exclude)
                out.append(_Limit(f"{scope.name} cap", left, scope.cap, scope.name))
        if self.daily_cap is not None and spent_today is not None:
            out.append(_Limit("daily cap", self.daily_cap - spent_today - held, self.daily_cap, "daily_cap"))
        return out

    def _refusal(
        self,
        offer: Offer,
        calls: int,
        *,
        usd_per_call: int | None,
        max_cost: int | None = None,
        reservation: Reservation | None = None,
        spent_today: int | None = None,
        spent_today_asset: int | None = None,
    ) -> BudgetExceeded | None:
        """Why ``calls`` payments of ``offer`` may not be signed now, or None. Lock held."""
        self._release_expired()
        asset = offer.asset
        common: dict[str, Any] = {"asset": asset.symbol, "network": offer.network.v1_name, "calls": calls}
        if offer.usd is None:
            return BudgetExceeded(
                f"server asks {offer.display}, and {asset.symbol} cannot be valued in USD "
                "(the challenge offers no USD stablecoin price for this call that this policy would pay)",
                hint=f"set usd_rates={{'{asset.symbol}': '<USD per {asset.symbol}>'}} "
                f"(connect(usd_rates=...)) or pay with USDC; nothing was signed",
                setting="usd_rates",
                **common,
            )
        each, total = offer.usd, offer.usd * calls
        price = offer.price_text
        whole = format_amount(offer.amount * calls, asset.decimals, asset.symbol)
        if not asset.usd_stable:
            whole += f" (≈ {usd_text(total)})"
        asked = (
            f"this request needs {calls} paid calls × {price} = {whole}"
            if calls > 1
            else f"server asks {offer.display}{'' if asset.usd_stable else f' (≈ {usd_text(each)})'}"
        )
        money = {"asked_usd": total, "asked_atomic": total, **common}
        if usd_per_call is not None and each > usd_per_call:
            return BudgetExceeded(
                f"{asked}; the per-call cap is {usd_text(usd_per_call)}",
                hint=f"raise it: max_per_call={_usd_hint(each)}; nothing was signed",
                setting="max_per_call",
                limit_atomic=usd_per_call,
                needed_atomic=each,
                **money,
            )
        a_per_call, a_budget, a_daily = self._asset_limits(asset)
        fmt = lambda v: format_amount(v, asset.decimals, asset.symbol)  # noqa: E731
        name = f"asset_limits['{asset.symbol}']"
        key = (offer.network.caip2, asset.address.lower())
        if a_per_call is not None and offer.amount > a_per_call:
            return BudgetExceeded(
                f"{asked}; the {asset.symbol} per-call cap is {fmt(a_per_call)}",
                hint=f"raise it: {name}['max_per_call']; nothing was signed",
                setting="asset_limits",
                **money,
            )
        whole_asset = offer.amount * calls
        for label, limit, used in (
            ("budget", a_budget, self._spent.get(key, 0)),
            ("daily_cap", a_daily, spent_today_asset),
        ):
            if limit is not None and used is not None and whole_asset > limit - used:
                return BudgetExceeded(
                    f"{asked}; {fmt(max(limit - used, 0))} is left of the {asset.symbol} {label} {fmt(limit)}",
                    hint=f"raise it: {name}['{label}']; nothing was signed",
                    setting="asset_limits",
                    **money,
                )
        if reservation is not None:
            if reservation.closed or reservation.payments >= reservation.calls or each > reservation.remaining:
                return BudgetExceeded(
                    f"{asked}, past what its plan reserved ({reservation.payments} of {reservation.calls} calls "
                    f"paid, {usd_text(reservation.remaining)} left of {reservation.total_text})",
                    hint="the server asks more than it quoted; nothing more was signed (quote it again)",
                    setting="plan",
                    limit_atomic=reservation.remaining,
                    **money,
                )
        elif max_cost is not None and total > max_cost:
            return BudgetExceeded(
                f"{asked}; this request's max_cost is {usd_text(max_cost)}",
                hint=f"raise it: max_cost={_usd_hint(total)}, or ask for fewer tokens or a shorter date range; "
                "nothing was signed",
                setting="max_cost",
                limit_atomic=max_cost,
                needed_atomic=total,
                **money,
            )
        cell = reservation.scopes[-1] if reservation is not None and reservation.cell else self._cell_scope()
        # A payment a plan reserved is already held: it needs only its own share of each cap.
        need = each if reservation is not None else total
        for lim in self._limits(cell, spent_today, reservation):
            if need > lim.left:
                needed = lim.whole - lim.left + need
                return BudgetExceeded(
                    f"{asked}; {usd_text(max(lim.left, 0))} is left of the {lim.label} {usd_text(lim.whole)}",
                    hint=f"raise it: {lim.setting}={_usd_hint(needed)}"
                    + (", or ask for fewer tokens or a shorter date range" if calls > 1 else "")
                    + ("; or wait until 00:00 UTC" if lim.setting == "daily_cap" else "")
                    + "; nothing was signed",
                    setting=lim.setting,
                    limit_atomic=lim.left,
                    needed_atomic=needed,
                    **money,
                )
        return None

    def needs_ledger(self, offer: Offer) -> bool:
        """Whether paying ``offer`` reads today's spending from the ledger (a daily cap)."""
        return self.daily_cap is not None or self._asset_limits(offer.asset)[2] is not None

    def _today(self, offer: Offer, tx: SpendCounter | None) -> tuple[int | None, int | None]:
        """Today's spending (UTC) in micro-dollars and in ``offer``'s asset, from the ledger."""
        if not self.needs_ledger(offer):
            return None, None
        if tx is None:
            raise ConfigurationError("a daily cap needs a ledger to count today's spending")
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        usd = tx.spent_usd(since=midnight) if self.daily_cap is not None else None
        asset = (
            tx.spent(offer.asset.address, offer.network.caip2, since=midnight)
            if self._asset_limits(offer.asset)[2] is not None
            else None
        )
        return usd, asset

    def reserve(
        self,
        offer: Offer,
        calls: int,
        *,
        max_per_call: AmountLike | float | None = None,
        max_cost: AmountLike | float | None = None,
        tx: SpendCounter | None = None,
    ) -> Reservation:
        """Hold ``calls`` payments of ``offer`` against every cap before the first is signed.

        Raises BudgetExceeded naming the plan (calls × price), the cap, and the setting
        that would allow it; nothing is held then. ``max_per_call`` (USD) replaces the
        policy's per-call cap and ``max_cost`` (USD) caps this plan's total. A daily cap
        reads today's spending through ``tx`` (a ledger transaction).
        """
        if calls < 1:
            raise ConfigurationError(f"a plan reserves at least one call, got {calls}")
        with self.lock:
            spent_today, spent_today_asset = self._today(offer, tx)
            err = self._refusal(
                offer,
                calls,
                usd_per_call=self._usd_per_call(max_per_call),
                max_cost=self._usd(max_cost, "max_cost"),
                spent_today=spent_today,
                spent_today_asset=spent_today_asset,
            )
            if err is not None:
                raise err
            cell = self._cell_scope()
            scopes = (*self._scopes, cell) if cell is not None else tuple(self._scopes)
            reservation = Reservation(self, offer, calls, current_cell_run.get() if cell else None, scopes)
            self._holds.append(reservation)
            return reservation

    def _end(self, reservation: Reservation) -> None:
        with self.lock:
            if not reservation.closed:
                reservation.closed = True
                self._holds.remove(reservation)

    def held_usd(self) -> int:
        """Micro-dollars that plans in progress hold and have not paid yet."""
        with self.lock:
            return self._held()

    def check_batch(
        self,
        offer: Offer,
        calls: int,
        *,
        max_per_call: AmountLike | float | None = None,
        tx: SpendCounter | None = None,
    ) -> None:
        """Whether ``calls`` payments of ``offer`` would fit every cap now; BudgetExceeded if not.

        A check only: :meth:`reserve` holds the money as well. A daily cap reads ``tx``.
        """
        self.reserve(offer, calls, max_per_call=max_per_call, tx=tx).close()

    def authorize(
        self,
        offer: Offer,
        tx: SpendCounter | None = None,
        *,
        max_per_call: AmountLike | float | None = None,
        max_cost: AmountLike | float | None = None,
        reservation: Reservation | None = None,
    ) -> None:
        """Final check under the lock (and inside the ledger transaction, for the daily cap).

        ``max_per_call`` (USD) replaces the policy's per-call cap for this payment only and
        ``max_cost`` (USD) caps it as a request's total; a payment of a reserved plan draws on
        ``reservation`` instead. Raises BudgetExceeded. Call
        with ``self.lock`` held, then sign, record, and :meth:`commit`.
        """
        spent_today, spent_today_asset = self._today(offer, tx)
        err = self._refusal(
            offer,
            1,
            usd_per_call=self._usd_per_call(max_per_call),
            max_cost=self._usd(max_cost, "max_cost"),
            reservation=reservation,
            spent_today=spent_today,
            spent_today_asset=spent_today_asset,
        )
        if err is not None:
            raise err

    def commit(
        self, offer: Offer, origin: str | None = None, *, reservation: Reservation | None = None
    ) -> tuple[SpendScope, ...]:
        """Count a signed payment against the session, its cell and the open scopes; pin the payee.

        A payment of a reserved plan moves from the plan's hold to spent. Returns the
        scopes it was counted in, so a refusal can give it back to exactly those.
        """
        key = (offer.network.caip2, offer.asset.address.lower())
        usd = offer.usd or 0
        with self.lock:
            self._spent_usd += usd
            self._spent[key] = self._spent.get(key, 0) + offer.amount
            if reservation is not None:
                reservation.remaining = max(0, reservation.remaining - usd)
                reservation.payments += 1
                scopes = reservation.scopes
            else:
                cell = self._cell_scope()
                scopes = (*self._scopes, cell) if cell is not None else tuple(self._scopes)
            for scope in scopes:
                scope.spent += usd
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
                heapq.heappush(self._reserved, (after, next(self._tie), offer, None, scopes))
                return
            self._give_back(offer, scopes)

    def settle_upto(
        self,
        offer: Offer,
        settled: int,
        scopes: tuple[SpendScope, ...] = (),
        *,
        reservation: Reservation | None = None,
    ) -> int:
        """An ``upto`` payment settled ``settled`` of its ceiling: give back the rest, now.

        :meth:`commit` counted the whole ceiling (what could settle); once the receipt says
        what did, the difference goes back to the session, to the scopes (cell, ``scope()``)
        the payment was counted in, and so to every cap that reads them, and a plan's
        reservation notes it. ``settled`` is clamped to 0..ceiling (a receipt above the
        ceiling counts the ceiling). Its dollar value is the ceiling's share, rounded up as
        the ledger rounds it. Returns the micro-dollars given back (never negative).
        """
        settled = min(max(settled, 0), offer.amount)
        usd = offer.usd or 0
        back_usd = usd - usd_share(usd, settled, offer.amount)
        key = (offer.network.caip2, offer.asset.address.lower())
        with self.lock:
            self._spent_usd = max(0, self._spent_usd - back_usd)
            self._spent[key] = max(0, self._spent.get(key, 0) - (offer.amount - settled))
            for scope in scopes:
                scope.spent = max(0, scope.spent - back_usd)
            if reservation is not None:
                reservation.given_back += back_usd
        return back_usd

    def _give_back(self, offer: Offer, scopes: tuple[SpendScope, ...]) -> None:
        key = (offer.network.caip2, offer.asset.address.lower())
        usd = offer.usd or 0
        self._spent_usd = max(0, self._spent_usd - usd)
        self._spent[key] = max(0, self._spent.get(key, 0) - offer.amount)
        for scope in scopes:
            scope.spent = max(0, scope.spent - usd)

    def _release_expired(self) -> None:
        """Give back the reservations whose authorizations can no longer settle. Lock held."""
        now = self._clock()
        while self._reserved and self._reserved[0][0] <= now:
            _, _, offer, _, scopes = heapq.heappop(self._reserved)
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
            for _, _, offer, _, _ in self._reserved:
                key = (offer.network.caip2, offer.asset.address.lower())
                out[key] = out.get(key, 0) + offer.amount
            return out

    def reserved_usd(self) -> int:
        """:meth:`reserved` in micro-dollars."""
        with self.lock:
            self._release_expired()
            return sum(offer.usd or 0 for _, _, offer, _, _ in self._reserved)

    def spent_usd(self) -> int:
        """Micro-dollars counted this session across assets (refused-but-still-valid included)."""
        with self.lock:
            self._release_expired()
            return self._spent_usd

    # -- scopes --------------------------------------------------------------------------------
    def open_scope(self, name: str, cap_usd: AmountLike | float | None = None) -> SpendScope:
        scope = SpendScope(name, self._usd(cap_usd, f"{name} cap"))
        with self.lock:
            self._scopes.append(scope)
        return scope

    def close_scope(self, scope: SpendScope) -> None:
        with self.lock:
            if scope in self._scopes:
                self._scopes.remove(scope)

    def __repr__(self) -> str:
        parts = [f"max_per_call={self.max_per_call_text}"]
        if self.max_per_cell is not None:
            parts.append(f"max_per_cell={usd_text(self.max_per_cell)}")
        if self.budget is not None:
            parts.append(f"budget={usd_text(self.budget)}")
        if self.daily_cap is not None:
            parts.append(f"daily_cap={usd_text(self.daily_cap)}")
        parts.append("networks=" + ",".join(get_network(n).v1_name for n in self.networks))
        parts.append(f"pay_with={self.pay_with}")
        return f"SpendPolicy({', '.join(parts)})"


def _to_usd(amount: int, decimals: int) -> int:
    """A stablecoin amount in micro-dollars (rounded up: a cap never undercounts)."""
    if decimals >= USD_DECIMALS:
        return -(-amount // 10 ** (decimals - USD_DECIMALS))
    return amount * 10 ** (USD_DECIMALS - decimals)


def usd_share(usd: int, settled: int, ceiling: int) -> int:
    """The micro-dollars ``settled`` of a ``ceiling`` worth ``usd`` is worth, rounded up (as the
    ledger counts it): ``usd_share(50_000, 12, 50) == 12_000``."""
    if ceiling <= 0 or settled >= ceiling:
        return usd
    return -(-usd * max(settled, 0) // ceiling)


def _schemes(schemes: Iterable[str]) -> tuple[str, ...]:
    """Validated scheme names, in order, without repeats."""
    if isinstance(schemes, str):
        schemes = (schemes,)
    out = tuple(dict.fromkeys(str(x).strip().lower() for x in schemes))
    unknown = [x for x in out if x not in SCHEMES]
    if not out or unknown:
        raise ConfigurationError(
            f"schemes must name some of {', '.join(SCHEMES)}, got {', '.join(unknown) or 'none'}",
            hint="e.g. schemes=('upto', 'exact') to prefer upto when both cost the same",
        )
    return out


def _transfer(req: PaymentRequirements) -> str:
    """How an offer's payment moves: ``upto`` is Permit2 whatever ``extra`` says (screening refuses
    an upto offer naming another method), ``exact`` as ``extra.assetTransferMethod`` says."""
    return "permit2" if req.scheme == "upto" else transfer_method(req)


def _upto_problem(req: PaymentRequirements) -> str | None:
    """Why an ``upto`` requirement cannot be signed, or None. upto is x402 v2 and Permit2 only:
    its witness names the one facilitator allowed to settle (``extra.facilitatorAddress``)."""
    extra = req.extra or {}
    if req.x402_version < 2:
        return "scheme 'upto' is x402 v2 only (this challenge is v1)"
    method = extra.get("assetTransferMethod", "permit2")
    if method != "permit2":
        return f"an upto offer is paid by Permit2, not {str(method)[:30]!r}"
    facilitator = extra.get("facilitatorAddress")
    if not isinstance(facilitator, str) or not is_address(facilitator):
        return "an upto offer must name its facilitator (extra.facilitatorAddress), whom its signature binds"
    return None
