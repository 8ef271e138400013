"""Tab completion and ?/Shift-Tab help for %tm and %%tm, asked the way frontends ask: through
``ip.Completer.completions`` on a real shell (and, once, through a real kernel)."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest
from IPython.core.completer import provisionalcompleter

import tm402_nb as tm
from tm402_nb.notebook.completion import SUBCOMMANDS, endpoint_flags, endpoint_help
from tm402_nb.notebook.parse import FLAGS, parse_line
from tm402_nb.session import current_session
from tm402_nb.tokenmetrics.catalogue import ENDPOINTS, UnknownEndpoint, get_endpoint


def complete(ip, text, cursor=None):
    """[(text, type)] as a frontend receives them; also checks every completion replaces one range."""
    cursor = len(text) if cursor is None else cursor
    with provisionalcompleter():
        found = list(ip.Completer.completions(text, cursor))
    assert len({(c.start, c.end) for c in found}) <= 1, "completions must replace one range"
    return [(c.text, c.type) for c in found]


def texts(ip, text, cursor=None):
    return [t for t, _ in complete(ip, text, cursor)]


def span(ip, text):
    with provisionalcompleter():
        found = list(ip.Completer.completions(text, len(text)))
    return found[0].start, found[0].end


@pytest.fixture
def no_session():
    """No session open: completion must not open one."""
    s = current_session()
    if s is not None:
        s.close()
    yield
    assert current_session() is None, "completing opened a session"


# -- subcommands and endpoints --------------------------------------------------------------------------
def test_gr_completes_endpoints_with_their_price(ip, no_session):
    found = dict(complete(ip, "%tm gr"))
    assert {"grade", "grades", "grade-history"} <= set(found)
    assert found["grade"] == "tm-grade · 0.017 USDC"  # an alias names its endpoint and price
    assert found["grade-history"] == "tm-grade-history · 0.034 USDC"
    assert found["tm-grade"] == "endpoint · 0.017 USDC"  # a later word of the name matches too
    assert span(ip, "%tm gr") == (4, 6)


def test_free_endpoints_say_free(ip, no_session):
    found = dict(complete(ip, "%tm pri"))
    assert found["price"] == "endpoint · free" and found["prices"] == "price · free"
    assert found["price-prediction"] == "endpoint · 0.068 USDC"


def test_empty_line_offers_subcommands_and_endpoints_only(ip, no_session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "and_a_file.txt").write_text("x")
    found = texts(ip, "%tm ")
    assert found[: len(SUBCOMMANDS)] == list(SUBCOMMANDS)
    # Names (aliases once typed) of the endpoints called with parameters; the agent is `%tm ask`.
    assert set(found[len(SUBCOMMANDS) :]) == {e.name for e in ENDPOINTS if e.method == "GET"}
    for other in ("and", "if", "in", "and_a_file.txt", "%time", "print"):
        assert other not in found


def test_every_offered_subcommand_is_one(ip):
    for name in SUBCOMMANDS:
        args = {"connect": " sandbox", "quote": " tm-grade", "ask": " what next?", "approve": " tmai"}.get(name, "")
        assert parse_line(name + args).action == name


def test_subcommand_arguments(ip, no_session):
    assert texts(ip, "%tm connect ") == ["sandbox", "x402", "api-key"]
    assert "tm-grade" in texts(ip, "%tm doctor ") and "tm-grade" in texts(ip, "%tm help t")
    assert texts(ip, "%tm budget ") == []
    assert texts(ip, "%tm quote ai") == ["ai-reports", "ai-report"]
    assert texts(ip, "%tm approve ") == ["tmai", "usdc"] and texts(ip, "%tm approve tmai ") == ["unlimited"]
    assert texts(ip, "%tm approve tmai 50 --") == ["--yes"] and texts(ip, "%tm approve tmai --") == []


def test_assignment_lines_complete_too(ip, no_session):
    assert "grade" in texts(ip, "df = %tm gra")


# -- flags ---------------------------------------------------------------------------------------------
def test_dashes_offer_our_flags_only(ip, no_session):
    found = complete(ip, "%tm grade --")
    names = [t for t, _ in found]
    assert names == endpoint_flags(get_endpoint("tm-grade"))
    assert all(n in FLAGS for n in names) and all(kind.startswith("flag · ") for _, kind in found)
    assert "--start" not in names  # tm-grade takes no dates
    assert "abs" not in names and len(names) < 20


def test_flags_fit_the_endpoint(ip, no_session):
    assert {"--start", "--end"} <= set(texts(ip, "%tm signals BTC --"))
    assert "--max-cost" not in texts(ip, "%tm price BTC --")  # free: nothing to cap
    assert "--dry-run" not in texts(ip, "%tm quote grade BTC --")  # a quote pays nothing already
    assert "--limit" not in texts(ip, "%tm top --")  # pages by top_k, not limit
    assert texts(ip, "%tm signals BTC --start 2026-01-01 --s") == ["--save"]  # --start once


def test_a_value_position_offers_nothing_else(ip, no_session):
    assert complete(ip, "%tm grade BTC --start ") == []
    assert complete(ip, "%tm grade --save ") == []
    assert complete(ip, "%tm zzz-unknown ") == []


def test_pay_with_values(ip, no_session):
    assert texts(ip, "%tm grade BTC --pay-with ") == ["usdc", "tmai"]
    assert texts(ip, "%tm grade BTC --pay-with=t") == ["tmai"]


def test_param_names_and_their_choices(ip, no_session):
    found = dict(complete(ip, "%tm indices --param "))
    assert found["indicesType="] == "param · active | passive"
    assert texts(ip, "%tm indices --param indicesType=") == ["active", "passive"]
    assert texts(ip, "%tm indices --param indicesType=pa") == ["passive"]
    assert span(ip, "%tm indices --param indicesType=pa") == (32, 34)
    assert texts(ip, "%tm moonshots --param type=") == ["active", "past"]
    assert "signal=" in texts(ip, "%tm signals BTC --param s")
    assert "symbol=" not in texts(ip, "%tm signals BTC --param s")  # symbols are positional


def test_params_offers_dict_variables(ip, no_session):
    ip.user_ns.update(p={"startDate": "2026-01-01"}, q=[1, 2])
    try:
        assert texts(ip, "%tm ohlcv ETH --params $") == ["$p"]
    finally:
        ip.user_ns.pop("p"), ip.user_ns.pop("q")


# -- symbols --------------------------------------------------------------------------------------------
def test_symbols_come_from_the_session_without_a_call(ip, s):
    # Nothing resolved yet: the sandbox's largest tokens, read from memory.
    assert ("BTC", "symbol") in complete(ip, "%tm grade B")
    ip.run_line_magic("tm", "grade BTC ETH")
    requests = s.sandbox.stats()["requests"]
    assert complete(ip, "%tm grade B") == [("BTC", "symbol · token 3375")]  # resolved: its id
    assert texts(ip, "%tm grade BTC,") == ["ETH"]  # not the one already given
    assert texts(ip, "%tm grade BTC E") == ["ETH"]
    assert s.sandbox.stats()["requests"] == requests  # completing called nothing


def test_user_overrides_complete(ip, s):
    s.client.symbol_overrides["MYTOKEN"] = 4242
    assert ("MYTOKEN", "symbol · token 4242") in complete(ip, "%tm grade MY")


def test_no_symbols_without_a_session(ip, no_session):
    assert complete(ip, "%tm grade B") == []


def test_endpoints_without_tokens_offer_no_symbols(ip, s):
    ip.run_line_magic("tm", "grade BTC")
    assert "BTC" not in texts(ip, "%tm indices ")


# -- %%tm --------------------------------------------------------------------------------------------------
def test_cell_body_keys(ip, no_session):
    assert ("endpoint:", "key · the endpoint to call") in complete(ip, "%%tm\nendp")
    keys = texts(ip, "%%tm\nendpoint: tm-grade\n")
    assert keys[0] == "symbol:" and "limit:" in keys and "endpoint:" not in keys
    assert "symbol:" not in texts(ip, "%%tm\nendpoint: tm-grade\nsymbol: [BTC]\n")
    assert "startDate:" in texts(ip, "%%tm\nendpoint: signals\nsymbol: [BTC]\ns")


def test_cell_body_values(ip, s):
    assert "tm-grade" in texts(ip, "%%tm\nendpoint: tm-")
    assert texts(ip, "%%tm\nendpoint: moonshots\ntype: ") == ["active", "past"]
    ip.run_line_magic("tm", "grade BTC ETH")
    assert texts(ip, "%%tm\nendpoint: tm-grade\nsymbol: [BTC, E") == ["ETH"]


def test_cell_body_one_call_per_line(ip, no_session):
    found = texts(ip, "%%tm\ngrade BTC\nqu")
    assert found[0] == "quote" and "quantmetrics" in found and "endpoints" not in found
    assert "--save" not in texts(ip, "%%tm\ngrade BTC\nquant --")  # --save belongs on the %%tm line


def test_cell_line_flags(ip, no_session):
    assert texts(ip, "%%tm --") == ["--save", "--dry-run", "--refresh", "--max-cost", "--pages", "--pay-with"]
    assert texts(ip, "%%tm --save x --pay-with ") == ["usdc", "tmai"]


def test_other_completion_is_untouched(ip, no_session):
    assert "print" in texts(ip, "x = 1\nprin")
    assert "%tm" in texts(ip, "%t")  # the magic's own name: IPython's
    assert "%%tm" in texts(ip, "%%t")


def test_unload_removes_the_matcher(ip, no_session):
    ip.run_line_magic("unload_ext", "tm402_nb")
    try:
        assert "_object_find" not in ip.__dict__
        assert not any(getattr(m, "matcher_identifier", "").startswith("tm402") for m in ip.Completer.custom_matchers)
    finally:
        ip.run_line_magic("load_ext", "tm402_nb")
    assert "grade" in texts(ip, "%tm gra")


# -- ? and Shift-Tab ---------------------------------------------------------------------------------------
def test_tm_question_mark_lists_the_subcommands(ip):
    text = ip.object_inspect_text("%tm")
    for word in ("%tm quote", "endpoints", "ledger", "doctor", "%tm help ENDPOINT", "Tab completes"):
        assert word in text


def test_endpoint_question_mark_shows_its_help(ip, capsys):
    ip.run_cell("%tm grade?")
    out = capsys.readouterr().out
    assert "%tm tm-grade: Latest TM Grade" in out and "0.017 USDC" in out and "TM_GRADE" in out


def test_hyphenated_endpoint_question_mark(ip, capsys):
    ip.run_cell("%tm hourly-trading-signals?")  # IPython asks for "signals"
    assert "%tm hourly-trading-signals:" in capsys.readouterr().out


def test_help_and_trailing_question_mark(ip):
    assert repr(ip.run_line_magic("tm", "help indices")) == endpoint_help(get_endpoint("indices"))
    assert repr(ip.run_line_magic("tm", "indices ?")) == endpoint_help(get_endpoint("indices"))
    assert "%tm ENDPOINT" in repr(ip.run_line_magic("tm", "?"))
    with pytest.raises(UnknownEndpoint, match="did you mean"):
        ip.run_line_magic("tm", "help gradez")


def test_endpoint_help_lists_parameters_fields_and_price():
    text = endpoint_help(get_endpoint("trading-signals"))
    assert "0.017 USDC a call" in text and "signal            -1 | 0 | 1" in text
    assert "--start/--end" in text and "HOLDING_RETURNS" in text
    assert "free" in endpoint_help(get_endpoint("tokens")).splitlines()[1]
    assert all(len(line) <= 100 for line in text.splitlines()[3:6])


def _inspecting(code, cursor):
    return SimpleNamespace(
        get_parent=lambda *a, **k: {
            "header": {"msg_type": "inspect_request"},
            "content": {"code": code, "cursor_pos": cursor},
        }
    )


def test_shift_tab_on_an_endpoint(ip, monkeypatch):
    """ipykernel answers Shift-Tab with object_inspect_mime(<token at the cursor>)."""
    monkeypatch.setattr(ip, "kernel", _inspecting("%tm grade BTC", 7), raising=False)
    bundle = ip.object_inspect_mime("grade")
    assert "%tm tm-grade" in bundle["text/plain"] and "0.017 USDC" in bundle["text/plain"]
    monkeypatch.setattr(ip, "kernel", _inspecting("%%tm\nendpoint: hourly-trading-signals", 30), raising=False)
    assert "%tm hourly-trading-signals" in ip.object_inspect_mime("signals")["text/plain"]


def test_shift_tab_elsewhere_finds_nothing(ip, monkeypatch):
    monkeypatch.setattr(ip, "kernel", _inspecting("grade + 1", 3), raising=False)
    with pytest.raises(KeyError):  # what ipykernel turns into found: false
        ip.object_inspect_mime("grade")


def test_a_real_object_wins(ip, monkeypatch):
    ip.user_ns["grade"] = 42
    try:
        monkeypatch.setattr(ip, "kernel", _inspecting("%tm grade", 6), raising=False)
        assert "int" in ip.object_inspect_mime("grade")["text/plain"]
    finally:
        ip.user_ns.pop("grade")


# -- through a kernel, as JupyterLab and VS Code ask -------------------------------------------------------
@pytest.mark.slow
def test_a_kernel_answers_completion_and_inspection(tmp_path):
    from jupyter_client.manager import start_new_kernel

    env = {
        **{k: v for k, v in os.environ.items() if k not in ("TM402_PRIVATE_KEY", "TM402_KEY_FILE", "TM_API_KEY")},
        "TM402_MODE": "sandbox",
        "TM402_HOME": str(tmp_path / "home"),
        "PYTHONPATH": os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(tm.__file__)), *sys.path) if p),
    }
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        reply = kc.execute_interactive("%load_ext tm402_nb", timeout=60)
        assert reply["content"]["status"] == "ok"
        reply = kc.complete("%tm gr", 6, reply=True, timeout=60)["content"]
        assert "grade" in reply["matches"] and (reply["cursor_start"], reply["cursor_end"]) == (4, 6)
        types = {m["text"]: m["type"] for m in reply["metadata"]["_jupyter_types_experimental"]}
        assert types["grade"] == "tm-grade · 0.017 USDC"
        reply = kc.complete("%tm ", 4, reply=True, timeout=60)["content"]
        assert "quote" in reply["matches"] and "and" not in reply["matches"]
        reply = kc.inspect("%tm grade BTC", 7, reply=True, timeout=60)["content"]
        assert reply["found"] and "%tm tm-grade" in reply["data"]["text/plain"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


SAMPLES = [
    "%tm grade BTC,ETH --limit 5 --param page=2 --pay-with=tmai --save g",
    "df = %tm signals BTC --start 2026-01-01 --end 2026-03-31 --max-cost 0.2 -n",
    "%tm quote indices --param indicesType=active --pages 2",
    "%tm ledger --by day --csv",
    "%tm connect sandbox",
    "%%tm --save out --pay-with usdc\nendpoint: moonshots\ntype: [active]\n# note\nlimit: 3 ",
    "%%tm\ngrade BTC\nquote ai-reports ETH --pay-with tmai\n",
    "%%tm\nendpoint: tm-grade\nsymbol: [BTC, ETH]\nlim \n  ",
]


@pytest.mark.parametrize("cell", SAMPLES)
def test_every_cursor_position_gives_a_fragment_it_can_replace(ip, s, cell):
    """IPython swallows a matcher's exception (and asserts its fragment ends the text before the
    cursor), so both are checked here, at every position of realistic cells."""
    from tm402_nb.notebook.completion import TMCompleter

    completer = TMCompleter(ip)
    lines = cell.split("\n")
    for n, line in enumerate(lines):
        for column in range(len(line) + 1):
            found = completer.complete(cell, n, column)
            if found is not None:
                fragment, candidates = found
                assert line[:column].endswith(fragment), (line[:column], fragment)
                assert all(isinstance(t, str) and isinstance(k, str) for t, k in candidates)


def test_the_agent_is_a_subcommand_not_an_endpoint(ip, no_session):
    assert "ask" in texts(ip, "%tm as")
    assert "tmai" not in texts(ip, "%tm quote tm") and texts(ip, "%tm ask What about ") == []
