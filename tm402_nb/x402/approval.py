"""The one-time ERC-20 approval to Permit2: a signed EIP-1559 transaction, sent by the payer
or handed to a facilitator that sponsors its gas.

A token without EIP-3009 (Token Metrics' TMAI) is paid through Permit2, which moves the
payer's tokens only up to the allowance the payer gave it with ``approve(Permit2, amount)``.
That approval is an ordinary transaction: it costs gas, paid in the chain's native ETH.

:func:`plan_approval` reads what the transaction needs over JSON-RPC (chain id, the
sender's pending nonce, fees from the latest block's ``baseFeePerGas`` and
``eth_maxPriorityFeePerGas``, ``eth_estimateGas`` under a cap, the ETH balance);
:func:`send_approval` refuses when the ETH cannot pay the most the gas may cost, signs,
sends, waits for the receipt with a bounded poll and reads the allowance back.

The transaction is encoded here (RLP of an EIP-1559 type-2 transaction, 30 lines) and
signed with :meth:`Wallet.sign_digest`, so the key never leaves the wallet; the tests
check the bytes are exactly what eth-account's ``sign_transaction`` makes of the same fields.

Gas sponsoring (x402 extensions): a challenge may advertise ``erc20ApprovalGasSponsoring``
(the facilitator broadcasts the payer's signed, unsent approval and pays its gas) —
:func:`gas_sponsoring_extensions` signs that approval. ``eip2612GasSponsoring`` (an
EIP-2612 ``permit`` to Permit2 instead of a transaction) needs a token with EIP-2612;
TMAI, the reason Permit2 is used here at all, has none (a plain ``ERC20Upgradeable``:
no EIP-3009, no ``permit``, no EIP-712 domain), and USDC is paid by EIP-3009, so it is not
signed here: a challenge offering only that extension is paid after a sent approval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_hash.auto import keccak

from ..errors import ConfigurationError, TM402Error, WalletError, X402ProtocolError
from ..money import format_amount, to_atomic
from .chain import ChainReader
from .networks import KNOWN_ASSETS, Asset, Network, get_network, is_address, same_address
from .permit2 import APPROVE, PERMIT2_ADDRESS
from .wallet import Wallet, recover_address, to_checksum

__all__ = [
    "ERC20_APPROVAL_GAS_SPONSORING",
    "MAX_UINT256",
    "Allowance",
    "ApprovalFailed",
    "ApprovalPlan",
    "ApprovalResult",
    "ApprovalTx",
    "InsufficientGas",
    "approval_amount",
    "approve_calldata",
    "gas_sponsoring_extensions",
    "plan_approval",
    "read_allowance",
    "resolve_token",
    "send_approval",
    "sign_sponsored_approval",
]

MAX_UINT256 = 2**256 - 1
#: The most gas an ``approve`` may be estimated at: a plain ERC-20 approve is ~46,000 (a
#: fresh storage slot), a proxied one a few thousand more; far past that is not an approve.
GAS_CAP = 150_000
#: Gas limit of a sponsored approval, whose gas cannot be estimated by a wallet holding no
#: ETH (the official SDK's ``ERC20_APPROVE_GAS_LIMIT``).
SPONSORED_GAS = 70_000
#: Fees of a sponsored approval when the RPC cannot say (the SDK's defaults: 1 and 0.1 gwei).
SPONSORED_MAX_FEE = 1_000_000_000
SPONSORED_PRIORITY_FEE = 100_000_000
#: The payload extension keys (x402 v2 ``extensions``).
ERC20_APPROVAL_GAS_SPONSORING = "erc20ApprovalGasSponsoring"
#: Receipt polls before giving up (Base makes a block every 2 s: 120 polls of 1 s is 4 minutes).
MAX_POLLS = 120
POLL_INTERVAL_S = 1.0

_ETH = 18


class InsufficientGas(WalletError):
    """The wallet's ETH cannot pay the most the approval's gas may cost. Nothing was sent."""


class ApprovalFailed(TM402Error):
    """The approval was sent but did not take effect (reverted, not mined in time, allowance unchanged)."""


# -- the transaction -----------------------------------------------------------------------------
def _rlp(item: bytes | int | list[Any]) -> bytes:
    """Recursive Length Prefix encoding of bytes, unsigned ints and lists of them."""
    if isinstance(item, list):
        body = b"".join(_rlp(x) for x in item)
        return _rlp_length(len(body), 0xC0) + body
    if isinstance(item, int):
        if item < 0:
            raise ValueError("RLP encodes unsigned integers only")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")  # 0 is the empty string
    if len(item) == 1 and item[0] < 0x80:
        return item
    return _rlp_length(len(item), 0x80) + item


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(raw)]) + raw


def approve_calldata(spender: str, amount: int) -> bytes:
    """ABI-encoded ``approve(address spender, uint256 amount)``."""
    if not is_address(spender):
        raise ValueError("spender must be an address")
    check_amount(amount)
    return bytes.fromhex(APPROVE[2:]) + bytes(12) + bytes.fromhex(spender[2:]) + amount.to_bytes(32, "big")


def check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ConfigurationError(f"an approval amount is an integer of atomic units, got {type(amount).__name__}")
    if amount <= 0:
        raise ConfigurationError("an approval amount must be greater than 0")
    if amount > MAX_UINT256:
        raise ConfigurationError("an approval amount must fit a uint256 ('unlimited' is the largest)")


@dataclass(frozen=True)
class ApprovalTx:
    """An EIP-1559 (type 2) transaction calling ``approve(spender, amount)`` on ``token``."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    token: str
    data: bytes

    def _fields(self) -> list[Any]:
        return [
            self.chain_id,
            self.nonce,
            self.max_priority_fee_per_gas,
            self.max_fee_per_gas,
            self.gas,
            bytes.fromhex(self.token[2:]),
            0,  # value: an approve sends no ETH
            self.data,
            [],  # access list
        ]

    def digest(self) -> bytes:
        """What is signed: keccak(0x02 ‖ rlp(fields))."""
        return keccak(b"\x02" + _rlp(self._fields()))

    @property
    def max_gas_cost(self) -> int:
        """The most this transaction may cost in wei: gas limit × max fee per gas."""
        return self.gas * self.max_fee_per_gas

    def sign(self, wallet: Wallet) -> SignedTx:
        """The raw signed transaction (``0x02`` ‖ rlp(fields + [yParity, r, s])) and its hash."""
        digest = self.digest()
        sig = wallet.sign_digest(digest)
        r, s, y_parity = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64] - 27
        raw = b"\x02" + _rlp([*self._fields(), y_parity, r, s])
        if recover_address(digest, sig) != wallet.address:  # pragma: no cover - coincurve is deterministic
            raise WalletError("the approval's signature does not recover to the wallet")
        return SignedTx(raw, "0x" + keccak(raw).hex(), wallet.address)


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    tx_hash: str
    sender: str

    @property
    def raw_hex(self) -> str:
        return "0x" + self.raw.hex()


