"""X402Auth: an ``httpx.Auth`` that pays x402 challenges, for sync and async clients.

The flow is a generator that yields requests and receives responses, which
is exactly the shape of x402:

1. send the request (carrying a pre-signed payment when the endpoint's
   challenge is remembered and still fresh: the *warm path*, one round trip);
2. on 402: parse the challenge, let the :class:`SpendPolicy` pick an offer or
   refuse, sign, write the ledger row (``pending``), retry once with the header;
   a :class:`~tm402_nb.x402.options.PaymentOptions` on the request (preferred
   asset, per-call cap) applies to that request alone;
3. read the receipt: ``settled`` with its transaction, or ``failed`` with the
   server's reason (raised as :class:`PaymentFailed`).

A signed payment is never re-signed for the same request. If the paid request
dies in transit, the row becomes ``unknown`` and the *same* header is kept:
re-sending the request (by :class:`PaymentReplayTransport`, or by the user)
replays it, so a payment can settle at most once.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast

import httpx
from eth_hash.auto import keccak

from ..errors import (
    ConfigurationError,
    PaymentFailed,
    PaymentOutcomeUnknown,
    PaymentRefused,
    Permit2AllowanceRequired,
    ReceiptError,
    SettlementPending,
    TM402Error,
    X402ProtocolError,
    hint_for_reason,
)
from ..money import format_amount
from ..status import FINAL, PaymentStatus, may_settle_until
from .approval import ERC20_APPROVAL_GAS_SPONSORING, gas_sponsoring_extensions
from .chain import AuthorizationReader, ChainReader
from .eip3009 import clock_problem, sign_authorization
from .encoding import MAX_MESSAGE_BYTES
from .identifier import payment_extensions
from .messages import (
    PAYMENT_REQUIRED,
    PAYMENT_SIGNATURE,
    X_PAYMENT,
    Authorization,
    PaymentPayload,
    PaymentRequired,
    Permit2Authorization,
    SettlementResponse,
    build_payment_payload,
    parse_challenge,
    read_receipt,
)
from .networks import get_network
from .options import PaymentOptions
from .permit2 import PERMIT2_ADDRESS, sign_permit2
from .policy import Offer, Reservation, SpendPolicy
from .recorder import PaymentRecord, PaymentRecorder
from .transport import EXT_REPLAYS
from .upto import of_up_to, upto_outcome
from .wallet import Wallet

__all__ = [
    "Payment",
    "PaymentEvent",
    "X402Auth",
    "astrip_payment_on_redirect",
    "payment_of",
    "receipt",
    "strip_payment_on_redirect",
]

#: Keys of ``response.extensions`` where the outcome is exposed.
EXT_PAYMENT = "tm402_payment"
EXT_RECEIPT = "tm402_receipt"

#: What servers answer a Permit2 payment whose payer has not approved the Permit2 contract enough.
PERMIT2_ALLOWANCE_REQUIRED = "permit2_allowance_required"
#: What a chain must read to sign a sponsored approval (the wallet's nonce, fees, the chain id).
_SPONSOR_READS = ("allowance", "chain_id", "transaction_count", "base_fee", "max_priority_fee")
_UINT256_MAX = 2**256 - 1

#: A lost answer's payment is replayed only while this far from its validBefore (clock skew);
#: a new payment for the same request waits until it can no longer settle (may_settle_until).
REPLAY_MARGIN = 30

#: A settle the facilitator broadcast but could not confirm yet (x402 SDK ``ERR_SETTLEMENT_PENDING``).
SETTLEMENT_PENDING_REASON = "settlement_pending"
#: Payments whose outcome is still open: kept so a re-sent request replays them, never re-signs.
_OPEN = (PaymentStatus.UNKNOWN, PaymentStatus.SETTLEMENT_PENDING)

# Marks the request we re-sent with a payment, so nested auth never pays twice.
_PAID_MARK = "tm402_paid"

_E = TypeVar("_E", bound=TM402Error)


@dataclass
class Payment:
    """One signed payment and what became of it."""

    record: PaymentRecord
    offer: Offer
    header_name: str
    header_value: str = field(repr=False)
    payload: PaymentPayload = field(repr=False)
    status: PaymentStatus = PaymentStatus.PENDING
    receipt: SettlementResponse | None = None
    warm: bool = False
    #: Spend scopes this payment was counted in (a refusal gives it back to exactly these).
    scopes: tuple[Any, ...] = ()
    released: bool = False
    #: True while a request is sending this payment's header (a replay is claimed, never shared).
    in_flight: bool = False
    #: What a receipt of success said that differs from what we signed (kept apart, never merged).
    discrepancy: str | None = None
    #: An ``upto`` payment's settled amount, from its receipt (None: not settled, or not said).
    settled_amount: int | None = None
    #: The reservation it drew on (an upto payment gives back what it did not settle).
    reservation: Reservation | None = field(default=None, repr=False)
    #: Hash of the Permit2 approval signed into this payment for the server to send at its own gas
    #: cost (x402 ``erc20ApprovalGasSponsoring``); None when none was needed or offered.
    sponsored_approval: str | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def amount(self) -> int:
        """What it counts, in atomic units: what was signed, or what an upto payment settled."""
        return self.record.amount if self.settled_amount is None else self.settled_amount

    @property
    def ceiling(self) -> int | None:
        """An ``upto`` payment's signed ceiling (the most it can move); None for ``exact``."""
        return self.record.amount if self.record.scheme == "upto" else None

    @property
    def amount_text(self) -> str:
        """``0.017 USDC``; an upto payment: ``0.012 TMAI (of up to 0.050)``."""
        asset = self.offer.asset
        if self.ceiling is None:
            return format_amount(self.amount, asset.decimals, asset.symbol)
        return of_up_to(self.amount, self.ceiling, asset.decimals, asset.symbol)

    @property
    def tx(self) -> str | None:
        return self.receipt.transaction if self.receipt and self.receipt.transaction else None

    @property
    def display(self) -> str:
        return self.offer.display


@dataclass(frozen=True)
class PaymentEvent:
    """Sent to listeners (the notebook feed and footer) at each step of a payment."""

    kind: str  # "signed", then the PaymentStatus the payment reached ("settled", "failed", "unknown")
    payment: Payment
    url: str
    reason: str | None = None


@dataclass
class _Remembered:
    required: PaymentRequired
    expires_at: float


