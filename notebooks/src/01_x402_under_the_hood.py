# %% [markdown]
# # 01 · x402 under the hood
#
# A Token Metrics call paid with x402 is two HTTP requests and one signature. This notebook
# does each step by hand, using plain `httpx` and the small protocol helpers in `tm402_nb.x402`,
# so you can see what the automatic client does for you:
#
# 1. the bare request, and the **402 Payment Required** challenge it gets back;
# 2. the challenge decoded into a table (price, token, payee, network, time window);
# 3. the **EIP-712 `TransferWithAuthorization`** message: built, hashed, signed, and checked;
# 4. the **retry** carrying the signed payment in the `X-PAYMENT` header;
# 5. the **receipt** the server sends back (transaction hash, payer, network);
# 6. the same call in one line with `X402Auth`, and the ledger row it leaves;
# 7. the **warm path**: why the second paid call needs only one round trip;
# 8. protocol **v1 beside v2** (`PAYMENT-REQUIRED` / `PAYMENT-SIGNATURE`).
#
# **What it costs.** In the sandbox (the default) nothing real is spent: the server, the token
# and the chain are all local, and the wallet is a throwaway with play money. Against the real API,
# the paid steps are four `tm-grade` calls at 0.017 USDC each, **0.068 USDC** in total.
#
# **Sandbox by default; the real API with one change.** The first code cell starts the embedded
# sandbox (`tm402_nb.sandbox.serve()`), a local Token Metrics–compatible x402 API on 127.0.0.1 with
# a funded throwaway wallet. To run the same steps against `api.tokenmetrics.com`, set
# `TM402_MODE=x402` and `TM402_PRIVATE_KEY` (a testnet key) before starting Jupyter; cells that peek
# inside the sandbox (its counters, its simulated chain, its v2 twin) skip themselves then.
# (With the high-level API the switch is `tm.connect(mode="x402", network="base", budget="1.00")` instead of `mode="sandbox"`.)

# %% [markdown]
# ## The map
#
# Keep this picture in mind; each section below is one arrow of it. (The diagram is a Mermaid
# block, which GitHub draws; a plain-text copy follows for viewers that don't.)
#
# ```mermaid
# sequenceDiagram
#     participant C as Your code (httpx)
#     participant A as Token Metrics API
#     participant F as Facilitator / chain
#     C->>A: GET /v2/tm-grade?symbol=BTC  (x-coinbase-402: true)
#     A-->>C: 402 + accepts[]: 0.017 USDC on base-sepolia to payTo
#     Note over C: check the price against your caps,<br/>sign an EIP-3009 TransferWithAuthorization
#     C->>A: same GET + X-PAYMENT: base64(signed payload)
#     A->>F: verify the signature, amount, payee, nonce, balance
#     Note over A: run the request
#     A->>F: settle: the USDC transfer goes on chain
#     A-->>C: 200 + data + X-PAYMENT-RESPONSE: base64(receipt with tx hash)
# ```
#
# ```text
#   your code (httpx)                 Token Metrics API                facilitator / chain
#        |  GET /v2/tm-grade  x-coinbase-402: true |                              |
#        |---------------------------------------->|                              |
#        |  402  accepts[]: 0.017 USDC -> payTo    |                              |
#        |<----------------------------------------|                              |
#        |  check caps, sign EIP-712 message       |                              |
#        |  GET /v2/tm-grade  + X-PAYMENT          |                              |
#        |---------------------------------------->|  verify  ------------------->|
#        |                                         |  run the request             |
#        |                                         |  settle  ------------------->|  USDC moves
#        |  200  data + X-PAYMENT-RESPONSE (tx)    |                              |
#        |<----------------------------------------|                              |
# ```
#
# Notice what is *not* there: no API key, no account, no prior approval of the token. The
# signature itself is the permission to move exactly this amount, once, to this payee, for a
# short time.

