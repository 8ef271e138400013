# %% [markdown]
# # 02 · A paying httpx client you can copy
#
# Notebook 01 took one paid call apart. This one puts it back together as code you can paste into a
# script, a service or an agent:
#
# 1. the wallet, read from the environment (and never printed);
# 2. `X402Auth` with a plain `httpx.Client`, then `paying_client` (30 s timeout, ledger, safe replays);
# 3. the same with `httpx.AsyncClient`, several paid calls at once;
# 4. **caps**: per call, per session, per day, and what a refusal looks like;
# 5. **testnet ↔ mainnet**: how the switch is made, and why it is opt-in;
# 6. **TMAI or USDC**: paying with Token Metrics' own token at a 10 % discount;
# 7. the same client in JavaScript (Axios), for readers coming from Node.
#
# **What it costs.** Nothing in the sandbox (the default). Against the real API: nine paid
# `tm-grade` calls at 0.017 USDC (**0.153 USDC**); the refused calls cost nothing, since a refusal
# happens before anything is signed. The TMAI section runs only in the sandbox.
#
# **Sandbox by default; the real API with one change.** The first code cell uses the embedded sandbox
# unless a key is configured: set `TM402_PRIVATE_KEY` (a testnet key) and `TM402_MODE=x402` before
# starting Jupyter, and the same cells call `api.tokenmetrics.com`. (With the high-level API the
# switch is `tm.connect(mode="x402", network="base", budget="1.00")`.)

# %% [markdown]
# ## 1 · The wallet comes from the environment
#
# A private key belongs in the environment (or a key file, see notebook 05), never in a notebook or a
# repository. `Wallet.from_env()` reads `TM402_PRIVATE_KEY`, checks it, and keeps it inside the object:
# the wallet's `repr` shows the address only, and a `Wallet` refuses to be pickled, so it cannot leak
# into a cache or a subprocess by accident.
#
# This cell is the only place where the tutorial differs from your own code: when no key is set, it
# borrows the sandbox's funded throwaway wallet instead.

# %%
import os

import pandas as pd
from tm402_nb.sandbox import serve
from tm402_nb.x402 import Wallet

pd.set_option("display.max_colwidth", 80)
MODE = os.environ.get("TM402_MODE") or ("x402" if os.environ.get("TM402_PRIVATE_KEY") else "sandbox")

if MODE == "x402":
    wallet = Wallet.from_env()                      # $TM402_PRIVATE_KEY, never echoed
    API, sb = "https://api.tokenmetrics.com/v2", None
else:
    sb = serve()                                    # local Token Metrics-compatible API on 127.0.0.1
    wallet, API = sb.wallet, sb.api_url

print(f"mode: {MODE}" + ("  (SANDBOX: synthetic data, test money)" if sb is not None else ""))
wallet

# %% [markdown]
# If the variable is missing (or malformed), the error says so without quoting what it found, since a
# malformed key is often a real key with a typo:

# %%
from tm402_nb import WalletError

try:
    Wallet.from_env("TM402_TUTORIAL_NOT_SET")
except WalletError as exc:
    print(f"{type(exc).__name__}: {exc}")

# %% [markdown]
# ## 2 · `X402Auth` with `httpx.Client`
#
# The smallest complete client. Three things to notice:
#
# * `x-coinbase-402: true` goes on **every** request: it is how Token Metrics knows you pay per call
#   (without it, the API takes you for a subscriber, finds no key, and answers 401). Never send
#   `x-api-key` at the same time.
# * The `SpendPolicy` is where the money rules live. Here: at most 0.05 USD per call. Testnet
#   (Base Sepolia) is the default network.
# * `timeout=30`: a paid call includes a settlement on chain, which can take several seconds on a busy
#   network. httpx's default of 5 s is too short and would cut off calls that have already been paid for.

# %%
import httpx
from tm402_nb.x402 import SpendPolicy, X402Auth, receipt

auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"))

with httpx.Client(base_url=API, auth=auth, timeout=30, headers={"x-coinbase-402": "true"}) as client:
    r = client.get("/tm-grade", params={"symbol": "BTC"})
    r.raise_for_status()

top = r.json()["data"][0]
print(top["TOKEN_SYMBOL"], "TM grade", top["TM_GRADE"], "·", top["TM_GRADE_SIGNAL"])
print("paid, tx", receipt(r).transaction, "on", receipt(r).network)

