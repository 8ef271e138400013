"""The wallet: a private key that never shows.

The key comes from the environment (``TM402_PRIVATE_KEY``), a file the user
names (hex or an encrypted keystore), a getpass prompt, or is generated as a
throwaway. ``repr``/``str`` show only the address and network; pickling and
copying to another process are refused; no error message quotes the key.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import stat
import warnings
from pathlib import Path
from typing import NoReturn

import coincurve
from eth_hash.auto import keccak

from ..errors import WalletError, X402ProtocolError

ENV_KEY = "TM402_PRIVATE_KEY"
ENV_KEY_FILE = "TM402_KEY_FILE"
ENV_KEYSTORE_PASSWORD = "TM402_KEYSTORE_PASSWORD"

_HEX_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def checksum_address(raw20: bytes) -> str:
    """EIP-55 mixed-case address from 20 raw bytes."""
    hexaddr = raw20.hex()
    digest = keccak(hexaddr.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hexaddr))


def to_checksum(address: str) -> str:
    return checksum_address(bytes.fromhex(address[2:]))


def _address_of(public_key: coincurve.PublicKey) -> str:
    return checksum_address(keccak(public_key.format(compressed=False)[1:])[-20:])


def recover_address(digest: bytes, signature65: bytes) -> str:
    """Address whose key produced ``signature65`` (r‖s‖v, v in 0/1/27/28) over ``digest``."""
    v = signature65[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise X402ProtocolError("signature has an invalid recovery id")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(signature65[:64] + bytes([v]), digest, hasher=None)
    except Exception:  # coincurve raises ValueError / its own errors for junk
        raise X402ProtocolError("signature does not recover to a public key") from None
    return _address_of(pub)


def _parse_hex_key(text: str, source: str) -> bytes:
    text = text.strip()
    if not _HEX_KEY_RE.match(text):
        # Never echo the input: it may be a real key with a typo.
        raise WalletError(
            f"the private key from {source} is not 32 bytes of hex",
            hint="expected 64 hex digits, optionally prefixed with 0x",
        )
    secret = bytes.fromhex(text[2:] if text[:2].lower() == "0x" else text)
    if not 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
        raise WalletError(f"the private key from {source} is out of the secp256k1 range")
    return secret


class Wallet:
    """An EOA that signs x402 payments.

    >>> w = Wallet.create()
    >>> w.address.startswith("0x") and len(w.address) == 42
    True
    >>> "PrivateKey" in repr(w) or "secret" in repr(w)
    False
    """

    __slots__ = ("_address", "_key", "network", "source")

    def __init__(self, _secret: bytes, *, source: str = "key", network: str | None = None) -> None:
        if not isinstance(_secret, (bytes, bytearray)) or len(_secret) != 32:
            raise WalletError("a wallet needs a 32-byte private key")
        self._key = coincurve.PrivateKey(bytes(_secret))
        self._address = _address_of(self._key.public_key)
        self.source = source
        self.network = network

    # -- constructors -------------------------------------------------------
    @classmethod
    def from_key(cls, key: str | bytes, *, network: str | None = None, source: str = "key") -> Wallet:
        """From a hex string (``0x…`` or bare) or 32 raw bytes."""
        if isinstance(key, (bytes, bytearray)):
            if len(key) != 32:
                raise WalletError("the private key is not 32 bytes")
            return cls(bytes(key), source=source, network=network)
        if not isinstance(key, str):
            raise WalletError(f"a private key must be a hex string, got {type(key).__name__}")
        return cls(_parse_hex_key(key, source), source=source, network=network)

    @classmethod
    def from_env(cls, var: str = ENV_KEY, *, network: str | None = None) -> Wallet:
        value = os.environ.get(var)
        if not value:
            raise WalletError(
                f"${var} is not set", hint=f"export {var}=0x… (a testnet key), or use Wallet.from_file / Wallet.prompt"
            )
        return cls(_parse_hex_key(value, f"${var}"), source=f"env:{var}", network=network)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, password: str | None = None, network: str | None = None
    ) -> Wallet:
        """From a file holding a hex key, or an encrypted JSON keystore.

        A keystore's password comes from ``password``, ``$TM402_KEYSTORE_PASSWORD``
        or a getpass prompt.
        """
        p = Path(path).expanduser()
        try:
            mode = p.stat().st_mode
            text = p.read_text()
        except OSError as exc:
            raise WalletError(f"cannot read key file {p.name}: {exc.strerror or type(exc).__name__}") from None
        if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(f"key file {p.name} is readable by other users; chmod 600 it", stacklevel=2)
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                keystore = json.loads(stripped)
            except ValueError:
                raise WalletError(f"key file {p.name} is neither a hex key nor a JSON keystore") from None
            if password is None:
                password = os.environ.get(ENV_KEYSTORE_PASSWORD)
            if password is None:
                password = getpass.getpass(f"Password for keystore {p.name}: ")
            from eth_account import Account

            try:
                secret = bytes(Account.decrypt(keystore, password))
            except Exception:
                raise WalletError(f"could not decrypt keystore {p.name} (wrong password or corrupt file)") from None
            return cls(secret, source=f"keystore:{p.name}", network=network)
        return cls(_parse_hex_key(stripped, f"file {p.name}"), source=f"file:{p.name}", network=network)

    @classmethod
    def prompt(cls, *, network: str | None = None, prompt: str = "Private key (hex, input hidden): ") -> Wallet:
        return cls(_parse_hex_key(getpass.getpass(prompt), "the prompt"), source="prompt", network=network)

    @classmethod
    def create(cls, *, network: str | None = None) -> Wallet:
        """A fresh random throwaway wallet (sandbox, tests)."""
        while True:
            secret = os.urandom(32)
            if 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
                return cls(secret, source="throwaway", network=network)

    @classmethod
    def load(cls, *, network: str | None = None) -> Wallet:
        """The user's wallet: ``$TM402_PRIVATE_KEY``, else ``$TM402_KEY_FILE``."""
        if os.environ.get(ENV_KEY):
            return cls.from_env(network=network)
        if os.environ.get(ENV_KEY_FILE):
            return cls.from_file(os.environ[ENV_KEY_FILE], network=network)
        raise WalletError(
            f"no wallet configured: set ${ENV_KEY} or ${ENV_KEY_FILE}",
            hint="or pass Wallet.prompt() / Wallet.from_file(path); the sandbox needs no wallet",
        )

    # -- use ------------------------------------------------------------------
    @property
    def address(self) -> str:
        return self._address

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a 32-byte digest; returns 65 bytes r‖s‖v with v in {27, 28}."""
        if len(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        sig = self._key.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes([sig[64] + 27])

    def _export_key_hex(self) -> str:
        """The key as hex. Only for handing to another signer the user asked for
        (e.g. the official SDK in interop tests); never logged or displayed."""
        return "0x" + self._key.secret.hex()

    # -- never show the key -----------------------------------------------------
    def __repr__(self) -> str:
        net = f" on {self.network}" if self.network else ""
        return f"Wallet({self._address}{net}, source={self.source})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Wallet cannot be pickled: it holds a private key")

    def __copy__(self) -> Wallet:
        return self

    def __deepcopy__(self, _memo: dict[int, object]) -> Wallet:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Wallet) and other._address == self._address

    def __hash__(self) -> int:
        return hash(self._address)
