# %% [markdown]
# # 04 · Common errors, and how to fix them
#
# Paying per call adds a few new ways for a request to go wrong: the wallet can run dry, the
# settlement can fail or be left pending, a slow answer can leave you unsure whether you paid, a
# TMAI wallet can lack its one-time Permit2 approval, and the server can turn you away for a missing
# header. This notebook **makes each of those errors happen on purpose**, against the embedded
# sandbox and its switchable faults, so you can see the exact message the toolkit gives and what to
# do about it, before you meet it with real money.
#
# You will learn:
#
# - what each failure looks like (one short line, with a hint), and which exception class to catch;
# - which failures cost nothing, which were never even signed, and how to tell from the ledger;
# - why a request that timed out *after* paying is never signed a second time;
# - what a pending settlement looks like, and how the chain decides it.
#
# **Cost.** Everything here runs in the sandbox: synthetic data, throwaway wallets, no real money.
# The fault switches (`s.sandbox.set_faults(...)`) only exist there. The parts that do not need a
# fault (the headers, the caps, the wrong network, a TMAI wallet without its approval) behave the
# same against the real API, where the payments below (six tier-1 calls at 0.017 USDC, one of them
# re-sent after its answer was lost and paid once, and one in TMAI, priced 10% lower) come to about
# 0.12 USD, plus a little ETH for the gas of the one Permit2 approval (a fraction of a cent on Base).
#
# **Going live** is one changed line: `s = tm.connect()` with `TM402_PRIVATE_KEY` set in the
# environment (a *testnet* wallet first) instead of `tm.connect(mode="sandbox")`.

# %%
import warnings

import httpx
import pandas as pd

import tm402_nb as tm
from tm402_nb.tokenmetrics.client import Client, RetryPolicy

pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 70)

%load_ext tm402_nb
s = tm.connect(mode="sandbox")
s

# %% [markdown]
# Two small helpers used throughout. `payments()` shows this session's rows of the local ledger,
# the record of every payment the toolkit signed: **`settled`** (money moved), **`failed`** (signed,
# but the server refused it: nothing moved; still, whoever holds the signature could settle it until
# it expires, so it counts against your caps as *reserved* until then), **`unknown`** (sent, and no
# answer came back).
# `usdc()` reads the wallet's USDC balance from the sandbox's JSON-RPC, exactly as it would read a
# real chain.

# %%
LEDGER_COLUMNS = ["status", "endpoint", "amount", "asset_symbol", "error"]


def payments(session=s):
    """This session's payment rows: what was signed, and what became of it."""
    return session.ledger.payments(session_id=session.id)[LEDGER_COLUMNS]


def signed_for(endpoint, session=s):
    """How many payments this session signed for one endpoint."""
    return int((payments(session)["endpoint"] == endpoint).sum())


