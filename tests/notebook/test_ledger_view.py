"""A ledger you can read (issue 15, item 3): ``%tm ledger`` in a real IPython shell, ``tm402-nb ledger``
through the CLI's ``main([...])``.

This session by default, ``--today``/``--all``/``--session ID`` for more; seconds, amounts with their
asset, network names as the footer writes them, short tx (the full one on hover), no all-empty
columns, a summary line, 100 columns at most; ``--by endpoint|day|cell`` sums; ``--csv`` every column.
"""

from __future__ import annotations

import re
import time

import pytest

import tm402_nb as tm
from tm402_nb.cli import main
from tm402_nb.notebook.ledger_view import PAYMENT_COLUMNS, LedgerFrame, LedgerQuery, ledger_view
from tm402_nb.notebook.parse import MagicUsageError
from tm402_nb.status import PaymentStatus
from tm402_nb.x402.recorder import PaymentRecord

USDC_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
DAY = 86_400


def record(ledger, *, session_id="old-session", status=PaymentStatus.SETTLED, amount=17_000, **kw):
    """A payment row written as X402Auth writes them (network as CAIP-2, as the ledger stores it)."""
    base = dict(
        asset=USDC_SEPOLIA,
        network="eip155:84532",
        pay_to="0x" + "b" * 40,
        payer="0x" + "c" * 40,
        nonce="0x" + f"{time.time_ns():064x}"[-64:],
        valid_before=int(time.time()) + 300,
        asset_symbol="USDC",
        endpoint="tm-grade",
        tx="0x" + "de" * 32 if status == PaymentStatus.SETTLED else None,
    )
    discrepancy = kw.pop("discrepancy", None)
    base.update(kw)
    rec = PaymentRecord(amount=amount, status=status, session_id=session_id, **base)
    ledger.record_payment(rec)
    if discrepancy:
        ledger.update_payment(rec.id, status, discrepancy=discrepancy, error=base.get("error"))
    return rec


def text_lines(frame):
    return repr(frame).splitlines()


def summary_of(frame):
    """The summary line under the table (wrapped to the width: joined again)."""
    lines = text_lines(frame)
    rest = lines[len(frame) + 1 :] if len(frame) else lines
    return " ".join(line.strip() for line in rest if not line.startswith("(not shown"))


# -- %tm ledger: this session, readable ------------------------------------------------------------------


def test_ledger_shows_this_session_by_default(ip, s):
    record(s.ledger, session_id="another-notebook", endpoint="ai-reports", amount=68_000)
    ip.run_cell("%tm grade BTC ETH", cell_id="cell-grade-1")
    view = ip.run_line_magic("tm", "ledger")
    assert isinstance(view, LedgerFrame) and view["status"].tolist() == ["settled"]
    assert view["endpoint"].tolist() == ["tm-grade"]  # not the other notebook's ai-reports
    everything = ip.run_line_magic("tm", "ledger --all")
    assert sorted(everything["endpoint"]) == ["ai-reports", "tm-grade"]
    assert "all sessions (2 sessions)" in repr(everything)
    other = ip.run_line_magic("tm", "ledger --session another-notebook")
    assert other["endpoint"].tolist() == ["ai-reports"] and "· session (another-notebook) ·" in summary_of(other)
    assert "· this session (" in summary_of(view)


