"""What a session is made of in each mode: one constructor per :class:`~tm402_nb.tokenmetrics.modes.Mode`.

:func:`build` picks the mode's constructor; each one checks the options that
make no sense in its mode, opens what the mode needs (the ledger, the embedded
sandbox, the wallet and spend policy) and returns the ready
:class:`SessionParts`. Whatever a constructor has opened is closed again if a
later step fails, so a refused option never leaves a sandbox running.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cells import current_cell_id
from ..errors import ConfigurationError, X402ProtocolError
from ..ledger import Ledger
from ..money import AmountLike, to_atomic
from ..tokenmetrics.client import DEFAULT_BASE_URL, Client, RetryPolicy
from ..tokenmetrics.cost import CostTracker
from ..tokenmetrics.modes import Mode
from ..x402.auth import X402Auth
from ..x402.chain import ChainReader
from ..x402.networks import Network, get_network
from ..x402.policy import AssetLimit, SpendPolicy
from ..x402.wallet import ENV_KEY, ENV_KEY_FILE, Wallet
from .confirm import ask

if TYPE_CHECKING:
    from ..sandbox import SandboxServer

__all__ = [
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODE",
    "ENV_NETWORK",
    "ENV_RPC_URL",
    "NetworkRequired",
    "SessionOptions",
    "SessionParts",
    "build",
    "mode_from_env",
    "resolve_mode",
]

ENV_MODE = "TM402_MODE"
ENV_API_KEY = "TM_API_KEY"
ENV_RPC_URL = "TM402_RPC_URL"
ENV_BASE_URL = "TM402_BASE_URL"
#: The network x402 mode pays on (``base`` for Token Metrics), when ``connect()`` names none.
ENV_NETWORK = "TM402_NETWORK"
#: The line that chooses Token Metrics' network, with a cap: every "which network?" refusal shows it.
MAINNET_LINE = 'tm.connect(mode="x402", network="base", budget="1.00")'
#: The session budget (USD) when ``connect()`` is not given one, sandbox included, so the habit forms.
DEFAULT_BUDGET = "1.00"

#: In the sandbox, TMAI costs $0.01: these limits mirror the USD defaults.
SANDBOX_TMAI_LIMITS = AssetLimit(max_per_call="20", budget="1000")

_MODE_NAMES = f"{Mode.SANDBOX}, {Mode.X402} or {Mode.API_KEY}"


def mode_from_env() -> Mode:
    """``$TM402_MODE`` when set; else x402 with a wallet key, api-key with an API key, else the sandbox."""
    explicit = os.environ.get(ENV_MODE, "").strip().lower()
    if explicit:
        try:
            return Mode(explicit)
        except ValueError:
            raise ConfigurationError(f"${ENV_MODE} must be {_MODE_NAMES}, got {explicit!r}") from None
    if os.environ.get(ENV_KEY) or os.environ.get(ENV_KEY_FILE):
        return Mode.X402
    if os.environ.get(ENV_API_KEY):
        return Mode.API_KEY
    return Mode.SANDBOX


def resolve_mode(mode: Mode | str | None) -> Mode:
    """The mode asked for, else the environment's."""
    if not mode:
        return mode_from_env()
    try:
        return Mode(mode)
    except ValueError:
        raise ConfigurationError(f"mode must be {_MODE_NAMES}, got {mode!r}") from None


