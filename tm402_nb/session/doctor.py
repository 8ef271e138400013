"""``s.doctor()``, ``%tm doctor``, ``tm402-nb doctor``: a preflight that pays nothing.

One look at everything a paid call depends on, before the first one: the mode, network and
wallet (its address, never its key); the machine's clock against the server's ``Date`` header
(an authorization is valid only in a window around the signer's clock); the JSON-RPC node and
its chain id; the wallet's balances against the budget; one **unpaid** request to a paid
endpoint, its 402 challenge decoded offer by offer with whether the spend policy would pay it
and why not; the ledger's unknown and reserved payments; and what the server showed of the
variant it plays (x402 v1 or v2, one asset offered or both, field case, free endpoints).

Every check is a :class:`Check`: ok, warn, fail (with the fix) or skip. The report is a table
in a notebook and plain text in a terminal. Nothing is ever signed: the doctor's requests go
through an ``httpx.Client`` without the session's payment auth, and the policy is only asked
which offer it *would* pick (:meth:`~tm402_nb.x402.policy.SpendPolicy.select` counts nothing).
"""

from __future__ import annotations

import email.utils
import html
import json
import textwrap
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import BudgetExceeded, ConfigurationError, PaymentRefused, TM402Error, WalletError, X402ProtocolError
from ..money import format_amount
from ..status import EXPIRY_MARGIN_SECONDS, PaymentStatus, may_settle_until
from ..tokenmetrics.catalogue import Endpoint, get_endpoint
from ..tokenmetrics.client import DEFAULT_BASE_URL
from ..tokenmetrics.headers import request_headers
from ..tokenmetrics.modes import Mode
from ..x402.chain import ChainReader, redact_rpc
from ..x402.eip3009 import VALID_AFTER_SKEW
from ..x402.messages import PaymentRequired, PaymentRequirements, parse_challenge
from ..x402.networks import NETWORKS, Asset, Network, find_asset, get_network
from ..x402.permit2 import PERMIT2_ADDRESS
from ..x402.policy import DEFAULT_AUTHORIZATION_SECONDS, Offer, SpendPolicy, usd_text

if TYPE_CHECKING:
    import pandas as pd

    from .core import Session

__all__ = ["Check", "DoctorReport", "OfferView", "Status", "diagnose", "run_doctor", "unavailable"]

#: What the doctor probes unless told otherwise: the latest TM Grade of BTC, the cheapest paid call.
DEFAULT_PROBE = "tm-grade"
PROBE_TOKEN_ID = "3375"
#: The free endpoint whose answer shows the server's field case (and whether "free" is free).
FREE_ENDPOINT = "tokens"
DEFAULT_TIMEOUT = 10.0
#: Facilitators refuse an authorization with less than this many seconds left (the x402 reference
#: verifier's margin), so a clock this close to the window's edge already fails.
SETTLE_MARGIN_SECONDS = 6
#: Bytes of an answer the doctor reads: a challenge is at most 16 KB, one row of /tokens less.
READ_LIMIT = 64 * 1024
#: Lines of the text report fit a terminal this wide.
WIDTH = 100
#: Public RPCs named in fixes (rate-limited, fine for a balance read).
PUBLIC_RPC = {"base": "https://mainnet.base.org", "base-sepolia": "https://sepolia.base.org"}
_NAME_WIDTH = 8
_INDENT = " " * (2 + _NAME_WIDTH + 1)


class Status(StrEnum):
    """A check's outcome; a ``str`` (``Status.OK == "ok"``)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    #: Does not apply in this mode, or could not be run because an earlier check failed.
    SKIP = "skip"

    @property
    def mark(self) -> str:
        return _MARKS[self]


_MARKS = {Status.OK: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.SKIP: "–"}
_COLOURS = {
    Status.OK: "var(--jp-success-color1, #388e3c)",
    Status.WARN: "var(--jp-warn-color1, #f57c00)",
    Status.FAIL: "var(--jp-error-color1, #d32f2f)",
    Status.SKIP: "var(--jp-ui-font-color2, #757575)",
}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found, and the fix when it is not ok."""

    name: str
    status: Status
    found: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": str(self.status), "found": self.found, "fix": self.fix}


@dataclass(frozen=True)
class OfferView:
    """One entry of the probe's 402 challenge, decoded, with the spend policy's verdict on it."""

    index: int
    scheme: str
    network: str
    asset: str
    #: The asset's symbol when it is a known (or configured) token, else None.
    symbol: str | None
    amount: int
    price: str
    pay_to: str
    max_timeout_seconds: int
    #: EIP-3009 unless ``extra.assetTransferMethod`` names another (Permit2).
    transfer: str
    resource: str | None
    description: str | None
    mime_type: str | None
    #: True: the policy may pay it; False: it refuses it (``why`` says so).
    allowed: bool
    why: str
    #: The offer the session would pay with its own settings.
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "scheme": self.scheme,
            "network": self.network,
            "asset": self.asset,
            "symbol": self.symbol,
            "amount_atomic": str(self.amount),  # exact: an 18-decimal amount is past JSON's 2**53
            "price": self.price,
            "pay_to": self.pay_to,
            "max_timeout_seconds": self.max_timeout_seconds,
            "transfer": self.transfer,
            "resource": self.resource,
            "description": self.description,
            "mime_type": self.mime_type,
            "allowed": self.allowed,
            "chosen": self.chosen,
            "why": self.why,
        }


