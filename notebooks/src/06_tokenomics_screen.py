# %% [markdown]
# # 06 · A tokenomics screen over the top 50
#
# Token Metrics' guide to tokenomics asks four questions of any token: how much of it can exist
# (**supply**), who holds it (**distribution**), what it is for (**utility**), and how well it is
# protected (**security**). Reading whitepapers answers them for one token at a time. This notebook
# answers them for fifty at once, from Token Metrics' own scores, and ranks the result.
#
# You will learn to:
#
# - price a whole screen **before** paying for it (one quote per endpoint, nothing signed);
# - enrich a 50-token frame with **one paid call per endpoint** (the client batches the tokens);
# - map the guide's four pillars onto TM's fundamental and technology grades and quant metrics,
#   and say plainly where the API has no answer (fully diluted valuation);
# - combine them into a ranked table with simple, stated weights, and chart it.
#
# **Cost in live mode: 0.170 USDC** for the whole screen: `fundamental-grade` and
# `technology-grade` (tier 1, 0.017 each), `quantmetrics` and `price-prediction` (tier 3, 0.068
# each). The top-50 list is free.
#
# **Going live** is one changed line: `s = tm.connect(budget="0.50")` with `TM402_PRIVATE_KEY` set
# (start with a Base Sepolia wallet) instead of `tm.connect(mode="sandbox", ...)`.
#
# > **Sandbox data.** Everything below comes from the embedded sandbox: the token list looks
# > familiar, but every grade, score, price and return is *synthetic*. Nothing here describes a
# > real asset, and none of it is investment advice.

# %%
%matplotlib inline
%load_ext tm402_nb

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import tm402_nb as tm

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)

s = tm.connect(mode="sandbox", budget="0.50")  # a budget for the whole notebook, checked before signing
s

# %% [markdown]
# ## 1 · The universe: the top 50 by market cap (free)
#
# `top-market-cap-tokens` is one of the free endpoints, so listing the universe costs nothing.

# %%
universe = s.client.frame("top-market-cap-tokens", top_k=50)
print(universe.tm.cost)
universe[["TOKEN_ID", "TOKEN_SYMBOL", "TOKEN_NAME", "CATEGORY_LIST"]].head(8)

# %% [markdown]
# Two kinds of token in that list do not belong in a tokenomics ranking. **Stablecoins** track a
# currency, so their supply grows and shrinks with demand by design; **bridged** (wrapped) tokens
# are receipts for a coin locked elsewhere, so their economics are the underlying coin's. We still
# fetch data for all fifty (a batch of 50 costs the same as a batch of 46), and leave these out when
# ranking.

# %%
def has_category(*names):
    return universe["CATEGORY_LIST"].apply(lambda cats: any(c in names for c in cats))


excluded = universe.loc[has_category("stablecoin", "bridged"), "TOKEN_SYMBOL"].tolist()
print("left out of the ranking:", ", ".join(excluded))

# %% [markdown]
# ## 2 · From the guide's pillars to Token Metrics fields
#
# No API returns "distribution" or "utility" as a number, so we read each pillar through the
# scores that come closest. This is our mapping, stated so you can disagree with it:
#
# | Pillar (the guide) | What we look at | Endpoint |
# |---|---|---|
# | Supply and valuation | market cap, price, and the circulating supply they imply | `price-prediction` (`TOKEN_MCAP`, `CURRENT_PRICE`) |
# | Distribution | `TOKENOMICS_SCORE` (supply and allocation design), `VC_SCORE` (investor backing), `EXCHANGE_SCORE` (how widely it trades) | `fundamental-grade` |
# | Utility | `COMMUNITY_SCORE`, `DEFI_SCANNER_SCORE` (when covered), `ACTIVITY_SCORE` (is anyone building?) | `fundamental-grade`, `technology-grade` |
# | Security | `SECURITY_SCORE`, `REPOSITORY_SCORE`, `COLLABORATION_SCORE` | `technology-grade` |
# | Summary grades | `FUNDAMENTAL_GRADE` (0–100), `TECHNOLOGY_GRADE` (0–100) | both |
# | How it has behaved | `SHARPE`, `SORTINO`, `MAX_DRAWDOWN`, `VOLATILITY`, `CAGR` | `quantmetrics` |
#
# Why `price-prediction` for market cap? `top-market-cap-tokens` is *ordered* by market cap, but its
# v2 rows do not include the figure, and neither do `tokens` or `price`. `price-prediction` returns
# each token's current market cap and price at the top of its payload, for all fifty in one call.