def test_ledger_rows_read_as_the_footer_writes_them(ip, s):
    ip.run_cell("%tm grade BTC ETH", cell_id="cell-grade-1")
    view = ip.run_line_magic("tm", "ledger")
    (row,) = view.itertuples()
    assert row.network == "base-sepolia" and row.asset == "USDC" and str(row.amount) == "0.017"
    assert row.time.microsecond == 0 and row.time.nanosecond == 0  # seconds, not nanoseconds
    header, line, summary = text_lines(view)[:3]
    # Nothing all-empty; the day said once, in the time column's header.
    assert header.split() == [row.time.strftime("%Y-%m-%d"), "UTC", "status", "endpoint", "amount", "tx", "cell"]
    assert re.match(r"\d\d:\d\d:\d\d +settled  tm-grade +0\.017 USDC  0x[0-9a-f]{8}…[0-9a-f]{4}  cell-gra$", line)
    assert "eip155" not in repr(view) and "error" not in header and "." not in line.split()[0]
    assert summary.startswith("1 payment on base-sepolia · spent 0.017 USDC · this session (")
    assert f"({s.id}, sandbox)" in repr(view)
    # HTML: the short tx, the full one on hover; the summary line under the table.
    html = view._repr_html_()
    tx = row.tx
    assert f'<span title="{tx}"><code' in html and f"{tx[:10]}…{tx[-4:]}</code>" in html
    assert "1 payment on base-sepolia · spent 0.017 USDC" in html and "eip155" not in html


def test_ledger_summary_names_reserved_and_unknown(ip, s):
    ip.run_cell("%tm grade BTC")
    record(s.ledger, session_id=s.id, status=PaymentStatus.UNKNOWN, amount=34_000, error="answer lost")
    record(s.ledger, session_id=s.id, status=PaymentStatus.FAILED, error="HTTP 404: Data not found")
    record(s.ledger, session_id=s.id, status=PaymentStatus.FAILED, valid_before=int(time.time()) - 600)
    record(
        s.ledger,
        session_id=s.id,
        amount=int(1.53e18),
        decimals=18,
        asset_symbol="TMAI",
        endpoint="quantmetrics",
        asset="0x" + "1" * 40,
    )
    view = ip.run_line_magic("tm", "ledger")
    # Spent per asset (unknown counted: it may have settled), reserved and released apart.
    summary = summary_of(view)
    assert summary.startswith("5 payments on base-sepolia · spent 1.53 TMAI + 0.051 USDC")
    assert "1 unknown (0.034 USDC, counted as spent: may have settled)" in summary
    assert "reserved 0.017 USDC (refused, not spent; may still settle until" in summary
    assert "1 refused, released (0.017 USDC, never spent)" in summary
    statuses = [line.split()[1] for line in text_lines(view)[1:6]]
    assert statuses == ["settled", "unknown", "reserved", "failed", "settled"]
    assert "error" in text_lines(view)[0]  # some rows have one now
    assert view["reserved"].tolist() == [False, False, True, False, False] and view["status"][2] == "failed"
    assert "may still settle until" in view._repr_html_()  # the reserved status explains itself on hover


def test_today_leaves_out_yesterday(ip, s):
    ip.run_cell("%tm grade BTC")
    record(s.ledger, session_id="yesterday", created_at=time.time() - 2 * DAY, endpoint="ai-reports")
    assert ip.run_line_magic("tm", "ledger --today")["endpoint"].tolist() == ["tm-grade"]
    everything = ip.run_line_magic("tm", "ledger --all")
    assert everything["endpoint"].tolist() == ["ai-reports", "tm-grade"]
    header = text_lines(everything)[0].split()
    assert "session" in header  # several sessions: which is which
    # Several days: the date in each row too (the year said in the header, unless they differ).
    assert re.match(r"(\d{4}-)?\d\d-\d\d \d\d:\d\d:\d\d ", text_lines(everything)[1])


def test_ledger_fits_100_columns(ip, s):
    ip.run_cell("%tm grade BTC", cell_id="9f1c2d3e-4b5a-6789-abcd-ef0123456789")
    long_error = "the facilitator said: " + "insufficient funds for the transfer " * 6
    for i in range(3):
        record(
            s.ledger,
            session_id=f"session-number-{i}",
            endpoint="trading-signals",
            status=PaymentStatus.UNKNOWN,
            error=long_error,
            cell_id="0" * 36,
            created_at=time.time() - i * DAY,
            discrepancy="receipt names payer 0x" + "9" * 40,
        )
    for flags in ("--all", "--all --calls", "--all --by endpoint", "--all --by day", "--all --by cell", ""):
        view = ip.run_line_magic("tm", f"ledger {flags}")
        lines = text_lines(view)
        assert max(len(line) for line in lines) <= 100, (flags, lines)
    cut = text_lines(ip.run_line_magic("tm", "ledger --all"))
    assert any("…" in line for line in cut)  # long errors cut, never wrapped into the next row


