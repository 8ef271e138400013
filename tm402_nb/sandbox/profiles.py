"""Sandbox profiles: which reading of the real Token Metrics API the sandbox plays.

Public sources disagree about how the live API behaves (``reference/live-api-2026.md``,
"The variants the sandbox must be able to play"), so every point of disagreement is a
*switch* of a :class:`SandboxProfile`, and a profile is one value for each switch.
Two presets are named:

* ``classic``: the sandbox as it always was (x402 v1 on Base Sepolia, both assets
  offered, UPPER_CASE fields, no date-range limit, free catalogue endpoints, strict
  paging, 404 not charged), with data anchored at yesterday (UTC);
* ``docs-2026``: the strictest reading of today's public docs (Base mainnet, only the
  requested asset offered, lowercase fields for trading-signals and tokens, ranges over
  29 days silently truncated, every endpoint paid, lenient paging).

Start from a preset and flip single switches::

    PROFILES["docs-2026"].with_(field_case="lower")
    serve(profile="classic", date_range="error")
    tm402-nb sandbox --profile docs-2026 --paging strict

This module is the one place that knows the switches: their values, defaults, the
presets, validation and the command-line flags (:data:`SWITCHES`). Each switch's
*behaviour* lives where the sandbox already decides that thing (the paywall, the
envelope, the query models, the data builders, the price list, the market).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Literal

from ..errors import ConfigurationError
from ..x402.networks import NETWORKS
from .catalogue import BY_NAME
from .market import FIXED_ANCHOR, MIN_ANCHOR, default_anchor

#: The longest date range (inclusive days) a request may ask for when the range limit is on:
#: both official SDKs cut every dated request into windows of at most 29 days ("the API's
#: 29-day limit"). A window of 29 days from ``startDate`` ends 28 days later.
DATE_RANGE_MAX_DAYS = 29

#: The endpoints the current docs (and one community report, for /tokens) show in lowercase.
DOCS_LOWERCASE_ENDPOINTS = frozenset({"trading-signals", "tokens"})

PRESET_NAMES = ("classic", "docs-2026")


@dataclass(frozen=True)
class Switch:
    """One switch: its name (a :class:`SandboxProfile` field), the values it takes, what it plays."""

    name: str
    values: tuple[Any, ...]
    summary: str
    #: Values the switch knows of but the sandbox cannot play yet, with the reason.
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def choices(self) -> str:
        return ", ".join(repr(v) for v in self.values)


#: Every switch, in the order of the reference's table. The first value of each is ``classic``'s.
SWITCHES: Mapping[str, Switch] = MappingProxyType(
    {
        s.name: s
        for s in (
            Switch(
                "x402_version",
                (1, 2),
                "challenge: 1 = x402 v1, requirements in the 402 body (as Token Metrics documents it); "
                "2 = v2, requirements in the PAYMENT-REQUIRED header",
            ),
            Switch(
                "network",
                ("base-sepolia", "base"),
                "chain the payments settle on: base-sepolia (testnet USDC) or base (chain 8453, mainnet USDC's "
                "address and EIP-712 domain; still the sandbox's pretend chain, no real money)",
            ),
            Switch(
                "offers",
                ("both", "requested"),
                "what a 402 challenge lists: both assets (USDC and TMAI), or only the one x-payment-token asked "
                "for (USDC when none)",
            ),
            Switch(
                "field_case",
                ("upper", "docs", "lower"),
                "row keys: upper = UPPER_SNAKE_CASE everywhere (mid-2025); docs = lowercase for trading-signals "
                "and tokens, as the current docs show them; lower = lowercase everywhere; or a comma list of "
                "endpoints to answer in lowercase. A lowercase trading-signals row has the current guide's "
                "fields (app_link, tm_grade, fundamental_grade, no TM_TRADER_GRADE/TM_INVESTOR_GRADE)",
            ),
            Switch(
                "date_range",
                ("none", "error", "truncate"),
                f"a dated request whose startDate..endDate spans more than {DATE_RANGE_MAX_DAYS} days: "
                "none = served whole; error = 400; truncate = silently served for its last "
                f"{DATE_RANGE_MAX_DAYS} days (ending at endDate, or at the newest data without one)",
            ),
            Switch(
                "free_endpoints",
                ("free", "paid"),
                "tokens, price and top-market-cap-tokens: free, or paid at tier 1 (the blog says every public "
                "endpoint is priced; these have no published price)",
            ),
            Switch(
                "paging",
                ("strict", "lenient"),
                "strict = 400 on page 0, limit over 100 and unknown parameters; lenient = page 0 is the first "
                "page, limit is clamped to 1..100, unknown parameters are ignored",
            ),
            Switch(
                "empty_answer",
                ("free", "charged"),
                "a paid request that finds no data answers 404 'Data not found': free = the payment is not "
                "settled; charged = it is settled first",
            ),
            Switch(
                "tmai_transfer",
                ("eip3009", "permit2"),
                "how a TMAI payment moves: eip3009 = transferWithAuthorization; permit2 = the offer says "
                "extra.assetTransferMethod 'permit2' and the payer signs a Permit2 witness transfer, which needs "
                "a one-time approval of the Permit2 contract (the faucet's approve_permit2; the sandbox's own "
                "wallet has it) or is refused permit2_allowance_required (HTTP 412 in v2)",
            ),
            Switch(
                "agent_scheme",
                ("exact", "upto"),
                "how POST /v2/tmai (the TMAI agent, whose answers vary in length) is priced: exact = its tier "
                "price; upto = that price as a ceiling the payer signs by Permit2 (x402 v2 only), of which the "
                "answer's share is settled (a full price from 4 KB delivered) and named in the receipt's amount",
            ),
            Switch(
                "payment_identifier",
                ("on", "off"),
                "x402 v2's payment-identifier extension: on = the challenge advertises it and an identical "
                "payment with the same id gets the cached answer (409 for the id with another payment); "
                "off = not advertised (v1 challenges never carry extensions)",
            ),
            Switch(
                "gas_sponsoring",
                ("off", "erc20"),
                "x402 v2's erc20ApprovalGasSponsoring extension: erc20 = a challenge with a Permit2 offer "
                "advertises it, and a payer short of allowance may carry its signed, unsent approve(Permit2) "
                "transaction, which the facilitator checks as the SDK does and mines with the transfer at its own "
                "gas cost (the payer's ETH is untouched); off = not advertised (v1 challenges never carry it)",
            ),
            Switch(
                "data_dates",
                ("yesterday", "fixed"),
                "the newest day of data: yesterday (UTC) when the server starts, so 'last week' always has data "
                f"(same seed and day, same data); or fixed at 'anchor' (default {FIXED_ANCHOR.isoformat()})",
            ),
        )
    }
)


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True)
class SandboxProfile:
    """One value per switch (see :data:`SWITCHES`); the defaults are the ``classic`` preset.

    ``anchor`` is the day ``data_dates="fixed"`` pins (giving it to :meth:`with_` implies
    ``fixed``). ``preset`` names the preset the switches started from; :attr:`label` says
    which switches differ from it. Invalid values raise :class:`ConfigurationError` naming
    the valid ones.
    """

    x402_version: Literal[1, 2] = 1
    network: Literal["base-sepolia", "base"] = "base-sepolia"
    offers: Literal["both", "requested"] = "both"
    field_case: str = "upper"
    date_range: Literal["none", "error", "truncate"] = "none"
    free_endpoints: Literal["free", "paid"] = "free"
    paging: Literal["strict", "lenient"] = "strict"
    empty_answer: Literal["free", "charged"] = "free"
    tmai_transfer: Literal["eip3009", "permit2"] = "eip3009"
    agent_scheme: Literal["exact", "upto"] = "exact"
    payment_identifier: Literal["on", "off"] = "on"
    gas_sponsoring: Literal["off", "erc20"] = "off"
    data_dates: Literal["yesterday", "fixed"] = "yesterday"
    anchor: date | None = None
    preset: str = "classic"

    def __post_init__(self) -> None:
        for name, switch in SWITCHES.items():
            value = _normalise(name, getattr(self, name))
            if value not in switch.values:
                if name == "field_case":
                    value = _endpoint_list(value)
                elif isinstance(value, str) and value in switch.unavailable:
                    raise ConfigurationError(
                        f"sandbox switch {name}={value!r} is not available: {switch.unavailable[value]}",
                        hint=f"valid values: {switch.choices()}",
                    )
                else:
                    raise ConfigurationError(
                        f"sandbox switch {name} must be one of {switch.choices()}, got {getattr(self, name)!r}"
                    )
            object.__setattr__(self, name, value)
        if self.agent_scheme == "upto" and self.x402_version != 2:
            raise ConfigurationError(
                "sandbox switch agent_scheme='upto' needs x402 v2 (upto is a v2 scheme; this profile speaks v1)",
                hint="add x402_version=2 (--x402-version 2)",
            )
        anchor = _anchor(self.anchor)
        if self.data_dates == "yesterday" and anchor is not None:
            raise ConfigurationError(
                f"anchor={anchor.isoformat()} pins the data, but data_dates is 'yesterday'",
                hint="use data_dates='fixed' (serve(anchor=...), with_(anchor=...) and --anchor set both)",
            )
        object.__setattr__(self, "anchor", anchor or (FIXED_ANCHOR if self.data_dates == "fixed" else None))
        if self.preset not in PRESET_NAMES:
            raise ConfigurationError(
                f"unknown sandbox profile {self.preset!r}", hint=f"profiles: {', '.join(PRESET_NAMES)}"
            )

    # -- deriving ------------------------------------------------------------------------------
    def with_(self, **switches: Any) -> SandboxProfile:
        """This profile with some switches flipped; ``None`` values are ignored (not given).

        ``anchor=<date>`` also sets ``data_dates="fixed"``; ``data_dates="yesterday"`` drops the anchor.
        """
        given = {k: v for k, v in switches.items() if v is not None}
        unknown = sorted(set(given) - set(SWITCHES) - {"anchor"})
        if unknown:
            raise ConfigurationError(
                f"unknown sandbox switch{'es' if len(unknown) > 1 else ''} {', '.join(unknown)}",
                hint=f"switches: {', '.join([*SWITCHES, 'anchor'])}",
            )
        if "anchor" in given:
            given.setdefault("data_dates", "fixed")
        elif _lower(given.get("data_dates")) == "yesterday":
            given["anchor"] = None
        elif _lower(given.get("data_dates")) == "fixed" and self.data_dates != "fixed":
            given["anchor"] = None  # the default fixed day, not a leftover
        return replace(self, **given) if given else self

    # -- reading ---------------------------------------------------------------------------------
    def switches(self) -> dict[str, Any]:
        """Every switch's value, JSON-ready (the anchor as ``YYYY-MM-DD`` or None)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in SWITCHES}
        out["anchor"] = self.anchor.isoformat() if self.anchor else None
        return out

    def changes(self) -> dict[str, Any]:
        """The switches whose value differs from the preset's."""
        base = PROFILES[self.preset].switches()
        return {k: v for k, v in self.switches().items() if base[k] != v}

    @property
    def label(self) -> str:
        """``docs-2026``, or ``docs-2026 with field_case=lower`` when switches were flipped."""
        changed = self.changes()
        if not changed:
            return self.preset
        return f"{self.preset} with " + ", ".join(f"{k}={v}" for k, v in changed.items())

    @property
    def lowercase_endpoints(self) -> frozenset[str]:
        """Endpoints (names under /v2) whose row keys are lowercase."""
        if self.field_case == "upper":
            return frozenset()
        if self.field_case == "lower":
            return frozenset(BY_NAME)
        if self.field_case == "docs":
            return DOCS_LOWERCASE_ENDPOINTS
        return frozenset(self.field_case.split(","))

    def anchor_date(self, today: date | None = None) -> date:
        """The newest day of data: the pinned anchor, or the day before ``today`` (UTC)."""
        return self.anchor if self.anchor is not None else default_anchor(today)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.label, "preset": self.preset, "changed": self.changes(), "switches": self.switches()}


