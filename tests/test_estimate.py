"""``tm402-nb estimate``: what Run All would pay, per cell, from a sandbox run; ``--live`` prices the same
paid calls from unpaid 402 probes of a live API (here a small 402 server on 127.0.0.1, never the real API).

Two kernels for the whole module: one runs a notebook that works (module fixture ``run``), one runs a
notebook with a failing cell through the command line with ``--live`` (module fixture ``failed``).
Everything else reuses their results.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import nbformat
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.toyserver import PAY_TO, serve_app
from tm402_nb.cli import main
from tm402_nb.errors import ConfigurationError
from tm402_nb.estimate import (
    SANDBOX_SENTENCE,
    Estimate,
    EstimateFailed,
    estimate_notebook,
    format_text,
    price_live,
)
from tm402_nb.ledger import Ledger
from tm402_nb.x402.networks import USDC_BASE

CELL_TIMEOUT = 60  # seconds per cell: a hung kernel fails the module, it does not hang it

WORKS = [
    nbformat.v4.new_markdown_cell("# What does this notebook cost?"),  # cell 1: markdown counts in the numbering
    nbformat.v4.new_code_cell("%load_ext tm402_nb\n%tm grade BTC"),  # cell 2: paid, as the extension loads
    # cell 3: the same request again, from the cache, in a thread the user started: a fresh context,
    # so its ledger row names no cell
    nbformat.v4.new_code_cell(
        "import threading\nimport tm402_nb as tm\n"
        "t = threading.Thread(target=lambda: tm.session().client.frame('tm-grade', symbol='BTC'))\n"
        "t.start()\nt.join()"
    ),
    nbformat.v4.new_code_cell("x = 1 + 1"),  # cell 4: no calls
    nbformat.v4.new_code_cell("df = %tm quant ETH"),  # cell 5: paid, another tier
]
FAILS = [
    nbformat.v4.new_code_cell("%load_ext tm402_nb\n%tm grade ETH"),  # cell 1: paid
    nbformat.v4.new_code_cell("%tm grade NOPECOIN"),  # cell 2: fails
    nbformat.v4.new_code_cell("print('never runs')\n%tm quant BTC"),  # cell 3: never runs
]


def write_notebook(path: Path, cells: list[Any]) -> Path:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


# -- a stand-in for the live API ---------------------------------------------------------------------------------------
class Live402:
    """Answers ``GET /v2/<endpoint>`` the way the live API answers an unpaid x402 request: a v1 challenge
    at its own price (USDC on Base mainnet). ``answers`` overrides one endpoint: an int price, ``"free"``
    (200, no challenge), ``"fail"`` (500) or ``"unknown-asset"``. Every request is kept."""

    def __init__(self, default_price: int = 90_000, **answers: Any) -> None:
        self.default_price = default_price
        self.answers = {name.replace("_", "-"): v for name, v in answers.items()}
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v2/{endpoint}", self.endpoint)])

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["endpoint"]
        self.requests.append({"endpoint": name, "headers": dict(request.headers), "params": dict(request.query_params)})
        answer = self.answers.get(name, self.default_price)
        if answer == "free":
            return JSONResponse({"success": True, "data": []})
        if answer == "fail":
            return JSONResponse({"success": False, "message": "upstream exploded"}, status_code=500)
        asset = "0x" + "ab" * 20 if answer == "unknown-asset" else USDC_BASE.address
        offer = {
            "scheme": "exact",
            "network": "base",
            "maxAmountRequired": str(answer if isinstance(answer, int) else 1),
            "resource": str(request.url),
            "description": name,
            "mimeType": "application/json",
            "payTo": PAY_TO,
            "maxTimeoutSeconds": 60,
            "asset": asset,
            "extra": {"name": "USD Coin", "version": "2"},
        }
        body = {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [offer]}
        return JSONResponse(body, status_code=402)

    def payment_headers(self) -> list[str]:
        """Any payment the server was sent (there must never be one)."""
        names = ("x-payment", "payment-signature")
        return [k for r in self.requests for k in r["headers"] if k.lower() in names]


@contextlib.contextmanager
def live_api(server: Live402) -> Iterator[str]:
    with serve_app(server.app) as url:
        yield url + "/v2"


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v2"


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2"


# -- the two kernel runs -------------------------------------------------------------------------------------------------
@dataclass
class Run:
    path: Path
    before: bytes
    estimate: Estimate
    nb: Any
    calls: list[dict[str, Any]]
    payments: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("estimate")
    path = write_notebook(folder / "costs.ipynb", WORKS)
    before = path.read_bytes()
    home = folder / "home"
    estimate = estimate_notebook(path, timeout=CELL_TIMEOUT, home=home)
    with Ledger(home / "ledger.sqlite3") as ledger:
        calls, payments = ledger.call_rows(), {p["id"]: p for p in ledger.payment_rows()}
    return Run(path, before, estimate, nbformat.read(path, as_version=4), calls, payments)


@dataclass
class CliRun:
    path: Path
    before: bytes
    code: int
    out: dict[str, Any]
    err: str
    server: Live402


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    folder = tmp_path_factory.mktemp("estimate-fails")
    path = write_notebook(folder / "fails.ipynb", FAILS)
    before = path.read_bytes()
    server = Live402(tm_grade=25_000)
    out, err = io.StringIO(), io.StringIO()
    with live_api(server) as url, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["estimate", str(path), "--json", "--live-url", url, "--timeout", str(CELL_TIMEOUT)])
    return CliRun(path, before, code, json.loads(out.getvalue()), err.getvalue(), server)


def by_number(estimate: Estimate) -> dict[int, Any]:
    return {c.number: c for c in estimate.cells}


def ledger_cell(run: Run, number: int) -> list[dict[str, Any]]:
    """The ledger's calls that name cell ``number`` (1-based) by its id."""
    cell_id = run.nb.cells[number - 1]["id"]
    return [c for c in run.calls if c["cell_id"] == cell_id]


