"""The ledger keeps resolved symbols per server with the time they were learned (schema v5, issue 13)."""

from __future__ import annotations

import sqlite3

from tm402_nb.ledger import SCHEMA_VERSION, Ledger
from tm402_nb.ledger.store import _MIGRATIONS

DAY = 86400.0


def test_symbols_are_kept_per_scope_and_age(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as led:
        led.symbols_put("https://a/v2", {"BTC": 3375, "ETH": 3306}, now=1000.0)
        led.symbols_put("https://b/v2", {"BTC": 1}, now=1000.0)
        assert led.symbols_get("https://a/v2", ["BTC", "ETH", "SOL"], max_age=DAY, now=1000.0 + DAY - 1) == {
            "BTC": 3375,
            "ETH": 3306,
        }
        assert led.symbols_get("https://b/v2", ["BTC"], max_age=DAY, now=1001.0) == {"BTC": 1}
        assert led.symbols_get("https://a/v2", ["BTC"], max_age=DAY, now=1000.0 + DAY + 1) == {}  # too old
        led.symbols_put("https://a/v2", {"BTC": 9}, now=5000.0)  # learned again: replaced
        assert led.symbols_get("https://a/v2", ["BTC"], max_age=DAY, now=5000.0) == {"BTC": 9}
        many = [f"S{i}" for i in range(1200)]  # more than one statement's host parameters
        led.symbols_put("https://a/v2", {s: i for i, s in enumerate(many)}, now=5000.0)
        assert len(led.symbols_get("https://a/v2", many, max_age=DAY, now=5000.0)) == 1200


def test_a_v4_ledger_gains_the_table_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    for migration in _MIGRATIONS[:4]:
        con.executescript(migration)
    con.execute("INSERT INTO calls (id, created_at) VALUES ('c1', 1.0)")
    con.execute("PRAGMA user_version=4")
    con.commit()
    con.close()
    with Ledger(path) as led:
        assert led.schema_version == SCHEMA_VERSION >= 5
        assert len(led.calls()) == 1
        led.symbols_put("s", {"BTC": 3375})
        assert led.symbols_get("s", ["BTC"], max_age=DAY) == {"BTC": 3375}