@dataclass(frozen=True, kw_only=True)
class SessionOptions:
    """Everything ``connect()`` / ``Session()`` accept besides the mode, with their defaults."""

    network: str | None = None
    pay_with: str = "usdc"
    max_per_call: AmountLike | float | None = "0.10"
    #: Every session has a budget unless told otherwise: ``budget=None`` turns it off, explicitly.
    budget: AmountLike | float | None = DEFAULT_BUDGET
    daily_cap: AmountLike | float | None = None
    #: The most one notebook cell run may pay, in USD (``%config TMMagics.max_per_cell`` sets it too).
    max_per_cell: AmountLike | float | None = None
    #: USD per token for assets that are not dollars (TMAI), when a challenge gives no dollar price.
    usd_rates: dict[str, AmountLike | float] | None = None
    #: x402 schemes to pay, most preferred first (None: exact, then upto when it is cheaper).
    schemes: tuple[str, ...] | None = None
    #: Plans above this many USD ask before paying (``ask``: the notebook's or terminal's stdin).
    confirm_above: AmountLike | float | None = None
    tmai_limits: AssetLimit | dict[str, Any] | None = None
    base_url: str | None = None
    api_key: str | None = None
    wallet: Wallet | None = None
    ledger: Ledger | str | os.PathLike[str] | None = None
    cache: bool = True
    rpc_url: str | None = None
    low_balance: AmountLike | float | None = "1.00"
    x402_version: int = 1
    sandbox_options: dict[str, Any] | None = None
    retry: RetryPolicy | None = None
    max_concurrency: int = 4
    progress: bool = True
    on_empty: str = "raise"
    #: Days per date window of dated endpoints (None: the catalogue's 29, the API's documented limit).
    window_days: int | None = None
    #: Symbol → token id, used before any lookup (``s.client.symbol_overrides`` edits them later).
    symbol_overrides: dict[str, int] | None = None

    def __post_init__(self) -> None:
        _ = self.low_balance_atomic  # a bad amount fails here, before anything is opened

    @property
    def low_balance_atomic(self) -> int | None:
        """``low_balance`` in USDC's atomic units (None: never warn)."""
        return None if self.low_balance is None else to_atomic(self.low_balance, 6, what="low_balance")


@dataclass
class SessionParts:
    """A session's parts, ready to use; closing ``resources`` closes what the session owns, last opened first."""

    mode: Mode
    id: str
    ledger: Ledger
    client: Client
    #: Keyword arguments that build a client like ``client`` (the session's AsyncClient uses them).
    client_options: dict[str, Any]
    base_url: str
    rpc_url: str | None
    low_balance: int | None
    cost: CostTracker
    network: str | None = None
    wallet: Wallet | None = None
    policy: SpendPolicy | None = None
    auth: X402Auth | None = None
    sandbox: SandboxServer | None = None
    resources: ExitStack = field(default_factory=ExitStack)


def build(mode: Mode, options: SessionOptions) -> SessionParts:
    """The parts of a session in ``mode``."""
    return _CONSTRUCTORS[mode](options)


# -- one constructor per mode -------------------------------------------------------------------
def _sandbox_session(options: SessionOptions) -> SessionParts:
    from ..sandbox import serve
    from ..sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA

    if options.api_key:
        raise ConfigurationError("an API key was given in sandbox mode", hint="use mode='api-key'")
    if options.network:
        get_network(options.network)  # an unknown name fails before anything is opened
    _sandbox_pays_only_itself(options)
    with ExitStack() as opened:
        ledger = _open_ledger(options, opened)
        # network and x402_version flip the sandbox profile's switches only when asked for (1 is
        # connect's default); sandbox_options ({"profile": "docs-2026", ...}) may name any switch.
        switches = {
            "network": options.network,
            "x402_version": options.x402_version if options.x402_version != 1 else None,
        }
        sandbox = serve(**{**switches, **(options.sandbox_options or {})})
        opened.callback(sandbox.stop)
        net = get_network(sandbox.network)  # the profile's network unless one was asked for
        policy = SpendPolicy(
            network=net.v1_name,
            extra_assets=(SANDBOX_TMAI_BASE_SEPOLIA,) if net.testnet else (),
            **_policy_options(options, default_tmai=SANDBOX_TMAI_LIMITS),
        )
        parts = _assemble(
            Mode.SANDBOX,
            options,
            opened,
            ledger=ledger,
            network=net.v1_name,
            wallet=options.wallet or sandbox.wallet,
            policy=policy,
            sandbox=sandbox,
            base_url=sandbox.api_url,
            rpc_url=sandbox.rpc_url,
        )
        parts.resources = opened.pop_all()  # the session owns them now
        return parts