# %% [markdown]
# ## 3 · Quote the whole screen first
#
# A quote asks the server for its price (the 402 challenge) and stops there: nothing is signed. With
# 50 tokens each endpoint needs one call, because the client sends up to 100 token ids per request.

# %%
ENDPOINTS = ["fundamental-grade", "technology-grade", "quantmetrics", "price-prediction"]

quotes = {ep: universe.tm.quote(ep, on="TOKEN_ID") for ep in ENDPOINTS}
plan = pd.DataFrame(
    [{"endpoint": ep, "tokens": 50, "calls": q.calls, "price per call": q.per_call / 10**q.decimals,
      "total": q.total / 10**q.decimals, "asset": q.asset} for ep, q in quotes.items()]
).set_index("endpoint")
plan

# %%
total_quoted = sum(q.total for q in quotes.values()) / 10**6
print(f"the screen will cost {total_quoted:.3f} USDC; the session budget is {s.budget:.2f} USDC")
print("payments signed so far:", len(s.ledger.payments(session_id=s.id)))

# %% [markdown]
# Joining on `TOKEN_ID` rather than the symbol is deliberate: ids are exact, while a symbol can be
# shared by several tokens (the client would pick the largest).
#
# ## 4 · Fetch: one paid call per endpoint
#
# `df.tm.enrich(...)` returns a **new** frame with the chosen columns joined on, and records what it
# cost in `attrs["tm402"]`. We chain three enrichments and keep each step to show its cost.

# %%
FUNDAMENTAL = ["FUNDAMENTAL_GRADE", "FUNDAMENTAL_GRADE_CLASS", "TOKENOMICS_SCORE", "VC_SCORE",
               "EXCHANGE_SCORE", "COMMUNITY_SCORE", "DEFI_SCANNER_SCORE"]
TECHNOLOGY = ["TECHNOLOGY_GRADE", "SECURITY_SCORE", "ACTIVITY_SCORE", "REPOSITORY_SCORE", "COLLABORATION_SCORE"]
QUANT = ["SHARPE", "SORTINO", "MAX_DRAWDOWN", "VOLATILITY", "CAGR"]

with_fund = universe.tm.enrich("fundamental-grade", on="TOKEN_ID", columns=FUNDAMENTAL)
with_tech = with_fund.tm.enrich("technology-grade", on="TOKEN_ID", columns=TECHNOLOGY)
screen = with_tech.tm.quant(on="TOKEN_ID", columns=QUANT)

valuation = s.client.frame("price-prediction", token_id=universe["TOKEN_ID"].tolist())

steps = {"fundamental-grade": with_fund, "technology-grade": with_tech, "quantmetrics": screen,
         "price-prediction": valuation}
pd.DataFrame(
    [{"endpoint": ep, "calls": f.tm.cost.calls, "paid": f.tm.cost.paid, "amount": f.tm.cost.amount_text(),
      "tokens in the answer": f["TOKEN_ID"].nunique()}
     for ep, f in steps.items()]
).set_index("endpoint")

# %% [markdown]
# Four paid calls for fifty tokens, exactly as quoted. Because the quotes had already fetched each
# endpoint's price, every paid call went out with its payment attached: one round trip each.
#
# ## 5 · Supply and valuation
#
# `price-prediction` has one row per scenario; the current market cap and price are the same on
# each, so we keep one row per token. Market cap divided by price gives the **circulating supply**
# the market is pricing.

# %%
current = valuation.drop_duplicates("TOKEN_ID").set_index("TOKEN_ID")[["TOKEN_MCAP", "CURRENT_PRICE"]]
screen = screen.join(current, on="TOKEN_ID")
screen["CIRCULATING_SUPPLY"] = screen["TOKEN_MCAP"] / screen["CURRENT_PRICE"]

(screen[["TOKEN_SYMBOL", "TOKEN_MCAP", "CURRENT_PRICE", "CIRCULATING_SUPPLY"]]
 .head(10)
 .style.format({"TOKEN_MCAP": "${:,.0f}", "CURRENT_PRICE": "${:,.4g}", "CIRCULATING_SUPPLY": "{:,.0f}"}))

# %% [markdown]
# **What about fully diluted valuation (FDV)?** The guide's sharpest supply question is how much of
# the eventual supply is already out: a small market cap next to a large FDV means many tokens still
# to be unlocked or minted. The v2 API returns **no current FDV per token** (`quantmetrics` accepts
# an `fdv` filter, but does not return the value). `FDV` appears only on `indices-performance`
# (whole indices) and as *predicted* FDV in the `price-prediction` scenarios.
# In the sandbox those predictions are a fixed multiple of the predicted market cap, so the ratio
# carries no information, as a quick check shows:

