"""Text-shaped sandbox data: AI reports (Markdown built from the numbers) and investors.

Everything here is synthetic and says so: reports open with a sandbox notice,
investor websites use the reserved ``.example`` domain.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .market import DailySeries

if TYPE_CHECKING:
    from .datasets import DataService

NOTICE = "> Sandbox report: generated from synthetic data, not investment advice."


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def ai_report(svc: DataService, s: DailySeries, day: int) -> dict[str, Any]:
    from .datasets import grade_signal

    t = s.token
    i = s.pos(day)
    c = s.close
    r30 = float(c[i] / c[max(i - 30, 0)] - 1)
    r90 = float(c[i] / c[max(i - 90, 0)] - 1)
    trend = "bullish" if s.trend[i] > 0 else "bearish"
    tm = float(s.tm_grade[i])
    signal = grade_signal(tm)
    pointer = (
        f"{t.name} ({t.symbol}) carries a TM Grade of {tm:.1f} ({signal}); the trend is {trend}, "
        f"30-day return {_pct(r30)}, 90-day return {_pct(r90)}."
    )
    analysis = "\n".join(
        [
            f"## Investment analysis: {t.name} ({t.symbol})",
            "",
            NOTICE,
            "",
            f"- **TM Grade:** {tm:.2f} ({signal})",
            f"- **Trader grade:** {float(s.trader_grade[i]):.2f}; **quant grade:** {float(s.quant_grade[i]):.2f}",
            f"- **Fundamental grade:** {float(s.fundamental_grade[i]):.2f}; "
            f"**technology grade:** {float(s.technology_grade[i]):.2f}",
            f"- **Trend:** {trend} since the last signal; strategy ROI {_pct(float(s.strategy_roi[i]))} "
            f"vs holding {_pct(float(s.holding_roi[i]))}",
            "",
            f"Price closed at {float(c[i]):,.6g} USD on {svc.cal.day_str(day)}.",
        ]
    )
    deep_dive = "\n".join(
        [
            f"## Deep dive: {t.name}",
            "",
            NOTICE,
            "",
            f"{t.name} is listed in the {', '.join(t.categories)} categor{'ies' if len(t.categories) > 1 else 'y'} "
            f"and trades on {len(t.exchanges)} exchanges ({', '.join(t.exchanges[:4])}).",
            f"Its market capitalisation rank in the sandbox universe is #{t.rank}.",
        ]
    )
    code_review = "\n".join(
        [
            f"## Code review: {t.name}",
            "",
            NOTICE,
            "",
            f"- Technology grade {float(s.technology_grade[i]):.1f}/100.",
            "- Repository activity, security and collaboration scores: see `/v2/technology-grade`.",
        ]
    )
    return {
        "TOKEN_ID": t.token_id,
        "TOKEN_SYMBOL": t.symbol,
        "TOKEN_NAME": t.name,
        "INVESTMENT_ANALYSIS_POINTER": pointer,
        "INVESTMENT_ANALYSIS": analysis,
        "DEEP_DIVE": deep_dive,
        "CODE_REVIEW": code_review,
    }


_FIRST = (
    "Alder",
    "Basalt",
    "Cobalt",
    "Drift",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Indigo",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Onyx",
    "Pinnacle",
    "Quarry",
    "Ridge",
    "Summit",
    "Tidal",
)
_SECOND = ("Capital", "Ventures", "Partners", "Labs", "Digital", "Fund", "Research", "Holdings")


@lru_cache(maxsize=1)
def investors() -> list[dict[str, Any]]:
    """Eighty fictional investors, largest number of rounds first (fixed for every seed)."""
    rng = random.Random(3306)
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < 80:
        name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}"
        if name in seen:
            continue
        seen.add(name)
        slug = name.lower().replace(" ", "")
        rounds = int(rng.lognormvariate(3.0, 0.8)) + 1
        roi = [rng.lognormvariate(0.3, 1.0) - 1 for _ in range(min(rounds, 25))]
        roi.sort()
        rows.append(
            {
                "INVESTOR_NAME": name,
                "INVESTOR_WEBSITE": f"https://{slug}.example",
                "INVESTOR_TWITTER": f"https://x.com/{slug}_sandbox",
                "ROUND_COUNT": rounds,
                "ROI_AVERAGE": round(sum(roi) / len(roi), 4),
                "ROI_MEDIAN": round(roi[len(roi) // 2], 4),
            }
        )
    rows.sort(key=lambda r: (-r["ROUND_COUNT"], r["INVESTOR_NAME"]))
    return rows
