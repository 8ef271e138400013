"""The key never shows, end to end: a real kernel, the CLI, and the error paths, with a KNOWN test key.

The key is put in ``TM402_PRIVATE_KEY`` (the kernel and every CLI process inherit
it; it is never written into a cell, an argument or a file by the test), then:

- a notebook built on the fly connects with ``Wallet.from_env()``, funds that
  wallet in the sandbox, pays with ``%tm``, hits an over-cap refusal (caught, and
  once uncaught so an error output is rendered), shows ``%tm ledger``,
  ``%tm wallet``, ``repr(s)``, ``print(s.wallet)``, logs at DEBUG, and feeds
  malformed variants of the key to ``Wallet.from_key`` and ``tm.connect``;
- the CLI pays the sandbox in x402 mode with the env key, quotes, runs in
  sandbox mode, prints the ledger (table, CSV, calls), and fails on bad keys;

and every notebook output, the notebook file, every stdout/stderr (the kernel's
included) and every file under ``TM402_HOME`` (ledger SQLite + WAL, cache) is
scanned for the key: hex with and without 0x, upper-case, its first half, its
raw bytes and their base64. Zero hits. The test also checks the key really was
used (the payer is the key's address), so a clean scan is not a vacuous one.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.test_secrets import KEY
from tm402_nb.sandbox import serve
from tm402_nb.x402 import Wallet

ROOT = Path(__file__).resolve().parents[2]
RAW = bytes.fromhex(KEY[2:])
TEXT_NEEDLES = (
    KEY[2:].lower(),
    KEY[2:].upper(),
    KEY[2:34].lower(),
    KEY[2:34].upper(),
    KEY[34:].lower(),
    KEY[34:].upper(),
    base64.b64encode(RAW).decode(),
    base64.urlsafe_b64encode(RAW).decode().rstrip("="),
)
BYTE_NEEDLES = tuple(n.encode() for n in TEXT_NEEDLES) + (RAW, RAW[:16], RAW[16:])
ADDRESS = Wallet.from_key(KEY).address


def assert_clean(data: str | bytes, where: str) -> None:
    if isinstance(data, str):
        low = data
        for needle in TEXT_NEEDLES:
            assert needle not in low, f"private key material in {where}"
        data = data.encode("utf-8", "surrogateescape")
    for needle in BYTE_NEEDLES:
        assert needle not in data, f"private key material (bytes) in {where}"


def scan_tree(root: Path) -> int:
    n = 0
    for f in root.rglob("*"):
        if f.is_file():
            assert_clean(f.read_bytes(), f"file {f.relative_to(root)}")
            n += 1
    return n


def test_needles_would_be_found():
    """The scanner itself: each spelling of the key is caught."""
    for spelling in (
        KEY,
        KEY.upper(),
        KEY[2:],
        "0X" + KEY[2:].upper(),
        json.dumps({"k": KEY}),
        RAW,
        base64.b64encode(RAW),
        KEY[:34],
    ):
        with pytest.raises(AssertionError):
            assert_clean(spelling, "probe")


# -- the notebook ---------------------------------------------------------------------------------

CELLS = [
    (
        "code",
        "import logging, os\nlogging.basicConfig(level=logging.DEBUG)\n"
        "import tm402_nb as tm\n"
        "s = tm.connect(mode='sandbox', wallet=tm.Wallet.from_env(), budget='1.00', progress=False)\n"
        "s.sandbox.fund(s.wallet.address, 'usdc', '5')\nprint(s.wallet.address)",
    ),
    ("code", "%load_ext tm402_nb"),
    ("code", "%tm grade BTC"),
    (
        "code",
        "try:\n    get_ipython().run_line_magic('tm', 'ai-reports BTC --max-cost 0.001')\n"
        "except tm.TM402Error as exc:\n    print('refused:', type(exc).__name__, exc, repr(exc), exc.details)",
    ),
    ("code", "%tm quantmetrics BTC --max-cost 0.001", ["raises-exception"]),
    ("code", "%config TMMagics.short_errors = False"),
    ("code", "%tm quantmetrics BTC --max-cost 0.002", ["raises-exception"]),
    ("code", "%tm ledger"),
    ("code", "%tm ledger all"),
    ("code", "%tm wallet"),
    # The one-time approval to Permit2 signs a transaction: refused without ETH, then sent.
    ("code", "%tm approve tmai 5 --yes", ["raises-exception"]),
    (
        "code",
        "s.sandbox.fund(s.wallet.address, 'eth', '0.01')\nget_ipython().run_line_magic('tm', 'approve tmai 5 --yes')",
    ),
    ("code", "%tm approve tmai"),
    ("code", "print(repr(s))\nprint(s.wallet)\nprint(repr(s.auth), repr(s.policy), repr(s.client))\ns"),
    ("code", "s.ledger.payments()"),
    (
        "code",
        "vars(s.wallet) if hasattr(s.wallet, '__dict__') else [getattr(s.wallet, a, None) for a in "
        "('source', 'network', 'address')]",
    ),
    ("code", "import pickle\ntry:\n    pickle.dumps(s.wallet)\nexcept TypeError as exc:\n    print('pickle:', exc)"),
    # Malformed keys, built in the kernel from the real one (the test never writes the key into a cell).
    (
        "code",
        "good = os.environ['TM402_PRIVATE_KEY']\n"
        "bad = [good[:-1] + 'z', good[:-1], good + '00', good.upper(), good[2:] + 'g', '0x' + good, "
        "good.replace('0x', '0x ')]\n"
        "for b in bad:\n"
        "    try:\n        tm.Wallet.from_key(b)\n    except tm.TM402Error as exc:\n"
        "        print(type(exc).__name__, exc, repr(exc), ''.join(exc._render_traceback_()))\n"
        "    os.environ['TM402_PRIVATE_KEY'] = b\n"
        "    try:\n        tm.Session(mode='x402', network='base-sepolia', base_url=s.sandbox.api_url, progress=False).close()\n"
        "    except tm.TM402Error as exc:\n        print('connect:', type(exc).__name__, exc)\n"
        "os.environ['TM402_PRIVATE_KEY'] = good",
    ),
    ("code", "%config TMMagics.short_errors = True"),
    ("code", "tm.Wallet.from_key(os.environ['TM402_PRIVATE_KEY'][:-1] + 'z')", ["raises-exception"]),
    (
        "code",
        "os.environ['TM402_PRIVATE_KEY'] = os.environ['TM402_PRIVATE_KEY'][:40]\ntm.Wallet.from_env()",
        ["raises-exception"],
    ),
    # A key file that is not a key, read the way locals-capturing tools (rich, Sentry) read an error:
    # the chain, and every local of our frames. The file lives outside TM402_HOME and is deleted.
    (
        "code",
        "import pathlib, tempfile, traceback\n"
        "kdir = pathlib.Path(tempfile.mkdtemp())\n"
        "for name, text in [('k.json', '{\"privateKey\": \"' + os.environ['TM402_PRIVATE_KEY'] + '\"'),\n"
        "                   ('k.txt', os.environ['TM402_PRIVATE_KEY'][:-1] + 'z')]:\n"
        "    (kdir / name).write_text(text)\n"
        "    try:\n        tm.Wallet.from_file(kdir / name, password='x')\n"
        "    except tm.TM402Error as exc:\n"
        "        te = traceback.TracebackException.from_exception(exc, capture_locals=True)\n"
        "        print('file:', type(exc).__name__, exc, repr(exc.__context__), repr(exc.__cause__))\n"
        "        print([fs.locals for fs in te.stack if 'tm402_nb' in fs.filename])\n"
        "    (kdir / name).unlink()\n"
        "kdir.rmdir()",
    ),
    ("code", "s.close()"),
]


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for _kind, source, *tags in CELLS:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags[0]
        nb.cells.append(cell)
    return nb


def _outputs(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, one output as JSON): streams, displays (text, HTML), errors with their tracebacks."""
    return [(i, json.dumps(o)) for i, cell in enumerate(nb.cells) for o in cell.get("outputs", [])]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_notebook_with_the_env_key_leaks_nothing(tmp_path, monkeypatch, capfd):
    home = tmp_path / "tm402home"
    monkeypatch.setenv("TM402_HOME", str(home))
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)  # the kernel inherits os.environ
    nb = _notebook()
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)

    outputs = _outputs(nb)
    for i, text in outputs:
        assert_clean(text, f"the output of cell {i} ({CELLS[i][1].splitlines()[0]!r})")
    assert_clean(path.read_bytes(), "the executed notebook file")
    captured = capfd.readouterr()
    assert_clean(captured.out + captured.err, "the kernel's and the test's stdout/stderr")
    assert scan_tree(home) >= 1  # the ledger at least

    # Not vacuous: the key was the payer, the paid call and the refusals happened, errors were rendered.
    text = {i: "\n".join(t for j, t in outputs if j == i) for i in range(len(CELLS))}
    every = "\n".join(t for _, t in outputs)
    assert ADDRESS in text[0] and ADDRESS in text[9] and "settled" in text[7]
    assert "TM_GRADE" in text[2] or "tm_grade" in text[2].lower()
    assert "refused: BudgetExceeded" in text[3]
    assert sum('"output_type": "error"' in t for _, t in outputs) == 5
    assert "InsufficientGas" in text[10] and "Permit2 approved" in text[11] and "5.00 TMAI" in text[12]
    assert every.count("WalletError") >= 7 and "connect: WalletError" in every
    assert every.count("file: WalletError") == 2 and "<redacted>" in every  # errors read, our frames' locals too
    assert "DEBUG" in every or "INFO" in every  # the logs were on, and scanned
    from tm402_nb.ledger import Ledger

    with Ledger(home / "ledger.sqlite3") as ledger:
        rows = ledger.payment_rows()
    assert rows and {r["payer"] for r in rows} == {ADDRESS} and {r["status"] for r in rows} == {"settled"}


