"""Endpoint knowledge lives on the catalogue's Endpoint, once: adding an endpoint is one entry."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tm402_nb.tokenmetrics.catalogue import (
    ENDPOINTS,
    PAGING,
    TOKEN,
    TOKEN_IDENTIFIERS,
    Endpoint,
    NestedShape,
    chart_kinds,
    chart_metrics,
    get_endpoint,
)
from tm402_nb.tokenmetrics.frames import frame_columns, to_frame
from tm402_nb.tokenmetrics.plan import plan_call

PACKAGE = Path(__file__).resolve().parents[2] / "tm402_nb" / "tokenmetrics"

#: An endpoint the catalogue does not have: everything the toolkit needs to know is in this one entry.
WHALES = Endpoint(
    "whale-transfers",
    "Large transfers per token",
    (*TOKEN, *PAGING),
    2,
    dated=True,
    window_days=7,
    fields=(*TOKEN_IDENTIFIERS, "DATE", "AMOUNT_USD", "WALLETS", "TRANSFERS"),
    numeric=("AMOUNT_USD",),
    list_fields=("WALLETS",),
    nested="TRANSFERS",
    nested_shape=NestedShape(
        items=(("hash", "TX_HASH"), ("value", "TX_VALUE")),
        item_prefix="TX_",
        conflict_prefix="TX_",
        scalar_name="TX_HASH",
        item_columns=("TX_HASH", "TX_VALUE"),
        numeric=("TX_VALUE",),
    ),
    chart="ohlcv",
    metrics=("AMOUNT_USD",),
)


def test_a_new_endpoint_frames_from_its_entry_alone():
    assert frame_columns(WHALES) == (*TOKEN_IDENTIFIERS, "DATE", "AMOUNT_USD", "WALLETS", "TX_HASH", "TX_VALUE")
    assert frame_columns(WHALES, tidy=False) == (*TOKEN_IDENTIFIERS, "DATE", "AMOUNT_USD", "WALLETS", "TRANSFERS")
    row = {
        "token_id": 3375,
        "token_name": "Bitcoin",
        "token_symbol": "BTC",
        "date": "2025-01-02",
        "amount_usd": "1250000.5",
        "wallets": ["0xa", "0xb"],
        "transfers": [{"hash": "0x1", "value": "10"}, {"hash": "0x2", "value": 20, "fee": 1}],
    }
    df = to_frame(WHALES, [row])
    assert list(df.columns) == [*frame_columns(WHALES), "TX_FEE"]
    assert df["TX_VALUE"].tolist() == [10, 20] and df["AMOUNT_USD"].dtype == "float64"
    assert df["WALLETS"].iloc[0] == ["0xa", "0xb"] and isinstance(df["DATE"].dtype, pd.DatetimeTZDtype)
    empty = to_frame(WHALES, [])
    assert list(empty.columns) == list(frame_columns(WHALES))
    assert empty["TX_VALUE"].dtype == "float64" and empty["WALLETS"].dtype == object


def test_a_new_endpoint_plans_its_own_windows():
    plans = plan_call(
        WHALES, {"token_id": [3375], "startDate": date(2025, 1, 1), "endDate": date(2025, 1, 21)}
    ).requests
    assert [(p.params["startDate"], p.params["endDate"]) for p in plans] == [
        (date(2025, 1, 1), date(2025, 1, 7)),
        (date(2025, 1, 8), date(2025, 1, 14)),
        (date(2025, 1, 15), date(2025, 1, 21)),
    ]


def test_the_agent_is_the_one_endpoint_without_rows():
    """TMAI answers text to a POST: no fields, no pages, no key; every other endpoint is a GET of rows."""
    assert [e.name for e in ENDPOINTS if e.method != "GET"] == ["tmai"]
    agent = get_endpoint("tmai")
    assert agent.method == "POST" and not agent.fields and not agent.paged and agent.key == ()


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if e.method == "GET"], ids=lambda e: e.name)
def test_every_endpoint_states_its_own_facts(ep):
    nested_numeric = ep.nested_shape.numeric if ep.nested_shape else ()
    assert ep.fields, "the row fields as served"
    assert set(ep.numeric) <= set(ep.fields) | set(ep.variant_fields), "numeric columns are fields"
    assert not set(ep.variant_fields) & set(ep.fields), "a variant's fields are the ones it adds"
    assert set(ep.list_fields) <= set(ep.fields) | set(ep.nested_shape.head_columns if ep.nested_shape else ())
    assert set(ep.metrics) <= set(ep.numeric) | set(nested_numeric), "a chart's value is a number"
    assert set(ep.key) <= set(frame_columns(ep, tidy=False))
    assert ep.nested is None or ep.nested in ep.fields
    if ep.date_column:
        assert ep.date_column in frame_columns(ep)


def test_chart_facts_match_the_plots():
    from tm402_nb.notebook import plots

    assert chart_kinds() == plots.ENDPOINT_KINDS
    assert {k for e in ENDPOINTS for k in (e.chart, *e.also_charts) if k} <= set(plots.PLOT_KINDS)
    quant = next(e for e in ENDPOINTS if e.chart == "quant")
    assert chart_metrics("quant")[:2] == ("SHARPE", "SORTINO") and set(chart_metrics("quant")) == set(quant.numeric)
    assert chart_metrics("grades")[0] == "TM_GRADE"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _endpoint_facts_outside_the_catalogue(path: Path) -> list[str]:
    names = {e.name for e in ENDPOINTS}
    nested = {e.nested for e in ENDPOINTS if e.nested}
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)

    def named(node: ast.AST | None, among: set[str]) -> bool:
        return isinstance(node, ast.Constant) and node.value in among and id(node) not in docs

    problems = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            if sum(named(i, names) for i in items) >= 2:
                problems.append(f"{where}: a list of endpoint names")
        elif isinstance(node, ast.Call) and any(named(a, names) for a in node.args):
            problems.append(f"{where}: an endpoint named in a call")
        elif isinstance(node, ast.Compare) and any(named(n, names | nested) for n in (node.left, *node.comparators)):
            problems.append(f"{where}: a comparison with an endpoint or its nested column")
        elif isinstance(node, ast.Constant) and named(node, nested):
            problems.append(f"{where}: a nested column named outside the catalogue")
    return problems


def test_no_module_but_the_catalogue_knows_endpoints_by_name():
    modules = sorted(p for p in PACKAGE.glob("*.py") if p.name != "catalogue.py")
    assert len(modules) > 5
    problems = [p for m in modules for p in _endpoint_facts_outside_the_catalogue(m)]
    assert problems == []