# %% [markdown]
# ### `paying_client`: the same, with the safety features switched on
#
# `paying_client(wallet, policy, ledger=...)` returns an ordinary `httpx.Client` that already has:
#
# * the `X402Auth`, with a **ledger** (every payment written before it is sent, and its outcome after);
# * a **30 s timeout** by default (any httpx option, `timeout=` included, passes through);
# * a **replay transport**: if the connection drops *after* a signed payment went out, it re-sends the
#   request with the **same** header. The server can settle that payment at most once (its nonce
#   is single-use), so a lost answer never turns into a second charge.
#
# `Ledger()` with no argument is your real ledger in the user data folder; the tutorial uses a
# throwaway file.

# %%
import tempfile
from pathlib import Path

from tm402_nb.ledger import Ledger
from tm402_nb.x402 import paying_client, payment_of

ledger = Ledger(Path(tempfile.mkdtemp()) / "ledger.sqlite3")
policy = SpendPolicy(max_per_call="0.05")

with paying_client(wallet, policy, ledger=ledger, base_url=API, timeout=30,
                   headers={"x-coinbase-402": "true"}) as client:
    print("timeout:", client.timeout)
    for symbol in ("ETH", "SOL"):
        r = client.get("/tm-grade", params={"symbol": symbol})
        pay = payment_of(r)
        print(f"{symbol}: HTTP {r.status_code} · {pay.display} · {pay.status} · warm={pay.warm}")

ledger.payments()[["status", "endpoint", "amount", "asset_symbol", "network", "tx"]]

# %% [markdown]
# `warm=True` on the second call means it was paid in **one** round trip: the client remembered the
# price from the first call's challenge and sent the signed payment straight away (notebook 01 shows
# the server-side counts).

# %% [markdown]
# ## 3 · `httpx.AsyncClient`: many paid calls at once
#
# `X402Auth` works unchanged with `httpx.AsyncClient`. Jupyter runs top-level `await`, so no
# `asyncio.run` is needed here (in a script, wrap the code in `async def main()` and call
# `asyncio.run(main())`).
#
# Is it safe to fire several payments from one wallet at once? Yes: unlike an on-chain transaction,
# an EIP-3009 authorization does not use the account's sequential nonce. Each payment carries its own
# random 32-byte nonce, so concurrent payments cannot collide or block each other, and several
# processes or agents may share one wallet (the ledger is safe for several writers too).

# %%
import asyncio

symbols = ["BTC", "ETH", "SOL"]
async_auth = X402Auth(wallet, policy, ledger=ledger)

async with httpx.AsyncClient(base_url=API, auth=async_auth, timeout=30,
                             headers={"x-coinbase-402": "true"}) as aclient:
    responses = await asyncio.gather(*(aclient.get("/tm-grade", params={"symbol": s}) for s in symbols))

pd.DataFrame([{
    "symbol": s,
    "status": r.status_code,
    "TM_GRADE": r.json()["data"][0]["TM_GRADE"],
    "paid": payment_of(r).display,
    "tx": receipt(r).transaction[:18] + "…",
} for s, r in zip(symbols, responses, strict=True)])

# %% [markdown]
# `async_paying_client` is the async twin of `paying_client`: the same auth, a ledger, the 30 s
# timeout and the replay transport, in one call.

# %%
from tm402_nb.x402 import async_paying_client

async with async_paying_client(wallet, policy, ledger=ledger, base_url=API,
                               headers={"x-coinbase-402": "true"}) as aclient:
    print("timeout:", aclient.timeout)
    more = await asyncio.gather(*(aclient.get("/tm-grade", params={"symbol": s}) for s in ("BNB", "XRP")))

print([f"{r.status_code} {payment_of(r).display}" for r in more])

# %% [markdown]
# ## 4 · Caps, and what a refusal looks like
#
# A client that pays automatically needs limits that are checked automatically, and *before* the
# signature: once a payment is signed, it is out of your hands. `SpendPolicy` takes three caps in USD
# (applied to USDC):
#
# | cap | meaning | lives in |
# |---|---|---|
# | `max_per_call` | the most one request may cost | the policy (default 0.10) |
# | `budget` | the total this client may spend | the policy, for its lifetime |
# | `daily_cap` | the total per UTC day | the **ledger**, so it survives restarts and is shared by every process using that ledger (hence a ledger is required) |
#
# Here is a policy with all three, and a request for an AI report, which is priced at 0.068 USDC:

# %%
import tm402_nb as tm

capped = SpendPolicy(max_per_call="0.05", budget="1.00", daily_cap="0.50")
print(capped)

with paying_client(wallet, capped, ledger=ledger, base_url=API, headers={"x-coinbase-402": "true"}) as client:
    try:
        client.get("/ai-reports", params={"symbol": "BTC"})
    except tm.BudgetExceeded as exc:
        print(f"\n{type(exc).__name__}: {exc}")
        print("details:", exc.details)