# -- which token, how much ----------------------------------------------------------------------------
def resolve_token(
    network: str | Network, token: str | Asset, extra_assets: tuple[Asset, ...] = (), *, decimals: int | None = None
) -> Asset:
    """The token to approve: ``"tmai"``/``"usdc"`` or the address of one the network knows (or
    the session configured), an :class:`Asset` given explicitly, or any address with its
    ``decimals`` given explicitly. Anything else is refused: an approval is to a contract the
    user meant, never a guess."""
    net = get_network(network)
    known = [a for a in (*extra_assets, *KNOWN_ASSETS) if a.network == net.caip2]
    if isinstance(token, Asset):
        if token.network != net.caip2:
            raise ConfigurationError(f"{token.symbol} ({token.address}) is on {token.network}, not {net.label}")
        return token
    text = str(token).strip()
    if is_address(text):
        found = next((a for a in known if same_address(a.address, text)), None)
        if found is not None:
            return found
        if decimals is None:
            raise ConfigurationError(
                f"{text} is not a token tm402-nb knows on {net.label} "
                f"({', '.join(f'{a.symbol} {a.address}' for a in known) or 'none'})",
                hint="check the address; to approve it anyway, give its decimals explicitly (decimals=18)",
            )
        if not 0 <= decimals <= 36:
            raise ConfigurationError(f"decimals must be between 0 and 36, got {decimals}")
        return Asset("ERC20", to_checksum(text), net.caip2, decimals, None, None, False, False)
    found = next((a for a in known if a.symbol.lower() == text.lower()), None)
    if found is None:
        names = ", ".join(sorted({a.symbol.lower() for a in known})) or "none"
        raise ConfigurationError(f"unknown asset {text[:40]!r} on {net.label}", hint=f"one of {names}, or an address")
    return found