# %% [markdown]
# ## Setup: a server and a wallet
#
# The mode follows the same rule as `tm.connect()`: `TM402_MODE` if set, else x402 when a private
# key is in the environment, else the sandbox. Only the wallet's **address** is ever shown; the key
# stays inside the `Wallet` object, whose `repr` has no way to print it.

# %%
import base64
import json
import os

import httpx
import pandas as pd

from tm402_nb.x402 import Wallet
from tm402_nb.sandbox import serve

pd.set_option("display.max_colwidth", 80)   # show hashes and addresses in full

MODE = os.environ.get("TM402_MODE") or ("x402" if os.environ.get("TM402_PRIVATE_KEY") else "sandbox")

if MODE == "x402":   # the real API: your key, real (testnet) money
    sb, API, wallet = None, "https://api.tokenmetrics.com/v2", Wallet.from_env()
else:                # the default: a local stand-in with a funded throwaway wallet
    sb = serve()
    API, wallet = sb.api_url, sb.wallet

print("mode:  ", MODE)
print("wallet:", wallet)

# %% [markdown]
# ## Step 1 · The bare request
#
# Token Metrics serves two kinds of callers on the same URLs: subscribers with an `x-api-key`,
# and pay-per-call clients. The header `x-coinbase-402: true` is how a client says "I will pay
# per call". Forget it, and the server treats you as a subscriber without a key:

# %%
url = f"{API}/tm-grade"
params = {"symbol": "BTC"}

r = httpx.get(url, params=params)
print(r.status_code, r.json()["message"])

# %% [markdown]
# With the header, the answer is **402 Payment Required**. Nothing has been paid, and the data is
# withheld; the body tells us what it would take to get it.

# %%
X402 = {"x-coinbase-402": "true"}

challenge_response = httpx.get(url, params=params, headers=X402)
print(challenge_response.status_code, challenge_response.reason_phrase, "·", challenge_response.headers["content-type"])
print(json.dumps(challenge_response.json(), indent=2)[:1400])

# %% [markdown]
# ## Step 2 · Reading the challenge
#
# Token Metrics speaks x402 **version 1**: the requirements travel in the JSON body, as a list
# called `accepts`. Each entry is one way to pay. `parse_challenge` validates the message (and
# would also read a v2 `PAYMENT-REQUIRED` header, see the last section) and keeps every entry's
# raw JSON next to the typed fields.
#
# One detail matters a lot: `maxAmountRequired` is an integer in the token's **smallest unit**.
# USDC has 6 decimals, so `17000` is 0.017 USDC. TMAI has 18, so its number looks enormous. To
# read an amount, you need the token's decimals, which is why the toolkit keeps a registry of
# known tokens (the sandbox's test TMAI is registered here by hand).

# %%
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.x402.messages import parse_challenge
from tm402_nb.x402.money import format_amount
from tm402_nb.x402.networks import find_asset

challenge = parse_challenge(challenge_response.headers, challenge_response.content)
print(f"x402 v{challenge.x402_version}, requirements from the {challenge.source}: {challenge.error!r}")

rows = []
for req in challenge.accepts:
    token = find_asset(req.network, req.asset, (SANDBOX_TMAI_BASE_SEPOLIA,))
    rows.append({
        "token": token.symbol if token else "?",
        "amount (atomic)": req.amount,
        "amount": format_amount(req.amount, token.decimals, token.symbol) if token else "?",
        "network": req.network,
        "asset (contract)": req.asset,
        "pay_to": req.pay_to,
        "max_timeout_seconds": req.max_timeout_seconds,
        "extra (EIP-712 domain)": req.extra,
    })
offers = pd.DataFrame(rows)
offers

