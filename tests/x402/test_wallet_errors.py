"""No key material is reachable from a wallet error: not its message, repr, chain, or traceback locals.

Tools that capture locals (rich, Sentry, ``traceback.TracebackException(capture_locals=True)``,
pytest's ``--showlocals``) print ``repr()`` of every local in every frame of a traceback, and
walk ``__cause__``/``__context__``. So for every way a key enters (``from_key``, ``from_env``,
``from_file``, the getpass prompt), a malformed key built around a real secret must leave no
trace of that secret anywhere those tools look.
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tm402_nb
from tm402_nb.errors import WalletError
from tm402_nb.x402.wallet import Wallet

PKG = str(Path(tm402_nb.__file__).resolve().parent)
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# The public example key from the eth-account documentation: a test vector, never a real wallet.
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


def _visible(exc: BaseException) -> Iterator[tuple[str, str]]:
    """(where, text) for everything a locals-capturing tool would print about ``exc``."""
    for e in _chain(exc):
        name = type(e).__name__
        yield f"str({name})", str(e)
        yield f"repr({name})", repr(e)
        yield f"{name}.args", repr(e.args)
        yield f"vars({name})", repr(vars(e))  # e.g. JSONDecodeError.doc, UnicodeDecodeError.object
        render = getattr(e, "_render_traceback_", None)
        if render is not None:
            yield f"{name}._render_traceback_()", "\n".join(render())
        tb = e.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if str(Path(code.co_filename).resolve()).startswith(PKG):
                for local, value in tb.tb_frame.f_locals.items():
                    yield f"{name}: {code.co_name}() local {local!r}", repr(value)
            tb = tb.tb_next
        yield f"format_exception({name})", "".join(traceback.format_exception(e))
    # What a locals-capturing printer shows for our frames (the caller's own frames are its business).
    te: traceback.TracebackException | None = traceback.TracebackException.from_exception(exc, capture_locals=True)
    while te is not None:
        for fs in te.stack:
            if str(Path(fs.filename).resolve()).startswith(PKG):
                yield f"capture_locals {fs.name}()", repr(fs.locals)
        te = te.__cause__ or te.__context__


def _needles(secret_hex: str) -> list[str]:
    """Every 16-character window of the key as hex, as a bytes repr, and as an integer."""
    raw = bytes.fromhex(secret_hex)
    forms = [secret_hex.lower(), repr(raw)[2:-1], str(int.from_bytes(raw, "big"))]
    return [f[i : i + 16] for f in forms for i in range(len(f) - 15)]


def assert_no_key(exc: BaseException, secret_hex: str, *extra: str) -> None:
    needles = _needles(secret_hex) + [x for x in extra if len(x) >= 8]
    for where, text in _visible(exc):
        low = text.lower()
        for needle in needles:
            assert needle.lower() not in low, f"key material in {where}"


def _secret_hex(data: bytes) -> str:
    k = int.from_bytes(data, "big") % (N - 1) + 1
    return f"{k:064x}"


# -- malformed keys built around a secret ---------------------------------------------------------

_NOT_HEX = st.sampled_from(list("gGzZxX-+_./:;'\"{}[]é\u200b"))


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, str]:
    """(secret hex, malformed text containing most of it); the text is never a valid key."""
    secret = _secret_hex(draw(st.binary(min_size=32, max_size=32)))
    body = draw(st.sampled_from([secret, secret.upper()]))
    prefix = draw(st.sampled_from(["", "0x"]))
    kind = draw(st.sampled_from(["flip", "truncate", "extra", "space", "json", "prefix", "doubled"]))
    if kind == "flip":
        i = draw(st.integers(0, 63))
        text = prefix + body[:i] + draw(_NOT_HEX) + body[i + 1 :]
    elif kind == "truncate":
        text = prefix + body[: draw(st.integers(1, 63))]
    elif kind == "extra":
        text = prefix + body + draw(st.text(alphabet="0123456789abcdefXYZ ", min_size=1, max_size=8)).rstrip() + "0"
    elif kind == "space":
        i = draw(st.integers(1, 63))
        text = prefix + body[:i] + draw(st.sampled_from([" ", "\t", "\n", "\r\n", "\u00a0"])) + body[i:]
    elif kind == "json":
        wrap = draw(st.sampled_from(["obj", "str", "broken", "list"]))
        key = prefix + body
        text = {
            "obj": json.dumps({"privateKey": key}),
            "str": json.dumps(key),
            "broken": '{"privateKey": "' + key + '",',
            "list": json.dumps([key]),
        }[wrap]
    elif kind == "prefix":
        text = draw(st.sampled_from(["0X", "0x0x", "x", "0", "0x ", "00x"])) + body
    else:
        text = prefix + body + draw(st.sampled_from(["", "\n", " "])) + prefix + body
    return secret, text


def _from_key(text: str) -> None:
    Wallet.from_key(text)


def _from_env(text: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TM402_PRIVATE_KEY", text)
        Wallet.from_env()


def _prompt(text: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("getpass.getpass", lambda prompt="": text)
        Wallet.prompt()


def _from_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "key.txt"
        p.write_text(text)
        p.chmod(0o600)
        Wallet.from_file(p, password="not-the-password")


ENTRIES: dict[str, Callable[[str], None]] = {
    "from_key": _from_key,
    "from_env": _from_env,
    "prompt": _prompt,
    "from_file": _from_file,
}


@pytest.mark.parametrize("entry", list(ENTRIES))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=malformed())
def test_a_malformed_key_leaves_no_trace_in_the_error(entry, case):
    secret, text = case
    with pytest.raises(WalletError) as info:
        ENTRIES[entry](text)
    assert_no_key(info.value, secret, text.strip())


def test_the_checker_finds_what_it_looks_for():
    """Not vacuous: a key in a message, a chained exception's attribute, or a frame local is caught."""
    secret = KEY[2:]
    for exc in (ValueError(f"bad {KEY}"), ValueError(bytes.fromhex(secret))):
        with pytest.raises(AssertionError, match="key material"):
            assert_no_key(exc, secret)
    try:
        try:
            json.loads('{"k": "' + KEY)
        except ValueError:
            raise WalletError("x") from None
    except WalletError as exc:
        with pytest.raises(AssertionError, match=r"vars\(JSONDecodeError\)"):
            assert_no_key(exc, secret)