def usdc(session=s):
    """The wallet's USDC balance (quietly: the low-balance warning is shown where it matters)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return session.balances()["USDC"]


usdc()

# %% [markdown]
# ## 1 · Payment failed: not enough funds
#
# The article's first error is a 402 that comes back *even after* paying. The most common cause is
# a wallet that does not hold enough USDC (or TMAI) for the price. To reproduce it we open a second
# sandbox session whose throwaway wallet gets only **0.01 USDC**, less than one tier-1 call (0.017).
#
# `tm.Session(...)` builds a session without making it the current one, so `s` stays open.
# `sandbox_options` is handed to the sandbox server; `fund` sets what its wallet starts with.

# %%
poor = tm.Session(mode="sandbox", sandbox_options={"fund": {"usdc": "0.01"}})
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print("balance:", poor.balances()["USDC"], "USDC")
for w in caught:
    print("warning:", w.message)

# %% [markdown]
# The toolkit already warns that the balance is low (the threshold is the session's `low_balance`,
# 1.00 USDC by default). Now ask for a grade anyway:

# %% tags=["raises-exception"]
poor.client.frame("tm-grade", symbol="BTC")

# %% [markdown]
# **What happened.** The client signed a 0.017 USDC authorization and sent it. The facilitator
# checked the balance, found 0.01, and refused; the server answered 402 again with the reason
# `insufficient_funds`. The toolkit turns that into `PaymentFailed` and stops there: it does not
# keep signing new payments in a loop.
#
# In a script, catch it by class and read `.reason` (here with another endpoint, to the same end):

# %%
try:
    poor.client.frame("fundamental-grade", symbol="BTC")
except tm.PaymentFailed as exc:
    print("reason:", exc.reason)
print("balance still:", usdc(poor), "USDC")

# %% [markdown]
# Both attempts are in the ledger as `failed`: signed, never settled, so nothing left the wallet.

# %%
payments(poor)

# %% [markdown]
# **The fix.** Top the wallet up and run the same line again. On Base Sepolia that is a testnet
# faucet; the sandbox has its own (`POST /sandbox/faucet`, or `fund()` from Python). Also check
# that the session's network is the one your funds are on: USDC on Base mainnet does not pay a
# Base Sepolia request, nor the other way round (section 8). No token approval is needed for USDC:
# x402 signs a one-off transfer authorization, not an allowance (TMAI paid by Permit2 is the
# exception: section 9).

# %%
poor.sandbox.fund(poor.wallet.address, "usdc", "1")
grade = poor.client.frame("tm-grade", symbol="BTC")
print(grade.tm.cost)
payments(poor)

# %%
poor.close()

# %% [markdown]
# ## 2 · Payment failed: the settlement did not go through
#
# The other cause of "402 after paying" is a transfer that fails when the facilitator submits it
# on-chain. The sandbox's `settle_failure` fault does exactly that for the next request.

# %%
before = usdc()

# %% tags=["raises-exception"]
s.sandbox.set_faults(settle_failure=1)  # the next settlement fails
s.client.frame("tm-grade", symbol="ETH")

# %% [markdown]
# **What happened.** The payment verified, the data was ready, but settlement failed
# (`unexpected_settle_error`), so the server withheld the answer and released the payment. Same
# class, `PaymentFailed`, with the facilitator's reason. The balance did not move:

# %%
print("balance before:", before, "after:", usdc())
payments().tail(1)

# %% [markdown]
# **The fix.** A failed settlement is usually transient: run the cell again. The toolkit will sign
# a *fresh* payment for the new attempt. The refused one stays *reserved* (counted against your
# budget, shown apart in the footer and `s.budget_text()`) until its authorization expires, a few
# minutes at most. If it keeps failing, try a cheaper endpoint to rule out your wallet, and check
# the network.

# %%
s.client.frame("tm-grade", symbol="ETH")[["TOKEN_SYMBOL", "TM_GRADE", "TM_GRADE_SIGNAL"]]

# %% [markdown]
# ## 3 · Network timeout
#
# A paid call does more than a plain one: the server verifies a signature and settles a transfer
# before it answers. The article's advice is a client timeout of **at least 30 seconds**. That is
# the toolkit's default:

# %%
s.client.timeout

# %% [markdown]
# To see what a too-short timeout does, we build a client with a 0.3 s timeout that shares the
# session's wallet, spending policy and ledger, and make the sandbox answer slowly (1 s of latency).
# A short retry policy keeps the demo fast.

# %%
impatient = Client(mode="sandbox", base_url=s.sandbox.api_url, auth=s.auth, ledger=s.ledger,
                   cost=s.cost, session_id=s.id, timeout=0.3,
                   retry=RetryPolicy(attempts=1, base=0.05, cap=0.1))
impatient.resolve_symbols(["BTC", "ETH"])  # symbols → token ids now (free): only the data call meets the slow server

# %% tags=["raises-exception"]
s.sandbox.set_faults(latency_ms=1000)  # every answer now takes a second
impatient.frame("technology-grade", symbol="BTC")

# %% [markdown]
# **What happened.** This was the first request to `technology-grade`, so it went out *without* a
# payment (the client has to see the price first). It timed out, was retried once (safe: nothing
# had been signed), timed out again, and surfaced as `APIError`. Nothing was signed, so nothing
# was paid: the ledger has no row for `technology-grade`.

# %%
print("payments signed for technology-grade:", signed_for("technology-grade"))

# %% [markdown]
# ### A timeout *after* the payment went out
#
# The dangerous case is different. Once the client has seen an endpoint's price it sends the
# signed payment **with the first request** (one round trip instead of two). If *that* request
# times out, the payment may or may not have settled. Let us pay for one technology grade at
# normal speed (this teaches the client the price), then slow the server down again.

# %%
s.sandbox.set_faults()  # clear every fault
impatient.frame("technology-grade", symbol="BTC")[["TOKEN_SYMBOL", "TECHNOLOGY_GRADE"]]

# %%
before = usdc()

# %% tags=["raises-exception"]
s.sandbox.set_faults(latency_ms=1000)
impatient.frame("technology-grade", symbol="ETH")

# %% [markdown]
# **What happened.** The signed payment went out with the request and no answer came back in time.
# The toolkit cannot know whether it settled, so it says so (`PaymentOutcomeUnknown`), marks the
# ledger row **`unknown`**, counts it against your budget, and does **not** retry by itself. (The
# cost line under the cell counts requests; the fate of a payment is recorded in the ledger.)

# %%
payments().tail(1)

# %% [markdown]
# **The fix.** Remove the cause (a realistic timeout; here, the latency) and run the same request
# again. The client **replays the same signed payment** (same nonce) rather than signing a new
# one, so the server can settle it at most once. The `unknown` row becomes `settled`, no new row
# appears, and the wallet paid exactly one price:

# %%
s.sandbox.set_faults()
eth = impatient.frame("technology-grade", symbol="ETH")
print("paid for this request:", before - usdc(), "USDC")
payments().tail(2)

# %% [markdown]
# If timeouts persist on a live network, the slow part is usually the chain, not the API: the
# article suggests a dedicated RPC provider rather than a public endpoint. A settlement that is
# *too* slow fails cleanly instead: the signed authorization has an expiry (`validBefore`), and the
# sandbox's `slow_settle_past_valid_before` fault shows the message you would get.

# %% tags=["raises-exception"]
s.sandbox.set_faults(slow_settle_past_valid_before=1, slow_settle_ms=200)
s.client.frame("tm-grade", symbol="LTC")

# %% [markdown]
# **The fix.** Check the machine's clock, then retry: the expired authorization was never charged
# (`failed` in the ledger), and the next attempt signs a new one with a fresh window.

# %%
s.sandbox.set_faults()
payments().tail(1)

# %% [markdown]
# ## 4 · 429: rate limited
#
# Paying per call does not lift Token Metrics' rate limits. A 429 carries a `Retry-After` header;
# the client waits that long (or backs off exponentially when there is none: about 1, 2, 4, 8 s,
# with jitter) and tries again, up to four times. Short bursts are absorbed without you noticing.
# Here the sandbox rate-limits the next two requests with `Retry-After: 0`:

# %%
s.client.resolve_symbols(["BTC", "ETH"])  # look the ids up first, so the 429s land on the data request
s.sandbox.reset_stats()
_ = s.sandbox.set_faults(burst_429=2, retry_after_s=0)
fundamentals = s.client.frame("fundamental-grade", symbol=["BTC", "ETH"])
stats = s.sandbox.stats()
seen = stats["paths"]["/v2/fundamental-grade"]
print(f"{seen['requests']} requests reached the server: {stats['faults_fired']['burst_429']} answered 429, "
      f"{seen['challenges']} answered 402 with the price, {seen['paid']} carried the payment · "
      f"{len(fundamentals)} rows received")

# %% [markdown]
# When the limit does not lift, retrying forever would only make things worse, so the retries are
# bounded. With a permanent 429 (`burst_429=True`) and a client allowed two quick retries:

# %%
patient_but_brief = Client(mode="sandbox", base_url=s.sandbox.api_url, auth=s.auth, ledger=s.ledger,
                           cost=s.cost, session_id=s.id,
                           retry=RetryPolicy(attempts=2, base=0.05, cap=0.1, max_retry_after=0.1))
patient_but_brief.resolve_symbols(["BTC"])

# %% tags=["raises-exception"]
s.sandbox.set_faults(burst_429=True, retry_after_s=0)  # every request answers 429
patient_but_brief.frame("trading-signals", symbol="BTC")

# %% [markdown]
# **What happened.** Three attempts, three 429s, then `RateLimited` (an `APIError` with
# `.status == 429`). The endpoint's price was not known yet, so no payment was ever signed; had a
# payment been sent with a 429'd request, the server would have released it unsettled.
#
# **The fix.** Wait and retry later, and spread requests out rather than bursting: lower the
# session's `max_concurrency` (4 by default), and pass many symbols in one call (the client puts up
# to 100 tokens in one request) instead of looping one by one. For sustained high volume, talk to
# Token Metrics about your limits.

# %%
s.sandbox.set_faults()
print("payments signed for trading-signals:", signed_for("trading-signals"))

# %% [markdown]
# ## 5 · Missing (or misspelled) `x-coinbase-402` header
#
# The toolkit always sends the right headers, so to see this error we talk to the sandbox with
# plain `httpx`. Without `x-coinbase-402: true` the server treats the request as an ordinary API
# call, finds no API key, and answers **401**, not 402:

# %%
url = s.sandbox.api_url + "/tm-grade"
bare = httpx.get(url, params={"token_id": "3375"})
print(bare.status_code, bare.json()["message"])

# %% [markdown]
# The header name must be exact. A quick comparison of what the server makes of a few spellings:

# %%
variants = {
    "(none)": {},
    "x-402: true": {"x-402": "true"},
    "x-coinbase-payment: true": {"x-coinbase-payment": "true"},
    "x-coinbase-402: true": {"x-coinbase-402": "true"},
    "x-coinbase-402 + x-api-key": {"x-coinbase-402": "true", "x-api-key": "tm-123"},
}
rows = []
for label, headers in variants.items():
    r = httpx.get(url, params={"token_id": "3375"}, headers=headers)
    body = r.json()
    rows.append({"headers sent": label, "status": r.status_code,
                 "server says": body.get("message") or body.get("error")})
pd.DataFrame(rows)

# %% [markdown]
# Only the exact spelling gets the **402** challenge (the price, which the toolkit then pays).
# Sending an API key *as well* is refused with **400**: the two modes are mutually exclusive. The
# toolkit refuses that combination itself, before anything is sent:

# %% tags=["raises-exception"]
Client(mode="x402", auth=s.auth, api_key="tm-123")

# %% [markdown]
# **What happened / the fix.** `ConfigurationError` at construction time: nothing was sent, no key
# left the machine. Pick one mode: x402 (a wallet; `TM402_PRIVATE_KEY`) *or* an API key
# (`mode="api-key"`, `TM_API_KEY`). `tm.connect(mode="x402", api_key=...)` gives the same error.

# %% [markdown]
# ## 6 · A price over your cap
#
# Every session has a per-call cap (0.10 USDC by default), checked **before signing**. In a
# notebook you can set it with `%config`. With a cap of 0.01, a 0.017 grade is refused:

# %%
%config TMMagics.max_per_call = 0.01

# %% tags=["raises-exception"]
%tm grade SOL

# %% [markdown]
# **What happened.** The client read the price from the 402 challenge (0.017 USDC), compared it
# with the cap (0.01) and stopped: `BudgetExceeded`, a kind of `PaymentRefused`. Nothing was signed,
# so the ledger has no row for it. The hint names two fixes.
#
# **The fix.** Allow this one call with `--max-cost` (the cap stays 0.01 for everything else), or
# raise the cap for the session. Check the price first with `%tm quote`, which never pays.

# %%
%tm quote grade SOL

# %%
%tm grade SOL --max-cost 0.02

# %%
%config TMMagics.max_per_call = 0.10

# %% [markdown]
# ## 7 · A malformed payment challenge
#
# A 402 whose body is not valid x402 (truncated JSON here, via `malformed_challenge`) is rejected
# before anything is signed: the client will not guess what it is being asked to pay.

# %% tags=["raises-exception"]
s.sandbox.set_faults(malformed_challenge=1)
s.client.frame("quantmetrics", symbol="BTC")

# %% [markdown]
# **What happened / the fix.** `X402ProtocolError`, nothing signed. This is the server's (or a
# proxy's) fault, not yours: retry later. The same class guards against oversized challenges
# (over 16 KB, `oversized_challenge`), which a well-behaved server never sends.

# %% tags=["raises-exception"]
s.sandbox.set_faults(oversized_challenge=1)
s.client.frame("quantmetrics", symbol="BTC")

# %%
s.sandbox.set_faults()
print("payments signed for quantmetrics:", signed_for("quantmetrics"))

# %% [markdown]
# ## 8 · The wrong network
#
# A session set up for **Base mainnet** must never pay a Base Sepolia (testnet) challenge, nor the
# other way round. Here a client with a fresh throwaway wallet and a mainnet spending policy talks to
# our testnet sandbox:

# %%
mainnet_auth = tm.X402Auth(tm.Wallet.create(), tm.SpendPolicy(network="base"), ledger=s.ledger)
mainnet = Client(mode="x402", base_url=s.sandbox.api_url, auth=mainnet_auth, ledger=s.ledger)
rows_before = len(s.ledger.payments())
mainnet.quote("quantmetrics", symbol="BTC")

# %% [markdown]
# The quote already says the payment *would be refused*. Asking for the data confirms it:

# %% tags=["raises-exception"]
mainnet.frame("quantmetrics", symbol="BTC")

# %% [markdown]
# **What happened / the fix.** `PaymentRefused` before signing: the challenge asked for
# `base-sepolia`, the policy only allows Base (`eip155:8453`). Not one row was added to the ledger.
# Make the session's network match the server's: `tm.connect(network="base-sepolia")` while
# testing, `network="base"` (and mainnet funds) in production.

# %%
print("ledger rows added:", len(s.ledger.payments()) - rows_before)
mainnet.close()

# %% [markdown]
# ## 9 · TMAI without a Permit2 allowance
#
# TMAI has no EIP-3009 transfer authorization, so a TMAI offer says
# `extra.assetTransferMethod: "permit2"`: the payment is a signed transfer through Uniswap's Permit2
# contract, which may move only what the wallet approved it to, once, on chain. A wallet that never
# did gets this error. To reproduce it we open a session that pays in TMAI (`pay_with="tmai"`)
# against a sandbox that plays Permit2 (`tmai_transfer="permit2"`), with a throwaway wallet that has
# not approved it (`approve_permit2: False`; by default the sandbox's wallet has, so TMAI pays out
# of the box).

# %%
tmai = tm.Session(mode="sandbox", pay_with="tmai",
                  sandbox_options={"tmai_transfer": "permit2", "approve_permit2": False})
tmai.allowance("tmai")

# %% tags=["raises-exception"]
tmai.client.frame("tm-grade", symbol="BTC")

# %% [markdown]
# **What happened.** Before signing, the client read the wallet's allowance from the chain: none,
# short of the 1.53 TMAI the grade costs. `Permit2AllowanceRequired` (a `PaymentRefused`, with
# `.reason == "permit2_allowance_required"`): nothing was signed, the ledger has no row. (Where the
# client cannot read the chain, the server refuses the payment for the same reason, HTTP 412 in
# x402 v2, and you get the same error with a `failed` row.)
#
# **The fix** is one line, once per wallet and token: `s.approve_permit2("tmai", 50)`, or
# `%tm approve tmai 50` in a cell. It is a transaction from your wallet, so it costs a little gas,
# paid **in ETH** (the sandbox's wallet holds 0.01 ETH). It shows the token, the spender, the amount
# and the most the gas may cost, and asks before sending; `yes=True` sends without asking, as here,
# where nobody is there to answer.

# %%
tmai.approve_permit2("tmai", 50, yes=True)

# %% [markdown]
# Now the same request pays 1.53 TMAI, and the allowance goes down by what Permit2 moved. (The
# footer's session total is that of `s`, the current session: `tmai` is a second one, like `poor`.)

# %%
grade = tmai.client.frame("tm-grade", symbol="BTC")
print(grade.tm.cost)
print(tmai.allowance("tmai"))
payments(tmai)

# %%
tmai.close()

# %% [markdown]
# ## 10 · A settlement that is still pending
#
# Sometimes the facilitator broadcasts the transfer but the chain has not confirmed it by the time
# the server must answer. The server then withholds the data and says `settlement_pending`. The
# sandbox's `settle_pending` fault plays it; `settle_pending_reads=0` keeps the transfer unconfirmed
# until we mine it.

# %% tags=["raises-exception"]
s.sandbox.set_faults(settle_pending=1, settle_pending_reads=0)  # broadcast, not confirmed
%tm grade BTC

# %% [markdown]
# **What happened.** `SettlementPending`, a kind of `PaymentOutcomeUnknown`: not a failure, the
# transfer will most likely land, and the footer says "settlement pending: see %tm ledger
# --resolve". The payment **stays counted** against your caps, as `settlement_pending` in the ledger:

# %%
s.sandbox.set_faults()
print(s.budget_text())
payments().tail(1)

# %% [markdown]
# **How `%tm ledger --resolve` decides it.** It reads each open payment's nonce on chain (here
# through the sandbox's JSON-RPC): nonce used, `settled`; unused and the authorization expired,
# `failed` (it can never settle, so it is released); unused and still valid, left pending, since it
# can still land. Right now it is the last:

# %%
%tm ledger --resolve

# %% [markdown]
# **The fix.** Wait for the chain, then run the same cell again: the client replays the *same*
# signed payment (it cannot settle twice), and once the transfer has landed the server answers.
# Here `s.sandbox.mine()` plays the chain confirming it (on Base, a few seconds):

# %%
s.sandbox.mine()
%tm grade BTC

# %% [markdown]
# One payment, now `settled` (the same row), and the data arrived. The replay lives in the kernel's
# memory: after a restart, `%tm ledger --resolve` would find the nonce used and record the row
# `settled`, but the answer would still be missing. Notebook 05 shows the report for that case.

# %%
payments().tail(1)

# %% [markdown]
# ## Summary
#
# | Error (as the article names it) | Sandbox fault used here | Toolkit exception | Was money spent? | The fix |
# |---|---|---|---|---|
# | Payment failed: not enough funds | a wallet funded with 0.01 USDC | `PaymentFailed` (`.reason == "insufficient_funds"`) | no (`failed`) | fund the wallet on the right network, re-run |
# | Payment failed: settlement | `settle_failure` | `PaymentFailed` | no (`failed`) | re-run (a fresh payment is signed) |
# | Timeout before paying | `latency_ms` > client timeout | `APIError` (retried first) | nothing signed | keep the 30 s default timeout |
# | Timeout after paying | `latency_ms` on a warm endpoint | `PaymentOutcomeUnknown` | maybe (`unknown`) | fix the cause, re-run: the *same* payment is replayed |
# | Authorization expired | `slow_settle_past_valid_before` | `PaymentFailed` | no (`failed`) | check the clock, re-run; a faster RPC |
# | 429 rate limit | `burst_429` | retried; then `RateLimited` (`.status == 429`) | no | wait, lower `max_concurrency`, batch symbols |
# | Missing `x-coinbase-402` | raw `httpx` | HTTP 401 from the server | no | send `x-coinbase-402: true` (the toolkit always does) |
# | `x-api-key` together with x402 | both headers | HTTP 400; `ConfigurationError` in the toolkit | nothing sent | choose one mode |
# | Price over the cap | `max_per_call = 0.01` | `BudgetExceeded` | nothing signed | `--max-cost`, or raise the cap |
# | Malformed / oversized challenge | `malformed_challenge`, `oversized_challenge` | `X402ProtocolError` | nothing signed | retry later; it is the server's fault |
# | Wrong network | mainnet policy, testnet server | `PaymentRefused` | nothing signed | match `network=` to the server |
# | TMAI without allowance | a wallet that never approved Permit2 | `Permit2AllowanceRequired` | nothing signed | approve once: `%tm approve tmai 50` (gas in ETH) |
# | Settlement pending | `settle_pending` | `SettlementPending` (a `PaymentOutcomeUnknown`) | most likely (`settlement_pending`, counted) | re-run: the *same* payment is replayed; `%tm ledger --resolve` |
#
# Every one of these is a `tm.TM402Error`, so `except tm.TM402Error` catches them all in a script,
# and each shows as one line in a notebook. What this notebook spent, all of it sandbox money:

# %%
print(s.cost.total.summary())
payments()["status"].value_counts()

# %%
s.close()