# %% [markdown]
# What each column means for the client:
#
# | field | why the client cares |
# |---|---|
# | `amount` | the exact price. A good client compares it with *your* caps before doing anything else. |
# | `asset` | the token contract. It is also the `verifyingContract` of the signature below. |
# | `pay_to` | who receives the money. Pinning it per server stops a compromised server from switching payees mid-session. |
# | `network` | which chain. `base-sepolia` is the testnet; a mainnet entry here means real money. |
# | `max_timeout_seconds` | how long the signed payment may stay valid. |
# | `extra` | the token's EIP-712 `name` and `version`. Get these wrong and the signature is well formed but never verifies. |
#
# Which entry to take is *your* decision, and the place for your rules. A `SpendPolicy` makes it:
# it drops entries on networks you did not allow (mainnet is opt-in), tokens it does not know, or
# prices over your cap, and prefers USDC among the rest. Even doing everything else by hand, let it
# choose: then this notebook cannot pay more than 5 cents, or on mainnet, whichever server it meets.

# %%
from tm402_nb.x402 import SpendPolicy

choice = SpendPolicy(max_per_call="0.05").select(challenge)
print("chosen:", choice.display)
req = choice.requirements
req

# %% [markdown]
# ## Step 3 · The signature: an EIP-3009 `TransferWithAuthorization`
#
# USDC implements EIP-3009: anyone holding a signed *authorization* from you can submit it, and the
# token contract moves exactly that amount from you to the named recipient. The authorization is
# signed as EIP-712 typed data, which is two things: a **domain** (which token, on which chain) and a
# **message** (who pays whom, how much, in which time window, with which one-time nonce).
#
# First the domain, taken from the challenge: `name`/`version` from `extra`, the chain id from the
# network, the token contract from `asset`.

# %%
from tm402_nb.x402 import eip3009

domain = eip3009.domain_for(req)
pd.Series({
    "name": domain.name,
    "version": domain.version,
    "chainId": domain.chain_id,
    "verifyingContract": domain.verifying_contract,
    "domain separator": "0x" + domain.separator().hex(),
}).to_frame("EIP712Domain")

# %% [markdown]
# The domain separator is a hash of those four values. For USDC on Base Sepolia it is
# `0x71f17a…9818`; any correct EIP-712 implementation (eth-account, viem, the token contract itself)
# derives the same value from the same four fields. If ours differed, no facilitator could verify
# our signature.
#
# Now the message. `build_authorization` fills it from the requirement:
#
# * `validAfter` is set **ten minutes in the past**, so a server or chain clock a little behind ours
#   does not reject the payment as "not yet valid";
# * `validBefore` is now + `maxTimeoutSeconds`: after that, the authorization is worthless;
# * `nonce` is 32 random bytes. The token contract records every nonce it has used, so a given
#   authorization can move money **at most once**, however many times it is sent.

# %%
import time

now = int(time.time())
authorization = eip3009.build_authorization(wallet.address, req, now=now)

types = {"from": "address", "to": "address", "value": "uint256",
         "validAfter": "uint256", "validBefore": "uint256", "nonce": "bytes32"}
message = authorization.to_json()
pd.DataFrame({"solidity type": types, "value": message}).rename_axis("TransferWithAuthorization")

# %% [markdown]
# What gets signed is a single 32-byte **digest**:
# `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message))`. Every field above, and the domain,
# feed into it; change one bit anywhere and the digest is unrelated.

# %%
digest = eip3009.transfer_digest(authorization, domain)
print("digest: 0x" + digest.hex())

# %% [markdown]
# `sign_authorization` does the three steps (domain, message, digest) and signs the digest with the
# wallet's key. Given the same `now` and `nonce` it rebuilds the very same message, so the signature
# below is over the digest we just printed. The result is 65 bytes: `r` and `s` (the ECDSA
# signature) and `v` (which of two candidate public keys is the right one).

# %%
authorization_2, signature = eip3009.sign_authorization(wallet, req, now=now, nonce=authorization.nonce)
assert authorization_2 == authorization

sig = bytes.fromhex(signature[2:])
print("signature:", signature)
print(f"  r = 0x{sig[:32].hex()}\n  s = 0x{sig[32:64].hex()}\n  v = {sig[64]}")