@dataclass(frozen=True)
class ProbeChallenge:
    """The unpaid probe's 402 challenge as the server sent it."""

    url: str
    x402_version: int
    #: "header" (v2 ``PAYMENT-REQUIRED``) or "body" (v1 JSON).
    source: str
    offers: tuple[OfferView, ...]
    extensions: tuple[str, ...] = ()
    resource: str | None = None
    error: str | None = None
    #: Entries of ``accepts`` that could not be parsed: (index, reason).
    rejected: tuple[tuple[int, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "x402_version": self.x402_version,
            "source": self.source,
            "resource": self.resource,
            "error": self.error,
            "extensions": list(self.extensions),
            "offers": [o.to_dict() for o in self.offers],
            "rejected": [{"index": i, "reason": why} for i, why in self.rejected],
        }


@dataclass(frozen=True)
class DoctorReport:
    """What the doctor found: ``.ok`` (no check failed), ``.checks``, the decoded ``.challenge``
    and the server's ``.variant``. A table in a notebook, text in a terminal; ``.to_frame()``
    and ``.to_dict()`` (what ``tm402-nb doctor --json`` prints) for code."""

    mode: str
    network: str | None
    base_url: str | None
    checks: tuple[Check, ...]
    challenge: ProbeChallenge | None = None
    variant: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings and skipped checks do not fail a preflight)."""
        return not self.failures

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is Status.FAIL)

    def __getitem__(self, name: str) -> Check:
        """The check called ``name`` (``report["clock"]``)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r} (checks: {', '.join(c.name for c in self.checks)})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "network": self.network,
            "base_url": self.base_url,
            "checks": [c.to_dict() for c in self.checks],
            "challenge": self.challenge.to_dict() if self.challenge is not None else None,
            "variant": dict(self.variant),
            "paid": "nothing: no payment was signed or sent",
        }

    def to_frame(self) -> pd.DataFrame:
        """The checks as a DataFrame: ``check``, ``status``, ``found``, ``fix``."""
        import pandas as pd

        return pd.DataFrame(
            [{"check": c.name, "status": str(c.status), "found": c.found, "fix": c.fix} for c in self.checks],
            columns=["check", "status", "found", "fix"],
        )

    # -- display ------------------------------------------------------------------------------
    def _title(self) -> str:
        mode = "SANDBOX" if self.mode == Mode.SANDBOX else self.mode
        where = f"{mode} on {self.network}" if self.network else mode
        return f"tm402 doctor: {where}" + (f", {self.base_url}" if self.base_url else "")

    def _summary(self) -> str:
        counts = {s: sum(1 for c in self.checks if c.status is s) for s in Status}
        parts = [f"{counts[s]} {s.mark}" for s in Status if counts[s]]
        verdict = "ready" if self.ok else "not ready"
        return f"{verdict}: {'  '.join(parts)}; nothing was signed or paid"

    def text(self) -> str:
        """The report as plain text, no line longer than 100 characters."""
        lines = _wrap(self._title(), "", "  ")
        for c in self.checks:
            lines += _wrap(c.found, f"{c.status.mark} {c.name:<{_NAME_WIDTH}} ", _INDENT)
            if c.fix and c.status in (Status.FAIL, Status.WARN):
                lines += _wrap(c.fix, _INDENT + "fix: ", _INDENT + "     ")
        if self.challenge is not None and self.challenge.offers:
            ch = self.challenge
            lines.append("")
            lines += _wrap(
                f"offers in the 402 challenge (x402 v{ch.x402_version}, {_source_text(ch.source)}):", "", "  "
            )
            for o in ch.offers:
                mark = Status.OK.mark if o.allowed else Status.FAIL.mark
                lines += _wrap(_offer_head(o), f"  {o.index + 1}. {mark} ", "       ")
                for detail in [*_offer_details(o), o.why]:
                    lines += _wrap(detail, "       ", "         ")
            for index, why in ch.rejected:
                lines += _wrap(f"unreadable: {why}", f"  {index + 1}. {Status.FAIL.mark} ", "       ")
        lines.append(self._summary())
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        e = html.escape
        cell = (
            "padding:3px 8px;text-align:left;vertical-align:top;border-top:1px solid var(--jp-border-color2, #e0e0e0)"
        )
        head = f"{cell};font-weight:600;color:var(--jp-ui-font-color1, inherit)"
        rows = []
        for c in self.checks:
            fix = e(c.fix) if c.fix and c.status in (Status.FAIL, Status.WARN) else ""
            rows.append(
                f"<tr><td style='{cell};color:{_COLOURS[c.status]};font-weight:700;white-space:nowrap'"
                f" title='{e(str(c.status))}'>{e(c.status.mark)} {e(str(c.status))}</td>"
                f"<td style='{cell};font-weight:600;white-space:nowrap'>{e(c.name)}</td>"
                f"<td style='{cell}'>{e(c.found)}</td><td style='{cell}'>{fix}</td></tr>"
            )
        parts = [
            "<div class='tm402-doctor' style='font-family:var(--jp-ui-font-family, sans-serif);"
            "font-size:max(12px, var(--jp-ui-font-size1, 13px));color:var(--jp-ui-font-color1, inherit);"
            "line-height:1.4'>",
            f"<div style='font-weight:600;margin:2px 0 4px'>{e(self._title())}</div>",
            "<table style='border-collapse:collapse;margin:0'>",
            f"<thead><tr><th style='{head}'></th><th style='{head}'>check</th><th style='{head}'>found</th>"
            f"<th style='{head}'>fix</th></tr></thead>",
            "<tbody>" + "".join(rows) + "</tbody></table>",
        ]
        if self.challenge is not None and self.challenge.offers:
            ch = self.challenge
            offer_rows = []
            for o in ch.offers:
                status = Status.OK if o.allowed else Status.FAIL
                detail = _offer_details(o)
                offer_rows.append(
                    f"<tr><td style='{cell};color:{_COLOURS[status]};font-weight:700'>{e(status.mark)}</td>"
                    f"<td style='{cell}'>{e(_offer_head(o))}<br><span style='font-family:var(--jp-code-font-family,"
                    f" monospace)'>{'<br>'.join(e(d) for d in detail)}</span></td><td style='{cell}'>{e(o.why)}</td></tr>"
                )
            parts += [
                f"<div style='font-weight:600;margin:8px 0 4px'>offers in the 402 challenge (x402 v{ch.x402_version},"
                f" {e(_source_text(ch.source))})</div>",
                f"<table style='border-collapse:collapse;margin:0'><tbody>{''.join(offer_rows)}</tbody></table>",
            ]
        parts.append(f"<div style='margin-top:6px;color:var(--jp-ui-font-color2, inherit)'>{e(self._summary())}</div>")
        parts.append("</div>")
        return "".join(parts)


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
        break_long_words=True,
    ) or [first.rstrip()]


