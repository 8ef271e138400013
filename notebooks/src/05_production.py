# %% [markdown]
# # 05 · Running it in production
#
# Paying per call is easy to start and easy to forget about. This notebook is about the second
# part: the habits that keep an unattended notebook, job or agent safe and auditable.
#
# 1. **keys**: from the environment or a key file, never from the code;
# 2. **caps**: per call, per task, per session and per day (the daily cap survives restarts);
# 3. **the ledger as an accounting record**: export it to CSV, summarise it;
# 4. **balances and low-funds alerts**;
# 5. **caching**, so re-running a cell does not pay again;
# 6. **retries**: rate limits (429 and `Retry-After`) without double payments;
# 7. **reconciliation**: what the chain says about a payment the ledger is unsure of;
# 8. **paying in TMAI**: 10% cheaper, after a one-time approval;
# 9. **the checklist** for moving from Base Sepolia to Base mainnet.
#
# **What it costs.** Nothing in the sandbox (the default). Against the real API, at most five paid
# calls at 0.017 USDC (grades and signals, including one deliberate `refresh=True` repeat), so
# **0.085 USDC**, and one grade paid in TMAI (about 0.015 USD of it, 10% less than in USDC), plus a
# little ETH for the gas of the one Permit2 approval (a fraction of a cent on Base); less if you
# re-run it within a few hours, since the cache then answers repeated requests for free. The refused
# calls (an AI report over the cap, a support/resistance call over a task cap, a call past a daily
# cap) cost nothing, and the pending settlement of section 7 only happens in the sandbox.
#
# **Sandbox by default; the real API with one change.** The session is opened with
# `tm.connect(mode=MODE, ...)`, where `MODE` comes from `TM402_MODE` and defaults to `"sandbox"`.
# Set `TM402_MODE=x402` and `TM402_PRIVATE_KEY` (a testnet key) before starting Jupyter, or change
# that one line to `mode="x402"`, and every cell talks to `api.tokenmetrics.com` instead; the few cells
# that drive the sandbox itself (its faucet, its fault switches) skip themselves.
#
# The extension below adds a one-line **cost footer** under every cell that made a call.

# %%
%load_ext tm402_nb

import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import tm402_nb as tm

pd.set_option("display.max_colwidth", 80)
MODE = os.environ.get("TM402_MODE", "sandbox")
print("mode:", MODE)

# %% [markdown]
# ## 1 · Keys: from the environment or a file, never from the code
#
# A notebook is a document: it gets shared, committed, rendered on GitHub, pasted into chats. A key
# typed into a cell ends up in all of those places. So the toolkit reads keys from outside:
#
# | source | how | notes |
# |---|---|---|
# | environment | `TM402_PRIVATE_KEY=0x…` | `tm.connect()` picks it up; `Wallet.from_env()` reads it directly |
# | key file | `TM402_KEY_FILE=~/.config/tm402/key` or `Wallet.from_file(path)` | hex, or an encrypted JSON keystore (password from `TM402_KEYSTORE_PASSWORD` or a hidden prompt) |
# | prompt | `Wallet.prompt()` | typed into a hidden field, kept in memory only |
#
# Use a **dedicated hot wallet** for this: fund it with what a week of calls costs, not your savings.
# If it leaks, the damage is bounded by its balance.
#
# Here is a key file in action, with a brand-new throwaway key written only for this demo (and never
# displayed). The file is made readable by its owner alone, as a key file should be.

# %%
import secrets

keyfile = Path(tempfile.mkdtemp()) / "tm402.key"
keyfile.write_text("0x" + secrets.token_hex(32))    # a fresh random key, for this demo only
keyfile.chmod(0o600)                                  # owner read/write, nobody else

file_wallet = tm.Wallet.from_file(keyfile)
file_wallet

# %% [markdown]
# The wallet shows where its key came from (the file's *name*, not its path) and its address, and
# nothing else. It also refuses to be pickled, so it cannot slip into a cache, a multiprocessing
# pipe or a saved session. And a key file that other users can read earns a warning:

# %%
import pickle

try:
    pickle.dumps(file_wallet)
