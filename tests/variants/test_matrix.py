"""The client's main flows against every sandbox profile and every single-switch flip (issue 13).

Each variant is one sandbox the way a reading of the public docs says the real API may behave
(reference/live-api-2026.md); the flows are what users do first. Under every variant they must
give the same typed frames (modulo the documented field sets) and honest costs: nothing paid
past a quote, the session's spending equal to the ledger's.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

import tm402_nb as tm
from tm402_nb.sandbox.profiles import PROFILES, SWITCHES

#: Switch values that only exist with another switch set: flipped together with it.
NEEDS: dict[tuple[str, Any], dict[str, Any]] = {
    ("agent_scheme", "upto"): {"x402_version": 2},
    # Advertised only in v2 challenges with a Permit2 offer.
    ("gas_sponsoring", "erc20"): {"x402_version": 2, "tmai_transfer": "permit2"},
}


def _variants() -> list[tuple[str, str, dict[str, Any]]]:
    """(id, preset, switches): each preset under x402 v1 and v2, then every other value of every
    switch flipped alone on ``classic`` (with what it needs, see NEEDS)."""
    out = [(f"{name}-v{v}", name, {"x402_version": v}) for name in PROFILES for v in (1, 2)]
    classic = PROFILES["classic"]
    for name, switch in SWITCHES.items():
        for value in switch.values:
            if name != "x402_version" and value != getattr(classic, name):
                out.append((f"{name}={value}", "classic", {name: value, **NEEDS.get((name, value), {})}))
    return out


VARIANTS = _variants()
SYMBOLS = ["BTC", "ETH", "SOL"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=VARIANTS, ids=[v[0] for v in VARIANTS])
def session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _, profile, switches = request.param
    home = tmp_path_factory.mktemp("variant")
    s = tm.connect(
        mode="sandbox",
        sandbox_options={"profile": profile, **switches},
        ledger=home / "ledger.sqlite3",
        budget="5.00",
        progress=False,
    )
    yield s
    s.close()


def last_day(s: Any) -> Any:
    return s.sandbox.config.anchor_date if hasattr(s.sandbox, "config") else s.sandbox.profile.anchor_date()


def counted_usd(s: Any) -> Decimal:
    """What the ledger counts for this session, in USD (settled, pending, unknown; reserved apart):
    an upto payment's settled amount once known, else what was signed. USDC rows only (TMAI
    counts at a USD value the session chose, which the matrix flows never pay in)."""
    rows = s.ledger.payments()
    if rows.empty:
        return Decimal(0)
    mine = rows[rows["status"].isin(["settled", "pending", "unknown"])]
    counted = mine["settled"].where(mine["settled"].notna(), mine["amount"])
    return sum((Decimal(str(a)) for a in counted), Decimal(0))


def paid_calls(s: Any) -> int:
    rows = s.ledger.payments()
    return 0 if rows.empty else int(rows["status"].isin(["settled", "pending", "unknown"]).sum())


def test_grade_for_a_few_symbols(session: Any) -> None:
    q = session.client.quote("tm-grade", symbol=SYMBOLS)
    before = paid_calls(session)
    df = session.client.frame("tm-grade", symbol=SYMBOLS)
    assert set(df["TOKEN_SYMBOL"]) == set(SYMBOLS)
    assert pd.api.types.is_numeric_dtype(df["TM_GRADE"])
    assert paid_calls(session) - before <= q.calls + q.lookup_calls  # lookup_calls: 0 where lookups are free
    assert q.lookup_calls == 0 or q.lookups >= 1


def test_a_300_day_signals_history_has_no_gap(session: Any) -> None:
    end = last_day(session)
    start = end - timedelta(days=299)
    q = session.client.quote("trading-signals", symbol="BTC", start=start, end=end)
    before = paid_calls(session)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a silent gap would have to warn: here none may remain
        df = session.client.frame("trading-signals", symbol="BTC", start=start, end=end)
    days = pd.to_datetime(df["DATE"]).dt.date
    assert days.min() <= start + timedelta(days=1) and days.max() == end
    assert len(set(days)) >= 298  # every day of the range (the first may predate the token)
    assert paid_calls(session) - before <= q.calls + q.lookup_calls


def test_enrich_a_hundred_symbols(session: Any) -> None:
    universe = session.client.frame("top-market-cap-tokens", top_k=100)
    coins = pd.DataFrame({"symbol": universe["TOKEN_SYMBOL"].astype(str).tolist()})
    out = coins.tm.enrich("tm-grade", on="symbol", columns=["TM_GRADE"])
    assert len(out) == 100 and out["TM_GRADE"].notna().mean() > 0.95
    assert out.attrs["tm402"]["paid"] <= 2 + 2  # one call per 100 ids, plus lookups where they are paid


def test_the_session_counts_what_the_ledger_counts(session: Any) -> None:
    session.client.frame("tm-grade", symbol="BTC", refresh=True)
    assert session.spent == counted_usd(session)


def test_ask_the_agent_within_its_quote(session: Any) -> None:
    """The TMAI agent costs at most its price (under agent_scheme=upto: a ceiling, of which less
    settles), and the session still counts what the ledger counts."""
    before = session.spent
    answer = session.client.ask("Which tokens look strongest this week?")
    assert answer.answer
    paid = session.spent - before
    assert Decimal(0) < paid <= Decimal("0.068")
    assert session.spent == counted_usd(session)


def test_the_doctor_passes(session: Any) -> None:
    report = session.doctor()
    assert report.ok, str(report)


def test_paying_in_tmai_follows_the_profiles_transfer_method(session: Any) -> None:
    """TMAI is paid as the variant's offers say: EIP-3009, or Permit2 (tmai_transfer=permit2) with the
    sandbox wallet's approval in place. Last in the file: it spends TMAI, which counted_usd does not value."""
    if session.sandbox.profile.offers == "requested":
        # A TMAI-only challenge carries no USDC price to value TMAI by: the user names a rate.
        session.policy.usd_rates["TMAI"] = Decimal("0.01")
    before = len(session.ledger.payment_rows())
    df = session.client.frame("tm-grade", symbol="BTC", pay_with="tmai", refresh=True)
    assert df.attrs["tm402"]["paid"] >= 1 and set(df.attrs["tm402"]["amount"]) == {"TMAI"}  # lookups may be paid
    rows = session.ledger.payment_rows()[before:]
    assert {(r["status"], r["asset_symbol"]) for r in rows} == {("settled", "TMAI")}
    assert {r["transfer"] for r in rows} == {session.sandbox.profile.tmai_transfer}