# %% [markdown]
# **Proof.** Anyone can recover the signer's address from the message, the domain and the
# signature; no key is needed. That is exactly what the facilitator does first. Recovering gives our
# wallet's address; tamper with the amount and the same signature points at a stranger, so the
# payment would be refused.

# %%
import dataclasses

signer = eip3009.recover_signer(authorization, domain, signature)
print("recovered signer:", signer, "· ours:", signer == wallet.address)

tampered = dataclasses.replace(authorization, value=1)
print("with value=1    :", eip3009.recover_signer(tampered, domain, signature), "· ours:",
      eip3009.recover_signer(tampered, domain, signature) == wallet.address)

# %% [markdown]
# ## Step 4 · The retry, with proof of payment
#
# The signed authorization is wrapped in a small JSON **payload** (protocol version, scheme,
# network, signature, authorization), base64-encoded, and sent in a header on the *same request*.
# For v1 the header is `X-PAYMENT`.
#
# Nothing is secret in it: it contains the signature, not the key. It is, however, worth money until
# it is used or it expires, so treat it like a signed cheque (don't log it).

# %%
from tm402_nb.x402.messages import build_payment_payload

payload = build_payment_payload(challenge, req, authorization, signature)
header_value = payload.encode()

print("header:", payload.header_name, f"({len(header_value)} characters of base64)")
print(json.dumps(payload.to_json(), indent=2))

# %%
paid = httpx.get(url, params=params, headers={**X402, payload.header_name: header_value})
print(paid.status_code, paid.reason_phrase)

grades = pd.DataFrame(paid.json()["data"])
grades[["TOKEN_ID", "TOKEN_SYMBOL", "TOKEN_NAME", "TM_GRADE", "TM_GRADE_SIGNAL", "FUNDAMENTAL_GRADE"]].head(3)

# %% [markdown]
# Between our request and this answer, the server asked its facilitator to **verify** the payment
# (signature, amount, payee, token, network, time window, unused nonce, enough balance), ran the
# request, and then asked it to **settle**, which submits the transfer on chain. Settling happens
# *after* the work: if the request had failed, the signed payment would have been dropped unused.

# %% [markdown]
# ## Step 5 · The receipt
#
# The outcome of the settlement comes back in the `X-PAYMENT-RESPONSE` header, base64 JSON again.
# `read_receipt` decodes it (and would read the v2 `PAYMENT-RESPONSE` too).

# %%
from tm402_nb.x402.messages import read_receipt

raw = paid.headers["X-PAYMENT-RESPONSE"]
print("raw header:", raw[:48] + "…")
print("decoded   :", base64.b64decode(raw).decode())

receipt = read_receipt(paid.headers)
pd.Series({"success": receipt.success, "transaction": receipt.transaction,
           "network": receipt.network, "payer": receipt.payer}).to_frame("receipt")

# %% [markdown]
# On the real network the `transaction` is a hash you can look up on a Base Sepolia block explorer.
# The sandbox keeps its own little chain, so we can look at the transfer and the balance directly
# (*sandbox only*):

# %%
if sb:
    transfer = sb.settlements(payer=wallet.address)[-1]
    print("on chain:", {k: transfer[k] for k in ("tx", "amount", "pay_to", "block")})
    print("wallet now holds", format_amount(sb.balance(wallet.address, "usdc"), 6, "USDC"), "(it started with 100)")

# %% [markdown]
# **Replay protection, demonstrated.** Send the very same header again. The signature is still
# valid and the time window still open, but the nonce has been used, so the server refuses with a
# fresh 402 and no money moves. This is why a client may safely *re-send* a payment whose answer
# was lost, and must never *re-sign* one (a new nonce would be a second payment).

# %%
again = httpx.get(url, params=params, headers={**X402, payload.header_name: header_value})
print(again.status_code, "·", again.json()["error"])