except TypeError as exc:
    print("pickle:", exc)

keyfile.chmod(0o644)                                  # oops: world-readable
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    tm.Wallet.from_file(keyfile)
print("warning:", *(str(w.message) for w in caught))
keyfile.unlink()

# %% [markdown]
# ## 2 · Caps that hold
#
# Three numbers decide what an unattended job may spend:
#
# * `max_per_call`: no single request may cost more (protects against a price you didn't expect);
# * `budget`: the total for this session (protects against a loop that runs too long);
# * `daily_cap`: the total per UTC day, counted **in the ledger** (protects against a job that is
#   restarted over and over, since a restart starts a new session but not a new day).
#
# Every cap is checked before the payment is signed, so a refusal costs nothing.
#
# About the `ledger=` argument: in your own code, leave it out and the session uses your permanent
# ledger (in the user data folder, or `$TM402_HOME`). The tutorial uses a throwaway ledger in the
# sandbox, so that running it does not eat into the daily cap of your real Base Sepolia wallet.

# %%
LEDGER = None if MODE == "x402" else Path(tempfile.mkdtemp()) / "ledger.sqlite3"

s = tm.connect(mode=MODE, max_per_call="0.05", budget="1.00", daily_cap="0.50", ledger=LEDGER)
print(s.mode, "on", s.network, "· paying from", s.wallet.address)
print("caps:", s.policy)
print(f"budget: {s.budget:.2f} USDC · spent so far: {s.spent:.3f} USDC")

# %%
grades = s.client.frame("tm-grade", symbol=["BTC", "ETH", "SOL"])
grades[["TOKEN_SYMBOL", "TM_GRADE", "TM_GRADE_SIGNAL", "FUNDAMENTAL_GRADE"]]

# %% [markdown]
# One paid call brought all three tokens (the client packs symbols into one request where the API
# allows), and the footer under the table says so. The three free calls are the look-ups that turn
# symbols into Token Metrics ids; they cost nothing and are cached. Before paying for something dearer, ask for a **quote**: the
# client fetches the challenge and reads the price, paying nothing. An AI report costs 0.068 USDC,
# over our 0.05 per-call cap, and the quote says so up front. (With the extension loaded,
# `%tm quote ai-reports BTC` is the same question in magic form.)

# %%
s.client.quote("ai-reports", symbol="BTC")

# %%
try:
    s.client.frame("ai-reports", symbol="BTC")
except tm.BudgetExceeded as exc:
    print(f"{type(exc).__name__}: {exc}")

# %% [markdown]
# ### A cap for one task: `s.scope(...)`
#
# A session budget is coarse. For "this morning's screen may cost at most 5 cents", open a scope: the
# calls inside are counted separately, and `max_cost` refuses any payment that would go past it.
# Here the second call (support/resistance, 0.034 USDC) would take the task to 0.051:

# %%
with s.scope("morning-screen", max_cost="0.05") as task:
    signals = s.client.frame("trading-signals", symbol="BTC", start="2026-10-03", end="2026-10-31")
    try:
        levels = s.client.frame("resistance-support", symbol="BTC")
    except tm.BudgetExceeded as exc:
        print(f"{type(exc).__name__}: {exc}")

print(task)

# %% [markdown]
# The task's tally (`task`) counts the refused attempt as a call that cost nothing, so it shows
# two calls, one of them paid.

# %% [markdown]
# ### The daily cap outlives the session
#
# The session budget lives in memory; the daily cap is counted from the ledger, so it holds across
# kernel restarts and across several notebooks or processes sharing one ledger file. Here is what the
# ledger says was spent today:

# %%
def spent_today(ledger, asset="USDC"):
    """What the ledger counts against today's cap: pending, settled and unknown payments since 00:00 UTC."""
    p = ledger.payments()
    midnight = pd.Timestamp.now(tz="UTC").normalize()
    today = p[(p.created_at >= midnight) & p.status.isin(["pending", "settled", "unknown"])
              & (p.asset_symbol == asset)]
    return today.amount_atomic.sum() / 10**6

print(f"spent today: {spent_today(s.ledger):.3f} USDC of the 0.50 daily cap")