# %%
(valuation["FDV_BASE"] / valuation["MCAP_BASE"]).round(4).value_counts()

# %% [markdown]
# So this screen does not score dilution. For a real decision, take maximum and circulating supply
# from the project's own documents (the guide's first step: read the whitepaper) and add a column.
#
# ## 6 · Distribution, utility and security
#
# The sub-scores are all on 0–100. The guide's list of mistakes puts *overlooking security* near the
# top, and a lopsided distribution is its clearest warning sign, so we raise a **red flag** when a
# token scores below 40 on `SECURITY_SCORE` or on `TOKENOMICS_SCORE`. A flag does not remove a
# token; it is a prompt to read further.

# %%
ranked = screen[~screen["TOKEN_SYMBOL"].isin(excluded)].copy()

FLAG_BELOW = 40
ranked["FLAGS"] = [
    ", ".join(name for name, score in (("security", sec), ("tokenomics", tok)) if score < FLAG_BELOW)
    for sec, tok in zip(ranked["SECURITY_SCORE"], ranked["TOKENOMICS_SCORE"], strict=True)
]
pillars = ["TOKENOMICS_SCORE", "VC_SCORE", "EXCHANGE_SCORE", "COMMUNITY_SCORE", "ACTIVITY_SCORE", "SECURITY_SCORE"]
ranked[pillars].describe().loc[["mean", "min", "50%", "max"]].round(1)

# %%
flagged = ranked.loc[ranked["FLAGS"] != "", ["TOKEN_SYMBOL", "TOKEN_NAME", "TOKENOMICS_SCORE", "SECURITY_SCORE", "FLAGS"]]
print(f"{len(flagged)} of {len(ranked)} tokens carry a red flag")
flagged

# %% [markdown]
# `DEFI_SCANNER_SCORE` is only present for tokens TM's DeFi scanner covers:

# %%
print(f"DEFI_SCANNER_SCORE present for {ranked['DEFI_SCANNER_SCORE'].notna().sum()} of {len(ranked)} tokens")

# %% [markdown]
# A missing score is not a bad score, so it stays out of the composite below.
#
# ## 7 · How the tokens have behaved
#
# Tokenomics describes the design; the quant metrics describe what the market did with it. The
# toolkit's own chart for `quantmetrics` frames draws one bar per token; here, the deepest fall from
# a peak (`MAX_DRAWDOWN`) for the ten largest tokens we rank:

# %%
ax = ranked.head(10).tm.plot(kind="quant", metric="MAX_DRAWDOWN", figsize=(8, 3.5))
ax.set_title("Maximum drawdown, ten largest ranked tokens (sandbox data)")
plt.show()

# %% [markdown]
# ## 8 · A composite score
#
# Simple weights, easy to argue with:
#
# | Component | Weight | Why |
# |---|---|---|
# | `FUNDAMENTAL_GRADE` | 40 % | distribution, community, backing and tokenomics in one TM grade |
# | `TECHNOLOGY_GRADE` | 30 % | security and development activity |
# | `SHARPE`, as a percentile within the screen | 15 % | return per unit of risk |
# | `MAX_DRAWDOWN`, as a percentile (shallower is better) | 15 % | how badly holders have been hurt |
#
# The grades are already on 0–100. Sharpe ratios and drawdowns are on their own scales, so we turn
# them into percentile ranks within these tokens (also 0–100) before mixing.

# %%
WEIGHTS = {"fundamental": 0.40, "technology": 0.30, "sharpe": 0.15, "drawdown": 0.15}

parts = pd.DataFrame({
    "fundamental": ranked["FUNDAMENTAL_GRADE"],
    "technology": ranked["TECHNOLOGY_GRADE"],
    "sharpe": ranked["SHARPE"].rank(pct=True) * 100,
    "drawdown": ranked["MAX_DRAWDOWN"].rank(pct=True) * 100,  # −0.3 ranks above −0.9
})
contributions = parts * pd.Series(WEIGHTS)
ranked["SCORE"] = contributions.sum(axis=1)
ranked["RANK"] = ranked["SCORE"].rank(ascending=False, method="min").astype(int)

table = ranked.sort_values("SCORE", ascending=False)[
    ["RANK", "TOKEN_SYMBOL", "FUNDAMENTAL_GRADE_CLASS", "FUNDAMENTAL_GRADE", "TECHNOLOGY_GRADE",
     "SHARPE", "MAX_DRAWDOWN", "TOKEN_MCAP", "SCORE", "FLAGS"]
].set_index("RANK")
table.head(15).style.format({
    "FUNDAMENTAL_GRADE": "{:.1f}", "TECHNOLOGY_GRADE": "{:.1f}", "SHARPE": "{:.2f}",
    "MAX_DRAWDOWN": "{:.0%}", "TOKEN_MCAP": "${:,.0f}", "SCORE": "{:.1f}",
})