# %% [markdown]
# The refusal names the price, the cap that stopped it, and the setting to change. `exc.details` has
# the same facts as data (atomic units), for code that wants to react, e.g. to ask a human before
# raising the cap. Nothing was signed, so the ledger has no new row and the money is untouched.
#
# `BudgetExceeded` is a `PaymentRefused`, which is a `TM402Error`: catch whichever level suits you.
# Uncaught, in a notebook, it prints as one short line instead of a page of traceback. The next cell
# spends a tiny budget and then asks for more; it is *expected* to fail (it is tagged
# `raises-exception`, so automated runs of this notebook don't stop there):

# %% tags=["raises-exception"]
tiny = SpendPolicy(max_per_call="0.05", budget="0.03")

with paying_client(wallet, tiny, ledger=ledger, base_url=API, headers={"x-coinbase-402": "true"}) as client:
    client.get("/tm-grade", params={"symbol": "DOGE"})   # 0.017 of 0.03: fine
    client.get("/tm-grade", params={"symbol": "ADA"})    # only 0.013 left: refused before signing

# %% [markdown]
# A quick look at the ledger confirms it: one new payment (DOGE), nothing for ADA.

# %%
ledger.payments()[["status", "url", "amount", "asset_symbol"]].tail(2)

# %% [markdown]
# ## 5 · Testnet ↔ mainnet
#
# Every policy starts on **Base Sepolia**, the test network, where USDC comes free from a faucet.
# Real money (Base mainnet) needs you to say so, in one of two ways:
#
# * `SpendPolicy(network="base")`: pay on Base mainnet only (what you want in production);
# * `SpendPolicy(allow_mainnet=True)`: accept both (handy while migrating; rarely what you want after).
#
# Nothing below contacts a real network: these cells only build configurations.

# %%
pd.DataFrame({
    "configuration": ['SpendPolicy()', 'SpendPolicy(network="base")', 'SpendPolicy(allow_mainnet=True)'],
    "networks allowed": [SpendPolicy().networks, SpendPolicy(network="base").networks,
                         SpendPolicy(allow_mainnet=True).networks],
})

# %% [markdown]
# Why insist? Because the server, not you, writes the challenge. If a testnet client meets a
# mainnet price list (a misconfigured URL, a server that moved, a malicious proxy), it must refuse
# rather than quietly spend real USDC. A local sandbox started with `network="base"` plays such a
# server (still all local, no real money):

# %%
mainnet_like = serve(network="base")
testnet_auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"))
try:
    httpx.get(f"{mainnet_like.api_url}/tm-grade", params={"symbol": "BTC"},
              headers={"x-coinbase-402": "true"}, auth=testnet_auth)
except tm.PaymentRefused as exc:
    print(type(exc).__name__, "· nothing was signed\n")
    offered = exc.offers                       # the challenge's entries, as the server sent them
    display(pd.DataFrame([{"network": o.network, "amount": o.amount, "why not": testnet_auth.policy.screen(o)}
                          for o in offered]))
mainnet_like.stop()

# %% [markdown]
# One more difference bites people switching networks by hand: the **EIP-712 domain of USDC is not the
# same** on the two networks. The token's `name` is `"USDC"` on Base Sepolia but `"USD Coin"` on Base.
# Sign with the wrong one and you get a perfectly formed signature that no facilitator accepts. The
# toolkit keeps both in its token registry (and prefers the name the server sends in `extra`):

# %%
from tm402_nb.x402.networks import USDC_BASE, USDC_BASE_SEPOLIA

pd.DataFrame([{"network": str(a).split(" on ")[1], "contract": a.address, "EIP-712 name": a.eip712_name,
               "version": a.eip712_version, "decimals": a.decimals} for a in (USDC_BASE_SEPOLIA, USDC_BASE)])

# %% [markdown]
# ## 6 · TMAI or USDC
#
# Token Metrics also takes its own token, **TMAI**, and charges 10 % less when you pay with it. Two
# things select it:
#
# * the request header `x-payment-token: tmai`, which tells the API which offer you intend to take;
# * `SpendPolicy(pay_with="tmai")`, which tells *your client* to pick the TMAI entry of the challenge.
#
# Caps need one extra thought. The USD caps apply to USDC, whose value is one dollar by design. TMAI's
# dollar price moves, and the client has no trustworthy price feed, so a TMAI payment is only allowed
# with an explicit limit **in TMAI units**: `asset_limits={"TMAI": {"max_per_call": "20"}}`. Without one,
# the policy refuses rather than guess.
#
# The sandbox has its own TMAI on Base Sepolia (the real one lives on Base mainnet), registered with
# `extra_assets`. In the sandbox, 1 TMAI is worth a fixed $0.01, so the 0.017 USD grade costs
# 0.0153 USD, i.e. 1.53 TMAI. (*Sandbox only*: this section is skipped against the real API.)