def paid_atomic(run: Run, calls: list[dict[str, Any]]) -> int:
    return sum(int(run.payments[c["payment_id"]]["amount"]) for c in calls if c["paid"])


# -- per cell, what the sandbox ledger recorded ---------------------------------------------------------------------------
@pytest.mark.slow
def test_one_row_per_cell_that_made_calls_numbered_as_the_notebook_shows(run):
    cells = by_number(run.estimate)
    assert sorted(cells) == [2, 3, 5]  # markdown cell 1 counts in the numbering; cell 4 made no call
    assert cells[2].first_line == "%load_ext tm402_nb"
    assert cells[5].first_line == "df = %tm quant ETH"
    assert run.estimate.complete and run.estimate.failure is None


@pytest.mark.slow
def test_cells_are_named_by_the_cell_id_the_kernel_received(run):
    """nbclient sends no cell id; execute_in_sandbox sends it as JupyterLab does, so the rows carry it,
    the cell that loads the extension included (it is tracked from the moment it loads)."""
    cells = by_number(run.estimate)
    for number in (2, 5):
        rows = ledger_cell(run, number)
        assert rows, f"no ledger row names cell {number}"
        assert cells[number].calls == len(rows)
        assert cells[number].by_order == 0
        assert cells[number].paid == sum(1 for r in rows if r["paid"])
        assert cells[number].cached == sum(1 for r in rows if r["cache_hit"])
        assert sum(a.atomic for a in cells[number].amounts) == paid_atomic(run, rows)
    assert cells[2].paid == 1 and [a.text for a in cells[2].amounts] == ["0.017 USDC"]
    assert [a.text for a in cells[5].amounts] == ["0.068 USDC"]


@pytest.mark.slow
def test_a_call_without_a_cell_id_is_matched_by_execution_order_and_says_so(run):
    """A thread the user starts has a fresh context: its row names no cell, so it goes to the cell
    that was running when it was written, and the estimate says so."""
    unnamed = [c for c in run.calls if c["cell_id"] is None]
    cell = by_number(run.estimate)[3]
    assert unnamed and cell.by_order == cell.calls == len(unnamed)
    assert cell.paid == 0 and cell.cached == 1 and cell.amount_text == "nothing paid"
    assert any("matched to their cell by execution order" in n and "cell 3" in n for n in run.estimate.notes)


@pytest.mark.slow
def test_the_total_is_every_payment_the_sandbox_ledger_recorded(run):
    total = run.estimate.total
    assert total.calls == len(run.calls)
    assert total.paid == len(run.payments) == 2
    assert all(p["status"] == "settled" for p in run.payments.values())
    assert [(a.asset, a.atomic) for a in total.amounts] == [
        ("USDC", sum(int(p["amount"]) for p in run.payments.values()))
    ]
    assert total.amount_text == "0.085 USDC"
    assert total.networks == ("base-sepolia",)