def _origin(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{url.host}:{port}"


def _warm_key(request: httpx.Request, pay_with: str) -> tuple[str, ...]:
    # Same method, path, parameter *names* and preferred asset: the same challenge. A server
    # may offer other assets (or prices) to a request that asks to pay in another asset.
    params = ",".join(sorted({k for k, _ in request.url.params.multi_items()}))
    return (request.method, _origin(request.url), request.url.path, params, pay_with)


def _sponsored_tx_hash(extensions: dict[str, Any]) -> str | None:
    info = extensions.get(ERC20_APPROVAL_GAS_SPONSORING, {}).get("info", {})
    raw = info.get("signedTransaction")
    return "0x" + keccak(bytes.fromhex(raw[2:])).hex() if isinstance(raw, str) else None


def _sponsored_note(offer: Offer) -> str:
    """What the user is told, once, in the payment's "signed" event (the feed shows it while pending)."""
    amount = format_amount(offer.amount, offer.asset.decimals, offer.asset.symbol)
    return (
        f"the server sponsors the gas of the wallet's Permit2 approval: approve({amount}) is signed into this "
        "payment and sent by the facilitator, at no ETH cost to the wallet"
    )


def _replay_key(request: httpx.Request) -> str:
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(str(request.url).encode())
    h.update(request.content or b"")
    return h.hexdigest()


class X402Auth(httpx.Auth):
    """Pay x402 challenges for any httpx client.

    >>> import httpx
    >>> auth = X402Auth(Wallet.create(), SpendPolicy(max_per_call="0.05"))
    >>> client = httpx.Client(auth=auth)  # every 402 is now paid, within the policy
    >>> client.close()
    """

    def __init__(
        self,
        wallet: Wallet,
        policy: SpendPolicy | None = None,
        *,
        ledger: PaymentRecorder | None = None,
        warm: bool = True,
        session_id: str | None = None,
        listeners: list[Callable[[PaymentEvent], None]] | None = None,
        endpoint_of: Callable[[httpx.Request], str | None] | None = None,
        cell_id: Callable[[], str | None] | None = None,
        max_remembered: int = 1024,
        chain: AuthorizationReader | None = None,
    ) -> None:
        if not isinstance(wallet, Wallet):
            raise TypeError("X402Auth needs a tm402_nb Wallet (Wallet.from_env(), Wallet.from_key(...), ...)")
        self.wallet = wallet
        self.policy = policy if policy is not None else SpendPolicy()
        self.ledger = ledger
        self.warm = warm
        self.session_id = session_id
        self.listeners: list[Callable[[PaymentEvent], None]] = list(listeners or [])
        self._endpoint_of = endpoint_of
        self._cell_id = cell_id
        self._lock = threading.Lock()
        self._challenges: OrderedDict[tuple[str, ...], _Remembered] = OrderedDict()
        self._unresolved: OrderedDict[str, Payment] = OrderedDict()
        self._max_remembered = max_remembered
        #: Where the payer checks an unknown payment's nonce itself (EIP-3009 authorizationState, Permit2's
        #: nonce bitmap) and, when it can (``allowance``), a Permit2 payer's allowance before signing.
        self.chain = chain
        #: (token, owner) -> Permit2 allowance known to suffice, less what was signed since: warm calls
        #: stay one round trip. Dropped when a server refuses with permit2_allowance_required.
        self._allowances: dict[tuple[str, str], int] = {}
        if ledger is None and (
            self.policy.daily_cap is not None
            or any(lim.daily_cap is not None for lim in self.policy.asset_limits.values())
        ):
            raise ConfigurationError("a daily cap is counted in the ledger: pass ledger=Ledger()")
        #: Seconds the server's clock (its last ``Date`` header) is ahead of this machine's; None until seen.
        self.clock_skew: float | None = None
        #: Counters for benchmarks and the footer.
        self.stats = {"requests": 0, "challenges": 0, "signed": 0, "warm_hits": 0, "warm_misses": 0}

    # -- httpx entry points -------------------------------------------------------
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()  # buffer the body so the paid retry replays identical bytes
        flow = self._flow(request)
        try:
            outgoing = next(flow)
            while True:
                response = yield outgoing
                if response.status_code == 402:
                    _keep_challenge_body(response, _read_bounded(response))
                elif response.status_code == 412:
                    _keep_412_body(response, _read_bounded(response))
                try:
                    outgoing = flow.send(response)
                except StopIteration:
                    return
                except (ReceiptError, PaymentFailed) as exc:
                    # The error carries the response: read its body now, before httpx closes it.
                    if getattr(exc, "response", None) is response and not response.is_stream_consumed:
                        response.read()
                    raise
        finally:
            flow.close()

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        flow = self._flow(request)
        try:
            outgoing = next(flow)
            while True:
                response = yield outgoing
                if response.status_code == 402:
                    _keep_challenge_body(response, await _aread_bounded(response))
                elif response.status_code == 412:
                    _keep_412_body(response, await _aread_bounded(response))
                try:
                    outgoing = flow.send(response)
                except StopIteration:
                    return
                except (ReceiptError, PaymentFailed) as exc:
                    if getattr(exc, "response", None) is response and not response.is_stream_consumed:
                        await response.aread()
                    raise
        finally:
            flow.close()

    # -- the flow ------------------------------------------------------------------
    def _flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.stats["requests"] += 1
        if (
            request.extensions.get(_PAID_MARK)
            or request.headers.get(PAYMENT_SIGNATURE)
            or request.headers.get(X_PAYMENT)
        ):
            # Already carries a payment (set by the caller): never add a second one.
            yield request
            return

        options = PaymentOptions.of(request)
        # A payment in hand before the request goes out: a replay, or one signed for a remembered challenge.
        presigned: Payment | None = None
        replay_key = _replay_key(request)
        replay = self._claim_replay(replay_key)
        if replay is not None:
            presigned = replay  # same request after an unknown outcome: same header, same nonce
        elif self.warm:
            remembered = self._remembered(request, options)
            if remembered is not None:
                try:
                    presigned = self._sign_payment(remembered, request, options, warm=True)
                except Permit2AllowanceRequired:
                    raise  # the wallet's allowance, not the terms: a fresh challenge would not change it
                except PaymentRefused:
                    presigned = None  # let the live challenge decide, and refuse with its numbers
        if presigned is not None:
            # A copy carries the payment: the caller's request object stays unpaid, so
            # re-sending it can never replay a header we have recorded as failed.
            paid = self._with_payment(request, presigned)
            response = yield from self._send_paid(paid, presigned, replay_key)
            self._observe_clock(response)
            # This header may already have reached the server before (a lost answer): then no
            # refusal now proves that the first attempt did not settle.
            replayed = replay is presigned or bool(response.extensions.get(EXT_REPLAYS))
            self._check_origin(presigned, response, paid)
            if not replayed:
                self._check_allowance_refusal(presigned, response, paid)
            if response.status_code != 402:
                self._conclude(presigned, response, paid, replayed=replayed)
                return
            reason = self._rejection_reason(response)
            if reason == SETTLEMENT_PENDING_REASON:
                raise self._settlement_pending(presigned, response, paid, replay_key)
            if replayed:
                raise self._still_unknown(presigned, request, reason)
            failed_receipt = self._receipt_or_none(response)
            self._mark(presigned, PaymentStatus.FAILED, paid, reason=reason or "server refused the pre-signed payment")
            if presigned.warm:
                self.stats["warm_misses"] += 1
                # The terms changed since they were remembered. Never a second signature in one
                # call: the refused one is still valid (and counted) until it expires, and a
                # hostile server could collect both. Learn the new terms for the next call instead.
                learned = self._learn(request, options, response)
                raise self._payment_failed(presigned, response, failed_receipt, reason, learned=learned)
            raise self._payment_failed(presigned, response, failed_receipt, reason)

        response = yield request
        self._observe_clock(response)
        if response.status_code != 402:
            return
        self.stats["challenges"] += 1
        self._check_issuer(request, response)
        required = parse_challenge(response.headers, response.content)
        payment = self._sign_payment(required, request, options, warm=False)
        self._remember(request, options, required, payment.offer)
        paid = self._with_payment(request, payment)
        response = yield from self._send_paid(paid, payment, replay_key)
        self._observe_clock(response)
        replayed = bool(response.extensions.get(EXT_REPLAYS))
        self._check_origin(payment, response, paid)
        if not replayed:
            self._check_allowance_refusal(payment, response, paid)
        if response.status_code == 402:
            reason = self._rejection_reason(response)
            if reason == SETTLEMENT_PENDING_REASON:
                raise self._settlement_pending(payment, response, paid, replay_key)
            if replayed:
                # The first attempt's answer was lost; the transport's replay was refused:
                # the first attempt may have settled. Unknown, counted, nothing new signed.
                raise self._still_unknown(payment, paid, reason)
            failed_receipt = self._receipt_or_none(response)
            self._mark(payment, PaymentStatus.FAILED, paid, reason=reason or "server answered 402 to the paid request")
            raise self._payment_failed(payment, response, failed_receipt, reason)
        self._conclude(payment, response, paid, replayed=replayed)

    def _observe_clock(self, response: httpx.Response) -> None:
        """Remember how far the server's clock (its ``Date`` header) is from this machine's."""
        stamp = response.headers.get("date")
        if not stamp:
            return
        try:
            server = parsedate_to_datetime(stamp).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        # Date has one-second resolution: its middle is the best guess.
        self.clock_skew = server + 0.5 - time.time()

    def _check_clock(self, offer: Offer) -> None:
        """Refuse to sign what the server's clock would refuse (see ``tm402-nb doctor``)."""
        if self.clock_skew is None or (offer.transfer == "permit2" and self.clock_skew < 0):
            return  # a Permit2 witness's validAfter is 0: no clock ahead of the server's makes it "not yet valid"
        window = min(self.policy.authorization_seconds, offer.requirements.max_timeout_seconds)
        problem = clock_problem(self.clock_skew, window)
        if problem is not None:
            raise PaymentRefused(
                f"x402 payment refused before signing: {problem}",
                hint="sync this machine's clock with NTP (tm402-nb doctor shows the difference); nothing was signed",
                setting="clock",
            )

    def _check_issuer(self, request: httpx.Request, response: httpx.Response) -> None:
        """Refuse a challenge that another origin issued (the request was redirected to it).

        Payment and payee pinning belong to the origin the caller asked; a redirect target's
        price is not something the caller agreed to, so nothing is signed for it.
        """
        asked, issuer = _origin(request.url), _origin(response.request.url)
        if issuer != asked:
            raise PaymentRefused(
                f"the 402 challenge came from {issuer}, after a redirect from {asked}: not paid",
                hint="nothing was signed; request the other origin directly if you mean to pay it",
            )

    def _check_origin(self, payment: Payment, response: httpx.Response, paid: httpx.Request) -> None:
        """A paid request answered from another origin (a redirect the client followed).

        With :func:`strip_payment_on_redirect` installed the header stayed behind; without it,
        httpx copied it to the other origin. Either way the answer is not the receipt of the
        origin that holds our authorization: the payment stays unknown (it may still settle)
        and counted, and nothing more is signed.
        """
        signed_for = _origin(paid.url)
        hops = [*response.history, response]
        foreign = [h for h in hops if _origin(h.request.url) != signed_for]
        if not foreign:
            return
        leaked = any(h.request.headers.get(payment.header_name) == payment.header_value for h in foreign)
        where = _origin(foreign[0].request.url)
        self._mark(
            payment,
            PaymentStatus.UNKNOWN,
            paid,
            reason=f"the paid request was redirected to {where}"
            + ("; the payment header went there too" if leaked else ""),
        )
        raise _with_payment_attached(
            payment,
            PaymentOutcomeUnknown(
                f"the paid request to {signed_for} was redirected to {where}"
                + (" and the client sent the payment header there" if leaked else ""),
                hint="it stays counted until its authorization expires; nothing more was signed. Turn off "
                "follow_redirects, or add tm402_nb.x402.strip_payment_on_redirect to the client's request hooks",
            ),
        )

    def _learn(self, request: httpx.Request, options: PaymentOptions, response: httpx.Response) -> bool:
        """Remember the fresh challenge in a refusal, so the next call pays the new terms warm.

        True when it did. When the new terms cannot be paid (or came from elsewhere) the refused
        ones are forgotten, so the next call asks afresh (and is refused before signing) instead
        of signing them again.
        """
        try:
            if _origin(response.request.url) != _origin(request.url):
                raise PaymentRefused("the refusal came from another origin")
            required = parse_challenge(response.headers, response.content)
            offer = self._select(required, request, options)
        except TM402Error:
            with self._lock:
                self._challenges.pop(_warm_key(request, self._pay_with(options)), None)
            return False
        self._remember(request, options, required, offer)
        return True

    def _send_paid(
        self, request: httpx.Request, payment: Payment, replay_key: str
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        with self._lock:
            self._unresolved[replay_key] = payment
            self._trim_unresolved()
        try:
            response = yield request
        except GeneratorExit:
            # The paid request went out and no answer came back (transport error,
            # timeout, cancellation). It may have settled: record it as unknown and
            # keep the header so a re-send replays it instead of paying again.
            self._mark(
                payment,
                PaymentStatus.SETTLEMENT_PENDING
                if payment.status == PaymentStatus.SETTLEMENT_PENDING
                else PaymentStatus.UNKNOWN,
                request,
                reason="no answer to the paid request (transport error or cancel)",
            )
            with self._lock:  # a concurrent identical request may have taken the slot meanwhile
                self._unresolved[replay_key] = payment
                payment.in_flight = False
            raise
        with self._lock:
            payment.in_flight = False
        with self._lock:
            if self._unresolved.get(replay_key) is payment:  # never drop a concurrent request's entry
                del self._unresolved[replay_key]
        return response

    # -- pieces ------------------------------------------------------------------------
    def _trim_unresolved(self) -> None:
        """Keep the replay memory bounded without forgetting a payment that can still settle:
        expired entries go first, then resolved ones; an unknown, unexpired one is never dropped."""
        if len(self._unresolved) <= self._max_remembered:
            return
        now = time.time()
        for key, pay in list(self._unresolved.items()):
            if len(self._unresolved) <= self._max_remembered:
                return
            if may_settle_until(pay.record.valid_before) < now or pay.status in FINAL:
                del self._unresolved[key]

    def _claim_replay(self, replay_key: str) -> Payment | None:
        """The unresolved payment to replay for this request, claimed atomically; or None.

        Raises PaymentOutcomeUnknown (nothing signed) when an earlier payment for the request
        could still settle but can no longer be replayed safely, or is being replayed right now.
        With a chain to ask, a payment too close to its expiry to replay is decided first.
        """
        with self._lock:
            waiting = self._unresolved.get(replay_key)
        if (
            waiting is not None
            and waiting.status in _OPEN
            and not waiting.in_flight
            and waiting.record.valid_before <= time.time() + REPLAY_MARGIN
        ) and self.resolve(waiting) == PaymentStatus.SETTLED:
            raise _with_payment_attached(
                waiting,
                PaymentOutcomeUnknown(
                    "an earlier payment for this request settled on chain, but its answer was lost",
                    hint="the ledger row now says settled; run it again to pay for a fresh answer",
                ),
            )
        now = time.time()
        with self._lock:
            replay = self._unresolved.get(replay_key)
            if replay is None or replay.status not in _OPEN:
                return None  # nothing lost (a pending one belongs to a concurrent request)
            if replay.in_flight:
                raise _with_payment_attached(
                    replay,
                    PaymentOutcomeUnknown(
                        "this request's unresolved payment is being replayed by another call right now",
                        hint="wait for that call; nothing more was signed",
                    ),
                )
            valid_before = replay.record.valid_before
            if valid_before > now + REPLAY_MARGIN:
                replay.in_flight = True
                return replay
            if now < may_settle_until(valid_before):
                wait = int(may_settle_until(valid_before) - now) + 1
                raise _with_payment_attached(
                    replay,
                    PaymentOutcomeUnknown(
                        "an earlier payment for this request has an unknown outcome and is too close to its expiry "
                        "to replay safely",
                        hint=f"retry in {wait} s: once it has expired a new payment cannot double-charge; "
                        "nothing more was signed",
                    ),
                )
            # Expired with margin: it can never settle now. Its row stays `unknown` (it may have
            # settled earlier); a new payment is safe.
            del self._unresolved[replay_key]
            return None

    def resolve(self, payment: Payment) -> PaymentStatus:
        """Decide an ``unknown`` payment from the chain, when one is configured: its nonce used
        means it settled; unused once its authorization has expired means it never can.
        Otherwise (no chain, the chain unreachable, still valid and unused) it stays unknown."""
        if payment.status not in _OPEN or self.chain is None:
            return payment.status
        record = payment.record
        try:
            # A node of another chain (a misdirected RPC) reads every nonce unused: never decide from it.
            served = getattr(self.chain, "chain_id", None)
            if served is not None and served() != payment.offer.network.chain_id:
                return payment.status
            if record.transfer == "permit2":  # Permit2 keeps the owner's nonces, not the token
                used = self.chain.permit2_nonce_used(record.payer, int(record.nonce, 16))
            else:
                used = self.chain.authorization_used(record.asset, record.payer, record.nonce)
        except TM402Error:
            return payment.status
        request = httpx.Request(record.method, record.url)
        if used:
            self._mark(payment, PaymentStatus.SETTLED, request, reason="executed on chain; the receipt was lost")
        elif time.time() > may_settle_until(record.valid_before):
            # Past the skew margin, as the ledger's own check (chaincheck) decides: FAILED is final, and
            # a node's next block may still carry an authorization our clock thinks just expired.
            self._mark(payment, PaymentStatus.FAILED, request, reason="expired unexecuted (checked on chain)")
        return payment.status

    def resolve_unknown(self) -> dict[str, PaymentStatus]:
        """:meth:`resolve` every payment this auth still holds as unknown; ``{payment id: status}``."""
        with self._lock:
            unknown = {p.id: p for p in self._unresolved.values() if p.status in _OPEN}
        return {pid: self.resolve(p) for pid, p in unknown.items()}

    def _still_unknown(self, payment: Payment, request: httpx.Request, reason: str | None) -> TM402Error:
        self._mark(
            payment,
            # A broadcast settlement stays what it is: pending on chain, whatever a replay heard.
            PaymentStatus.SETTLEMENT_PENDING
            if payment.status == PaymentStatus.SETTLEMENT_PENDING
            else PaymentStatus.UNKNOWN,
            request,
            reason=f"answer lost; its replay was refused ({reason or 'no reason'}): it may have settled",
        )
        return _with_payment_attached(
            payment,
            PaymentOutcomeUnknown(
                f"the answer to a paid request was lost and its replay was refused ({reason or 'no reason'}): "
                "the payment may have settled, but the data was not received",
                hint="the ledger row is marked unknown and still counted; nothing more was signed",
            ),
        )

    def _mark_pending(self, payment: Payment, request: httpx.Request, receipt: SettlementResponse) -> None:
        payment.receipt = receipt
        self._mark(
            payment,
            PaymentStatus.SETTLEMENT_PENDING,
            request,
            tx=receipt.transaction or None,
            reason="settlement broadcast, not confirmed yet (settlement_pending)",
        )

    def _settlement_pending(
        self, payment: Payment, response: httpx.Response, request: httpx.Request, replay_key: str
    ) -> TM402Error:
        """A 402 whose receipt says ``settlement_pending``: the transfer was broadcast, the data withheld.

        Not a failure and never re-signed: the payment stays counted and open, and re-sending
        the request replays the same header (a server reconciles it with the broadcast transfer).
        """
        receipt = self._receipt_or_none(response) or SettlementResponse(
            False, "", payment.offer.network.caip2, error_reason=SETTLEMENT_PENDING_REASON
        )
        response.extensions = {**response.extensions, EXT_PAYMENT: payment, EXT_RECEIPT: receipt}
        self._mark_pending(payment, request, receipt)
        with self._lock:
            self._unresolved[replay_key] = payment
        tx = f", tx {receipt.transaction}" if receipt.transaction else ""
        return _with_payment_attached(
            payment,
            SettlementPending(
                f"the settlement of {payment.display} for {response.request.url.path} was broadcast but is not "
                f"confirmed yet (settlement_pending{tx}); the server withheld the data",
                hint="it stays counted; run it again to replay the same payment (it cannot settle twice), "
                "or check the chain with %tm ledger --resolve",
                response=response,
            ),
        )

    def _pay_with(self, options: PaymentOptions) -> str:
        """The asset this request prefers: its own choice, else the policy's."""
        return (options.pay_with or self.policy.pay_with).strip().lower()

    def _remembered(self, request: httpx.Request, options: PaymentOptions) -> PaymentRequired | None:
        key = _warm_key(request, self._pay_with(options))
        with self._lock:
            entry = self._challenges.get(key)
            if entry is None:
                return None
            if entry.expires_at <= time.time():
                del self._challenges[key]
                return None
            self._challenges.move_to_end(key)
            return entry.required

    def _remember(
        self, request: httpx.Request, options: PaymentOptions, required: PaymentRequired, offer: Offer
    ) -> None:
        if not self.warm:
            return
        # Keep it a little shorter than the server's window, so a pre-signed
        # payment is never sent on a challenge that just lapsed.
        ttl = max(0, offer.requirements.max_timeout_seconds - 5)
        key = _warm_key(request, self._pay_with(options))
        with self._lock:
            self._challenges[key] = _Remembered(required, time.time() + ttl)
            while len(self._challenges) > self._max_remembered:
                self._challenges.popitem(last=False)

    def remember(self, request: httpx.Request, required: PaymentRequired) -> None:
        """Remember a challenge obtained elsewhere (e.g. by a quote), so the next call is warm."""
        options = PaymentOptions.of(request)
        try:
            offer = self._select(required, request, options)
        except TM402Error:
            return
        self._remember(request, options, required, offer)

    def challenge_for(self, request: httpx.Request) -> PaymentRequired | None:
        """The remembered challenge ``request`` would be paid against (warm), if any: its price, no round trip."""
        return self._remembered(request, PaymentOptions.of(request)) if self.warm else None

    def reserve(self, required: PaymentRequired, calls: int, request: httpx.Request) -> Reservation:
        """Hold ``calls`` payments of what ``request`` would pay for ``required`` against every cap.

        The request's :class:`PaymentOptions` choose the asset and per-call cap as its payments
        will; ``max_cost`` caps the plan's total. A daily cap reads the ledger in the same
        transaction order as signing does. Raises BudgetExceeded; nothing is held then.
        """
        options = PaymentOptions.of(request)
        policy = self.policy
        with policy.lock:
            offer = self._select(required, request, options)
            needs = self.ledger is not None and policy.needs_ledger(offer)
            ctx = self.ledger.transaction() if needs and self.ledger is not None else nullcontext(None)
            with ctx as tx:
                return policy.reserve(offer, calls, max_per_call=options.max_per_call, max_cost=options.max_cost, tx=tx)

    def pending_for(self, request: httpx.Request) -> Payment | None:
        """The signed payment whose answer was lost for this exact request, if any."""
        with self._lock:
            found = self._unresolved.get(_replay_key(request))
        return found if found is not None and found.status in _OPEN else None

    def _select(self, required: PaymentRequired, request: httpx.Request, options: PaymentOptions) -> Offer:
        return self.policy.select(
            required,
            origin=_origin(request.url),
            pay_with=options.pay_with,
            max_per_call=options.max_per_call,
            reservation=options.reservation,
            schemes=options.schemes,
        )

    def _sign_payment(
        self, required: PaymentRequired, request: httpx.Request, options: PaymentOptions, *, warm: bool
    ) -> Payment:
        """Select an offer, check the caps, sign, and write the pending row: all under one lock."""
        origin = _origin(request.url)
        policy = self.policy
        with policy.lock:
            offer = self._select(required, request, options)
            self._check_clock(offer)
            sponsored: dict[str, Any] | None = None
            if offer.transfer == "permit2":
                # Outside the ledger transaction: a chain read (cold only) never holds the ledger's lock.
                try:
                    self._require_permit2_allowance(offer)
                except Permit2AllowanceRequired:
                    # The server sponsors the approval's gas: sign it (never send it) into the payload.
                    sponsored = self._sponsored_approval(required, offer)
                    if sponsored is None:
                        raise
            ctx = self.ledger.transaction() if self.ledger is not None else nullcontext(None)
            # The payment-identifier (when the server advertises it) is decided before signing: a
            # declaration no valid id can meet is refused here, with nothing signed.
            extensions, identifier = payment_extensions(required)
            if sponsored is not None:
                extensions = {**(extensions or {}), **sponsored}
            with ctx as tx:
                policy.authorize(
                    offer,
                    tx,
                    max_per_call=options.max_per_call,
                    max_cost=options.max_cost,
                    reservation=options.reservation,
                )
                auth: Authorization | Permit2Authorization
                if offer.transfer == "permit2":
                    auth, signature = sign_permit2(
                        self.wallet, offer.requirements, valid_for=policy.authorization_seconds
                    )
                    nonce = auth.nonce_hex  # the ledger and the replay memory name every nonce in hex
                else:
                    auth, signature = sign_authorization(
                        self.wallet,
                        offer.requirements,
                        extra_assets=policy.extra_assets,
                        valid_for=policy.authorization_seconds,
                    )
                    nonce = auth.nonce
                payload = build_payment_payload(required, offer.requirements, auth, signature, extensions=extensions)
                record = PaymentRecord(
                    amount=offer.amount,
                    asset=offer.asset.address,
                    network=offer.network.caip2,
                    pay_to=offer.requirements.pay_to,
                    payer=self.wallet.address,
                    nonce=nonce,
                    valid_before=auth.valid_before,
                    scheme=offer.requirements.scheme,
                    decimals=offer.asset.decimals,
                    asset_symbol=offer.asset.symbol,
                    method=request.method,
                    url=str(request.url),
                    endpoint=self._endpoint_of(request) if self._endpoint_of else request.url.path,
                    x402_version=required.x402_version,
                    session_id=self.session_id,
                    cell_id=self._cell_id() if self._cell_id else None,
                    usd=offer.usd,
                    transfer=offer.transfer,
                    identifier=identifier,
                )
                if tx is not None:
                    tx.insert_payment(record)
            scopes = policy.commit(offer, origin, reservation=options.reservation)
            if offer.transfer == "permit2":
                self._draw_allowance(offer)
        self.stats["signed"] += 1
        if warm:
            self.stats["warm_hits"] += 1
        payment = Payment(
            record,
            offer,
            payload.header_name,
            payload.encode(),
            payload,
            warm=warm,
            scopes=tuple(scopes or ()),
            in_flight=True,
            reservation=options.reservation,
        )
        if sponsored is not None:
            payment.sponsored_approval = _sponsored_tx_hash(sponsored)
        self._emit("signed", payment, request, _sponsored_note(offer) if sponsored is not None else None)
        return payment

    # -- Permit2 allowance ------------------------------------------------------------------------
    def _allowance_key(self, offer: Offer) -> tuple[str, str]:
        return offer.requirements.asset.lower(), self.wallet.address.lower()

    def _require_permit2_allowance(self, offer: Offer) -> None:
        """Refuse before signing when the chain says the wallet's allowance to Permit2 is too small.

        Without a chain that reads allowances (or when the read fails) the payment is signed and the
        server decides: it answers ``permit2_allowance_required`` (see :meth:`_check_allowance_refusal`).
        """
        read = getattr(self.chain, "allowance", None)
        if read is None:
            return
        key = self._allowance_key(offer)
        with self._lock:
            known = self._allowances.get(key)
        if known is not None and known >= offer.amount:
            return
        try:
            allowance = int(read(offer.requirements.asset, self.wallet.address, PERMIT2_ADDRESS))
        except TM402Error:
            return  # the chain could not say; the server checks it anyway
        with self._lock:
            if allowance >= offer.amount:
                self._allowances[key] = allowance
                return
            self._allowances.pop(key, None)
        raise self._allowance_error(offer, allowance=allowance)

    def _sponsored_approval(self, required: PaymentRequired, offer: Offer) -> dict[str, Any] | None:
        """The ``erc20ApprovalGasSponsoring`` extension carrying a signed, unsent approval of exactly
        this payment's amount, when the v2 challenge advertises it and the chain can give the
        wallet's nonce and fees; else None (the payment is refused as before, with the fix)."""
        declared = required.extensions if required.x402_version >= 2 else None
        if not declared or ERC20_APPROVAL_GAS_SPONSORING not in declared or offer.upto:
            return None
        reader = self.chain
        if not all(hasattr(reader, m) for m in _SPONSOR_READS):
            return None
        try:
            return gas_sponsoring_extensions(
                self.wallet,
                cast(ChainReader, reader),
                network=offer.network,
                token=offer.requirements.asset,
                required=offer.amount,
                declared=declared,
            )
        except TM402Error:
            return None  # the chain could not say (nonce, fees, chain id): refuse with the fix

    def forget_allowance(self, token: str | None = None) -> None:
        """Drop the cached Permit2 allowance of ``token`` (every token when None): the next Permit2
        payment reads the chain again. Called after the wallet approves Permit2 anew."""
        with self._lock:
            for key in [k for k in self._allowances if token is None or k[0] == token.lower()]:
                del self._allowances[key]

    def _draw_allowance(self, offer: Offer) -> None:
        """What a signed payment may take from the cached allowance (an unlimited one never shrinks)."""
        key = self._allowance_key(offer)
        with self._lock:
            known = self._allowances.get(key)
            if known is not None and known != _UINT256_MAX:
                self._allowances[key] = known - offer.amount

    def _allowance_error(self, offer: Offer, *, allowance: int | None = None, signed: bool = False) -> TM402Error:
        asset = offer.asset
        fmt = lambda v: format_amount(v, asset.decimals, asset.symbol)  # noqa: E731
        have = (
            f"the wallet's allowance is {fmt(allowance)}"
            if allowance is not None
            else "the server found the wallet's allowance too small"
        )
        name = asset.symbol.lower()
        return Permit2AllowanceRequired(
            f"{offer.display} is paid through Permit2, which can move only what the wallet approved it to "
            f"(permit2_allowance_required: a one-time ERC-20 approve of the Permit2 contract {PERMIT2_ADDRESS} "
            f"for {asset.symbol} is missing or too small); {have}, this payment needs {fmt(offer.amount)}",
            hint=f'approve it once: s.approve_permit2("{name}", N) or %tm approve {name} N (in the sandbox, the '
            'faucet with "approve_permit2": true); '
            + (
                "the refused authorization was signed but never settled; nothing more was signed"
                if signed
                else "nothing was signed"
            ),
            setting="permit2_allowance",
            asset=asset.symbol,
            allowance_atomic=allowance,
            needed_atomic=offer.amount,
        )

    def _check_allowance_refusal(self, payment: Payment, response: httpx.Response, paid: httpx.Request) -> None:
        """A Permit2 payment refused for want of an allowance (HTTP 412 in v2, a 402 naming it in v1):
        the row is failed (it never settled), the cached allowance is forgotten, nothing is retried."""
        if payment.record.transfer != "permit2" or response.status_code not in (402, 412):
            return
        try:
            reason = self._rejection_reason(response)
        except httpx.ResponseNotRead:  # an oversized 412 body, left unread
            reason = None
        if reason != PERMIT2_ALLOWANCE_REQUIRED and not (response.status_code == 412 and reason is None):
            return
        with self._lock:
            self._allowances.pop(self._allowance_key(payment.offer), None)
        self._mark(payment, PaymentStatus.FAILED, paid, reason=PERMIT2_ALLOWANCE_REQUIRED)
        raise _with_payment_attached(payment, self._allowance_error(payment.offer, signed=True))

    @staticmethod
    def _with_payment(request: httpx.Request, payment: Payment) -> httpx.Request:
        """A copy of ``request`` carrying the payment, marked with the origin it was signed for."""
        headers = httpx.Headers(request.headers)
        headers[payment.header_name] = payment.header_value
        # Browsers need this to read the receipt; harmless elsewhere (the reference clients send it).
        headers["Access-Control-Expose-Headers"] = "PAYMENT-RESPONSE,X-PAYMENT-RESPONSE"
        return httpx.Request(
            request.method,
            request.url,
            headers=headers,
            content=request.content,
            extensions={**request.extensions, _PAID_MARK: _origin(request.url)},
        )

    def _receipt_or_none(self, response: httpx.Response) -> SettlementResponse | None:
        try:
            return read_receipt(response.headers)
        except X402ProtocolError:
            return None

    def _rejection_reason(self, response: httpx.Response) -> str | None:
        receipt = self._receipt_or_none(response)
        if receipt is not None and receipt.error_reason:
            return receipt.error_reason
        try:
            required = parse_challenge(response.headers, response.content)
            return required.error
        except X402ProtocolError:
            pass
        try:
            body = response.json()
        except Exception:
            return None
        if isinstance(body, dict):
            for key in ("errorReason", "invalidReason", "error", "message"):
                if isinstance(body.get(key), str):
                    return body[key]
        return None

    def _payment_failed(
        self,
        payment: Payment,
        response: httpx.Response,
        receipt: SettlementResponse | None,
        reason: str | None,
        *,
        learned: bool = False,
    ) -> PaymentFailed:
        settle_failed = receipt is not None and not receipt.success
        what = "settlement failed" if settle_failed else "payment was rejected"
        hint = hint_for_reason(reason)
        if payment.warm and not settle_failed and not _recurs(reason):
            what = "the payment signed for the remembered terms was rejected"
            hint = (
                "run it again: the server's current terms are remembered now, and it pays once"
                if learned
                else "the server's new terms cannot be paid under this policy; the next call says why"
            )
        until = time.strftime("%H:%M:%S UTC", time.gmtime(payment.record.valid_before))
        return _with_payment_attached(
            payment,
            PaymentFailed(
                f"{what} for {payment.display} at {response.request.url.path}: {reason or 'no reason given'}",
                reason=reason,
                receipt=receipt,
                response=response,
                hint=(hint + "; " if hint else "")
                + f"nothing more was signed; the refused authorization counts against your caps until {until}",
            ),
        )

    def _conclude(
        self, payment: Payment, response: httpx.Response, request: httpx.Request, *, replayed: bool = False
    ) -> None:
        """Record the outcome of a paid request that did not get a 402.

        ``replayed``: this header may have reached the server before, so only a receipt of
        success decides it; any refusal leaves it unknown (the first attempt may have settled).
        """
        response.extensions = {**response.extensions, EXT_PAYMENT: payment}
        try:
            receipt = read_receipt(response.headers)
        except X402ProtocolError as exc:
            self._mark(payment, PaymentStatus.UNKNOWN, request, reason=f"malformed receipt: {exc.message}")
            raise ReceiptError(
                f"the server answered {response.status_code} but its settlement receipt is malformed ({exc.message})",
                response=response,
                hint="the payment is recorded as unknown; the data is on the error's .response",
            ) from None
        if receipt is not None:
            payment.receipt = receipt
            response.extensions[EXT_RECEIPT] = receipt
            if receipt.success:
                settled = self._settle_upto(payment, receipt, request) if payment.ceiling is not None else None
                self._mark(
                    payment,
                    PaymentStatus.SETTLED,
                    request,
                    tx=receipt.transaction,
                    discrepancy=self._discrepancy(payment, receipt),
                    settled_amount=settled,
                )
                return
            reason = receipt.error_reason or "settlement failed"
            if reason == SETTLEMENT_PENDING_REASON:
                # Delivered, and the transfer was broadcast but is not confirmed yet: counted, open.
                self._mark_pending(payment, request, receipt)
                return
            if replayed:
                raise self._still_unknown(payment, request, reason)
            self._mark(payment, PaymentStatus.FAILED, request, reason=reason)
            raise self._payment_failed(payment, response, receipt, receipt.error_reason)
        if response.status_code == 429 or response.status_code >= 500:
            # Rate limited or a server error: nothing settled *yet*, but the server holds a
            # signed authorization that stays valid until validBefore. So the payment is not
            # given up: it stays unknown, and re-sending this request replays the same
            # header (same nonce), which can settle at most once. Never a second signature.
            self._mark(
                payment,
                PaymentStatus.UNKNOWN,
                request,
                reason=f"HTTP {response.status_code} before settlement; a retry replays this payment",
            )
            with self._lock:
                self._unresolved[_replay_key(request)] = payment
        elif response.status_code == 409 and payment.record.identifier:
            # payment-identifier: the server holds this id bound to another payload. Ours was not
            # processed; signing again would only meet the same id's conflict. A clear error instead.
            reason = "payment_identifier_conflict"
            if replayed:
                raise self._still_unknown(payment, request, reason)
            self._mark(
                payment,
                PaymentStatus.FAILED,
                request,
                reason=f"HTTP 409: payment-identifier {payment.record.identifier} is bound to another payment",
            )
            raise self._payment_failed(payment, response, None, reason)
        elif response.status_code >= 400 and replayed:
            # A refused replay (400, 403, 409...) says nothing about the first attempt.
            self._mark(
                payment,
                PaymentStatus.UNKNOWN,
                request,
                reason=f"answer lost; its replay got HTTP {response.status_code}: it may have settled",
            )
        elif response.status_code >= 400:
            # The handler refused the request: reference servers settle only when it succeeds.
            # Still, the server holds the signature until it expires: failed, but reserved till then.
            self._mark(
                payment, PaymentStatus.FAILED, request, reason=f"HTTP {response.status_code}: the server did not settle"
            )
        else:
            self._mark(payment, PaymentStatus.UNKNOWN, request, reason="answered without a settlement receipt")
            # Its body may yet be cut off (the answer lost): re-sending the request replays this
            # header, which a payment-identifier server answers from its cache, never a new one.
            with self._lock:
                self._unresolved[_replay_key(request)] = payment

    def _settle_upto(self, payment: Payment, receipt: SettlementResponse, request: httpx.Request) -> int | None:
        """An upto payment settled: count what its receipt says moved and give the rest of the
        ceiling back to the caps. Returns the settled amount to record (None: counted the ceiling)."""
        ceiling = payment.record.amount
        outcome = upto_outcome(ceiling, receipt)
        if payment.status in FINAL:
            return None  # already concluded (a late duplicate): never give back twice
        if outcome.discrepancy is not None:
            warnings.warn(
                f"the receipt for {request.url.path} claims more than the signed ceiling "
                f"({payment.display}): {outcome.discrepancy}; recorded as a discrepancy",
                RuntimeWarning,
                stacklevel=2,
            )
        payment.settled_amount = outcome.settled
        if outcome.settled == 0:
            # Nothing moved (no transaction): the Permit2 nonce is unused, so the facilitator the
            # witness names can still settle up to the ceiling until the deadline. Reserved till
            # then, as a refused payment is; the ledger counts the row the same way.
            payment.released = True
            self.policy.release(payment.offer, payment.scopes, after=may_settle_until(payment.record.valid_before))
            return 0
        self.policy.settle_upto(payment.offer, outcome.counted, payment.scopes, reservation=payment.reservation)
        return outcome.settled

    def _discrepancy(self, payment: Payment, receipt: SettlementResponse) -> str | None:
        """What a receipt of success says that differs from what we signed, or None.

        The ledger keeps what we signed; a disagreeing receipt is recorded beside it, never merged.
        """
        found: list[str] = []
        if receipt.payer and receipt.payer.lower() != self.wallet.address.lower():
            found.append(f"payer {receipt.payer[:42]} (we signed as {self.wallet.address})")
        if receipt.network:
            try:
                same = get_network(receipt.network) == payment.offer.network
            except X402ProtocolError:
                same = False
            if not same:
                found.append(f"network {receipt.network[:40]!r} (we signed for {payment.offer.network.v1_name})")
        if payment.ceiling is not None:  # upto: settling less than the ceiling is the point; more is not
            if receipt.amount is not None and receipt.amount > payment.ceiling:
                found.append(
                    f"amount {receipt.amount}, over the ceiling we signed ({payment.ceiling}): counted the ceiling"
                )
        elif receipt.amount is not None and receipt.amount != payment.record.amount:
            found.append(f"amount {receipt.amount} (we signed {payment.record.amount})")
        return "receipt names " + "; ".join(found) if found else None

    def _mark(
        self,
        payment: Payment,
        status: PaymentStatus,
        request: httpx.Request,
        *,
        reason: str | None = None,
        tx: str | None = None,
        discrepancy: str | None = None,
        settled_amount: int | None = None,
    ) -> None:
        previous = payment.status
        if previous in FINAL and status != previous:
            return  # settled and failed are final: a late answer never rewrites them
        payment.status = status
        payment.record.status = status
        payment.record.tx = tx or payment.record.tx
        payment.record.error = reason
        payment.discrepancy = discrepancy or payment.discrepancy
        if self.ledger is not None:
            upto = {} if settled_amount is None else {"settled_amount": settled_amount}
            self.ledger.update_payment(payment.id, status, tx=tx, error=reason, discrepancy=discrepancy, **upto)
        if status == PaymentStatus.FAILED and not payment.released:
            payment.released = True
            # Refused is not void: whoever holds the signature can settle it until validBefore.
            # It stays counted (reserved) until then, with a margin for clock skew.
            self.policy.release(payment.offer, payment.scopes, after=may_settle_until(payment.record.valid_before))
        if status not in _OPEN:
            with self._lock:
                for k, v in list(self._unresolved.items()):
                    if v is payment:
                        del self._unresolved[k]
        self._emit(status, payment, request, reason)

    def _emit(self, kind: str, payment: Payment, request: httpx.Request, reason: str | None = None) -> None:
        event = PaymentEvent(kind, payment, str(request.url), reason)
        for listener in list(self.listeners):
            with suppress(Exception):
                listener(event)

    def __repr__(self) -> str:
        return f"X402Auth(wallet={self.wallet.address}, policy={self.policy!r})"


def _declared_size(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _read_bounded(response: httpx.Response) -> bytes | None:
    """A 402 body, read only up to the 16 KB limit: the bytes, or None when it is longer.

    A hostile server may send megabytes; reading stops at the limit, and what is past it
    is never read (the connection is closed instead of drained).
    """
    declared = _declared_size(response)
    if declared is not None and declared > MAX_MESSAGE_BYTES:
        response.close()
        return None
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_MESSAGE_BYTES:
            response.close()
            return None
    return bytes(body)


async def _aread_bounded(response: httpx.Response) -> bytes | None:
    """:func:`_read_bounded` for an async response."""
    declared = _declared_size(response)
    if declared is not None and declared > MAX_MESSAGE_BYTES:
        await response.aclose()
        return None
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_MESSAGE_BYTES:
            await response.aclose()
            return None
    return bytes(body)


def _keep_challenge_body(response: httpx.Response, body: bytes | None) -> None:
    """Keep what was read of a 402 body, or refuse a body past the limit.

    A v2 challenge travels in the ``PAYMENT-REQUIRED`` header, so an oversized body there
    is dropped unread; a v1 challenge *is* the body, so an oversized one is refused.
    """
    if body is None and PAYMENT_REQUIRED not in response.headers:
        raise X402ProtocolError(
            f"402 body over the {MAX_MESSAGE_BYTES // 1024} KB limit",
            hint="refused without reading the rest; nothing was signed",
        )
    # httpx keeps a read body in ``_content`` and reads the response again once the auth
    # flow has moved on; giving it the bytes we read makes that a no-op instead of a drain.
    response._content = body or b""


def _keep_412_body(response: httpx.Response, body: bytes | None) -> None:
    """Keep a 412's body (x402 v2 refuses a Permit2 payment without allowance with 412) when it was
    read whole; an oversized one is left unread, as it was never ours to parse."""
    if body is not None:
        response._content = body


def _recurs(reason: str | None) -> bool:
    """Refusals that a fresh signature of the same price would meet again."""
    low = (reason or "").lower()
    return "insufficient" in low or "balance" in low


def _with_payment_attached(payment: Payment, exc: _E) -> _E:
    """Errors carry the payment they are about, so callers can account for it."""
    # errors.py sits below x402 and cannot name Payment: the attribute is set here, on demand.
    exc.payment = payment  # type: ignore[attr-defined]
    return exc


def receipt(response: httpx.Response) -> SettlementResponse | None:
    """The decoded settlement receipt of a paid response (tx, payer, network), or None."""
    found = response.extensions.get(EXT_RECEIPT)
    if found is not None:
        return found
    try:
        return read_receipt(response.headers)
    except X402ProtocolError:
        return None


def payment_of(response: httpx.Response) -> Payment | None:
    """The :class:`Payment` made for ``response``, if any."""
    return response.extensions.get(EXT_PAYMENT)


def strip_payment_on_redirect(request: httpx.Request) -> None:
    """A request hook: a payment header never follows a redirect to another origin.

    httpx follows redirects (``follow_redirects=True``) below the auth flow and copies every
    header but ``Authorization`` to the next hop. This hook does for the payment header what
    httpx does for ``Authorization``::

        httpx.Client(auth=auth, follow_redirects=True, event_hooks={"request": [strip_payment_on_redirect]})

    The ready-made :func:`~tm402_nb.x402.client.paying_client` installs it.
    """
    signed_for = request.extensions.get(_PAID_MARK)
    if isinstance(signed_for, str) and _origin(request.url) != signed_for:
        for name in (X_PAYMENT, PAYMENT_SIGNATURE):
            request.headers.pop(name, None)


async def astrip_payment_on_redirect(request: httpx.Request) -> None:
    """:func:`strip_payment_on_redirect` for an ``httpx.AsyncClient``'s request hooks."""
    strip_payment_on_redirect(request)