# %%
if sb:
    from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA

    tmai_policy = SpendPolicy(
        pay_with="tmai",
        extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA],        # the sandbox's test token
        asset_limits={"TMAI": {"max_per_call": "20"}},   # caps in TMAI, not USD
    )
    headers = {"x-coinbase-402": "true", "x-payment-token": "tmai"}
    with paying_client(wallet, tmai_policy, ledger=ledger, base_url=API, headers=headers) as client:
        r = client.get("/tm-grade", params={"symbol": "LINK"})
    print(f"HTTP {r.status_code} · paid {payment_of(r).display} · tx {receipt(r).transaction[:18]}…")

# %% [markdown]
# Side by side in the ledger: the last USDC payment and the TMAI one. `amount` is in display units of
# each token; `amount_atomic` is the exact integer that was signed.

# %%
ledger.payments()[["endpoint", "asset_symbol", "amount", "amount_atomic", "status"]].tail(2)

# %% [markdown]
# And without a TMAI limit, the same request is refused before signing:

# %%
if sb:
    no_limit = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA])
    try:
        with paying_client(wallet, no_limit, ledger=ledger, base_url=API, headers=headers) as client:
            client.get("/tm-grade", params={"symbol": "DOT"})
    except tm.BudgetExceeded as exc:
        print(f"{type(exc).__name__}: {exc}")

# %% [markdown]
# ## 7 · For JavaScript readers: the Axios version
#
# The same client in Node, with the `x402-axios` package and `viem` for the wallet. It is shown for
# comparison and is **not executed** by this notebook.
#
# ```javascript
# // Node 18+ · npm install axios x402-axios viem      (not executed here)
# import axios from "axios";
# import { createWalletClient, http } from "viem";
# import { privateKeyToAccount } from "viem/accounts";
# import { baseSepolia } from "viem/chains";          // production: import { base } instead
# import { withPaymentInterceptor, decodeXPaymentResponse } from "x402-axios";
#
# // The key comes from the environment, as in Python; never commit it.
# const account = privateKeyToAccount(process.env.TM402_PRIVATE_KEY);
# const wallet = createWalletClient({ account, chain: baseSepolia, transport: http() });
#
# const tm = withPaymentInterceptor(
#   axios.create({
#     baseURL: "https://api.tokenmetrics.com/v2",
#     timeout: 30_000,                                  // milliseconds: leave room for settlement
#     headers: { "x-coinbase-402": "true", "x-payment-token": "usdc" },
#   }),
#   wallet,
# );
#
# const res = await tm.get("/tm-grade", { params: { symbol: "BTC" } });
# console.log(res.data.data[0].TM_GRADE);
#
# const paid = decodeXPaymentResponse(res.headers["x-payment-response"]);
# console.log("tx", paid.transaction, "on", paid.network);
# ```
#
# How the pieces line up:
#
# | concern | Python (this toolkit) | JavaScript (`x402-axios`) |
# |---|---|---|
# | wallet | `Wallet.from_env()` | `privateKeyToAccount(process.env.…)` + a viem wallet client |
# | the payment hook | `X402Auth` (an `httpx.Auth`) | `withPaymentInterceptor` (an Axios interceptor) |
# | network | `SpendPolicy(network="base")` | the viem `chain`: `baseSepolia` → `base` |
# | timeout | `timeout=30` (seconds) | `timeout: 30_000` (milliseconds) |
# | receipt | `receipt(r)` | `decodeXPaymentResponse(res.headers["x-payment-response"])` |
# | caps, ledger, warm path | `SpendPolicy`, `Ledger`, built in | yours to write |

# %% [markdown]
# ## Clean up

# %%
if sb:
    sb.stop()
ledger.close()

# %% [markdown]
# ## Copy-paste summary
#
# ```python
# import httpx
# import tm402_nb as tm
#
# wallet = tm.Wallet.from_env()                                   # $TM402_PRIVATE_KEY
# policy = tm.SpendPolicy(max_per_call="0.05", budget="2.00", daily_cap="1.00")   # Base Sepolia
# ledger = tm.Ledger()                                            # your permanent payment record
#
# with tm.paying_client(wallet, policy, ledger=ledger, base_url="https://api.tokenmetrics.com/v2",
#                       headers={"x-coinbase-402": "true"}) as client:   # 30 s timeout built in
#     r = client.get("/tm-grade", params={"symbol": "BTC"})
#     print(r.json()["data"][0], tm.receipt(r))
# ```
#
# Next: **05 · production**: keys in files, caps that persist, exporting the ledger for accounting,
# low-balance alerts, caching, and the checklist for moving to Base mainnet.