def test_ledger_by_endpoint_day_and_cell(ip, s):
    ip.run_cell("%tm grade BTC ETH", cell_id="cell-a")
    ip.run_cell("%tm grade BTC ETH", cell_id="cell-b")  # cached
    ip.run_cell("%tm quantmetrics BTC", cell_id="cell-b")
    by_endpoint = ip.run_line_magic("tm", "ledger --by endpoint").set_index("endpoint")
    assert by_endpoint.loc["tm-grade", ["calls", "paid", "cached"]].tolist() == [2, 1, 1]
    assert by_endpoint.loc["tm-grade", "spent"] == "0.017 USDC"
    assert by_endpoint.loc["quantmetrics", "spent"] == "0.068 USDC"
    assert by_endpoint.loc["tokens", "free"] == 1 and by_endpoint.loc["tokens", "spent"] == "0.00"
    by_cell = ip.run_line_magic("tm", "ledger --by cell")
    assert by_cell["cell"].tolist() == ["cell-a", "cell-b"] and by_cell["spent"].tolist() == [
        "0.017 USDC",
        "0.068 USDC",
    ]
    by_day = ip.run_line_magic("tm", "ledger --by day")
    assert len(by_day) == 1 and by_day["spent"].tolist() == ["0.085 USDC"]
    assert summary_of(by_day).startswith("1 day · 6 calls · spent 0.085 USDC")


def test_ledger_calls_say_what_free_calls_were(ip, s):
    ip.run_cell("%tm grade BTC ETH")
    ip.run_cell("%tm quote ai-reports BTC")
    calls = ip.run_line_magic("tm", "ledger --calls")
    assert calls["kind"].tolist() == ["free: symbol lookup"] * 3 + ["paid", "free: quote"]
    assert summary_of(calls).startswith("5 calls (1 paid, 4 free: 3 symbol lookups + 1 quote) · 0.017 USDC")


def test_ledger_csv_has_every_column(ip, s, capsys):
    record(s.ledger, session_id="another-notebook")
    ip.run_cell("%tm grade BTC")
    capsys.readouterr()
    assert ip.run_line_magic("tm", "ledger --csv") is None
    header, row = capsys.readouterr().out.splitlines()  # this session's one payment
    assert header.split(",") == list(s.ledger.payments().columns)  # payer, nonce, amount_atomic, ...
    assert s.wallet.address in row and ",settled,tm-grade," in row and ",17000," in row
    ip.run_line_magic("tm", "ledger --all --csv")
    assert len(capsys.readouterr().out.splitlines()) == 3
    ip.run_line_magic("tm", "ledger --calls --csv")
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split(",") == list(s.ledger.calls().columns) and len(rows) == 4  # 3 lookups and the paid call
    ip.run_line_magic("tm", "ledger --by endpoint --csv")
    assert capsys.readouterr().out.splitlines()[0] == "endpoint,calls,paid,cached,refused,free,spent,reserved"


def test_ledger_flags_are_checked(ip, s):
    for line, match in [
        ("ledger --al", "did you mean --all"),
        ("ledger --by week", "sums by endpoint, day, cell"),
        ("ledger --today --all", "each choose the rows"),
        ("ledger --session", "needs a value"),
        ("ledger yesterday", "takes no argument yesterday"),
    ]:
        with pytest.raises(MagicUsageError, match=match):
            ip.run_line_magic("tm", line)
    assert len(ip.run_line_magic("tm", "ledger all")) == 0  # the older spelling of --all


def test_an_empty_ledger_says_so(ip, s):
    view = ip.run_line_magic("tm", "ledger")
    assert repr(view).startswith("no payments · this session (") and list(view.columns) == list(PAYMENT_COLUMNS)