# -- the CLI ----------------------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str], *, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "tm402_nb", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert_clean(out.stdout + out.stderr, f"`tm402-nb {' '.join(args)}`")
    if ok:
        assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_cli_with_the_env_key_leaks_nothing(tmp_path):
    home = tmp_path / "home"
    base = {k: v for k, v in os.environ.items() if k not in ("TM402_MODE", "TM_API_KEY", "TM402_KEY_FILE")}
    base.update(TM402_HOME=str(home), TM402_PRIVATE_KEY=KEY)
    with serve(fund=False, rate_limit=10_000, rate_burst=10_000) as sb:
        sb.fund(ADDRESS, "usdc", "5")
        # x402 mode, with the env key, against the local sandbox (no network): a real payment.
        x402 = {**base, "TM402_MODE": "x402", "TM402_NETWORK": "base-sepolia", "TM402_BASE_URL": sb.api_url}
        got = _cli(["get", "grade", "--symbol", "BTC"], x402)
        assert "1 paid" in got.stderr
        _cli(["get", "grade", "--symbol", "BTC,ETH", "--csv", "--refresh"], x402)
        _cli(["get", "grade", "--symbol", "BTC", "--json"], x402)
        _cli(["quote", "quantmetrics", "--symbol", "BTC"], x402)
        over = _cli(["get", "ai-reports", "--symbol", "BTC", "--max-cost", "0.001"], x402, ok=False)
        assert over.returncode == 2 and "error:" in over.stderr
        payers = {s["payer"] for s in sb.settlements()}
    assert payers == {ADDRESS}  # the env key paid: the scans below are about a key that was used

    # Sandbox mode (its own throwaway wallet) with the env key present all the same.
    _cli(["get", "grade", "--symbol", "BTC", "--mode", "sandbox"], {**base})
    # The ledger, three ways, with the key in the environment.
    for extra in ([], ["--csv"], ["--calls"], ["--calls", "--csv"]):
        shown = _cli(["ledger", *extra], base)
        if extra == ["--csv"]:
            assert ADDRESS in shown.stdout and "settled" in shown.stdout

    # Error paths: malformed keys in the environment (each built from the real one) never echo.
    bad_keys = [
        KEY[:-1] + "z",
        KEY[:-1],
        KEY + "00",
        KEY.upper(),
        "0x" + KEY,
        KEY[2:] + "g",
        KEY + "\n" + KEY,
        KEY.replace("0x", "0x "),
    ]
    for bad in bad_keys:
        failed = _cli(["get", "grade", "--symbol", "BTC"], {**x402, "TM402_PRIVATE_KEY": bad}, ok=False)
        assert failed.returncode == 2 and "error:" in failed.stderr and "private key" in failed.stderr
    assert scan_tree(home) >= 1