def approval_amount(amount: object, decimals: int) -> int:
    """Display units (``"50"``, ``Decimal("0.5")``) or ``"unlimited"`` → atomic units, checked."""
    if isinstance(amount, str) and amount.strip().lower() in ("unlimited", "max"):
        return MAX_UINT256
    if isinstance(amount, float):
        amount = Decimal(repr(amount))
    if not isinstance(amount, (str, int, Decimal)) or isinstance(amount, bool):
        raise ConfigurationError(f"an approval amount is a number or 'unlimited', got {type(amount).__name__}")
    atomic = to_atomic(amount, decimals, what="amount")
    check_amount(atomic)
    return atomic


def amount_text(amount: int, token: Asset) -> str:
    return f"unlimited {token.symbol}" if amount == MAX_UINT256 else format_amount(amount, token.decimals, token.symbol)


def eth_text(wei: int) -> str:
    return format_amount(wei, _ETH, "ETH")


@dataclass(frozen=True)
class Allowance:
    """What Permit2 may move of ``owner``'s ``token`` (ERC-20 ``allowance(owner, Permit2)``)."""

    token: Asset
    owner: str
    atomic: int

    @property
    def amount(self) -> Decimal:
        """In display units (exact)."""
        return Decimal(self.atomic).scaleb(-self.token.decimals)

    @property
    def unlimited(self) -> bool:
        return self.atomic == MAX_UINT256

    def __bool__(self) -> bool:
        return self.atomic > 0

    def __str__(self) -> str:
        if self.unlimited:
            held = f"unlimited {self.token.symbol}"
        else:
            held = (
                format_amount(self.atomic, self.token.decimals, self.token.symbol)
                if self
                else f"no {self.token.symbol}"
            )
        return f"Permit2 may move {held} of {self.owner} ({self.token.address})"

    __repr__ = __str__


def read_allowance(reader: ChainReader, token: Asset, owner: str) -> Allowance:
    return Allowance(token, owner, reader.allowance(token.address, owner, PERMIT2_ADDRESS))


# -- plan, send, confirm ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApprovalPlan:
    """What :func:`send_approval` will send, and what the chain said when it was planned."""

    network: Network
    token: Asset
    owner: str
    amount: int
    tx: ApprovalTx
    eth_balance: int
    current_allowance: int
    estimated_gas: int

    @property
    def spender(self) -> str:
        return PERMIT2_ADDRESS

    @property
    def max_gas_cost(self) -> int:
        return self.tx.max_gas_cost

    def lines(self, *, sent: bool = False) -> list[str]:
        """What will be sent (``sent``: what was sent, without the balances read before)."""
        gwei = Decimal(self.tx.max_fee_per_gas).scaleb(-9)
        now = amount_text(self.current_allowance, self.token) if self.current_allowance else "none"
        out = [
            f"token      {self.token.symbol} {self.token.address}",
            f"spender    Permit2 {PERMIT2_ADDRESS}",
            f"amount     {amount_text(self.amount, self.token)}" + ("" if sent else f" (allowance now: {now})"),
            f"gas        at most {eth_text(self.max_gas_cost)} ({self.tx.gas:,} gas at ≤ {gwei.normalize():f} gwei;"
            f" estimated {self.estimated_gas:,}), paid in ETH",
        ]
        if not sent:
            out.append(f"ETH        {eth_text(self.eth_balance)} in {self.owner}")
        return [*out, f"network    {self.network.label} (chain id {self.network.chain_id})"]


@dataclass(frozen=True)
class ApprovalResult:
    plan: ApprovalPlan
    tx_hash: str
    block: int | None
    gas_used: int
    gas_cost: int | None
    allowance: int

    def lines(self) -> list[str]:
        cost = f" ({eth_text(self.gas_cost)})" if self.gas_cost is not None else ""
        return [
            f"tx         {self.tx_hash}" + (f" (block {self.block})" if self.block is not None else ""),
            f"gas used   {self.gas_used:,}{cost}",
            f"allowance  Permit2 may now move {amount_text(self.allowance, self.plan.token)} of {self.plan.owner}",
        ]


def _check_chain(reader: ChainReader, net: Network) -> None:
    served = reader.chain_id()
    if served != net.chain_id:
        raise ConfigurationError(
            f"the RPC serves chain id {served}, not {net.label} ({net.chain_id}): the approval would be signed for"
            " one chain and sent to another",
            hint="point rpc_url / $TM402_RPC_URL at a node of the session's network",
        )


