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
import traceback
import warnings
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar

import coincurve
from eth_hash.auto import keccak

from ..errors import WalletError, X402ProtocolError

ENV_KEY = "TM402_PRIVATE_KEY"
ENV_KEY_FILE = "TM402_KEY_FILE"
ENV_KEYSTORE_PASSWORD = "TM402_KEYSTORE_PASSWORD"

_T_co = TypeVar("_T_co", covariant=True)

_HEX_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: A hex key is 66 bytes and a keystore under 1 KB; anything far past that is the wrong file.
_MAX_KEY_FILE = 64 * 1024


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


class _Secret(Generic[_T_co]):
    """Key material (key text, key bytes, a keystore, a password) in a holder that never shows it.

    Tools that print a traceback's locals (rich, Sentry, ``capture_locals``, pytest
    ``--showlocals``) call ``repr()`` on every local of every frame, so the key is never a
    plain local in a frame that can raise: it is wrapped here first, and the raw value is
    only unwrapped inside helpers that *return* (a returned frame is in no traceback).
    """

    __slots__ = ("_value",)

    def __init__(self, value: _T_co) -> None:
        self._value = value

    def reveal(self) -> _T_co:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "<redacted>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("key material cannot be pickled")

    def __copy__(self) -> _Secret[_T_co]:
        return self

    def __deepcopy__(self, _memo: dict[int, object]) -> _Secret[_T_co]:
        return self


_HEX_HINT = "expected 64 hex digits, optionally prefixed with 0x"

#: Why a key was refused: (what is wrong, hint). Never quotes the input.
_Problem = tuple[str, str | None]


def _private_key(secret: _Secret[object]) -> coincurve.PrivateKey | _Problem:
    """The key in ``secret`` as a coincurve key, or why not.

    Returns instead of raising, so the raw text and bytes bound here leave with this
    frame and are in no traceback; the caller raises, holding only the redacted holder.
    """
    value = secret.reveal()
    if isinstance(value, str):
        text = value.strip()
        if not _HEX_KEY_RE.fullmatch(text):
            return "is not 32 bytes of hex", _HEX_HINT
        raw = bytes.fromhex(text.removeprefix("0x"))
    elif isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if len(raw) != 32:
            return "is not 32 bytes", None
    else:
        return f"must be a hex string or 32 bytes, got {type(value).__name__}", _HEX_HINT
    if not 0 < int.from_bytes(raw, "big") < _SECP256K1_N:
        return "is out of the secp256k1 range", None
    try:
        return coincurve.PrivateKey(raw)
    except Exception:  # the range check makes this unreachable; never let coincurve's error carry the key
        return "is not a valid secp256k1 key", None


def _read_key_file(path: Path) -> tuple[_Secret[str], int] | str:
    """``(file text, mode)``, or why the file cannot be read (quoting nothing of its contents).

    One open file answers both the permission check and the read (no window between
    them), and a FIFO or device cannot hang the kernel. Returns instead of raising, as
    :func:`_private_key` does; a decoding error would carry the file's bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > _MAX_KEY_FILE:
            return f"{info.st_size} bytes is too large for a key or a keystore"
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE:  # grew since fstat
        return "too large for a key or a keystore"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text, so neither a hex key nor a JSON keystore"
    return _Secret(text), info.st_mode


def _is_json(secret: _Secret[str]) -> bool:
    return secret.reveal().lstrip().startswith("{")


def _parse_keystore(secret: _Secret[str]) -> _Secret[dict[str, Any]] | None:
    """The JSON object in ``secret``, or None. ``json``'s error keeps the whole document in
    ``.doc``: it is caught here and dropped, and nothing is raised while it is alive."""
    try:
        value = json.loads(secret.reveal())
    except ValueError:
        return None
    return _Secret(value) if isinstance(value, dict) else None


def _password(given: _Secret[str | None], keystore_name: str) -> _Secret[str]:
    """The keystore's password: the one given, else ``$TM402_KEYSTORE_PASSWORD``, else a prompt."""
    password = given.reveal()
    if password is None:
        password = os.environ.get(ENV_KEYSTORE_PASSWORD)
    if password is None:
        password = getpass.getpass(f"Password for keystore {keystore_name}: ")
    return _Secret(password)


def _decrypt(keystore: _Secret[dict[str, Any]], password: _Secret[str]) -> _Secret[bytes] | None:
    """The key bytes of an encrypted keystore, or None if they cannot be had."""
    from eth_account import Account

    try:
        return _Secret(bytes(Account.decrypt(keystore.reveal(), password.reveal())))
    except Exception:
        return None  # wrong password or corrupt file; eth_account's error (and its frames) dropped here
    except BaseException as exc:
        # Ctrl-C during the (slow) key derivation goes through, but eth_account's frames hold the
        # password and the keystore in their locals: clear them before it leaves.
        traceback.clear_frames(exc.__traceback__)
        raise