@pytest.mark.slow
def test_the_notebook_on_disk_is_not_touched(run):
    assert run.path.read_bytes() == run.before
    assert sorted(p.name for p in run.path.parent.iterdir()) == ["costs.ipynb", "home"]


@pytest.mark.slow
def test_the_table_the_command_prints(run):
    text = format_text(run.estimate)
    lines = text.splitlines()
    assert lines[0].startswith("costs.ipynb: what Run All would pay · sandbox run on base-sepolia")
    header = next(ln for ln in lines if ln.lstrip().startswith("cell"))
    assert header.split() == ["cell", "first", "line", "paid", "amount", "free/cached"]
    row = {ln.split()[0]: ln for ln in lines[lines.index(header) + 1 :] if ln.strip()}
    assert "%load_ext tm402_nb" in row["2"] and "0.017 USDC" in row["2"]
    assert "1 cached" in row["3"] and "—" in row["3"]
    assert "0.068 USDC" in row["5"]
    assert "4" not in row  # a cell without calls has no row
    assert "3 cells with calls" in row["total"] and "0.085 USDC" in row["total"]
    assert text.rstrip().endswith(SANDBOX_SENTENCE)
    assert "estimate of the real API" in SANDBOX_SENTENCE and "nothing real was paid" in SANDBOX_SENTENCE


@pytest.mark.slow
def test_json_and_frame_forms(run):
    data = json.loads(json.dumps(run.estimate.to_dict()))
    assert data["complete"] is True and data["failure"] is None
    assert [c["cell"] for c in data["cells"]] == [2, 3, 5]
    assert data["total"]["amount"] == {"USDC": {"amount": "0.085", "atomic": "85000", "decimals": 6}}
    assert data["notes"][-1] == SANDBOX_SENTENCE
    frame = run.estimate.to_frame()
    assert list(frame.index) == [2, 3, 5]
    assert frame.loc[5, "amount_USDC"] == Decimal("0.068")
    assert frame["paid"].sum() == 2


# -- live prices from unpaid 402 probes -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_live_prices_each_paid_call_at_the_live_price_and_pays_nothing(run):
    server = Live402(tm_grade=20_000, quantmetrics=95_000)
    with live_api(server) as url:
        live = price_live(run.estimate, live_url=url)
    cells = by_number(live)
    assert cells[2].live is not None and [a.text for a in cells[2].live.amounts] == ["0.02 USDC"]
    assert cells[3].live is not None and cells[3].live.text == "—"  # nothing paid there
    assert cells[5].live is not None and [a.text for a in cells[5].live.amounts] == ["0.095 USDC"]
    assert live.total.live is not None and live.total.live.text == "0.115 USDC"
    assert live.total.live.networks == ("base",)
    assert live.total.amount_text == "0.085 USDC"  # the sandbox figures stay as they were
    # One unpaid probe per paid endpoint, the same request the notebook made, and never a payment.
    assert sorted(r["endpoint"] for r in server.requests) == ["quantmetrics", "tm-grade"]
    assert server.payment_headers() == []
    for r in server.requests:
        assert r["headers"]["x-coinbase-402"] == "true"
        assert r["headers"]["x-payment-token"] == "usdc"
        assert "x-api-key" not in r["headers"]
    paid = {c["endpoint"]: json.loads(c["params"]) for c in run.calls if c["paid"]}
    assert {r["endpoint"]: r["params"] for r in server.requests} == paid
    text = format_text(live)
    assert "at live prices" in text and "nothing signed, nothing paid" in text
    assert "0.115 USDC on base" in text  # the total, on the live network
    assert "tm-grade      0.02 USDC on base" in text


@pytest.mark.slow
def test_an_endpoint_the_live_api_will_not_price_is_reported_not_raised(run):
    server = Live402(tm_grade=20_000, quantmetrics="fail")
    with live_api(server) as url:
        live = price_live(run.estimate, live_url=url)
    probes = {p.endpoint: p for p in live.probes}
    assert probes["tm-grade"].priced
    assert not probes["quantmetrics"].priced
    assert probes["quantmetrics"].problem == "HTTP 500: upstream exploded"
    cells = by_number(live)
    assert cells[5].live is not None and cells[5].live.text == "not priced (quantmetrics)"
    assert cells[5].live.unpriced == (("quantmetrics", 1),)
    assert live.total.live is not None and live.total.live.text == "0.02 USDC + 1 unpriced (quantmetrics)"
    text = format_text(live)
    assert "quantmetrics  not priced: HTTP 500: upstream exploded" in text
    assert "Not priced: quantmetrics ×1" in text
    assert server.payment_headers() == []