def plan_approval(
    reader: ChainReader, owner: str, network: str | Network, token: Asset, amount: int, *, gas_cap: int = GAS_CAP
) -> ApprovalPlan:
    """Read what ``approve(Permit2, amount)`` on ``token`` from ``owner`` needs; signs and sends nothing."""
    net = get_network(network)
    if token.network != net.caip2:
        raise ConfigurationError(f"{token.symbol} ({token.address}) is on {token.network}, not {net.label}")
    check_amount(amount)
    _check_chain(reader, net)
    data = approve_calldata(PERMIT2_ADDRESS, amount)
    estimated = reader.estimate_gas({"from": owner, "to": token.address, "data": "0x" + data.hex()})
    if estimated > gas_cap:
        raise ConfigurationError(
            f"the node estimates {estimated:,} gas for approve() on {token.address}, over the cap of {gas_cap:,}:"
            " that is not a plain ERC-20 approve",
            hint="check the token address; nothing was sent",
        )
    gas = min(gas_cap, max(estimated * 6 // 5, 21_000))  # 20% over the estimate, never past the cap
    priority = reader.max_priority_fee()
    max_fee = 2 * reader.base_fee() + priority  # holds through six full blocks of base-fee rises
    tx = ApprovalTx(net.chain_id, reader.transaction_count(owner), priority, max_fee, gas, token.address, data)
    return ApprovalPlan(
        network=net,
        token=token,
        owner=owner,
        amount=amount,
        tx=tx,
        eth_balance=reader.native_balance(owner),
        current_allowance=reader.allowance(token.address, owner, PERMIT2_ADDRESS),
        estimated_gas=estimated,
    )


def short_of_gas(plan: ApprovalPlan, balance: int | None = None) -> InsufficientGas | None:
    """The refusal to raise when ``balance`` (default: the planned one) cannot pay the gas, else None."""
    held = plan.eth_balance if balance is None else balance
    if held >= plan.max_gas_cost:
        return None
    return InsufficientGas(
        f"the approval may cost up to {eth_text(plan.max_gas_cost)} in gas and {plan.owner} holds"
        f" {eth_text(held)} on {plan.network.label}: gas is paid in ETH, not in {plan.token.symbol}",
        hint=f"send at least {eth_text(plan.max_gas_cost - held)} of {plan.network.label} ETH to {plan.owner};"
        " nothing was sent",
        needed_wei=plan.max_gas_cost,
        held_wei=held,
    )


def send_approval(
    reader: ChainReader,
    wallet: Wallet,
    plan: ApprovalPlan,
    *,
    max_polls: int = MAX_POLLS,
    poll_interval: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> ApprovalResult:
    """Sign and send the planned approval, wait for its receipt, read the allowance back.

    Refuses (sending nothing) when the wallet is not the planned owner or its ETH, read
    again now, cannot pay ``gas × maxFeePerGas``. The receipt is polled at most
    ``max_polls`` times ``poll_interval`` seconds apart; a transaction not mined by then is
    :class:`ApprovalFailed` with its hash (it may still be mined: read the allowance later).
    """
    if not same_address(wallet.address, plan.owner):
        raise ConfigurationError(f"the plan is for {plan.owner}, not this wallet ({wallet.address})")
    short = short_of_gas(plan, reader.native_balance(plan.owner))
    if short is not None:
        raise short
    signed = plan.tx.sign(wallet)
    sent = reader.send_raw_transaction(signed.raw)
    if sent.lower() != signed.tx_hash.lower():
        raise X402ProtocolError(f"the node answered transaction hash {sent}, not the signed one's {signed.tx_hash}")
    receipt = None
    for attempt in range(max(1, max_polls)):
        receipt = reader.receipt(signed.tx_hash)
        if receipt is not None:
            break
        if attempt + 1 < max_polls:
            sleep(poll_interval)
    if receipt is None:
        raise ApprovalFailed(
            f"approval {signed.tx_hash} was sent but not mined after {max_polls} polls",
            hint="it may still be mined: read the allowance again later before sending another",
            tx_hash=signed.tx_hash,
        )
    if _quantity(receipt.get("status")) != 1:
        raise ApprovalFailed(f"approval {signed.tx_hash} reverted on chain", tx_hash=signed.tx_hash)
    allowance = reader.allowance(plan.token.address, plan.owner, PERMIT2_ADDRESS)
    if allowance < plan.amount and plan.amount != MAX_UINT256:
        raise ApprovalFailed(
            f"approval {signed.tx_hash} was mined but the allowance reads {allowance}, not {plan.amount}",
            tx_hash=signed.tx_hash,
        )
    gas_used = _quantity(receipt.get("gasUsed")) or 0
    price = _quantity(receipt.get("effectiveGasPrice"))
    return ApprovalResult(
        plan=plan,
        tx_hash=signed.tx_hash,
        block=_quantity(receipt.get("blockNumber")),
        gas_used=gas_used,
        gas_cost=gas_used * price if price is not None else None,
        allowance=allowance,
    )


def _quantity(value: object) -> int | None:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16) if len(value) > 2 else 0
        except ValueError:
            return None
    return None


# -- gas sponsoring (x402 extensions) ---------------------------------------------------------------------
def sign_sponsored_approval(
    wallet: Wallet,
    token: str,
    chain_id: int,
    *,
    nonce: int,
    max_fee_per_gas: int = SPONSORED_MAX_FEE,
    max_priority_fee_per_gas: int = SPONSORED_PRIORITY_FEE,
    amount: int = MAX_UINT256,
) -> dict[str, str]:
    """The ``info`` of an ``erc20ApprovalGasSponsoring`` extension: ``approve(Permit2, amount)``
    signed but not sent, for the facilitator to broadcast (and fund the gas of) before settling."""
    if not is_address(token):
        raise ConfigurationError("the token to approve must be an address")
    tx = ApprovalTx(
        chain_id,
        nonce,
        min(max_priority_fee_per_gas, max_fee_per_gas),
        max_fee_per_gas,
        SPONSORED_GAS,
        to_checksum(token),
        approve_calldata(PERMIT2_ADDRESS, amount),
    )
    signed = tx.sign(wallet)
    return {
        "from": wallet.address,
        "asset": to_checksum(token),
        "spender": PERMIT2_ADDRESS,
        "amount": str(amount),
        "signedTransaction": signed.raw_hex,
        "version": "1",
    }


def gas_sponsoring_extensions(
    wallet: Wallet,
    reader: ChainReader | None,
    *,
    network: str | Network,
    token: str,
    required: int,
    declared: Mapping[str, Any] | None,
    amount: int | None = None,
) -> dict[str, Any] | None:
    """The extensions a Permit2 payment carries when the challenge offers to sponsor the approval.

    ``amount`` is what the approval approves: by default exactly ``required``. The official
    SDK's client approves ``2**256 - 1`` (unlimited) here; this one does not, because the user
    agreed to a payment, never to an approval: approving exactly what the payment moves gives
    Permit2 nothing beyond what the signed permit already spends, and as the facilitator pays
    the gas, a fresh approval for the next short payment costs the user nothing. (An unlimited
    one stays a deliberate act: ``s.approve_permit2(token, "unlimited")``, which the user sends.)

    ``declared`` is the challenge's ``extensions``. Returns None (add nothing) when it does
    not advertise ``erc20ApprovalGasSponsoring``, when there is no RPC to read the nonce and
    allowance from, or when Permit2's allowance already covers ``required``; else the
    declared extension with the signed approval as its ``info`` (the declared ``schema`` and
    other keys are kept, as the official clients merge them), keyed as the payload carries it.
    """
    if not declared or ERC20_APPROVAL_GAS_SPONSORING not in declared or reader is None:
        return None
    net = get_network(network)
    if reader.allowance(token, wallet.address, PERMIT2_ADDRESS) >= required:
        return None
    _check_chain(reader, net)
    try:
        priority = reader.max_priority_fee()
        fees = {"max_fee_per_gas": 2 * reader.base_fee() + priority, "max_priority_fee_per_gas": priority}
    except X402ProtocolError:  # no fee data: the SDK's defaults
        fees = {}
    approve = required if amount is None else amount
    check_amount(approve)
    if approve < required:
        raise ConfigurationError(f"a sponsored approval of {approve} cannot cover a payment of {required}")
    info = sign_sponsored_approval(
        wallet, token, net.chain_id, nonce=reader.transaction_count(wallet.address), amount=approve, **fees
    )
    entry = declared[ERC20_APPROVAL_GAS_SPONSORING]
    merged = dict(entry) if isinstance(entry, Mapping) else {}
    old_info = merged.get("info")
    merged["info"] = {**(old_info if isinstance(old_info, Mapping) else {}), **info}
    return {ERC20_APPROVAL_GAS_SPONSORING: merged}
