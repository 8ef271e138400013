"""The one-time ERC-20 approval to Permit2: the transaction's bytes, the checks before it is
sent, the bounded wait for its receipt, and the signed-but-unsent approval a facilitator can
sponsor. The bytes are checked against eth-account's own signing and decoding; the node is an
in-process fake (httpx.MockTransport) that records what it was sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import rlp
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes

from tm402_nb.errors import ConfigurationError, X402ProtocolError
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.x402.approval import (
    ERC20_APPROVAL_GAS_SPONSORING,
    GAS_CAP,
    MAX_UINT256,
    SPONSORED_GAS,
    ApprovalFailed,
    ApprovalTx,
    InsufficientGas,
    _rlp,
    approval_amount,
    approve_calldata,
    gas_sponsoring_extensions,
    plan_approval,
    resolve_token,
    send_approval,
    sign_sponsored_approval,
)
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.networks import TMAI_BASE, USDC_BASE_SEPOLIA, Asset
from tm402_nb.x402.permit2 import APPROVE, PERMIT2_ADDRESS
from tm402_nb.x402.wallet import Wallet

TMAI = SANDBOX_TMAI_BASE_SEPOLIA
CHAIN = 84532


def decode(raw: bytes) -> dict[str, Any]:
    """eth-account's reading of a signed typed transaction."""
    return TypedTransaction.from_bytes(HexBytes(raw)).as_dict()


# -- the transaction is exactly the intended call --------------------------------------------------
@pytest.mark.parametrize("amount", [1, 50 * 10**18, MAX_UINT256])
def test_the_signed_transaction_is_eth_accounts_own_and_decodes_to_the_call(amount):
    w = Wallet.create()
    tx = ApprovalTx(CHAIN, 7, 10**6, 21 * 10**6, 55_200, TMAI.address, approve_calldata(PERMIT2_ADDRESS, amount))
    signed = tx.sign(w)
    fields = {
        "type": 2,
        "chainId": CHAIN,
        "nonce": 7,
        "maxPriorityFeePerGas": 10**6,
        "maxFeePerGas": 21 * 10**6,
        "gas": 55_200,
        "to": TMAI.address,
        "value": 0,
        "data": "0x" + tx.data.hex(),
        "accessList": [],
    }
    reference = Account.sign_transaction(fields, w._export_key_hex())  # RFC 6979: same key, same bytes
    assert signed.raw == bytes(reference.raw_transaction) and signed.tx_hash == "0x" + reference.hash.hex()
    assert Account.recover_transaction(signed.raw_hex) == w.address == signed.sender
    got = decode(signed.raw)
    data = bytes(got["data"])
    assert got["chainId"] == CHAIN and got["nonce"] == 7 and got["value"] == 0 and got["gas"] == 55_200
    assert "0x" + bytes(got["to"]).hex() == TMAI.address.lower()
    assert "0x" + data[:4].hex() == APPROVE == "0x095ea7b3" and len(data) == 4 + 64
    assert "0x" + data[16:36].hex() == PERMIT2_ADDRESS.lower() and data[4:16] == bytes(12)
    assert int.from_bytes(data[36:68], "big") == amount


@pytest.mark.parametrize(
    "item", [b"", b"dog", b"\x00", b"\x7f", b"\x80", b"x" * 55, b"x" * 56, b"y" * 1024, 0, 15, 1024, 2**256 - 1]
)
def test_rlp_matches_the_reference_encoder(item):
    assert _rlp(item) == rlp.encode(item)
    assert _rlp([item, [item, []]]) == rlp.encode([item, [item, []]])


def test_rlp_long_list_and_negative():
    items = [b"z" * 30, b"z" * 30]  # a list body over 55 bytes
    assert _rlp(items) == rlp.encode(items)
    with pytest.raises(ValueError):
        _rlp(-1)