def _sandbox_pays_only_itself(options: SessionOptions) -> None:
    """Sandbox mode pays its embedded sandbox and nothing else, whatever the environment says.

    Its footer promises "no real money": a base URL (or RPC) pointing elsewhere would break
    that promise silently. An argument saying so is refused; the environment variables, meant
    for live sessions, are ignored with a warning naming them.
    """
    given = [name for name, value in (("base_url", options.base_url), ("rpc_url", options.rpc_url)) if value]
    if given:
        raise ConfigurationError(
            f"sandbox mode pays only its embedded sandbox; {' and '.join(given)}= would send payments elsewhere",
            hint="to pay another x402 server use mode='x402' with a network and a budget",
        )
    ignored = [f"${name}" for name in (ENV_BASE_URL, ENV_RPC_URL) if os.environ.get(name)]
    if ignored:
        warnings.warn(
            f"{' and '.join(ignored)} ignored: sandbox mode pays only its embedded sandbox",
            stacklevel=4,
        )


def _x402_session(options: SessionOptions) -> SessionParts:
    if options.api_key:
        raise ConfigurationError(
            "an API key was given in x402 mode",
            hint="x402 pays per call and must not send x-api-key; use mode='api-key' for a key",
        )
    net = _x402_network(options)
    with ExitStack() as opened:
        ledger = _open_ledger(options, opened)
        parts = _assemble(
            Mode.X402,
            options,
            opened,
            ledger=ledger,
            network=net.v1_name,
            wallet=_wallet_for(options.wallet, net) if options.wallet else Wallet.load(network=net.v1_name),
            policy=SpendPolicy(network=net.v1_name, **_policy_options(options)),
            base_url=_base_url(options) or DEFAULT_BASE_URL,
            rpc_url=_rpc_url(options),
        )
        parts.resources = opened.pop_all()
        return parts


class NetworkRequired(ConfigurationError):
    """x402 mode was asked for without naming a network (``network=`` or ``$TM402_NETWORK``)."""


def _x402_network(options: SessionOptions) -> Network:
    """The network x402 mode pays on: named by ``network=`` or ``$TM402_NETWORK``, never a default.

    Token Metrics takes x402 payments on Base mainnet only, and a testnet default would make
    every paid call against it fail ("Base mainnet is not allowed"), while a mainnet default
    would spend real money unasked. So the user names it; the refusal shows the line.
    """
    name = options.network or os.environ.get(ENV_NETWORK, "").strip()
    if not name:
        raise NetworkRequired(
            "x402 mode needs a network: Token Metrics takes x402 payments on Base mainnet (real USDC), "
            "and a session never picks mainnet for you",
            hint=f"name it, with a cap: {MAINNET_LINE} (or set ${ENV_NETWORK}=base); "
            'network="base-sepolia" pays other x402 servers on testnet. Nothing was opened or signed',
        )
    try:
        return get_network(name)
    except X402ProtocolError:
        raise ConfigurationError(
            f"unknown network {name!r}", hint=f"base (Token Metrics: {MAINNET_LINE}) or base-sepolia (testnet)"
        ) from None


def _wallet_for(wallet: Wallet, net: Network) -> Wallet:
    """``wallet``, unless it was loaded for another network than the session's (the key would
    sign authorizations for a chain the server does not settle on)."""
    if wallet.network:
        try:
            same = get_network(wallet.network) == net
        except X402ProtocolError:
            same = False
        if not same:
            raise ConfigurationError(
                f"the wallet was loaded for {wallet.network} but this session pays on {net.v1_name}",
                hint=f"load it for {net.v1_name} (Wallet.from_env(network={net.v1_name!r})) or connect with "
                f"network={wallet.network!r}; nothing was signed",
            )
    return wallet


def _api_key_session(options: SessionOptions) -> SessionParts:
    with ExitStack() as opened:
        ledger = _open_ledger(options, opened)
        parts = _assemble(
            Mode.API_KEY,
            options,
            opened,
            ledger=ledger,
            api_key=options.api_key or os.environ.get(ENV_API_KEY),
            base_url=_base_url(options) or DEFAULT_BASE_URL,
            rpc_url=_rpc_url(options),
        )
        parts.resources = opened.pop_all()
        return parts


