# %% [markdown]
# # tm402-nb quickstart: crypto analytics, paid per call, in one line
#
# **What you will do (about two minutes):** load the extension, pull the TM Grade for Bitcoin and
# Ethereum with one line, read the cost footer under the cell, draw one chart and look at the ledger
# that records every cent.
#
# **What it costs.** Here: nothing. The notebook runs against the *sandbox*, a local copy of the
# Token Metrics API with synthetic data and a throwaway wallet funded with test USDC. Against the
# real API the paid calls below add up to at most **0.102 USDC** (TM Grade 0.017, four months of
# trading signals in five 29-day windows of 0.017), and each request is quoted before it pays.
#
# **Going live** (Token Metrics is paid on Base mainnet) changes one line: set `TM402_PRIVATE_KEY` (a
# Base wallet holding a few USDC) and run `tm.connect(mode="x402", network="base", budget="1.00")`
# instead of `mode="sandbox"`; the README's "Going live" has the steps.

# %%
%load_ext tm402_nb
import tm402_nb as tm

s = tm.connect(mode="sandbox", budget="1.00")
s

# %% [markdown]
# `connect()` started the sandbox on `127.0.0.1` and gave this session a wallet, a spend policy
# (0.10 USD per call at most, a 1.00 USD budget, testnet only) and a ledger.
#
# ## One line for data
#
# `%tm ENDPOINT SYMBOLS...` calls an endpoint and returns a typed pandas DataFrame. Watch the line
# under the result: that is what the cell cost.

# %%
%tm grade BTC ETH

# %% [markdown]
# Behind that line: the API answered **402 Payment Required** with a price; the toolkit checked it
# against your policy, signed a USDC authorization with the wallet, retried with the signature and
# got the data plus a settlement receipt (the `tx` in the footer). Both symbols went in **one** call.
#
# Run the same cell again and it is served from the local cache: the footer says `cached` and
# nothing is paid.

# %%
%tm grade BTC ETH

# %% [markdown]
# ## Keep the result, and plot it
#
# `df = %tm ...` stores the frame. Every frame knows where it came from (`df.attrs["tm402"]`), so
# `df.tm.plot()` picks the chart that fits: here, the AI trading signals for Bitcoin over four months,
# strategy against holding, with the buy and sell points marked.
#
# Four months of daily rows take several requests (dated ranges are asked for in windows of at most
# 29 days, the API's limit), so first ask what it would cost: `--dry-run` quotes the whole request
# (every window and page it can take) and pays nothing.

# %%
%tm signals BTC --start 2026-07-01 --end 2026-10-31 --dry-run

# %% [markdown]
# Five calls, one per window. The real run reserves that much against your budget before its first
# payment and never pays more than its quote.

# %%
signals = %tm signals BTC --start 2026-07-01 --end 2026-10-31
signals.tm.plot();

# %%
signals.tm.cost

# %% [markdown]
# ## What did I pay?
#
# Every payment is written to the ledger *before* it leaves the machine and updated with its outcome,
# so nothing is ever lost, even if the kernel dies mid-call.

# %%
%tm ledger

# %%
print(s.budget_text())

# %% [markdown]
# ## Where next
#
# * `01_x402_under_the_hood` — the 402 challenge, the signature and the receipt, step by step.
# * `03_magics_and_accessors` — every `%tm` flag, quotes before paying, budgets, `df.tm.enrich`.
# * `04_common_errors` — what goes wrong with paid calls and how the toolkit tells you.

# %%
s.close()