# -- what is refused before anything is asked of the chain ---------------------------------------
def test_amounts():
    assert approval_amount("50", 18) == 50 * 10**18
    assert approval_amount("unlimited", 18) == approval_amount("MAX", 6) == MAX_UINT256
    assert approval_amount(Decimal("0.5"), 6) == 500_000 and approval_amount(0.25, 6) == 250_000
    for bad in ("0", "-1", 0):
        with pytest.raises(ConfigurationError, match=r"greater than 0|negative"):
            approval_amount(bad, 18)
    assert approval_amount(str(MAX_UINT256), 0) == MAX_UINT256
    with pytest.raises(ConfigurationError, match=r"2\*\*256 - 1"):
        approval_amount(str(2**256), 0)
    with pytest.raises(ConfigurationError):
        approval_amount(True, 6)
    with pytest.raises(ConfigurationError):
        approval_amount("lots", 6)
    with pytest.raises(ConfigurationError, match="uint256"):
        approve_calldata(PERMIT2_ADDRESS, 2**256)


def test_which_token():
    assert resolve_token("base-sepolia", "tmai", (TMAI,)) is TMAI
    assert resolve_token("base-sepolia", "USDC") == USDC_BASE_SEPOLIA
    assert resolve_token("base-sepolia", USDC_BASE_SEPOLIA.address.lower()) == USDC_BASE_SEPOLIA
    assert resolve_token("base", "tmai") == TMAI_BASE
    with pytest.raises(ConfigurationError, match="unknown asset 'doge'"):
        resolve_token("base-sepolia", "doge")
    with pytest.raises(ConfigurationError, match="unknown asset 'tmai'"):
        resolve_token("base-sepolia", "tmai")  # Base Sepolia has no TMAI unless the session configured one
    other = "0x" + "12" * 20
    with pytest.raises(ConfigurationError, match="not a token tm402-nb knows") as info:
        resolve_token("base", other)
    assert "decimals" in info.value.hint
    given = resolve_token("base", other, decimals=8)  # given explicitly: taken
    assert given.decimals == 8 and given.address.lower() == other and given.network == "eip155:8453"
    with pytest.raises(ConfigurationError, match="not Base"):
        resolve_token("base", TMAI)  # an Asset of another network
    assert resolve_token("base", Asset("X", other, "eip155:8453", 6, None, None)).symbol == "X"


# -- a fake node ------------------------------------------------------------------------------------------
class Node:
    """JSON-RPC answers by method; records every call."""

    def __init__(self, **overrides: Any) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.sent: list[str] = []
        self.allowance = 0
        self.answers: dict[str, Any] = {
            "eth_chainId": hex(CHAIN),
            "eth_getTransactionCount": "0x3",
            "eth_maxPriorityFeePerGas": hex(10**6),
            "eth_gasPrice": hex(11 * 10**6),
            "eth_getBlockByNumber": {"number": "0x10", "baseFeePerGas": hex(10**7)},
            "eth_estimateGas": hex(46_000),
            "eth_getBalance": hex(10**16),
            "eth_getTransactionReceipt": lambda: {
                "status": "0x1",
                "gasUsed": hex(46_000),
                "effectiveGasPrice": hex(11 * 10**6),
                "blockNumber": "0x11",
            },
        } | overrides

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        method, params = body["method"], body["params"]
        self.calls.append((method, params))
        if method == "eth_call":
            return self._ok(body, hex(self.allowance))
        if method == "eth_sendRawTransaction":
            self.sent.append(params[0])
            answer = self.answers.get(method)
            if answer is None:
                raw = bytes.fromhex(params[0][2:])
                self.allowance = int.from_bytes(bytes(decode(raw)["data"])[36:68], "big")
                return self._ok(body, "0x" + keccak(raw).hex())
            return self._ok(body, answer)
        answer = self.answers.get(method)
        if isinstance(answer, Exception):
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601}})
        return self._ok(body, answer() if callable(answer) else answer)

    @staticmethod
    def _ok(body: dict[str, Any], result: Any) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": result})

    def reader(self) -> ChainReader:
        return ChainReader("http://node.invalid", transport=httpx.MockTransport(self.handle))

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