class Wallet:
    """An EOA that signs x402 payments.

    >>> w = Wallet.create()
    >>> w.address.startswith("0x") and len(w.address) == 42
    True
    >>> "PrivateKey" in repr(w) or "secret" in repr(w)
    False
    """

    __slots__ = ("_address", "_key", "network", "source")

    def __init__(self, _secret: bytes | _Secret[object], *, source: str = "key", network: str | None = None) -> None:
        secret: _Secret[object] = _secret if isinstance(_secret, _Secret) else _Secret(_secret)
        del _secret  # from here on the key is only in the redacted holder
        key = _private_key(secret)
        if isinstance(key, tuple):
            raise WalletError(f"a wallet needs a 32-byte private key; this one {key[0]}")
        self._setup(key, source, network)

    def _setup(self, key: coincurve.PrivateKey, source: str, network: str | None) -> None:
        self._key = key
        self._address = _address_of(key.public_key)
        self.source = source
        self.network = network

    @classmethod
    def _build(cls, secret: _Secret[object], where: str, *, source: str, network: str | None) -> Wallet:
        """A wallet from a held key, or a WalletError naming ``where`` (never the key)."""
        key = _private_key(secret)
        if isinstance(key, tuple):
            raise WalletError(f"the private key from {where} {key[0]}", hint=key[1])
        wallet = cls.__new__(cls)
        wallet._setup(key, source, network)
        return wallet

    # -- constructors -------------------------------------------------------
    # Each wraps the key the moment it arrives and ``del``s the raw argument, and raises only
    # outside ``except`` blocks (a raise inside one stores the caught error, key and all, as
    # ``__context__``; ``from None`` hides it from the printout but keeps it reachable).
    @classmethod
    def from_key(cls, key: str | bytes, *, network: str | None = None, source: str = "key") -> Wallet:
        """From a hex string (``0x…`` or bare) or 32 raw bytes."""
        secret = _Secret(key)
        del key
        return cls._build(secret, source, source=source, network=network)

    @classmethod
    def from_env(cls, var: str = ENV_KEY, *, network: str | None = None) -> Wallet:
        secret = _Secret(os.environ.get(var))
        if not secret.reveal():
            raise WalletError(
                f"${var} is not set", hint=f"export {var}=0x… (a testnet key), or use Wallet.from_file / Wallet.prompt"
            )
        return cls._build(secret, f"${var}", source=f"env:{var}", network=network)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, password: str | None = None, network: str | None = None
    ) -> Wallet:
        """From a file holding a hex key, or an encrypted JSON keystore.

        A keystore's password comes from ``password``, ``$TM402_KEYSTORE_PASSWORD``
        or a getpass prompt.
        """
        given = _Secret(password)
        del password
        p = Path(path).expanduser()
        read = _read_key_file(p)
        if isinstance(read, str):
            raise WalletError(f"cannot read key file {p.name}: {read}")
        text, mode = read
        if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(f"key file {p.name} is readable by other users; chmod 600 it", stacklevel=2)
        if not _is_json(text):
            return cls._build(text, f"file {p.name}", source=f"file:{p.name}", network=network)
        keystore = _parse_keystore(text)
        if keystore is None:
            raise WalletError(f"key file {p.name} is neither a hex key nor a JSON keystore")
        secret = _decrypt(keystore, _password(given, p.name))
        if secret is None:
            raise WalletError(f"could not decrypt keystore {p.name} (wrong password or corrupt file)")
        return cls._build(secret, f"keystore {p.name}", source=f"keystore:{p.name}", network=network)

    @classmethod
    def prompt(cls, *, network: str | None = None, prompt: str = "Private key (hex, input hidden): ") -> Wallet:
        return cls._build(_Secret(getpass.getpass(prompt)), "the prompt", source="prompt", network=network)

    @classmethod
    def create(cls, *, network: str | None = None) -> Wallet:
        """A fresh random throwaway wallet (sandbox, tests)."""
        while True:
            secret = os.urandom(32)
            if 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
                return cls(_Secret(secret), source="throwaway", network=network)

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
        # getattr: a wallet whose __init__ refused its key is still repr'd by traceback printers.
        net = getattr(self, "network", None)
        where = f" on {net}" if net else ""
        return f"Wallet({getattr(self, '_address', 'unset')}{where}, source={getattr(self, 'source', None)})"

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