def test_hostile_strings_stay_text_in_the_html(ip, s):
    hostile = '<img src=x onerror="alert(1)">'
    record(s.ledger, session_id=s.id, endpoint=hostile, tx=hostile, error=hostile, cell_id=hostile)
    html = ip.run_line_magic("tm", "ledger")._repr_html_()
    assert "<img" not in html and "&lt;img" in html


def test_derived_frames_are_plain_dataframes(ip, s):
    ip.run_cell("%tm grade BTC")
    view = ip.run_line_magic("tm", "ledger")
    assert type(view[view["status"] == "settled"]).__name__ == "DataFrame"
    assert "<table" in view[["status"]]._repr_html_()  # pandas' own display again


# -- tm402-nb ledger ------------------------------------------------------------------------------------------


@pytest.fixture
def filled(tmp_path):
    """A ledger file two sessions wrote to, one of them yesterday."""
    path = tmp_path / "l.sqlite3"
    with tm.connect(mode="sandbox", ledger=str(path)) as session:
        session.client.frame("tm-grade", symbol=["BTC", "ETH"])
        record(session.ledger, session_id="yesterday-1", created_at=time.time() - 2 * DAY, endpoint="ai-reports")
        yield path, session.id


def test_cli_ledger_shows_every_session_by_default(filled, capsys):
    path, _ = filled
    assert main(["ledger", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100
    assert "ai-reports" in out and "tm-grade" in out and "0.017 USDC" in out
    assert "2 payments on base-sepolia · spent 0.034 USDC" in out and "eip155" not in out
    assert "all sessions (2 sessions)" in out.replace("\n  ", " ")
    assert main(["ledger", "--path", str(path), "--all"]) == 0 and capsys.readouterr().out == out


def test_cli_ledger_session_today_by_calls_csv(filled, capsys):
    path, session_id = filled
    assert main(["ledger", "--path", str(path), "--session", session_id]) == 0
    out = capsys.readouterr().out.replace("\n  ", " ")
    assert (
        "tm-grade" in out
        and "ai-reports" not in out.replace(str(path), "")
        and f"session ({session_id}, sandbox)" in out
    )
    assert main(["ledger", "--path", str(path), "--today"]) == 0
    out = capsys.readouterr().out.replace("\n  ", " ")
    assert "tm-grade" in out and "ai-reports" not in out.replace(str(path), "") and "today (" in out
    assert main(["ledger", "--path", str(path), "--by", "endpoint"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"tm-grade\s+1\s+1\s+0\s+0\s+0.017 USDC", out)
    assert main(["ledger", "--path", str(path), "--calls"]) == 0
    assert "free: symbol lookup" in capsys.readouterr().out
    assert main(["ledger", "--path", str(path), "--csv"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.startswith("id,created_at,status,endpoint,") and "payer" in header and len(rows) == 2


def test_cli_ledger_rows_flags_exclude_each_other(filled, capsys):
    path, _ = filled
    with pytest.raises(SystemExit):
        main(["ledger", "--path", str(path), "--today", "--session", "x"])
    assert "not allowed with" in capsys.readouterr().err


def test_cli_ledger_on_an_empty_file(tmp_path, capsys):
    assert main(["ledger", "--path", str(tmp_path / "empty.sqlite3")]) == 0
    assert capsys.readouterr().out.startswith("no payments · all sessions (0 sessions)")


def test_view_query_is_checked():
    with pytest.raises(ValueError, match="scope"):
        LedgerQuery(scope="week")
    with pytest.raises(ValueError, match="by"):
        LedgerQuery(by="hour")


def test_view_of_a_ledger_without_a_session(tmp_path):
    from tm402_nb.ledger import Ledger

    with Ledger(tmp_path / "l.sqlite3") as ledger:
        record(ledger, session_id=None, network="eip155:8453", asset_symbol="USDC")
        view = ledger_view(ledger, LedgerQuery(scope="all"))
    assert view["network"].tolist() == ["base"] and "1 payment on base" in repr(view)