def _source_text(source: str) -> str:
    return "PAYMENT-REQUIRED header" if source == "header" else "JSON body"


def _offer_head(o: OfferView) -> str:
    short = _short_network(o.network)
    network = o.network if short == o.network else f"{short} ({o.network})"
    return f"{o.price} on {network}, {o.scheme}, {o.transfer}, maxTimeoutSeconds {o.max_timeout_seconds}"


def _offer_details(o: OfferView) -> list[str]:
    """The lines under an offer's head: where the money goes and what it buys."""
    lines = [f"payTo {o.pay_to}", f"asset {o.asset}"]
    if o.resource:
        lines.append(f"resource {o.resource}")
    about = " — ".join(x for x in (o.description, o.mime_type) if x)
    if about:
        lines.append(about)
    return lines


# -- the doctor ------------------------------------------------------------------------------------------------------
@dataclass
class _Answer:
    """One unpaid request and what came back (or why nothing did)."""

    url: str
    sent: float
    received: float
    status: int | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    error: str | None = None

    @property
    def server_time(self) -> float | None:
        """The server's clock from its ``Date`` header (epoch seconds), or None."""
        for value in self.headers.get_list("date"):
            try:
                return email.utils.parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError, IndexError):
                continue
        return None

    def message(self) -> str:
        """The API's own words about an error answer, short."""
        try:
            data = json.loads(self.body)
        except ValueError:
            data = None
        text = None
        if isinstance(data, dict):
            text = next((data[k] for k in ("message", "error", "detail") if isinstance(data.get(k), str)), None)
        if text is None:
            text = self.body.decode("utf-8", "replace")
        text = " ".join("".join(ch for ch in text if ch.isprintable()).split())[:160]
        return f": {text}" if text else ""


