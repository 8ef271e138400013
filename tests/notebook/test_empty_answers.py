"""No data for a request: ``DataNotFound`` names the endpoint once, and its fix is one a notebook
user can type (issue 13: the prefix was printed twice, and the hint spoke only Python)."""

from __future__ import annotations

import pytest

from tm402_nb.notebook.parse import MagicUsageError, parse_line
from tm402_nb.tokenmetrics.errors import DataNotFound

BEFORE_THE_DATA = "ohlcv BTC --start 2018-01-01 --end 2018-01-05"


def test_the_magic_error_names_the_endpoint_once_and_says_the_flag(ip, s):
    with pytest.raises(DataNotFound) as info:
        ip.run_line_magic("tm", BEFORE_THE_DATA)
    shown = "".join(info.value._render_traceback_())
    assert shown.count("daily-ohlcv") == 1 and "daily-ohlcv: Data not found" in shown
    assert "--empty ok" in shown and "on_empty" not in shown
    assert info.value.details["endpoint"] == "daily-ohlcv"


def test_empty_ok_is_an_empty_frame(ip, s):
    df = ip.run_line_magic("tm", f"{BEFORE_THE_DATA} --empty ok")
    assert df.empty and "CLOSE" in df.columns and df.attrs["tm402"]["endpoint"] == "daily-ohlcv"


def test_a_cell_option_applies_to_its_calls(ip, s):
    ip.run_cell(f"%%tm --empty ok --save got\n{BEFORE_THE_DATA}")
    assert ip.user_ns.pop("got").empty


def test_python_gets_the_python_fix(s):
    with pytest.raises(DataNotFound) as info:
        s.client.frame("daily-ohlcv", symbol="BTC", start="2018-01-01", end="2018-01-05")
    assert str(info.value).count("daily-ohlcv") == 1 and "on_empty='empty'" in info.value.hint
    assert s.client.frame("daily-ohlcv", symbol="BTC", start="2018-01-01", end="2018-01-05", on_empty="empty").empty
    with pytest.raises(DataNotFound) as one:  # get() too
        s.client.get("daily-ohlcv", symbol="BTC", start="2018-01-01", end="2018-01-05")
    assert str(one.value).count("daily-ohlcv") == 1 and one.value.details["reason"] == "Data not found"


@pytest.mark.parametrize("value, expected", [("ok", "empty"), ("raise", "raise"), ("OK", "empty")])
def test_the_flag_parses(value, expected):
    assert parse_line(f"grade BTC --empty {value}").on_empty == expected


def test_a_bad_flag_value_is_refused():
    with pytest.raises(MagicUsageError, match="--empty must be ok or raise"):
        parse_line("grade BTC --empty maybe")


def test_a_reason_that_already_names_the_endpoint_is_not_prefixed_again():
    from tm402_nb.tokenmetrics.errors import data_not_found

    exc = data_not_found("tm-grade", "tm-grade: Data not found")
    assert exc.message == "tm-grade: Data not found" and exc.details["reason"] == "Data not found"