def _normalise(name: str, value: Any) -> Any:
    value = _lower(value)
    if name == "x402_version" and isinstance(value, str) and value.removeprefix("v") in ("1", "2"):
        return int(value.removeprefix("v"))
    if name == "x402_version" and (isinstance(value, bool) or not isinstance(value, int)):
        return repr(value)  # True and 1.0 are not versions
    if name == "network" and isinstance(value, str) and value in NETWORKS:
        return NETWORKS[value].v1_name  # eip155:8453 -> base
    return value


def _endpoint_list(value: Any) -> str:
    """A field_case comma list of endpoint names, normalised (sorted, no duplicates); else the error."""
    names = sorted({n.strip().removeprefix("/v2/") for n in value.split(",")}) if isinstance(value, str) else []
    unknown = [n for n in names if n not in BY_NAME]
    if not names or unknown:
        raise ConfigurationError(
            f"sandbox switch field_case must be one of {SWITCHES['field_case'].choices()} or a comma list of "
            f"endpoints, got {value!r}",
            hint=f"endpoints: {', '.join(BY_NAME)}",
        )
    return ",".join(names)


def _anchor(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ConfigurationError(f"anchor must be a date written YYYY-MM-DD, got {value!r}") from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ConfigurationError(f"anchor must be a date (YYYY-MM-DD), got {value!r}")
    if value < MIN_ANCHOR:
        raise ConfigurationError(f"anchor {value.isoformat()} is too early: the earliest is {MIN_ANCHOR.isoformat()}")
    return value


#: The named presets. ``classic`` is every switch's default.
PROFILES: Mapping[str, SandboxProfile] = MappingProxyType(
    {
        "classic": SandboxProfile(preset="classic"),
        "docs-2026": SandboxProfile(
            x402_version=1,
            network="base",
            offers="requested",
            field_case="docs",
            date_range="truncate",
            free_endpoints="paid",
            paging="lenient",
            empty_answer="free",
            # The reference's docs-2026 column says Permit2; the preset is x402 v1, where no SDK signs
            # Permit2, so it stays EIP-3009 here: docs-2026 with tmai_transfer=permit2 plays that reading.
            tmai_transfer="eip3009",
            # No public source prices the agent as upto: the documented tier price.
            agent_scheme="exact",
            payment_identifier="on",
            data_dates="yesterday",
            preset="docs-2026",
        ),
    }
)
assert tuple(PROFILES) == PRESET_NAMES


def resolve_profile(profile: SandboxProfile | str | None = None, **switches: Any) -> SandboxProfile:
    """A profile from a preset name (or a profile, or None for ``classic``) with ``switches`` flipped."""
    if profile is None:
        base = PROFILES["classic"]
    elif isinstance(profile, SandboxProfile):
        base = profile
    elif isinstance(profile, str) and _lower(profile) in PROFILES:
        base = PROFILES[_lower(profile)]
    else:
        raise ConfigurationError(
            f"unknown sandbox profile {profile!r}", hint=f"profiles: {', '.join(PRESET_NAMES)} (or a SandboxProfile)"
        )
    return base.with_(**switches)


def switch_names() -> tuple[str, ...]:
    """Every name :func:`resolve_profile` takes as a switch (the switches and ``anchor``)."""
    return (*SWITCHES, "anchor")


__all__ = [
    "DATE_RANGE_MAX_DAYS",
    "PROFILES",
    "SWITCHES",
    "SandboxProfile",
    "resolve_profile",
    "switch_names",
]