# %% [markdown]
# ## Step 6 · All of it in one line: `X402Auth`
#
# Everything above (read the challenge, check it against a spending policy, sign, retry, read the
# receipt) is what `X402Auth` does. It is a standard `httpx.Auth`, so it plugs into `httpx.get`,
# `httpx.Client` and `httpx.AsyncClient`.
#
# Give it a `Ledger` and every payment is written down **before** the signed header leaves the
# machine (status `pending`), then updated with the outcome (`settled` plus the transaction hash, or
# `failed` with the reason). A crash mid-payment leaves a row you can investigate, never a silent
# gap. `Ledger()` with no argument is your real ledger in your user data folder; this tutorial uses a
# throwaway file so its play payments stay out of your records.

# %%
import tempfile
from pathlib import Path

from tm402_nb.ledger import Ledger
from tm402_nb.x402 import X402Auth, receipt as receipt_of

ledger = Ledger(Path(tempfile.mkdtemp()) / "ledger.sqlite3")
auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger)

via_auth = httpx.get(url, params={"symbol": "ETH"}, headers=X402, auth=auth)
print(via_auth.status_code, "· tx", receipt_of(via_auth).transaction)

# %%
ledger.payments()[["created_at", "status", "endpoint", "amount", "asset_symbol", "network", "tx", "payer"]]

# %% [markdown]
# Note the network column: the ledger always stores the CAIP-2 id (`eip155:84532` is Base Sepolia),
# whichever protocol version the server spoke, so v1 and v2 payments add up in one place.

# %% [markdown]
# ## Step 7 · The warm path: one round trip instead of two
#
# Done naively, every paid call costs two round trips: the request that earns the 402, then the
# paid retry. But a price does not change from one second to the next, and the challenge says for
# how long a payment is good (`maxTimeoutSeconds`). So `X402Auth` remembers the challenge for each
# endpoint and, on the next call, **signs before sending** and attaches the payment to the first
# request. If the server's terms have changed, it answers 402 again: that call stops there with a
# `PaymentFailed` and signs nothing more (the refused signature stays valid until it expires, so a
# second one could be collected too); it remembers the new terms, and the next call pays them.
#
# To see it, we count what the server receives (*sandbox only*: `sb.stats()` reads its counters).
# One fresh client (a new `X402Auth`, so it remembers nothing yet), two calls to `tm-grade`:

# %%
def tm_grade_counts():
    """Counts the sandbox keeps for /v2/tm-grade (requests, challenges, payments, ...)."""
    return pd.Series(sb.stats()["paths"].get("/v2/tm-grade", {})) if sb else pd.Series(dtype=int)

warm_auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger)
client = httpx.Client(auth=warm_auth, headers=X402, timeout=30)

before = tm_grade_counts()
client.get(url, params={"symbol": "SOL"})       # first call in this client: challenge + paid retry
after_first = tm_grade_counts()
client.get(url, params={"symbol": "XRP"})       # second call: the payment rides on the first request
after_second = tm_grade_counts()
client.close()

if sb:
    display(pd.DataFrame({"first call": after_first - before, "second call": after_second - after_first}))
print("client side:", warm_auth.stats)

# %% [markdown]
# Read the table column by column. The first call made **2 requests**: one was answered with a
# challenge, the other carried the payment. The second made **1 request**, with no challenge, and its
# payment arrived "unchallenged" (signed against the remembered terms). Same price, same receipt,
# half the latency. The client keeps its own score: `challenges` answered, payments `signed`, and
# `warm_hits` (payments sent without waiting for a challenge).
#
# The memory lives in the `X402Auth` object and lasts a little less than the challenge's
# `maxTimeoutSeconds`, so keep one client (or one auth) for the life of your program rather than
# one per call.