# %% [markdown]
# Now imagine the kernel is restarted, or a second job starts, with a tighter daily cap of 0.03 USDC
# and the same ledger. It begins a fresh session (its own `spent` is zero), yet it refuses to pay,
# because *today* is already past 0.03:

# %%
s = tm.connect(mode=MODE, max_per_call="0.05", daily_cap="0.03", ledger=LEDGER)   # closes the old session
print(f"new session, spent in it: {s.spent:.3f} USDC")
try:
    s.client.frame("tm-grade", symbol="XRP")
except tm.BudgetExceeded as exc:
    print(f"{type(exc).__name__}: {exc}")

# %% [markdown]
# ## 3 · The ledger as an accounting record
#
# Every payment is written to the ledger **before** its signed header leaves the machine, and updated
# when the answer arrives. Its `status` is one of:
#
# | status | meaning | counts against caps |
# |---|---|---|
# | `pending` | signed and sent, answer not yet in | yes |
# | `settled` | the server confirmed the transfer; `tx` is the transaction hash | yes |
# | `failed` | the server refused it; no money moved | no |
# | `settlement_pending` | the facilitator broadcast the transfer, the chain had not confirmed it; the data was withheld | yes, until a receipt or the chain decides it |
# | `unknown` | sent, but the answer was lost (or the process died); it may have settled | yes, until you check `tx`/`nonce` on chain |
#
# So the ledger is never optimistic: anything that *might* have cost money is counted as if it did.

# %%
payments = s.ledger.payments()
payments[["created_at", "status", "endpoint", "amount", "asset_symbol", "network", "tx"]]

# %% [markdown]
# For the books, export a CSV. `amount` is in display units (handy in a spreadsheet) and
# `amount_atomic` is the exact integer that was signed; sum the latter when the totals must be exact.
# (From a terminal, `tm402-nb ledger --csv > payments.csv` does the same for your permanent ledger.)

# %%
export_dir = Path(tempfile.mkdtemp())
columns = ["created_at", "status", "endpoint", "amount", "amount_atomic", "asset_symbol", "network",
           "pay_to", "payer", "tx", "nonce", "error"]
out = export_dir / f"tm402-payments-{pd.Timestamp.now(tz='UTC'):%Y-%m}.csv"
payments[columns].to_csv(out, index=False)

print(f"wrote {out.name} · {len(pd.read_csv(out))} rows")

# %% [markdown]
# And the summary an accountant asks for: per day, token and status, what was paid and how often.

# %%
(payments.assign(day=payments.created_at.dt.date)
         .groupby(["day", "asset_symbol", "status"])
         .agg(calls=("id", "size"), atomic=("amount_atomic", "sum"), amount=("amount", "sum")))

# %% [markdown]
# The ledger also records every **call**, paid or not, including the ones answered from the cache and
# the free look-ups (symbol → token id). That is the place to look when a number in the footer
# surprises you.

# %%
s.ledger.calls()[["created_at", "endpoint", "status_code", "paid", "cache_hit", "elapsed_ms"]].tail(6)

# %% [markdown]
# ## 4 · Balances and low-funds alerts
#
# A wallet that runs dry turns every paid call into a failure. `s.balances()` reads the wallet's USDC
# and TMAI balances over JSON-RPC (`eth_call` of `balanceOf`): the same code reads the sandbox's
# simulated chain and a real node. Against the real API, point `TM402_RPC_URL` at a Base Sepolia (or
# Base) RPC endpoint.
#
# `tm.connect(low_balance=...)` sets a threshold in USDC (default 1.00); when the balance is below it,
# `balances()` issues a warning. In an unattended job, turn that warning into an alert:

# %%
def check_funds(session):
    """Balances, plus any low-funds warnings as alert strings (send them to chat, e-mail, a pager...)."""
    if session.rpc_url is None:
        return {}, ["no RPC endpoint: set TM402_RPC_URL to read balances"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        balances = session.balances()
    return balances, [str(w.message) for w in caught]

s = tm.connect(mode=MODE, max_per_call="0.05", daily_cap="0.50", ledger=LEDGER, low_balance="150")
balances, alerts = check_funds(s)
print("balances:", {k: f"{v:,.2f}" for k, v in balances.items()})
print("alerts:  ", alerts or "none")

# %% [markdown]
# The sandbox wallet starts with 100 USDC, below our (deliberately high) 150 threshold, so the alert
# fires. Top it up and the alert clears. In the sandbox the faucet is one call; on Base Sepolia, use
# a testnet USDC faucet; on Base, a transfer from your treasury wallet. (*Sandbox only*.)

# %%
if s.sandbox:
    s.sandbox.fund(s.wallet.address, "usdc", "100")
    balances, alerts = check_funds(s)
    print("balances:", {k: f"{v:,.2f}" for k, v in balances.items()})
    print("alerts:  ", alerts or "none")

# %% [markdown]
# ## 5 · Caching: don't pay twice for the same answer
#
# Notebooks get re-run: after a restart, after an edit three cells up, by "Run all". Each answer is
# therefore kept in the ledger's cache for as long as the data stays fresh (per endpoint: a TM grade
# for 6 hours, a price for a minute), and the same request within that time is served locally, for free.

# %%
first = s.client.frame("tm-grade", symbol=["BTC", "ETH"])
first.attrs["tm402"]

# %%
again = s.client.frame("tm-grade", symbol=["BTC", "ETH"])
print("cached:", again.attrs["tm402"]["cached"], "· paid:", again.attrs["tm402"]["paid"],
      "· same data:", again.equals(first))

# %% [markdown]
# When you *want* fresh data (a decision is about to be made on it), say so with `refresh=True`. That
# pays again, and the footer shows it.

# %%
fresh = s.client.frame("tm-grade", symbol=["BTC", "ETH"], refresh=True)
print("cached:", fresh.attrs["tm402"]["cached"], "· paid:", fresh.attrs["tm402"]["paid"],
      "·", fresh.attrs["tm402"]["amount"])

# %% [markdown]
# How long is "fresh"? Each endpoint carries its own time-to-live; pass `ttl=` (seconds) to
# `frame()` to choose another. The cache is private to a mode, a server and a paying wallet, so a
# sandbox answer is never served as real data.

# %%
from tm402_nb.tokenmetrics.catalogue import get_endpoint

def as_duration(seconds):
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"

pd.Series({name: as_duration(get_endpoint(name).ttl)
           for name in ("price", "tm-grade", "trading-signals", "fundamental-grade")}, name="fresh for")

# %% [markdown]
# ## 6 · Retries without double payments
#
# Even paid calls are rate-limited. When the API answers **429 Too Many Requests**, the client:
#
# * waits as long as the server's `Retry-After` header says (capped at 60 s), or, without the header,
#   backs off exponentially (1 s, 2 s, 4 s, … up to 16 s, with a little random jitter, so parallel
#   jobs don't retry in lockstep);
# * tries again, up to 4 more times (`tm.connect(retry=tm.RetryPolicy(attempts=..., base=...))` to change);
# * retries server errors (5xx) and network errors only when no payment went out with the request.
#
# Money needs one more rule. Once a signed payment has been sent and no answer came back, it may have
# settled. The client then **never signs a new one** for that request: it re-sends the *identical*
# header, whose single-use nonce guarantees the server can settle it at most once. If that still
# fails, you get `PaymentOutcomeUnknown` and a ledger row marked `unknown`, never a second charge.
#
# Let's see a rate-limit burst. The sandbox can inject faults: the next two requests get a 429 (with
# `Retry-After: 0`, to keep the tutorial quick). (*Sandbox only*: against the real API this cell just
# makes a normal call.)

# %%
if s.sandbox:
    s.sandbox.reset_stats()
    s.sandbox.set_faults(burst_429=2, retry_after_s=0)

signals = s.client.frame("trading-signals", symbol="BTC", start="2026-10-03", end="2026-10-31")
print("rows:", len(signals), "·", signals.attrs["tm402"]["paid"], "paid call,", signals.attrs["tm402"]["amount"])

# %% [markdown]
# What the server saw, and what the ledger recorded:

# %%
if s.sandbox:
    stats = s.sandbox.stats()
    print("HTTP statuses sent:", stats["by_status"])
    display(pd.Series(stats["paths"]["/v2/trading-signals"], name="/v2/trading-signals").to_frame().T)

payments = s.ledger.payments()
payments[payments.endpoint == "trading-signals"][["created_at", "status", "amount", "tx"]].tail(1)

# %% [markdown]
# Four requests reached `/v2/trading-signals`: two were turned away with 429 (nothing was signed for
# them), one earned the 402 challenge, and one carried the payment and got the data. One payment,
# one ledger row, `settled`. The burst was ridden out without your code noticing.

# %% [markdown]
# ## 7 · Reconciling with the chain
#
# An `unknown` or `settlement_pending` row means the toolkit does not know yet whether money moved.
# The chain knows: each payment's nonce is either used (the transfer executed) or not. Two tools
# read it:
#
# * `%tm ledger --resolve` (from a terminal, `tm402-nb ledger --resolve --rpc URL`) decides every
#   open row and records it: `settled`, or `failed` once its authorization expired unexecuted;
# * `s.ledger.reconcile_chain()` reports, without changing anything, a **verdict** for every settled
#   or open payment (`settled`, `never settled`, `settled but not delivered`, `not settled yet`) with
#   its tx, nonce, payer, asset and amount: the evidence a refund request needs.
#
# To have something to reconcile, the sandbox leaves one settlement pending (the server withholds the
# data), then lets the chain confirm it. (*Sandbox only*.)

# %%
if s.sandbox:
    s.sandbox.set_faults(settle_pending=1, settle_pending_reads=0)  # broadcast, not confirmed
    try:
        s.client.frame("tm-grade", symbol="XRP")
    except tm.SettlementPending as exc:
        print(f"{type(exc).__name__}: {exc.message}")
    s.sandbox.set_faults()
    s.sandbox.mine()                                                 # ... then it lands

report = s.ledger.reconcile_chain(session_id=s.id)
report[["verdict", "status", "endpoint", "amount", "asset_symbol", "tx", "when"]]

# %% [markdown]
# The first rows are this session's ordinary calls: paid, settled, delivered. The last is the one to
# act on: its nonce was used, so the money moved, but the call that paid got no data. That row, with
# its tx and nonce, is what to send with a refund request. `reconcile_chain(update=True)` records
# what the chain decided; `%tm ledger --resolve` does the same for every open row of the ledger, and
# says how it decided each:

# %%
%tm ledger --resolve

# %% [markdown]
# ## 8 · Paying in TMAI
#
# Token Metrics also takes its own token, and prices a TMAI offer **10% below** the USDC one. Three
# things differ from USDC:
#
# * **a one-time approval.** TMAI has no EIP-3009 transfer authorization, so it is paid through
#   Uniswap's Permit2 contract, which may move only what the wallet approved it to. The approval is
#   a transaction from your wallet: it needs a little **ETH for gas**, so keep some in the hot wallet;
# * **one more thing to check**: the doctor shows the allowance on its balance line;
# * **caps stay in US dollars.** A TMAI payment counts at the USDC price of the same call (an upper
#   bound), or at `usd_rates={"TMAI": ...}` if you give a higher one, so `max_per_call`, `budget` and
#   `daily_cap` hold across both assets.
#
# A session pays in TMAI with `pay_with="tmai"`. In the sandbox we also ask for a server that plays
# Permit2 and a wallet that has not approved it yet, as a fresh mainnet wallet would be:

# %%
sandbox_only = {"sandbox_options": {"tmai_transfer": "permit2", "approve_permit2": False}} if MODE == "sandbox" else {}
s = tm.connect(mode=MODE, pay_with="tmai", max_per_call="0.05", budget="1.00", ledger=LEDGER, **sandbox_only)
for asset in ("usdc", "tmai"):
    print(s.client.quote("tm-grade", symbol="BTC", pay_with=asset))

# %% [markdown]
# The sandbox prices TMAI at $0.01, so 1.53 TMAI is $0.0153, 10% less than 0.017 USDC. The quote's
# "≈ 0.017 USD" is what the caps count. Before paying, the doctor (it pays nothing) finds the
# missing approval and names the fix:

# %%
balance = s.doctor()["balance"]
print(f"{balance.status.value}: {balance.found}")
print("fix:", balance.fix)

# %% [markdown]
# `s.approve_permit2("tmai", 50)` (or `%tm approve tmai 50`, `tm402-nb approve tmai 50`) shows what
# it will send and the most the gas may cost in ETH, asks, sends, and reads the allowance back.
# Approve about what a month of calls costs rather than `"unlimited"`: like the balance, it bounds
# what a leaked key could lose. Here `yes=True` in the sandbox only; against the real API it asks.

# %%
if not s.allowance("tmai"):
    display(s.approve_permit2("tmai", 50, yes=MODE == "sandbox"))

# %% [markdown]
# Now a TMAI call pays like any other. The footer shows the TMAI amount, and the session's budget
# counts it in dollars:

# %%
grades = s.client.frame("tm-grade", symbol=["BTC", "ETH", "SOL"])
print(grades.tm.cost, "· counted as", s.budget_text())
print(s.allowance("tmai"))

# %% [markdown]
# ## 9 · From Base Sepolia to Base: the checklist
#
# Everything above ran on the test network. Before real money:
#
# - [ ] **Run the whole workflow on Base Sepolia first**, with the same caps you plan to use, and read
#       the ledger afterwards: is every row `settled`, and is the total what you expected?
# - [ ] **A dedicated mainnet wallet**: a fresh key used for nothing else (not your testnet key),
#       holding only what a week or a month of calls costs.
# - [ ] **The key outside the code**: `TM402_PRIVATE_KEY` from your secret manager, or `TM402_KEY_FILE`
#       pointing to a `chmod 600` file or an encrypted keystore. Check that `git status` shows no key file.
# - [ ] **Fund it with USDC on Base**. No token approval is needed for USDC: its payments are signed
#       transfers, not allowances.
# - [ ] **Or TMAI, 10% cheaper**: approve Permit2 once for a bounded amount (`%tm approve tmai 50`),
#       keep a little ETH for that gas, and look at the allowance on the doctor's balance line.
# - [ ] **Caps**: `max_per_call` just above the dearest endpoint you use, a `budget` per run, a
#       `daily_cap` per day, and the **permanent ledger** (no `ledger=` argument) so the daily cap
#       holds across restarts.
# - [ ] **An RPC endpoint** in `TM402_RPC_URL` and a `low_balance` threshold, wired to an alert.
# - [ ] **Timeouts**: keep 30 s or more; settlement on a busy chain takes seconds.
# - [ ] **Accounting**: a scheduled export of `ledger.payments()`; a weekly `%tm ledger --resolve` for
#       any `unknown` or `settlement_pending` row; `s.ledger.reconcile_chain()` as the evidence when
#       asking for a refund (`settled but not delivered`).
# - [ ] **Switch the network explicitly**, as below. Nothing else in your code changes.
#
# The one line that changes (not executed here):
#
# ```python
# s = tm.connect(mode="x402", network="base", max_per_call="0.10", budget="2.00", daily_cap="5.00")
# ```
#
# Naming `network="base"` *is* the opt-in: without it, a session stays on Base Sepolia and refuses any
# mainnet price list it meets. With the lower-level client it is the policy that says so:
#
# ```python
# policy = tm.SpendPolicy(network="base", max_per_call="0.10", daily_cap="5.00")   # mainnet only
# policy = tm.SpendPolicy(allow_mainnet=True)              # testnet *and* mainnet, while migrating
# ```
#
# Building a policy contacts nothing, so we can check what it allows right here:

# %%
pd.DataFrame({
    "default": [str(tm.SpendPolicy())],
    'network="base"': [str(tm.SpendPolicy(network="base", max_per_call="0.10", daily_cap="5.00"))],
}, index=["SpendPolicy"]).T

# %% [markdown]
# ## Clean up
#
# `close()` stops the sandbox and closes the ledger (a session is also a context manager:
# `with tm.connect(...) as s:`).

# %%
print(f"this session: {s.budget_text()}")
s.close()
