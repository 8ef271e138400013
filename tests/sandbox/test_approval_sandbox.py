"""The sandbox plays the one-time approval to Permit2: native ETH for gas, the JSON-RPC a wallet
builds, sends and confirms a transaction with, and a chain that checks a signed type-2
``approve`` as a node would. Then the surface: ``s.approve_permit2``, ``s.allowance``, the doctor
and ``tm402-nb approve``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account

import tm402_nb as tm
from tm402_nb.cli import main as cli_main
from tm402_nb.errors import NotConfirmed
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.sandbox.rpc import APPROVE_GAS, BASE_FEE, PRIORITY_FEE
from tm402_nb.session import confirm
from tm402_nb.x402.approval import (
    MAX_UINT256,
    ApprovalTx,
    InsufficientGas,
    approve_calldata,
    plan_approval,
    send_approval,
)
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.permit2 import PERMIT2_ADDRESS
from tm402_nb.x402.wallet import Wallet

TMAI = SANDBOX_TMAI_BASE_SEPOLIA
ETH = 10**18


@pytest.fixture(scope="module")
def sb() -> Iterator[SandboxServer]:
    with serve() as server:
        yield server


def rpc(sb: SandboxServer, method: str, *params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    return httpx.post(sb.rpc_url, json=body, timeout=10).json()


def result(sb: SandboxServer, method: str, *params: Any) -> Any:
    answer = rpc(sb, method, *params)
    assert "result" in answer, answer
    return answer["result"]


def allowance_over_rpc(sb: SandboxServer, owner: str, token: str = TMAI.address) -> int:
    data = "0xdd62ed3e" + owner[2:].lower().rjust(64, "0") + PERMIT2_ADDRESS[2:].lower().rjust(64, "0")
    return int(result(sb, "eth_call", {"to": token, "data": data}, "latest"), 16)


def funded(sb: SandboxServer, eth: str | None = "0.01") -> Wallet:
    w = Wallet.create()
    if eth is not None:
        sb.fund(w.address, "eth", eth)
    return w


def signed(
    w: Wallet,
    *,
    chain: int = 84532,
    nonce: int = 0,
    gas: int = 60_000,
    max_fee: int = 3 * BASE_FEE,
    tip: int = PRIORITY_FEE,
    to: str = TMAI.address,
    data: bytes | None = None,
) -> str:
    data = approve_calldata(PERMIT2_ADDRESS, 7) if data is None else data
    return ApprovalTx(chain, nonce, tip, max_fee, gas, to, data).sign(w).raw_hex


# -- the chain's side -----------------------------------------------------------------------------
def test_approval_through_the_sandbox_raises_the_allowance_read_over_rpc(sb):
    w = funded(sb)
    reader = ChainReader(sb.rpc_url)
    assert allowance_over_rpc(sb, w.address) == 0
    plan = plan_approval(reader, w.address, "base-sepolia", TMAI, 50 * ETH)
    assert plan.estimated_gas == APPROVE_GAS and plan.eth_balance == ETH // 100
    done = send_approval(reader, w, plan, sleep=pytest.fail)  # mined at once: no second poll
    assert allowance_over_rpc(sb, w.address) == 50 * ETH == done.allowance
    assert int(result(sb, "eth_getTransactionCount", w.address, "pending"), 16) == 1
    price = BASE_FEE + PRIORITY_FEE
    assert int(result(sb, "eth_getBalance", w.address, "latest"), 16) == ETH // 100 - APPROVE_GAS * price
    assert done.gas_used == APPROVE_GAS and done.gas_cost == APPROVE_GAS * price
    receipt = result(sb, "eth_getTransactionReceipt", done.tx_hash)
    assert receipt["status"] == "0x1" and receipt["from"] == w.address and receipt["to"] == TMAI.address
    (log,) = receipt["logs"]
    assert log["topics"][2] == "0x" + PERMIT2_ADDRESS[2:].lower().rjust(64, "0") and int(log["data"], 16) == 50 * ETH
    # The same transaction again is known; a second approval takes the next nonce and *sets* the allowance.
    plan2 = plan_approval(reader, w.address, "base-sepolia", TMAI, MAX_UINT256)
    assert plan2.tx.nonce == 1 and plan2.current_allowance == 50 * ETH
    assert send_approval(reader, w, plan2).allowance == MAX_UINT256


def test_short_of_eth_for_gas_sends_nothing(sb):
    w = funded(sb, eth=None)
    reader = ChainReader(sb.rpc_url)
    plan = plan_approval(reader, w.address, "base-sepolia", TMAI, ETH)
    with pytest.raises(InsufficientGas, match=r"holds 0\.00 ETH on Base Sepolia: gas is paid in ETH"):
        send_approval(reader, w, plan)
    assert result(sb, "eth_getTransactionCount", w.address, "latest") == "0x0"  # the sandbox saw no transaction
    assert allowance_over_rpc(sb, w.address) == 0


@pytest.mark.parametrize(
    "build, error",
    [
        (lambda w: signed(w, chain=8453), "invalid chain id 8453"),
        (lambda w: signed(w, nonce=1), "nonce too high"),
        (lambda w: signed(w, gas=21_000), "intrinsic gas too low"),
        (lambda w: signed(w, max_fee=BASE_FEE - 1, tip=1), "less than block base fee"),
        (lambda w: signed(w, to="0x" + "12" * 20), "only approve"),
        (lambda w: signed(w, data=bytes.fromhex("a9059cbb") + bytes(64)), "only approve"),  # transfer()
        (lambda w: signed(w, data=approve_calldata(PERMIT2_ADDRESS, 1) + b"\x00"), "only approve"),
        (lambda w: "0x02" + signed(w)[4:-2], "invalid transaction"),  # truncated
    ],
)
def test_the_chain_refuses_what_a_node_refuses(sb, build, error):
    w = funded(sb)
    answer = rpc(sb, "eth_sendRawTransaction", build(w))
    assert answer["error"]["code"] == -32000 and error in answer["error"]["message"]
    assert result(sb, "eth_getTransactionCount", w.address, "pending") == "0x0"
    assert allowance_over_rpc(sb, w.address) == 0 and sb.balance(w.address, "eth") == ETH // 100


def test_no_eth_for_gas_limit_times_max_fee_and_replays(sb):
    poor = funded(sb, eth="0.000000000001")  # 10**6 wei, under 60,000 gas × 3 × base fee
    answer = rpc(sb, "eth_sendRawTransaction", signed(poor))
    assert "insufficient funds for gas * price + value" in answer["error"]["message"]
    w = funded(sb)
    raw = signed(w)
    tx_hash = result(sb, "eth_sendRawTransaction", raw)
    assert Account.recover_transaction(raw) == w.address and allowance_over_rpc(sb, w.address) == 7
    assert "already known" in rpc(sb, "eth_sendRawTransaction", raw)["error"]["message"]
    assert "nonce too low" in rpc(sb, "eth_sendRawTransaction", signed(w, gas=60_001))["error"]["message"]
    assert result(sb, "eth_getTransactionReceipt", tx_hash)["gasUsed"] == hex(APPROVE_GAS)


def test_what_building_a_transaction_reads(sb):
    block = result(sb, "eth_getBlockByNumber", "latest", False)
    assert int(block["baseFeePerGas"], 16) == BASE_FEE and int(block["number"], 16) == sb.state.chain.block_number()
    assert result(sb, "eth_getBlockByNumber", hex(10**12), False) is None
    assert rpc(sb, "eth_getBlockByNumber", "soon")["error"]["code"] == -32602
    assert int(result(sb, "eth_gasPrice"), 16) == BASE_FEE + PRIORITY_FEE
    assert int(result(sb, "eth_maxPriorityFeePerGas"), 16) == PRIORITY_FEE
    call = {"from": sb.wallet.address, "to": TMAI.address, "data": "0x" + approve_calldata(PERMIT2_ADDRESS, 1).hex()}
    assert int(result(sb, "eth_estimateGas", call), 16) == APPROVE_GAS
    assert int(result(sb, "eth_estimateGas", {"to": "0x" + "12" * 20}), 16) == 21_000
    assert rpc(sb, "eth_estimateGas", {**call, "data": "0xdeadbeef"})["error"]["code"] == 3
    assert rpc(sb, "eth_getBalance", "nobody")["error"]["code"] == -32602
    # The throwaway wallet has ETH for gas by default, and the faucet pours it.
    assert int(result(sb, "eth_getBalance", sb.wallet.address, "latest"), 16) == ETH // 100
    w = Wallet.create()
    r = httpx.post(sb.url + "/sandbox/faucet", json={"address": w.address, "asset": "eth", "amount": "0.5"}).json()
    assert r["asset"] == "ETH" and r["balance_atomic"] == str(ETH // 2)
    got = httpx.get(sb.url + "/sandbox/balance", params={"address": w.address, "asset": "eth"}).json()
    assert got["balance"] == "0.5"
    bad = {"address": w.address, "asset": "eth", "amount": "1", "approve_permit2": True}
    assert httpx.post(sb.url + "/sandbox/faucet", json=bad).status_code == 400


# -- the session's surface ------------------------------------------------------------------------------
@pytest.fixture
def s() -> Iterator[tm.Session]:
    with tm.Session("sandbox", progress=False) as session:
        yield session


def test_approve_permit2_with_yes_sends_and_reports(s, capsys):
    assert not s.allowance("tmai") and s.allowance().atomic == 0
    done = s.approve_permit2("tmai", "50", yes=True)
    assert capsys.readouterr().out == ""  # yes=True: nothing asked, nothing shown before sending
    text = repr(done)
    assert text.startswith("Permit2 approved [SANDBOX · Base Sepolia]: 50.00 TMAI")
    assert done.tx_hash in text and "gas used   46,000" in text and "may now move 50.00 TMAI" in text
    assert s.allowance("tmai").amount == 50 and s.allowance(TMAI.address).atomic == 50 * ETH
    assert done.allowance.atomic == 50 * ETH and "<pre" in done._repr_html_()
    assert s.approve_permit2("tmai", "unlimited", yes=True).allowance.unlimited
    assert "unlimited TMAI" in str(s.allowance("tmai"))


@pytest.mark.parametrize("answer, sends", [("y", True), ("n", False), ("", False)])
def test_approve_shows_then_asks_and_only_yes_sends(s, capsys, monkeypatch, answer, sends):
    prompts: list[str] = []
    monkeypatch.setattr(confirm, "_in_kernel", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt="": prompts.append(prompt) or answer)
    if sends:
        s.approve_permit2("tmai", "5")
    else:
        with pytest.raises(NotConfirmed, match="declined"):
            s.approve_permit2("tmai", "5")
    shown = capsys.readouterr().out
    assert "Approve Permit2 [SANDBOX · Base Sepolia]" in shown and "spender    Permit2 0x0000000000" in shown
    assert "5.00 TMAI" in shown and "paid in ETH" in shown and "chain id 84532" in shown
    (prompt,) = prompts
    assert "approve(Permit2, 5.00 TMAI)" in prompt and "SANDBOX" in prompt and "ETH" in prompt
    count = result(s.sandbox, "eth_getTransactionCount", s.wallet.address, "latest")
    assert count == ("0x1" if sends else "0x0") and (s.allowance().atomic == 5 * ETH) is sends


def test_approve_is_refused_where_no_one_can_answer(s, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO())
    with pytest.raises(NotConfirmed, match="needs a yes") as info:
        s.approve_permit2("tmai", "5")
    assert "yes=True" in info.value.hint
    assert result(s.sandbox, "eth_getTransactionCount", s.wallet.address, "latest") == "0x0"


def test_approve_refusals_before_asking(monkeypatch):
    monkeypatch.setattr("builtins.input", pytest.fail)
    with tm.Session("sandbox", progress=False, sandbox_options={"fund": {"usdc": "1"}}) as s:
        with pytest.raises(InsufficientGas, match="gas is paid in ETH"):
            s.approve_permit2("tmai", "5")
        assert result(s.sandbox, "eth_getTransactionCount", s.wallet.address, "latest") == "0x0"
        with pytest.raises(tm.TM402Error, match="unknown asset 'doge'"):
            s.approve_permit2("doge", "5")
        with pytest.raises(tm.TM402Error, match="greater than 0"):
            s.approve_permit2("tmai", "0")
        with pytest.raises(tm.TM402Error, match="not a token tm402-nb knows"):
            s.approve_permit2("0x" + "12" * 20, "5")


def test_the_doctor_shows_the_permit2_allowance(s):
    found = s.doctor()["balance"].found
    assert "TMAI Permit2 allowance none (s.approve_permit2('tmai', AMOUNT)" in found
    s.approve_permit2("tmai", "unlimited", yes=True)
    report = s.doctor()
    assert "TMAI Permit2 allowance unlimited" in report["balance"].found and report.ok


def test_the_cli_approves(capsys, monkeypatch):
    assert cli_main(["approve", "tmai", "5", "--yes", "--mode", "sandbox"]) == 0
    out = capsys.readouterr().out
    assert "Permit2 approved [SANDBOX · Base Sepolia]: 5.00 TMAI" in out and "may now move 5.00 TMAI" in out
    assert cli_main(["approve", "tmai", "--mode", "sandbox"]) == 0
    assert "Permit2 may move no TMAI" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO())
    assert cli_main(["approve", "tmai", "5", "--mode", "sandbox"]) == 2  # no one to ask: refused
    assert "needs a yes" in capsys.readouterr().err


def test_a_permit2_payment_refused_for_want_of_allowance_pays_after_the_approval():
    """End to end with the Permit2 payment path: TMAI paid by Permit2 from an unapproved wallet is
    refused before anything settles; after ``approve_permit2`` the same call pays in TMAI."""
    options = {"tmai_transfer": "permit2", "approve_permit2": False}
    try:
        s = tm.Session("sandbox", progress=False, pay_with="tmai", sandbox_options=options)
    except tm.TM402Error as exc:  # this branch's sandbox does not play Permit2 payments yet
        if "approve_permit2" not in str(exc):
            raise
        pytest.skip("needs the sandbox's Permit2 payments (issue 14's Permit2 branch)")
    with s:
        with pytest.raises(tm.TM402Error, match="permit2_allowance_required"):
            s.client.frame("tm-grade", symbol="BTC")
        assert not s.allowance("tmai")
        s.approve_permit2("tmai", "unlimited", yes=True)
        df = s.client.frame("tm-grade", symbol="BTC", refresh=True)
        assert df.attrs["tm402"]["paid"] == 1
        paid = s.ledger.payments()
        assert paid[paid["status"] == "settled"]["asset"].str.lower().tolist() == [TMAI.address.lower()]
