# %% [markdown]
# # Magics and accessors: every `%tm` feature, quotes, budgets and `df.tm`
#
# **What you will learn:** the `%tm` line magic and its flags, the `%%tm` cell magic, asking what a
# call costs before paying (`--dry-run`, `%tm quote`), caps and budgets with `%config`, the live
# payment feed, and the `df.tm` accessor that enriches your own DataFrame with Token Metrics
# columns in as few paid calls as possible.
#
# **What it costs:** nothing here (sandbox). Live, the paid calls below come to about **0.45 USDC**.
# To run it live, set `TM402_PRIVATE_KEY` and change `mode="sandbox"` to `mode="x402"`.

# %%
%load_ext tm402_nb
import pandas as pd
import tm402_nb as tm

s = tm.connect(mode="sandbox", budget="2.00")

# %% [markdown]
# ## What is there, and what does it cost?
#
# `%tm endpoints` lists the catalogue: every endpoint, its short aliases (`grade` for `tm-grade`,
# `signals`, `ohlcv`, `quant`, ...) and the price the catalogue expects. Nothing is called.

# %%
%tm endpoints

# %% [markdown]
# A quote asks the API for its price (the 402 challenge) and stops there: **nothing is signed or
# paid**. `--dry-run` does the same for any call and returns a `Quote` object you can inspect.

# %%
%tm quote ai-reports BTC

# %%
q = %tm price-prediction ETH --dry-run
q.per_call_text, q.network, q.total_text, q.calls

# %% [markdown]
# ## The line magic and its flags
#
# Symbols are positional; dates, limits and any other API parameter are flags. Each returns a typed
# frame (dates are UTC datetimes, numbers are numbers, oldest first).

# %%
%tm ohlcv BTC --start 2026-10-01 --end 2026-10-31

# %%
%tm signals ETH --limit 3

# %% [markdown]
# `--param name=value` passes any API parameter; `--params $d` passes a dict from the notebook, and
# `{{name}}` inserts a variable into the line. Both are type-checked **before** anything is sent.
# (`$` is never expanded by IPython here, so amounts like `0.05` stay exact.)

# %%
window = {"startDate": "2026-10-20", "endDate": "2026-10-31"}
%tm grade-history SOL --params $window

# %%
watchlist = ["BTC", "ETH", "SOL", "AVAX"]
%tm quant {{watchlist}} --save quant

# %%
quant[["TOKEN_SYMBOL", "SHARPE", "SORTINO", "MAX_DRAWDOWN"]]

# %% [markdown]
# `--save NAME` stored the frame as `quant` without displaying it (handy for big results), and
# `df = %tm ...` works too. `--refresh` ignores the cache and pays again; `--pay-with tmai` pays
# this call in TMAI (10% cheaper).

# %%
%tm grade BTC --refresh --pay-with tmai

# %% [markdown]
# ## The cell magic
#
# `%%tm` takes a small YAML-like body: `endpoint:` and the parameters, lists in brackets.

# %%
%%tm --save signals
endpoint: trading-signals
symbol: [BTC, ETH]
startDate: 2026-09-01
endDate: 2026-10-31

# %%
signals.groupby("TOKEN_SYMBOL")["TRADING_SIGNALS_RETURNS"].last()

# %% [markdown]
# Or one call per line; the result is a dict of frames keyed by endpoint name (`"tm-grade"`,
# `"fundamental-grade"`), each shown under a caption naming the line that asked for it.

# %%
%%tm
grade BTC ETH
fundamental BTC ETH

# %% [markdown]
# ## Caps and budgets
#
# Settings live in `%config TMMagics.*` (or `[tool.tm402]` in a `pyproject.toml` next to the
# notebook). A flag beats the config, and the config beats the default. A payment over a cap is
# refused **before signing**, with the exact setting to change.

# %%
%config TMMagics.max_per_call = 0.05

# %% tags=["raises-exception"]
%tm correlation BTC

# %% [markdown]
# The correlation endpoint asks 0.068 USDC; the cap is 0.05, so nothing was signed. The error says
# how to allow it: for this call only with `--max-cost`, or for the session with `%config`.

# %%
corr = %tm correlation BTC --max-cost 0.07

# %%
%config TMMagics.max_per_cell = 0.03
%tm budget

# %% [markdown]
# `max_per_cell` caps what one run of a cell may spend in total; `%tm budget 1.50` changes the
# session budget. Both hold the whole request before its first payment.
#
# ### A quote is the whole request
#
# Ten months of daily candles for three tokens is 912 rows, fetched in eleven windows of at most
# 29 days (as the official SDKs do): eleven paid calls.
# The quote counts every call a request can make (date windows × batches of 100 tokens × pages),
# and a run reserves its whole quote against every cap before it signs anything.

# %%
%config TMMagics.max_per_cell = None
q = %tm ohlcv BTC ETH SOL --start 2026-01-01 --end 2026-10-31 --dry-run
q

# %% [markdown]
# `--max-cost X` is the most one request may pay in all. Below the quote, the request is refused
# whole, before the first payment, with the flag that would allow it:

# %% tags=["raises-exception"]
%tm ohlcv BTC ETH SOL --start 2026-01-01 --end 2026-10-31 --max-cost 0.05

# %% [markdown]
# Nothing was paid. Where nothing bounds the rows (no symbols: the whole universe), a request reads
# its first page only and says more exist; `--pages N` reads up to N pages, each a paid call, and
# the quote counts them.

# %%
%tm grade --pages 2 --dry-run

# %%
%config TMMagics.max_per_cell = None
%config TMMagics.max_per_call = 0.10

# %% [markdown]
# ## The payment feed
#
# `%tm feed` shows this session's payments in one display that keeps updating, wherever in the
# notebook the calls happen: the notebook's own version of the x402 Composer feed.

# %%
%tm feed

# %%
%tm levels BTC

# %% [markdown]
# ## `df.tm`: enrich your own frame
#
# Start from your own portfolio. `enrich` validates the frame, resolves all the symbols, fetches
# **all rows in one call** (up to 100 tokens per call) and joins the columns onto a *copy*: your
# frame is never changed. Quote it first to see the price of the whole enrichment.

# %%
portfolio = pd.DataFrame({
    "symbol": ["BTC", "ETH", "SOL", "LINK", "DOGE", "ADA"],
    "weight": [0.40, 0.25, 0.15, 0.08, 0.07, 0.05],
})
portfolio.tm.quote("tm-grade", on="symbol")

# %%
graded = portfolio.tm.grades(columns=["TM_GRADE", "TM_GRADE_SIGNAL", "MOMENTUM"])
graded

# %%
graded.tm.cost

# %% [markdown]
# Shortcuts: `.tm.grades()`, `.tm.signals()`, `.tm.quant()`; any token-keyed endpoint works with
# `.tm.enrich(endpoint, on=...)`. Here the weighted TM Grade of the portfolio:

# %%
round(float((graded["weight"] * graded["TM_GRADE"]).sum() / graded["weight"].sum()), 1)

# %% [markdown]
# ## Plots that fit the frame
#
# `df.tm.plot()` reads which endpoint a frame came from and draws the chart that fits:
# candles for OHLCV, correlation bars, scenario fans, grade bars and more.

# %%
ohlcv = %tm ohlcv ETH --start 2026-09-15 --end 2026-10-31
ohlcv.tm.plot();

# %%
corr.tm.plot();

# %%
scenarios = %tm prediction BTC
scenarios.tm.plot();

# %% [markdown]
# ## The ledger
#
# Every payment of every call above, with its status and transaction.

# %%
%tm ledger

# %%
s.close()