# %% [markdown]
# ## Step 8 · Protocol v1 beside v2
#
# x402 has two versions on the wire. Token Metrics speaks v1 today; newer servers speak v2, which
# moves everything into headers and names networks the CAIP-2 way (`eip155:84532`). The toolkit
# speaks both (and prefers v2 when a server offers both). A second sandbox, started with
# `x402_version=2`, lets us look at the differences (*sandbox only*: it is a local server).

# %%
sb2 = serve(x402_version=2)
url2 = f"{sb2.api_url}/tm-grade"

bare2 = httpx.get(url2, params=params, headers=X402)
print(bare2.status_code, "· body:", bare2.text, "· header PAYMENT-REQUIRED:", bare2.headers["PAYMENT-REQUIRED"][:40] + "…")

challenge2 = parse_challenge(bare2.headers, bare2.content)
print(f"x402 v{challenge2.x402_version}, requirements from the {challenge2.source}")
print(json.dumps(challenge2.accepts[0].raw, indent=2))

# %% [markdown]
# The body is empty (`{}`); the requirements sit base64-encoded in the `PAYMENT-REQUIRED` header, the
# amount field is called `amount`, and the description and URL moved to a shared `resource` object.
#
# Paying it with `X402Auth` looks exactly the same from the outside. Inside, the payload is different:
# there is no top-level `scheme`/`network`, and instead an **`accepted`** field carrying a verbatim
# copy of the requirement we chose. A v2 server compares that copy with its own, key by key, so a
# client must echo what it received, not a re-serialised version of it.

# %%
from tm402_nb.x402 import payment_of

auth2 = X402Auth(sb2.wallet, SpendPolicy(max_per_call="0.05"))
paid2 = httpx.get(url2, params=params, headers=X402, auth=auth2)
payload2 = payment_of(paid2).payload
print(paid2.status_code, "· sent", payment_of(paid2).header_name, "· receipt in",
      [h for h in ("PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE") if h in paid2.headers])

shown = payload2.to_json()
shown["payload"] = {"signature": shown["payload"]["signature"][:18] + "…", "authorization": "{…as in v1…}"}
print(json.dumps(shown, indent=2, ensure_ascii=False))

# %% [markdown]
# The two side by side, filled in from the two exchanges we just made:

# %%
def version_row(bare, required, paid_response):
    p = payment_of(paid_response)
    wire = p.payload.to_json()
    return {
        "requirements travel in": "PAYMENT-REQUIRED header" if required.source == "header" else "402 JSON body",
        "402 body": bare.text[:30] + ("…" if len(bare.text) > 30 else ""),
        "amount field": "amount" if required.x402_version == 2 else "maxAmountRequired",
        "network id": required.accepts[0].network,
        "client header": p.header_name,
        "payload keys": ", ".join(wire),
        "receipt header": next(h for h in ("PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE") if h in paid_response.headers),
    }

pd.DataFrame({
    "v1 (Token Metrics today)": version_row(challenge_response, challenge, via_auth),
    "v2": version_row(bare2, challenge2, paid2),
})

# %% [markdown]
# ## Clean up
#
# Stop the local servers (a no-op against the real API) and close the ledger.

# %%
for server in (sb, sb2):
    if server:
        server.stop()
ledger.close()

# %% [markdown]
# ## What you saw
#
# * A 402 is not an error: it is a price list. Reading it carefully (amount in atomic units, token,
#   payee, network, time window, EIP-712 domain) is the client's first job, and the right moment to
#   refuse.
# * The payment is an **off-chain signature**, checked by anyone with `recover_signer`, made
#   single-use by its random nonce, and time-boxed by `validAfter`/`validBefore`.
# * The server settles only after your request succeeded, and tells you how it went in a receipt.
# * A warm client pays in one round trip.
#
# Next: **02 · the httpx client** turns this into code you can paste into a project: timeouts, caps,
# async, testnet vs mainnet, and paying with TMAI. **05 · production** covers keys, budgets, the ledger
# as an accounting record, and retries.