# -- every other entry, by example ------------------------------------------------------------------


def _raised(fn: Callable[[], object]) -> WalletError:
    with pytest.raises(WalletError) as info:
        fn()
    return info.value


@pytest.mark.parametrize(
    "bad",
    [KEY[:-1], KEY + "0", KEY[2:] + "0", "0x" + KEY, KEY.replace("0x", "0X"), " 0x " + KEY[2:], KEY[:-1] + "\u0661"],
    ids=["short", "long", "long-bare", "0x0x", "0X", "split-0x", "arabic-digit"],
)
def test_from_key_text_leaves_no_trace(bad):
    exc = _raised(lambda: Wallet.from_key(bad))
    assert "32 bytes" in str(exc)
    assert_no_key(exc, KEY[2:], bad.strip())


@pytest.mark.parametrize(
    "bad", [f"{N:064x}", f"0x{N + 5:064x}", "f" * 64, "0x" + "F" * 64], ids=["n", "n+5", "ff", "FF"]
)
def test_keys_past_the_curve_order_leave_no_trace(bad):
    exc = _raised(lambda: Wallet.from_key(bad))
    assert "range" in str(exc)
    assert_no_key(exc, bad[-64:], bad)


def test_the_zero_key_is_refused():
    exc = _raised(lambda: Wallet.from_key("0x" + "0" * 64))
    assert "range" in str(exc)
    assert not any("0" * 64 in text for _, text in _visible(exc))


@pytest.mark.parametrize("n", [0, 1, 31, 33, 64])
def test_from_key_bytes_of_the_wrong_length_leave_no_trace(n):
    raw = (bytes.fromhex(KEY[2:]) * 2)[:n]
    exc = _raised(lambda: Wallet.from_key(raw))
    if n >= 31:
        assert_no_key(exc, KEY[2:])
    assert "32 bytes" in str(exc)


@pytest.mark.parametrize("bad", [bytes(32), N.to_bytes(32, "big")], ids=["zero", "n"])
def test_from_key_bytes_out_of_range_are_refused(bad):
    exc = _raised(lambda: Wallet.from_key(bad))
    assert "range" in str(exc)
    if any(bad):
        assert_no_key(exc, bad.hex())