def test_plan_reads_nonce_fees_gas_and_balance_and_sends_nothing():
    node = Node()
    w = Wallet.create()
    plan = plan_approval(node.reader(), w.address, "base-sepolia", TMAI, 5 * 10**18)
    tx = plan.tx
    assert (tx.chain_id, tx.nonce, tx.max_priority_fee_per_gas) == (CHAIN, 3, 10**6)
    assert tx.max_fee_per_gas == 2 * 10**7 + 10**6 and tx.gas == 46_000 * 6 // 5 and plan.estimated_gas == 46_000
    assert plan.max_gas_cost == tx.gas * tx.max_fee_per_gas and plan.eth_balance == 10**16
    assert node.sent == [] and "eth_sendRawTransaction" not in node.methods()
    (estimate,) = [p for m, p in node.calls if m == "eth_estimateGas"]
    assert estimate[0]["to"] == TMAI.address and estimate[0]["data"].startswith(APPROVE)
    assert [p[1] for m, p in node.calls if m == "eth_getTransactionCount"] == ["pending"]
    text = "\n".join(plan.lines())
    assert "Permit2 0x000000000022D473030F116dDEE9F6B43aC78BA3" in text and "5.00 TMAI" in text
    assert "paid in ETH" in text and "Base Sepolia (chain id 84532)" in text


def test_a_node_of_another_chain_is_refused():
    node = Node()  # serves Base Sepolia
    with pytest.raises(ConfigurationError, match="chain id 84532, not Base"):
        plan_approval(node.reader(), Wallet.create().address, "base", TMAI_BASE, 10**18)
    assert node.methods() == ["eth_chainId"]


def test_a_gas_estimate_past_the_cap_is_not_an_approve():
    node = Node(eth_estimateGas=hex(GAS_CAP + 1))
    with pytest.raises(ConfigurationError, match="over the cap"):
        plan_approval(node.reader(), Wallet.create().address, "base-sepolia", TMAI, 1)


def test_a_node_without_max_priority_fee_falls_back_to_gas_price():
    node = Node(eth_maxPriorityFeePerGas=Exception())
    plan = plan_approval(node.reader(), Wallet.create().address, "base-sepolia", TMAI, 1)
    assert plan.tx.max_priority_fee_per_gas == 11 * 10**6 - 10**7


def test_short_of_eth_is_refused_and_nothing_is_sent():
    w = Wallet.create()
    node = Node(eth_getBalance="0x1")
    plan = plan_approval(node.reader(), w.address, "base-sepolia", TMAI, 1)
    with pytest.raises(InsufficientGas, match="gas is paid in ETH, not in TMAI") as info:
        send_approval(node.reader(), w, plan)
    assert info.value.details["needed_wei"] == plan.max_gas_cost and w.address in info.value.hint
    assert node.sent == []


def test_another_wallet_than_planned_is_refused():
    node = Node()
    plan = plan_approval(node.reader(), Wallet.create().address, "base-sepolia", TMAI, 1)
    with pytest.raises(ConfigurationError, match="the plan is for"):
        send_approval(node.reader(), Wallet.create(), plan)
    assert node.sent == []


def test_send_waits_a_bounded_number_of_polls():
    pending: Callable[[], None] = lambda: None  # noqa: E731 - never mined
    node = Node(eth_getTransactionReceipt=pending)
    w = Wallet.create()
    plan = plan_approval(node.reader(), w.address, "base-sepolia", TMAI, 1)
    slept: list[float] = []
    with pytest.raises(ApprovalFailed, match="not mined after 3 polls") as info:
        send_approval(node.reader(), w, plan, max_polls=3, poll_interval=0.5, sleep=slept.append)
    assert slept == [0.5, 0.5] and node.methods().count("eth_getTransactionReceipt") == 3
    assert info.value.details["tx_hash"] == "0x" + keccak(bytes.fromhex(node.sent[0][2:])).hex()


def test_a_mined_approval_is_confirmed_by_reading_the_allowance_back():
    node = Node()
    w = Wallet.create()
    plan = plan_approval(node.reader(), w.address, "base-sepolia", TMAI, 5 * 10**18)
    result = send_approval(node.reader(), w, plan, sleep=pytest.fail)
    assert result.allowance == 5 * 10**18 and result.gas_used == 46_000 and result.block == 0x11
    assert result.gas_cost == 46_000 * 11 * 10**6
    assert node.methods()[-1] == "eth_call"  # the allowance, read after the receipt
    assert Account.recover_transaction(node.sent[0]) == w.address