def _origin(url: str) -> str:
    """The origin the payment layer pins a payee to (scheme://host:port, as X402Auth names it)."""
    u = httpx.URL(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    return f"{u.scheme}://{u.host}:{port}"


def _field_case(body: bytes) -> str | None:
    """UPPER, lower or mixed: how the rows of an API answer spell their keys (None: no rows)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return None
    keys = [k for row in rows[:5] if isinstance(row, dict) for k in row if any(ch.isalpha() for ch in k)]
    if not keys:
        return None
    if all(k == k.upper() for k in keys):
        return "UPPER"
    if all(k == k.lower() for k in keys):
        return "lower"
    return "mixed"


def _network_label(name: str) -> str:
    try:
        net = get_network(name)
    except X402ProtocolError:
        return name
    return f"{net.v1_name} ({net.label}{'' if net.testnet else ' mainnet'})"


class _Doctor:
    """Runs every check of one session, in order; :func:`diagnose` is the way in."""

    def __init__(self, session: Session, *, probe: str | None, timeout: float) -> None:
        self.s = session
        self.timeout = timeout
        self.pays = session.mode.pays
        self.url, self.params, self.endpoint = self._target(probe)
        #: No probe named: a base URL that is itself a paid resource (any x402 URL) is probed as such.
        self.may_probe_root = probe is None
        self.variant: dict[str, Any] = {}
        self.required: PaymentRequired | None = None
        self.chosen: Offer | None = None
        self.rpc_ok = False

    def _target(self, probe: str | None) -> tuple[str, dict[str, str], Endpoint | None]:
        """The paid request to probe: a catalogue endpoint on the session's API, or any URL."""
        probe = (probe or DEFAULT_PROBE).strip()
        if "://" in probe:
            return probe, {}, None
        endpoint = get_endpoint(probe)  # an unknown name fails here, with the closest names
        params = {"token_id": PROBE_TOKEN_ID} if endpoint.param("token_id") is not None else {}
        return self.s.client.url_for(endpoint), params, endpoint

    # -- requests ---------------------------------------------------------------------------------
    def _get(self, http: httpx.Client, url: str, params: Mapping[str, str]) -> _Answer:
        headers = request_headers(self.s.mode, self.s.pay_with) if self.pays else {}
        sent = time.time()
        try:
            with http.stream("GET", url, params=params, headers=headers) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > READ_LIMIT:
                        break
                return _Answer(str(response.url), sent, time.time(), response.status_code, response.headers, body)
        except httpx.TimeoutException:
            return _Answer(url, sent, time.time(), error=f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return _Answer(url, sent, time.time(), error=f"{type(exc).__name__}: {str(exc)[:160]}")

    def _probe_root(self, http: httpx.Client) -> _Answer | None:
        """The base URL itself, when it answers 402 where the API's endpoint did not exist: then it is
        an x402 resource (``tm402-nb doctor --base-url URL``), not a Token Metrics API root."""
        root = self.s.base_url
        answer = self._get(http, root, {})
        if answer.status != 402:
            return None
        self.url, self.params, self.endpoint = root, {}, None
        return answer

    def run(self) -> DoctorReport:
        s = self.s
        if s.closed:
            raise ConfigurationError("this session is closed", hint="tm.connect() opens a new one")
        # No auth on this client, ever: a 402 is read, never answered. Redirects are not followed
        # either, so a header meant for this server cannot reach another one.
        with httpx.Client(timeout=self.timeout, headers=s.client.headers, follow_redirects=False) as http:
            probe = self._get(http, self.url, self.params) if self.pays else None
            if probe is not None and probe.status == 404 and self.may_probe_root:
                probe = self._probe_root(http) or probe
            free = None
            if self.endpoint is not None or not self.pays:
                free = self._get(http, s.client.url_for(get_endpoint(FREE_ENDPOINT)), {"token_id": PROBE_TOKEN_ID})
        checks = [self._mode()]
        if self.pays:
            probe_check = self._probe(probe)  # decodes the challenge the later checks judge
            policy_check = self._policy()
            checks += [
                self._wallet(),
                self._clock(probe if probe is not None and probe.error is None else free),
                self._rpc(),
                self._balance(),
                probe_check,
                policy_check,
            ]
        else:
            checks += [self._key(free), self._clock(free), self._no_payments()]
        checks += [self._ledger(), self._variant(probe, free)]
        return DoctorReport(
            mode=str(s.mode),
            network=s.network,
            base_url=s.base_url,
            checks=tuple(checks),
            challenge=self._challenge_view(),
            variant=self.variant,
        )

    # -- checks -----------------------------------------------------------------------------------
    def _mode(self) -> Check:
        s = self.s
        if s.mode is Mode.API_KEY:
            return Check(
                "mode", Status.OK, f"api-key against {s.base_url}: your Token Metrics plan, nothing is paid per call"
            )
        net = get_network(s.network or "base-sepolia")
        caps = f"max {s.policy.max_per_call_text} per call, {s.budget_text()}" if s.policy is not None else ""
        if s.mode is Mode.SANDBOX:
            return Check("mode", Status.OK, f"SANDBOX on {net.v1_name}: the embedded local API, no real money; {caps}")
        money = "testnet money" if net.testnet else "REAL money"
        found = f"x402 on {_network_label(net.v1_name)}, {money}, against {s.base_url}; {caps}"
        if not net.testnet and s.policy is not None and s.policy.budget is None:
            return Check(
                "mode",
                Status.WARN,
                found,
                "a mainnet session without a budget can spend the whole wallet: connect(..., budget='2.00')"
                " or s.budget = '2.00'",
            )
        return Check("mode", Status.OK, found)

    def _wallet(self) -> Check:
        wallet = self.s.wallet
        if wallet is None:  # pragma: no cover - a paying session always has one
            return Check("wallet", Status.FAIL, "no wallet", "set $TM402_PRIVATE_KEY or $TM402_KEY_FILE")
        if wallet.source == "throwaway":
            source = "the sandbox's funded throwaway wallet" if self.s.mode is Mode.SANDBOX else "a throwaway wallet"
        else:
            source = f"key from {wallet.source}"
        return Check("wallet", Status.OK, f"{wallet.address} ({source}; the key itself is never shown)")

    def _key(self, free: _Answer | None) -> Check:
        if free is None:  # pragma: no cover - api-key mode always asks
            return Check("api key", Status.SKIP, "not checked")
        where = f"GET {FREE_ENDPOINT} (free) with x-api-key"
        if free.error is not None:
            return Check("api key", Status.FAIL, f"{where}: {free.error}", _reach_fix(self.s.base_url))
        if free.status is not None and 200 <= free.status < 300:
            return Check("api key", Status.OK, f"{where}: HTTP {free.status}, the key is accepted")
        if free.status in (401, 403):
            return Check(
                "api key",
                Status.FAIL,
                f"{where}: HTTP {free.status}, the key is refused{free.message()}",
                "check $TM_API_KEY (or api_key=) against your Token Metrics dashboard; without a plan, pay per call"
                " instead: connect(mode='x402', network='base', budget=...)",
            )
        return Check(
            "api key",
            Status.FAIL,
            f"{where}: HTTP {free.status}{free.message()}",
            _status_fix(free.status, self.s.base_url),
        )

    def _no_payments(self) -> Check:
        return Check(
            "payments",
            Status.SKIP,
            "api-key mode: payments do not apply (no wallet, RPC, balance or 402 probe to check)",
        )

    def _window(self) -> int:
        """Seconds an authorization signed now stays valid: the policy's limit, or the offer's if shorter."""
        policy = self.s.policy
        seconds = policy.authorization_seconds if policy is not None else DEFAULT_AUTHORIZATION_SECONDS
        if self.chosen is not None:
            return min(seconds, self.chosen.requirements.max_timeout_seconds)
        if self.required is not None:
            return min(seconds, *(r.max_timeout_seconds for r in self.required.accepts))
        return seconds

    def _clock(self, answer: _Answer | None) -> Check:
        if answer is None or answer.error is not None:
            return Check("clock", Status.SKIP, "not checked: the server did not answer")
        server = answer.server_time
        if server is None:
            return Check(
                "clock",
                Status.WARN,
                "the server sent no Date header, so this machine's clock was not compared with it",
                "make sure this machine's clock is synced (timedatectl status / System Settings › Date & Time)",
            )
        # Date has 1 s resolution and was stamped somewhere between sending and receiving.
        skew = server + 0.5 - (answer.sent + answer.received) / 2
        self.variant["clock_skew_seconds"] = round(skew, 1)
        ahead = skew < 0  # this machine ahead of the server
        size = abs(round(skew))
        window = self._window()
        relation = (
            f"this machine's clock is {size} s {'ahead of' if ahead else 'behind'} the server's (its Date header)"
        )
        fix = (
            "sync this machine's clock with NTP (Linux: sudo timedatectl set-ntp true; macOS: sudo sntp -sS "
            "time.apple.com; Windows: w32tm /resync), then run the doctor again"
        )
        if not self.pays:
            if size > EXPIRY_MARGIN_SECONDS:
                return Check(
                    "clock", Status.WARN, relation + "; api-key mode pays nothing, so no payment depends on it", fix
                )
            return Check("clock", Status.OK, f"agrees with the server's clock to {max(size, 1)} s (Date header)")
        if not ahead and skew > window - SETTLE_MARGIN_SECONDS:
            return Check(
                "clock",
                Status.FAIL,
                f"{relation}: an authorization signed now is valid for {window} s by this clock, so it has expired"
                " (or nearly) by the server's: every payment would be refused",
                fix,
            )
        if ahead and -skew > VALID_AFTER_SKEW - SETTLE_MARGIN_SECONDS:
            return Check(
                "clock",
                Status.FAIL,
                f"{relation}: authorizations are back-dated only {VALID_AFTER_SKEW} s (validAfter), so the server"
                " sees them as not yet valid: every payment would be refused",
                fix,
            )
        if size > EXPIRY_MARGIN_SECONDS:
            return Check(
                "clock",
                Status.WARN,
                f"{relation}: payments still fit the {window} s authorization window, but the ledger's"
                f" {EXPIRY_MARGIN_SECONDS} s margin for a refused payment's expiry no longer covers the difference",
                fix,
            )
        return Check(
            "clock",
            Status.OK,
            f"agrees with the server's clock to {max(size, 1)} s (Date header); authorizations are valid"
            f" {window} s and back-dated {VALID_AFTER_SKEW} s",
        )

    def _rpc(self) -> Check:
        s = self.s
        net = get_network(s.network or "base-sepolia")
        public = PUBLIC_RPC.get(net.v1_name, "")
        if not s.rpc_url:
            return Check(
                "rpc",
                Status.WARN,
                "no JSON-RPC URL: balances cannot be read, and a payment whose answer is lost can only be"
                " decided by the server, not from the chain",
                f"set $TM402_RPC_URL or connect(rpc_url=...) to a {net.label} node"
                + (f", e.g. {public}" if public else ""),
            )
        shown = redact_rpc(s.rpc_url)
        try:
            chain_id = ChainReader(s.rpc_url, timeout=self.timeout).chain_id()
        except TM402Error as exc:
            return Check(
                "rpc",
                Status.FAIL,
                f"{shown} does not answer eth_chainId: {exc.message}",
                f"check the RPC URL ($TM402_RPC_URL / rpc_url=) or use another {net.label} node"
                + (f", e.g. {public}" if public else ""),
            )
        if chain_id != net.chain_id:
            other = next((n for n in NETWORKS.values() if n.chain_id == chain_id), None)
            named = f" ({other.label})" if other is not None else ""
            fix = f"point $TM402_RPC_URL (or rpc_url=) at a {net.label} node (chain id {net.chain_id})" + (
                f", e.g. {public}" if public else ""
            )
            if other is not None:
                fix += f"; or, if you meant {other.label}, connect(network='{other.v1_name}')"
            return Check(
                "rpc",
                Status.FAIL,
                f"{shown} is on chain id {chain_id}{named}, but this session pays on {net.v1_name} (chain id"
                f" {net.chain_id}): balances and payment checks would read the wrong chain",
                fix,
            )
        self.rpc_ok = True
        return Check("rpc", Status.OK, f"{shown} answers, chain id {chain_id} ({net.label})")

    def _pay_asset(self) -> Asset | None:
        view = self.s.wallet_view
        if self.chosen is not None:
            return self.chosen.asset
        if view is None:
            return None
        return next((a for a in view.assets() if a.symbol.lower() == self.s.pay_with), None)

    def _balance(self) -> Check:
        s = self.s
        view = s.wallet_view
        if view is None or s.policy is None or s.wallet is None:  # pragma: no cover - paying sessions have them
            return Check("balance", Status.SKIP, "no wallet")
        if not s.rpc_url:
            return Check("balance", Status.SKIP, "not read: no JSON-RPC URL (see rpc)")
        if not self.rpc_ok:
            return Check("balance", Status.SKIP, "not read: the RPC did not pass its check (see rpc)")
        reader = ChainReader(s.rpc_url, timeout=self.timeout)
        held: dict[str, tuple[Asset, int]] = {}
        try:
            for asset in view.assets():
                held[asset.symbol] = (asset, reader.balance_of(asset.address, s.wallet.address))
        except TM402Error as exc:
            return Check("balance", Status.FAIL, f"balanceOf failed: {exc.message}", "check the RPC (see rpc)")
        self.variant["balances"] = {sym: format_amount(v, a.decimals, sym) for sym, (a, v) in held.items()}
        found = ", ".join(format_amount(v, a.decimals, sym) for sym, (a, v) in held.items()) or "no payable asset"
        permit2, allowed = self._permit2_allowance(reader, held)
        if permit2 is not None:
            found += f"; {permit2}"
        chosen = self.chosen
        if (
            chosen is not None
            and allowed is not None
            and chosen.asset.symbol == "TMAI"
            and (chosen.requirements.extra or {}).get("assetTransferMethod") == "permit2"
            and allowed < chosen.amount
        ):
            return Check(
                "balance",
                Status.WARN,
                f"{found}: the probe's TMAI offer is paid by Permit2, which may not move the"
                f" {format_amount(chosen.amount, chosen.asset.decimals, 'TMAI')} one call costs",
                "approve it once: s.approve_permit2('tmai', 'unlimited') or %tm approve tmai AMOUNT"
                " (a transaction; gas is paid in ETH)",
            )
        fund = self._fund_fix()
        pay = self._pay_asset()
        if pay is None or pay.symbol not in held:
            return Check("balance", Status.OK, found)
        balance = held[pay.symbol][1]
        price = self.chosen.amount if self.chosen is not None and self.chosen.asset == pay else None
        if price is not None and balance < price:
            return Check(
                "balance",
                Status.FAIL,
                f"{found}: not enough {pay.symbol} for one call at {format_amount(price, pay.decimals, pay.symbol)}",
                fund,
            )
        notes = []
        if price:
            notes.append(f"{balance // price} call(s) at {format_amount(price, pay.decimals, pay.symbol)}")
        budget = s.policy.budget
        if budget is not None and pay.usd_stable and pay.decimals == 6:
            left = max(0, budget - s.policy.spent_usd())
            if balance < left:
                return Check(
                    "balance",
                    Status.WARN,
                    f"{found}: less than the {usd_text(left)} the budget still allows; payments past the balance"
                    " will be refused for insufficient funds",
                    f"{fund}; or lower the budget to what the wallet holds (s.budget = ...)",
                )
            notes.append(f"covers the {usd_text(left)} left of the budget")
        usdc = held.get("USDC")
        if usdc is not None and s.low_balance is not None and usdc[1] < s.low_balance:
            return Check(
                "balance",
                Status.WARN,
                f"{found}: USDC below the low-balance mark of {format_amount(s.low_balance, 6, 'USDC')}",
                fund,
            )
        return Check("balance", Status.OK, found + (f" ({'; '.join(notes)})" if notes else ""))

    def _permit2_allowance(
        self, reader: ChainReader, held: dict[str, tuple[Asset, int]]
    ) -> tuple[str | None, int | None]:
        """``TMAI Permit2 allowance none`` where the network has TMAI (paid by Permit2, it needs one),
        and the allowance. A read (``allowance(wallet, Permit2)``); a failure is said, not failed on."""
        tmai = held.get("TMAI")
        if tmai is None or self.s.wallet is None:
            return None, None
        asset = tmai[0]
        try:
            allowed = reader.allowance(asset.address, self.s.wallet.address, PERMIT2_ADDRESS)
        except TM402Error as exc:
            return f"TMAI Permit2 allowance unread ({exc.message})", None
        text = (
            "unlimited"
            if allowed == 2**256 - 1
            else format_amount(allowed, asset.decimals, "TMAI")
            if allowed
            else "none (s.approve_permit2('tmai', AMOUNT) before paying TMAI by Permit2)"
        )
        self.variant["permit2_allowance"] = text
        return f"TMAI Permit2 allowance {text}", allowed

    def _fund_fix(self) -> str:
        s = self.s
        address = s.wallet.address if s.wallet is not None else "the wallet"
        if s.mode is Mode.SANDBOX:
            return f"fund it from the sandbox faucet: s.sandbox.fund('{address}', 'usdc', '100')"
        net = get_network(s.network or "base-sepolia")
        if net.testnet:
            return f"send test USDC on {net.label} to {address} (e.g. from https://faucet.circle.com)"
        return f"send USDC on {net.label} to {address}"

    def _probe(self, answer: _Answer | None) -> Check:
        where = self._probe_name()
        if answer is None:  # pragma: no cover - paying modes always probe
            return Check("probe", Status.SKIP, "not run")
        if answer.error is not None:
            return Check("probe", Status.FAIL, f"GET {where}: {answer.error}", _reach_fix(self.s.base_url))
        status = answer.status or 0
        if status == 402:
            try:
                self.required = parse_challenge(answer.headers, answer.body)
            except X402ProtocolError as exc:
                return Check(
                    "probe",
                    Status.FAIL,
                    f"GET {where}: 402 with a challenge no x402 client can pay: {exc.message}",
                    "nothing can be paid here until the server sends a valid challenge; tell its operator"
                    " (nothing was signed)",
                )
            return self._challenge_check(where)
        if 200 <= status < 300:
            return Check(
                "probe",
                Status.WARN,
                f"GET {where}: HTTP {status} without a payment challenge (free here, or the server ignores"
                " x-coinbase-402)",
                "probe a paid endpoint: s.doctor(probe='tm-grade'), tm402-nb doctor --probe ENDPOINT_OR_URL",
            )
        return Check(
            "probe", Status.FAIL, f"GET {where}: HTTP {status}{answer.message()}", _status_fix(status, self.s.base_url)
        )

    def _probe_name(self) -> str:
        if self.endpoint is None:
            return self.url
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return self.endpoint.name + (f"?{query}" if query else "")

    def _challenge_check(self, where: str) -> Check:
        required = self.required
        assert required is not None
        offers = []
        for req in required.accepts:
            offers.append(_price(req, self._asset(req)) + f" on {_short_network(req.network)}")
        payees = sorted({req.pay_to for req in required.accepts})
        found = (
            f"GET {where} unpaid: 402, x402 v{required.x402_version} ({_source_text(required.source)}), "
            f"{len(required.accepts)} offer(s): {'; '.join(offers)}; payTo {', '.join(payees)}"
        )
        if required.rejected:
            why = "; ".join(f"accepts[{i}]: {r}" for i, r in required.rejected[:3])
            return Check(
                "probe",
                Status.WARN,
                f"{found}; unreadable entries: {why}",
                "those entries cannot be paid; the others can",
            )
        if self.endpoint is not None and self.endpoint.free:
            return Check("probe", Status.OK, found + f" ({self.endpoint.name} is free in the catalogue, paid here)")
        return Check("probe", Status.OK, found)

    def _asset(self, req: PaymentRequirements) -> Asset | None:
        """The known (or session-configured) token a requirement asks for, else None."""
        try:
            net = get_network(req.network)
        except X402ProtocolError:
            return None
        return find_asset(net, req.asset, self.s.policy.extra_assets if self.s.policy is not None else ())

    def _symbol(self, req: PaymentRequirements) -> str | None:
        asset = self._asset(req)
        return asset.symbol if asset is not None else None

    def _policy(self) -> Check:
        s = self.s
        required = self.required
        if required is None or s.policy is None:
            return Check("policy", Status.SKIP, "not judged: no challenge to judge (see probe)")
        try:
            offer = s.policy.select(required, origin=_origin(self.url))
        except PaymentRefused as exc:
            return Check("policy", Status.FAIL, exc.message, self._policy_fix(exc, required))
        self.chosen = offer
        policy = s.policy
        limits = [f"per-call cap {policy.max_per_call_text}"]
        if policy.budget is not None:
            limits.append(f"{usd_text(max(0, policy.budget - policy.spent_usd()))} left of the budget")
        if policy.daily_cap is not None:
            limits.append(f"daily cap {usd_text(policy.daily_cap)}")
        value = "" if offer.asset.usd_stable or offer.usd is None else f" (≈ {usd_text(offer.usd)})"
        return Check(
            "policy",
            Status.OK,
            f"would pay {offer.display}{value} to {offer.requirements.pay_to}, within {', '.join(limits)}",
        )

    def _policy_fix(self, exc: PaymentRefused, required: PaymentRequired) -> str:
        s = self.s
        mine = get_network(s.network or "base-sepolia")
        theirs: dict[str, Network] = {}
        for req in required.accepts:
            try:
                net = get_network(req.network)
            except X402ProtocolError:
                continue
            theirs[net.caip2] = net
        if theirs and mine.caip2 not in theirs:
            other = next(iter(theirs.values()))
            base = "" if s.base_url == DEFAULT_BASE_URL else f", base_url='{s.base_url}'"
            real = "" if other.testnet else ": real money, so keep the budget small"
            return (
                f"this server takes payments on {', '.join(n.label for n in theirs.values())} only: "
                f"connect(mode='x402', network='{other.v1_name}'{base}, budget='2.00'){real}"
            )
        if isinstance(exc, BudgetExceeded) and exc.hint:
            return exc.hint
        if "payee changed" in exc.message:
            return "if the new payee is genuine, allow it: connect(..., payees=[...]) or open a new session"
        return (
            "each reason names the setting that refuses it (network=, pay_with=, assets=, payees=, usd_rates=);"
            " nothing was signed"
        )

    def _challenge_view(self) -> ProbeChallenge | None:
        required, policy = self.required, self.s.policy
        if required is None:
            return None
        views = []
        origin = _origin(self.url)
        for index, req in enumerate(required.accepts):
            asset = self._asset(req)
            allowed, why = False, "not judged (no spend policy)"
            chosen = self.chosen is not None and self.chosen.requirements is req
            if policy is not None:
                allowed, why = _verdict(policy, required, req, origin, chosen, self.s.pay_with)
            extra = req.extra or {}
            method = extra.get("assetTransferMethod")
            views.append(
                OfferView(
                    index=index,
                    scheme=req.scheme,
                    network=req.network,
                    asset=req.asset,
                    symbol=asset.symbol if asset is not None else None,
                    amount=req.amount,
                    price=_price(req, asset),
                    pay_to=req.pay_to,
                    max_timeout_seconds=req.max_timeout_seconds,
                    transfer=str(method) if isinstance(method, str) and method else "eip3009",
                    resource=req.resource or required.resource_url,
                    description=req.description,
                    mime_type=req.mime_type,
                    allowed=allowed,
                    why=why,
                    chosen=chosen,
                )
            )
        return ProbeChallenge(
            url=self.url,
            x402_version=required.x402_version,
            source=required.source,
            offers=tuple(views),
            extensions=tuple(sorted(required.extensions or {})),
            resource=required.resource_url,
            error=required.error,
            rejected=required.rejected,
        )

    def _ledger(self) -> Check:
        ledger = self.s.ledger
        try:
            unknown = ledger.payment_rows(status=PaymentStatus.UNKNOWN)
            pending = ledger.payment_rows(status=PaymentStatus.PENDING)
            failed = ledger.payment_rows(status=PaymentStatus.FAILED)
        except TM402Error as exc:
            return Check("ledger", Status.FAIL, f"{ledger.path}: {exc.message}", exc.hint or "check $TM402_HOME")
        now = time.time()
        reserved = [r for r in failed if may_settle_until(r["valid_before"] or 0) > now]
        notes = []
        if reserved:
            until = max(may_settle_until(r["valid_before"] or 0) for r in reserved)
            when = datetime.fromtimestamp(until, UTC).strftime("%H:%M:%S UTC")
            notes.append(
                f"{len(reserved)} reserved ({_amounts(reserved)}: refused, but their signatures could still settle;"
                f" counted until {when})"
            )
        if pending:
            notes.append(f"{len(pending)} pending ({_amounts(pending)}: in flight, or from a kernel that was killed)")
        path = str(ledger.path)
        if unknown:
            notes.insert(0, f"{len(unknown)} unknown ({_amounts(unknown)}: may have settled; counted against caps)")
            fix = (
                "list them with s.ledger.payments(status='unknown') and look up each payer and nonce on a block"
                " explorer"
            )
            if self.s.rpc_url:
                fix += "; this session's own are decided from the chain by s.auth.resolve_unknown()"
            return Check("ledger", Status.WARN, f"{path}: {'; '.join(notes)}", fix)
        return Check(
            "ledger", Status.OK, f"{path}: " + ("; ".join(notes) if notes else "no unknown or reserved payments")
        )

    def _variant(self, probe: _Answer | None, free: _Answer | None) -> Check:
        v = self.variant
        facts: list[str] = []
        required = self.required
        if required is not None:
            v["x402_version"] = required.x402_version
            v["challenge_in"] = required.source
            facts.append(f"x402 v{required.x402_version} ({_source_text(required.source)})")
            symbols = [self._symbol(r) or r.asset for r in required.accepts]
            v["offered_assets"] = symbols
            v["networks"] = sorted({_short_network(r.network) for r in required.accepts})
            both = len(set(symbols)) > 1
            v["offers"] = "several assets" if both else f"only {symbols[0]} (the asked asset)"
            facts.append(
                f"offers {'+'.join(dict.fromkeys(symbols))}"
                if both
                else f"offers only {symbols[0]} (asked: {self.s.pay_with})"
            )
            facts.append("on " + ", ".join(v["networks"]))
            methods = {
                (self._symbol(r) or r.asset): str((r.extra or {}).get("assetTransferMethod") or "eip3009")
                for r in required.accepts
            }
            v["transfer"] = methods
            if any(m != "eip3009" for m in methods.values()):
                facts.append(", ".join(f"{k} by {m}" for k, m in methods.items()))
            raw = required.accepts[0].raw
            resource = required.resource_url or ""
            v["resource_has_query"] = "?" in resource
            v["output_schema"] = "outputSchema" in raw
            facts.append(f"resource {'with' if '?' in resource else 'without'} its query")
            if required.extensions:
                v["extensions"] = sorted(required.extensions)
                facts.append("extensions " + ", ".join(sorted(required.extensions)))
        if free is not None:
            self._learn_free(free, facts)
        else:
            facts.append("field case and free endpoints not checked (the probe is not a Token Metrics endpoint)")
        if probe is not None and probe.status is not None and 200 <= probe.status < 300:
            case = _field_case(probe.body)
            if case is not None and "field_case" not in v:
                v["field_case"] = case
                facts.append(f"fields {case}")
        if not facts:
            return Check("variant", Status.SKIP, "nothing learned: the server did not answer")
        profile = _closest_profile(v)
        if profile is not None:
            v["closest_sandbox_profile"] = profile
            if self.s.mode is not Mode.SANDBOX:
                facts.append(f"closest sandbox profile: {profile} (tm402-nb sandbox --profile {profile} rehearses it)")
        return Check("variant", Status.OK, "; ".join(facts))

    def _learn_free(self, free: _Answer | None, facts: list[str]) -> None:
        v = self.variant
        if free is None or free.error is not None:
            facts.append(f"{FREE_ENDPOINT}: no answer")
            return
        status = free.status or 0
        if status == 402:
            v["free_endpoints"] = "paid"
            facts.append(f"{FREE_ENDPOINT} is paid here (402): symbol lookups cost a call, and quotes count them")
            return
        if 200 <= status < 300:
            v["free_endpoints"] = "free"
            case = _field_case(free.body)
            if case is not None:
                v["field_case"] = case
            facts.append(f"{FREE_ENDPOINT} free (HTTP {status})" + (f", fields {case}" if case else ""))
            return
        v["free_endpoints"] = f"HTTP {status}"
        facts.append(f"{FREE_ENDPOINT}: HTTP {status}")


def _verdict(
    policy: SpendPolicy, required: PaymentRequired, req: PaymentRequirements, origin: str, chosen: bool, pay_with: str
) -> tuple[bool, str]:
    """Whether the policy may pay this one offer, and why (or why not)."""
    screened = policy.screen(req, origin=origin)
    if isinstance(screened, str):
        return False, f"refused: {screened}"
    symbol = screened.asset.symbol.lower()
    try:
        pick = policy.select(required, origin=origin, pay_with=symbol)
    except PaymentRefused as exc:
        return False, f"refused: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    if chosen:
        return True, "allowed: the session would pay this one"
    if pick.requirements is not req:
        return True, f"allowed, but a cheaper {screened.asset.symbol} offer would be paid"
    return True, f"allowed: paid when a call asks for it (pay_with='{symbol}'; the session pays with {pay_with})"


def _price(req: PaymentRequirements, asset: Asset | None) -> str:
    if asset is None:
        return f"{req.amount} atomic units of {req.asset}"
    return format_amount(req.amount, asset.decimals, asset.symbol)


def _short_network(name: str) -> str:
    try:
        return get_network(name).v1_name
    except X402ProtocolError:
        return name


def _amounts(rows: Iterable[Mapping[str, Any]]) -> str:
    totals: dict[str, tuple[int, int]] = {}
    for r in rows:
        symbol = r.get("asset_symbol") or "?"
        decimals = int(r.get("decimals") or 0)
        before = totals.get(symbol, (0, decimals))[0]
        totals[symbol] = (before + int(r.get("amount") or 0), decimals)
    return ", ".join(format_amount(atomic, decimals, symbol) for symbol, (atomic, decimals) in totals.items())


def _reach_fix(base_url: str | None) -> str:
    return (
        f"check the network connection and the base URL ({base_url}); tm402-nb doctor --base-url URL checks"
        " another server"
    )


def _status_fix(status: int | None, base_url: str | None) -> str:
    if status == 404:
        return (
            f"no such endpoint under {base_url}: Token Metrics' API root is {DEFAULT_BASE_URL}; for another x402"
            " server, name a paid URL: s.doctor(probe=URL) or tm402-nb doctor --probe URL"
        )
    if status in (401, 403):
        return "the server refused an unpaid x402 request outright: check the base URL and that it speaks x402"
    if status == 429:
        return "rate limited: wait a minute and run the doctor again"
    if status is not None and status >= 500:
        return "the server failed: try again later (nothing was signed)"
    return "check the base URL and the probe's endpoint"


def _profile_facts() -> dict[str, dict[str, Any]]:
    """What each sandbox preset plays, in the terms the doctor observes (for "closest profile")."""
    from ..sandbox.profiles import PROFILES

    return {
        name: {
            "x402_version": p.x402_version,
            "several": p.offers == "both",
            # What /tokens shows: the docs preset lowercases it, as "lower" does every endpoint.
            "field_case": "UPPER" if p.field_case == "upper" else "lower",
            "free_endpoints": p.free_endpoints,
            "mainnet": p.network == "base",
        }
        for name, p in PROFILES.items()
    }


def _closest_profile(v: Mapping[str, Any]) -> str | None:
    seen: dict[str, Any] = {}
    if "x402_version" in v:
        seen["x402_version"] = v["x402_version"]
        seen["several"] = len(set(v.get("offered_assets", ()))) > 1
        seen["mainnet"] = "base" in v.get("networks", ())
    for key in ("field_case", "free_endpoints"):
        if key in v:
            seen[key] = v[key]
    if "free_endpoints" not in seen or "x402_version" not in seen:
        return None  # a Token Metrics API, probed and its free endpoint asked: else no profile fits
    scores = {name: sum(seen.get(k) == want for k, want in facts.items()) for name, facts in _profile_facts().items()}
    return max(scores, key=lambda name: scores[name])


# -- ways in ---------------------------------------------------------------------------------------------------------
def diagnose(session: Session, *, probe: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> DoctorReport:
    """Check ``session`` end to end without paying (what :meth:`Session.doctor` runs).

    ``probe`` is the paid request to send unpaid: a catalogue endpoint on the session's API
    (default ``tm-grade?token_id=3375``) or any URL (an x402 server that is not Token Metrics).
    ``timeout`` bounds each request (HTTP and JSON-RPC) in seconds.
    """
    return _Doctor(session, probe=probe, timeout=timeout).run()


def unavailable(mode: str | None, network: str | None, exc: TM402Error) -> DoctorReport:
    """The report when no session could even be opened (no wallet key, a refused option)."""
    from .modes import NetworkRequired

    name = "wallet" if isinstance(exc, WalletError) else "network" if isinstance(exc, NetworkRequired) else "session"
    return DoctorReport(
        mode=mode or "from the environment",
        network=network,
        base_url=None,
        checks=(Check(name, Status.FAIL, f"cannot open a session: {exc.message}", exc.hint or "see the message"),),
    )


def run_doctor(
    mode: str | None = None, *, probe: str | None = None, timeout: float = DEFAULT_TIMEOUT, **options: Any
) -> DoctorReport:
    """Open a session (``Session(mode, **options)``), diagnose it and close it; what ``tm402-nb doctor`` runs.

    A session that cannot open is a failed report (the reason and its fix), not an exception.
    """
    from .core import Session

    try:
        session = Session(mode, progress=False, **options)
    except TM402Error as exc:
        return unavailable(mode, options.get("network"), exc)
    with session:
        return diagnose(session, probe=probe, timeout=timeout)
