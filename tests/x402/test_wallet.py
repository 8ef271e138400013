"""The wallet never shows its key: not in repr, logs, pickles or error messages."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest
from eth_account import Account

from tm402_nb.errors import WalletError
from tm402_nb.x402.wallet import Wallet

# The public example key from the eth-account documentation: a test vector, never a real wallet.
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KEY_BARE = KEY[2:]
ADDRESS = Account.from_key(KEY).address


def test_from_key_gives_the_eth_account_address():
    assert Wallet.from_key(KEY).address == ADDRESS
    assert Wallet.from_key(KEY_BARE).address == ADDRESS
    assert Wallet.from_key(bytes.fromhex(KEY_BARE)).address == ADDRESS


def test_repr_str_show_address_and_network_only():
    w = Wallet.from_key(KEY, network="base-sepolia")
    for text in (repr(w), str(w), f"{w}", json.dumps({"w": str(w)})):
        assert KEY_BARE not in text.lower()
        assert ADDRESS in text
    assert "base-sepolia" in repr(w)


def test_pickling_is_refused():
    w = Wallet.from_key(KEY)
    with pytest.raises(TypeError, match="private key"):
        pickle.dumps(w)
    assert copy.deepcopy(w) is w  # no copies of the key object


def test_logging_never_reveals_key(caplog):
    w = Wallet.from_key(KEY)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("wallet %s / %r", w, w)
    assert KEY_BARE not in caplog.text.lower()


@pytest.mark.parametrize(
    "bad",
    [
        KEY_BARE[:-2],  # 31 bytes
        KEY_BARE + "00",  # 33 bytes
        "0x" + "g" * 64,  # not hex
        "0x" + "0" * 64,  # zero key
        "f" * 64,  # above the curve order
        "",
    ],
)
def test_bad_keys_are_refused_without_echoing(bad):
    with pytest.raises(WalletError) as info:
        Wallet.from_key(bad)
    text = str(info.value) + repr(info.value) + "".join(info.value._render_traceback_())
    if bad:
        assert bad.lower().removeprefix("0x") not in text.lower()
    assert "32 bytes" in text or "range" in text


def test_from_env(monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    assert Wallet.from_env().address == ADDRESS
    assert Wallet.load().source == "env:TM402_PRIVATE_KEY"
    monkeypatch.setenv("TM402_PRIVATE_KEY", "0x1234")
    with pytest.raises(WalletError) as info:
        Wallet.from_env()
    assert "1234" not in str(info.value)


def test_missing_env_says_what_to_do(monkeypatch):
    monkeypatch.delenv("TM402_PRIVATE_KEY", raising=False)
    with pytest.raises(WalletError, match="TM402_PRIVATE_KEY"):
        Wallet.from_env()
    with pytest.raises(WalletError, match="no wallet configured"):
        Wallet.load()


def test_from_hex_file(tmp_path):
    p = tmp_path / "key.txt"
    p.write_text(KEY + "\n")
    p.chmod(0o600)
    w = Wallet.from_file(p)
    assert w.address == ADDRESS and w.source == "file:key.txt"


def test_world_readable_key_file_warns(tmp_path):
    p = tmp_path / "key.txt"
    p.write_text(KEY)
    p.chmod(0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        Wallet.from_file(p)


def test_from_keystore_file(tmp_path, monkeypatch):
    keystore = Account.encrypt(KEY, "hunter2", kdf="pbkdf2", iterations=2)
    p = tmp_path / "ks.json"
    p.write_text(json.dumps(keystore))
    p.chmod(0o600)
    assert Wallet.from_file(p, password="hunter2").address == ADDRESS
    monkeypatch.setenv("TM402_KEYSTORE_PASSWORD", "hunter2")
    assert Wallet.from_file(p).address == ADDRESS
    with pytest.raises(WalletError, match="wrong password"):
        Wallet.from_file(p, password="nope")


def test_missing_file_error_names_file_not_contents(tmp_path):
    with pytest.raises(WalletError, match=r"nokey\.txt"):
        Wallet.from_file(tmp_path / "nokey.txt")


def test_prompt_uses_getpass(monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": KEY)
    assert Wallet.prompt().address == ADDRESS


def test_create_is_random():
    assert Wallet.create().address != Wallet.create().address


def test_signature_recovers_with_eth_account():
    from eth_account.messages import _hash_eip191_message  # noqa: F401 - ensure eth_account importable

    w = Wallet.from_key(KEY)
    digest = bytes(range(32))
    sig = w.sign_digest(digest)
    from eth_keys import keys

    recovered = keys.Signature(sig[:64] + bytes([sig[64] - 27])).recover_public_key_from_msg_hash(digest)
    assert recovered.to_checksum_address() == ADDRESS