# %% [markdown]
# How much do the weights matter? With all four components weighted equally, this many of the top
# ten stay in the top ten:

# %%
equal = parts.mean(axis=1)
top10 = set(ranked.loc[ranked["SCORE"].nlargest(10).index, "TOKEN_SYMBOL"])
top10_equal = set(ranked.loc[equal.nlargest(10).index, "TOKEN_SYMBOL"])
print(f"{len(top10 & top10_equal)} of 10 · in with equal weights: {sorted(top10_equal - top10) or 'none'}"
      f" · out: {sorted(top10 - top10_equal) or 'none'}")

# %% [markdown]
# ## 9 · Charts
#
# **Fundamentals against technology.** Each dot is a token, its area proportional to market cap,
# its colour the composite score. Tokens up and to the right are strong on both; the ten best
# composites are labelled.

# %%
fig, ax = plt.subplots(figsize=(9, 6))
size = 1500 * np.sqrt(ranked["TOKEN_MCAP"] / ranked["TOKEN_MCAP"].max()) + 15
points = ax.scatter(ranked["FUNDAMENTAL_GRADE"], ranked["TECHNOLOGY_GRADE"], s=size, c=ranked["SCORE"],
                    cmap="viridis", alpha=0.75, edgecolor="white", linewidth=0.6)
placed = []  # nudge a label down when another one already sits close by
for _, row in ranked.loc[ranked["SCORE"].nlargest(10).index].iterrows():
    x, y = row["FUNDAMENTAL_GRADE"], row["TECHNOLOGY_GRADE"]
    crowded = sum(abs(x - px) < 4 and abs(y - py) < 3 for px, py in placed)
    ax.annotate(row["TOKEN_SYMBOL"], (x, y), xytext=(7, 4 - 12 * crowded), textcoords="offset points", fontsize=9)
    placed.append((x, y))
fig.colorbar(points, ax=ax, label="composite score")
ax.set_xlabel("fundamental grade (0–100)")
ax.set_ylabel("technology grade (0–100)")
ax.set_title("Fundamental vs technology grade, sized by market cap (sandbox data)")
plt.show()

# %% [markdown]
# **What puts the top ten on top.** Each bar is split into the weighted contribution of its four
# components, so you can see whether a token leads on grades or on its track record.

# %%
best = ranked["SCORE"].nlargest(10).index[::-1]  # highest at the top of the chart
fig, ax = plt.subplots(figsize=(9, 5))
left = np.zeros(len(best))
labels = {"fundamental": "fundamental grade × 0.40", "technology": "technology grade × 0.30",
          "sharpe": "Sharpe percentile × 0.15", "drawdown": "drawdown percentile × 0.15"}
for component, colour in zip(WEIGHTS, ["#4a6fa5", "#1a9850", "#f0ad4e", "#8e6c8a"], strict=True):
    values = contributions.loc[best, component].to_numpy()
    ax.barh(ranked.loc[best, "TOKEN_SYMBOL"], values, left=left, color=colour, label=labels[component])
    left += values
for y, total in enumerate(left):
    ax.text(total + 0.5, y, f"{total:.1f}", va="center", fontsize=9)
ax.set_xlabel("composite score")
ax.set_title("Top 10 composite scores, by component (sandbox data)")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, fontsize=8, frameon=False)
ax.set_xlim(0, 100)
plt.show()

# %% [markdown]
# ## 10 · What the screen cost
#
# Answers are cached (for a day, for all four endpoints), so running a fetch again does not pay
# again. The same enrichment as before:

# %%
again = universe.tm.enrich("fundamental-grade", on="TOKEN_ID", columns=FUNDAMENTAL)
again.tm.cost

# %% [markdown]
# Every call the session made, and the ledger's record of each payment:

# %%
print(s.cost.total.summary())
s.ledger.payments(session_id=s.id)[["status", "endpoint", "amount", "asset_symbol", "network"]]

# %% [markdown]
# Four settled payments, 0.170 USDC of sandbox money, exactly the quote. (`refresh=True` on a fetch
# pays for a fresh answer when you need one.)
#
# **Where to go from here.** Change the weights, add a dilution column from the projects' own
# documents, or widen the universe with `top_k=100` (still one paid call per endpoint). And keep
# the guide's last advice in mind: scores are a starting point for research, not a verdict. This
# notebook ran on synthetic sandbox data and is not investment advice.

# %%
s.close()