@pytest.mark.slow
def test_free_answers_and_unknown_assets_are_not_prices(run):
    server = Live402(tm_grade="free", quantmetrics="unknown-asset")
    with live_api(server) as url:
        probes = {p.endpoint: p for p in price_live(run.estimate, live_url=url).probes}
    assert probes["tm-grade"].problem == "HTTP 200 without a payment challenge (free there?)"
    assert probes["quantmetrics"].problem is not None and probes["quantmetrics"].problem.startswith(
        "unknown asset in every offer"
    )


@pytest.mark.slow
def test_an_unreachable_or_silent_live_api_is_reported(run, silent_port):
    refused = price_live(run.estimate, live_url=closed_port())
    assert all(p.problem and p.problem.startswith("probe failed: ConnectError") for p in refused.probes)
    silent = price_live(run.estimate, live_url=silent_port, timeout=0.2)
    assert {p.problem for p in silent.probes} == {"probe failed: no answer within 0.2 s"}
    assert silent.total.live is not None and silent.total.live.text == "not priced (quantmetrics, tm-grade)"


# -- a failing cell, through the command line, with --live ----------------------------------------------------------------
@pytest.mark.slow
def test_a_failing_cell_stops_the_estimate_names_the_cell_and_exits_2(failed):
    assert failed.code == 2
    assert failed.err.startswith("error: cell 2 (%tm grade NOPECOIN) failed: UnknownSymbol: unknown symbol: NOPECOIN")
    assert "Traceback" not in failed.err and "------" not in failed.err  # the toolkit's errors are one line
    assert failed.out["complete"] is False
    assert failed.out["failure"]["cell"] == 2 and failed.out["failure"]["error"] == "UnknownSymbol"
    assert failed.path.read_bytes() == failed.before


@pytest.mark.slow
def test_what_ran_before_the_failing_cell_is_still_estimated_and_priced_live(failed):
    cells = {c["cell"]: c for c in failed.out["cells"]}
    assert 3 not in cells  # never ran
    assert cells[1]["paid"] == 1 and cells[1]["amount"]["USDC"]["amount"] == "0.017"
    assert cells[1]["live"]["amount"]["USDC"]["amount"] == "0.025"
    assert failed.out["total"]["live"]["networks"] == ["base"]
    assert [p["endpoint"] for p in failed.out["live"]["probes"]] == ["tm-grade"]
    assert failed.server.payment_headers() == []


# -- argument errors, before any kernel starts ----------------------------------------------------------------------------
def test_a_missing_notebook_is_a_short_error(tmp_path, capsys):
    assert main(["estimate", str(tmp_path / "nope.ipynb")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no notebook at {tmp_path / 'nope.ipynb'}"


def test_a_live_url_that_is_not_http_fails_before_any_cell_runs(tmp_path):
    path = write_notebook(tmp_path / "n.ipynb", [nbformat.v4.new_code_cell("raise SystemExit('must not run')")])
    with pytest.raises(ConfigurationError, match="not an http"):
        estimate_notebook(path, live_url="ftp://example.invalid/v2")


def test_a_home_in_use_is_refused(tmp_path):
    path = write_notebook(tmp_path / "n.ipynb", [nbformat.v4.new_code_cell("x = 1")])
    home = tmp_path / "home"
    home.mkdir()
    (home / "ledger.sqlite3").write_bytes(b"")
    with pytest.raises(ConfigurationError, match="not an empty folder"):
        estimate_notebook(path, home=home)


def test_estimate_failed_carries_the_partial_estimate():
    from tm402_nb.estimate import CellFailure

    partial = Estimate("n.ipynb", (), CellFailure(3, "abc", "%tm grade X", "UnknownSymbol", "unknown symbol: X"))
    err = EstimateFailed(partial)
    assert err.estimate is partial
    assert str(err).startswith("cell 3 (%tm grade X) failed: UnknownSymbol: unknown symbol: X")
    assert "Stopped at cell 3, which failed (UnknownSymbol)" in format_text(partial)