def test_a_reverted_approval_or_a_foreign_hash_fails():
    w = Wallet.create()
    reverted = Node(eth_getTransactionReceipt=lambda: {"status": "0x0", "gasUsed": "0x1"})
    plan = plan_approval(reverted.reader(), w.address, "base-sepolia", TMAI, 1)
    with pytest.raises(ApprovalFailed, match="reverted"):
        send_approval(reverted.reader(), w, plan)
    liar = Node(eth_sendRawTransaction="0x" + "ab" * 32)
    with pytest.raises(X402ProtocolError, match="not the signed one"):
        send_approval(liar.reader(), w, plan)


# -- gas sponsoring: signed, not sent ---------------------------------------------------------------------------
DECLARED = {
    ERC20_APPROVAL_GAS_SPONSORING: {
        "info": {"description": "The facilitator accepts a raw signed approval transaction", "version": "1"},
        "schema": {"type": "object"},
    }
}


def test_the_sponsored_approval_is_what_the_official_facilitator_accepts():
    from x402.extensions.erc20_approval_gas_sponsoring import (
        Erc20ApprovalGasSponsoringInfo,
        validate_erc20_approval_for_payment,
    )

    w = Wallet.create()
    node = Node()
    ext = gas_sponsoring_extensions(
        w, node.reader(), network="base-sepolia", token=TMAI.address, required=10**18, declared=DECLARED
    )
    assert ext is not None and node.sent == []  # signed, never sent
    entry = ext[ERC20_APPROVAL_GAS_SPONSORING]
    assert entry["schema"] == {"type": "object"} and entry["info"]["description"].startswith("The facilitator")
    info = entry["info"]
    assert info["from"] == w.address and info["spender"] == PERMIT2_ADDRESS and info["amount"] == str(10**18)
    assert info["version"] == "1" and info["asset"] == TMAI.address
    sdk_info = Erc20ApprovalGasSponsoringInfo.from_dict(info)
    assert validate_erc20_approval_for_payment(sdk_info, w.address, TMAI.address) == ("", "")
    tx = decode(bytes.fromhex(info["signedTransaction"][2:]))
    assert tx["nonce"] == 3 and tx["gas"] == SPONSORED_GAS and tx["chainId"] == CHAIN
    assert tx["maxFeePerGas"] == 2 * 10**7 + 10**6
    # Another payer or token is what the facilitator refuses.
    assert validate_erc20_approval_for_payment(sdk_info, Wallet.create().address, TMAI.address)[0] == (
        "erc20_approval_from_mismatch"
    )


def test_sponsoring_adds_nothing_when_not_offered_or_not_needed():
    w = Wallet.create()
    node = Node()
    kw: dict[str, Any] = {"network": "base-sepolia", "token": TMAI.address, "required": 10}
    assert gas_sponsoring_extensions(w, node.reader(), declared=None, **kw) is None
    assert gas_sponsoring_extensions(w, node.reader(), declared={"eip2612GasSponsoring": {}}, **kw) is None
    assert gas_sponsoring_extensions(w, None, declared=DECLARED, **kw) is None  # no RPC: no nonce to sign with
    node.allowance = 10
    assert gas_sponsoring_extensions(w, node.reader(), declared=DECLARED, **kw) is None  # allowance covers it
    assert node.sent == []


def test_sponsoring_without_fee_data_uses_the_sdk_defaults():
    node = Node(eth_maxPriorityFeePerGas=Exception(), eth_gasPrice=Exception())
    info = sign_sponsored_approval(Wallet.create(), TMAI.address, CHAIN, nonce=0)
    ext = gas_sponsoring_extensions(
        Wallet.create(), node.reader(), network="base-sepolia", token=TMAI.address, required=1, declared=DECLARED
    )
    assert ext is not None
    for signed in (info["signedTransaction"], ext[ERC20_APPROVAL_GAS_SPONSORING]["info"]["signedTransaction"]):
        tx = decode(bytes.fromhex(signed[2:]))
        assert (tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]) == (10**9, 10**8)
    with pytest.raises(ConfigurationError):
        sign_sponsored_approval(Wallet.create(), "tmai", CHAIN, nonce=0)