@pytest.mark.parametrize(
    "bad",
    [int(KEY, 16), [KEY], {"key": KEY}, bytearray.fromhex(KEY[2:])[:-1], None],
    ids=["int", "list", "dict", "bytearray", "none"],
)
def test_a_key_of_another_type_leaves_no_trace(bad):
    exc = _raised(lambda: Wallet.from_key(bad))  # type: ignore[arg-type]
    assert_no_key(exc, KEY[2:])


def test_wallet_init_with_bad_bytes_leaves_no_trace():
    raw = bytes.fromhex(KEY[2:])
    exc = _raised(lambda: Wallet(raw[:-1]))
    assert_no_key(exc, KEY[2:])


def test_a_keystore_with_the_wrong_password_leaves_no_trace(tmp_path):
    keystore = Account.encrypt(KEY, "hunter2", kdf="pbkdf2", iterations=2)
    p = tmp_path / "ks.json"
    p.write_text(json.dumps(keystore))
    p.chmod(0o600)
    exc = _raised(lambda: Wallet.from_file(p, password="hunter3"))
    assert "wrong password" in str(exc)
    # Neither the key, the password tried, nor the keystore's ciphertext.
    assert_no_key(exc, KEY[2:], "hunter3", keystore["crypto"]["ciphertext"], keystore["crypto"]["mac"])


def test_a_keystore_password_from_the_prompt_leaves_no_trace(tmp_path, monkeypatch):
    keystore = Account.encrypt(KEY, "hunter2", kdf="pbkdf2", iterations=2)
    p = tmp_path / "ks.json"
    p.write_text(json.dumps(keystore))
    p.chmod(0o600)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "wrong-password-typed")
    exc = _raised(lambda: Wallet.from_file(p))
    assert_no_key(exc, KEY[2:], "wrong-password-typed", keystore["crypto"]["ciphertext"])


@pytest.mark.parametrize(
    "content",
    [
        '{"privateKey": "' + KEY + '"',  # malformed JSON: json's error keeps the whole document
        '{"privateKey": "' + KEY + '"}',  # JSON, but no keystore
        "{" + KEY,
        KEY + "\n" + KEY,
    ],
    ids=["broken-json", "json-not-keystore", "brace-then-key", "two-keys"],
)
def test_a_key_file_that_is_not_a_key_leaves_no_trace(tmp_path, content):
    p = tmp_path / "key.json"
    p.write_text(content)
    p.chmod(0o600)
    exc = _raised(lambda: Wallet.from_file(p, password="pw"))
    assert_no_key(exc, KEY[2:], content)


def test_a_binary_key_file_is_refused_without_trace(tmp_path):
    p = tmp_path / "key.bin"
    p.write_bytes(b"\xff" + bytes.fromhex(KEY[2:]))  # not UTF-8: the decoder's error would hold the bytes
    p.chmod(0o600)
    exc = _raised(lambda: Wallet.from_file(p))
    assert "key.bin" in str(exc)
    assert_no_key(exc, KEY[2:])


def test_a_directory_is_not_a_key_file(tmp_path):
    exc = _raised(lambda: Wallet.from_file(tmp_path))
    assert tmp_path.name in str(exc)
    assert exc.__context__ is None and exc.__cause__ is None


def test_an_unreadable_key_file_names_the_file_only(tmp_path, monkeypatch):
    p = tmp_path / "key.txt"
    p.write_text(KEY)
    p.chmod(0o600)
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if Path(path) == p:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    exc = _raised(lambda: Wallet.from_file(p))
    assert "key.txt" in str(exc) and "Permission denied" in str(exc)
    assert exc.__context__ is None
    assert_no_key(exc, KEY[2:])


def test_a_malformed_env_key_leaves_no_trace(monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY[:-1] + "z")
    exc = _raised(Wallet.from_env)
    assert "TM402_PRIVATE_KEY" in str(exc)
    assert_no_key(exc, KEY[2:])


def test_the_secret_holder_is_redacted_and_unpicklable():
    """Key text only ever sits in a holder whose repr/str say nothing and which refuses pickling."""
    import copy
    import pickle

    from tm402_nb.x402.wallet import _Secret

    s = _Secret(KEY)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s})):
        assert KEY[2:] not in text and "redacted" in text
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(s)
    assert copy.copy(s) is s and copy.deepcopy(s) is s