_CONSTRUCTORS: dict[Mode, Callable[[SessionOptions], SessionParts]] = {
    Mode.SANDBOX: _sandbox_session,
    Mode.X402: _x402_session,
    Mode.API_KEY: _api_key_session,
}
assert set(_CONSTRUCTORS) == set(Mode)


# -- what every mode shares ---------------------------------------------------------------------
def _open_ledger(options: SessionOptions, opened: ExitStack) -> Ledger:
    """The given Ledger (the caller keeps it), or one opened at the given path (or the default)."""
    if isinstance(options.ledger, Ledger):
        return options.ledger
    ledger = Ledger(options.ledger) if options.ledger is not None else Ledger()
    opened.callback(ledger.close)
    return ledger


def _policy_options(options: SessionOptions, *, default_tmai: AssetLimit | None = None) -> dict[str, Any]:
    policy: dict[str, Any] = dict(
        max_per_call=options.max_per_call,
        budget=options.budget,
        daily_cap=options.daily_cap,
        max_per_cell=options.max_per_cell,
        usd_rates=options.usd_rates,
        pay_with=options.pay_with,
    )
    tmai = options.tmai_limits if options.tmai_limits is not None else default_tmai
    if tmai is not None:
        policy["asset_limits"] = {"TMAI": tmai}
    if options.schemes is not None:
        policy["schemes"] = options.schemes
    return policy


def _base_url(options: SessionOptions) -> str | None:
    return options.base_url or os.environ.get(ENV_BASE_URL)


def _rpc_url(options: SessionOptions) -> str | None:
    return options.rpc_url or os.environ.get(ENV_RPC_URL)


def _assemble(
    mode: Mode,
    options: SessionOptions,
    opened: ExitStack,
    *,
    ledger: Ledger,
    base_url: str,
    rpc_url: str | None,
    network: str | None = None,
    wallet: Wallet | None = None,
    policy: SpendPolicy | None = None,
    sandbox: SandboxServer | None = None,
    api_key: str | None = None,
) -> SessionParts:
    """The client (paying through an X402Auth when the mode pays) around the mode's own parts."""
    session_id = uuid.uuid4().hex[:12]
    auth = None
    if wallet is not None and policy is not None:
        auth = X402Auth(
            wallet,
            policy,
            ledger=ledger,
            session_id=session_id,
            endpoint_of=_endpoint_of,
            cell_id=current_cell_id.get,
            # With an RPC the payer decides a lost answer's payment from the chain itself.
            chain=ChainReader(rpc_url) if rpc_url else None,
        )
    if wallet is not None and network is not None:
        # The ledger's own chain checks (%tm ledger --resolve, reconcile_chain) read this RPC; a
        # sandbox's chain lives as long as this session, so only this session's rows are on it.
        net = get_network(network)
        ledger.attach_chain(
            ChainReader(rpc_url) if rpc_url else None,
            networks=(net.caip2, net.v1_name),
            session_id=session_id if mode == Mode.SANDBOX else None,
        )
    cost = CostTracker()
    client_options: dict[str, Any] = dict(
        mode=mode,
        base_url=base_url,
        auth=auth,
        api_key=api_key,
        pay_with=options.pay_with,
        ledger=ledger,
        cache=options.cache,
        cost=cost,
        retry=options.retry,
        max_concurrency=options.max_concurrency,
        progress=options.progress,
        session_id=session_id,
        on_empty=options.on_empty,
        window_days=options.window_days,
        symbol_overrides=options.symbol_overrides,
        confirm_above=options.confirm_above,
        confirm=ask,
    )
    client = Client(**client_options)
    opened.callback(client.close)
    return SessionParts(
        mode=mode,
        id=session_id,
        ledger=ledger,
        client=client,
        client_options=client_options,
        base_url=base_url,
        rpc_url=rpc_url,
        low_balance=options.low_balance_atomic,
        cost=cost,
        network=network,
        wallet=wallet,
        policy=policy,
        auth=auth,
        sandbox=sandbox,
    )


def _endpoint_of(request: Any) -> str | None:
    path: str = request.url.path.rstrip("/")
    return path.rsplit("/", 1)[-1] or None
