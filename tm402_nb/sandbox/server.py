"""Run the sandbox in a background thread: ``serve()`` → a :class:`SandboxServer`."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import replace
from datetime import date
from typing import Any

import uvicorn

from ..x402.wallet import Wallet
from .app import create_app
from .config import DEFAULT_SEED, SandboxConfig
from .faults import Faults
from .profiles import SandboxProfile

#: What the throwaway wallet gets at start (display units): with ETH for gas, so that a first run
#: can send the one-time approval a Permit2 payment needs (``s.approve_permit2``).
DEFAULT_FUNDING = {"usdc": "100", "tmai": "10000", "eth": "0.01"}
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class _QuietDropFilter(logging.Filter):
    """The drop-after-settle fault makes uvicorn log "returned without completing response"; it is intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDropFilter())


class SandboxServer:
    """A running sandbox. Use as a context manager, or call :meth:`stop`.

    ``url`` is the base (``http://127.0.0.1:PORT``), ``api_url`` the ``/v2`` root,
    ``wallet`` a funded throwaway :class:`~tm402_nb.x402.wallet.Wallet`,
    ``api_key`` the key for API-key mode.
    """

    def __init__(
        self,
        config: SandboxConfig,
        host: str,
        port: int,
        fund: dict[str, Any] | None,
        log_level: str,
        approve_permit2: bool = False,
    ) -> None:
        self.config = config
        self.app = create_app(config)
        self.state = self.app.state.sandbox
        self.host = host
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
            self._sock.listen(128)
        except OSError:
            self._sock.close()
            self.state.close()
            raise
        self.port = self._sock.getsockname()[1]
        self.wallet = Wallet.create(network=config.net.v1_name)
        try:
            for asset, amount in (fund or {}).items():
                self.state.fund(self.wallet.address, asset, amount, approve_permit2=approve_permit2)
        except BaseException:
            self._sock.close()
            self.state.close()
            raise
        uv_config = uvicorn.Config(
            self.app,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(target=self._run, name=f"tm402-sandbox:{self.port}", daemon=True)
        self._error: BaseException | None = None
        self._stopped = False
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(0.005)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"sandbox did not start on {self.url}: {self._error or 'timeout'}")

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # surfaced by the start check
            self._error = exc

    # -- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/v2"

    @property
    def rpc_url(self) -> str:
        return self.url + "/rpc"

    @property
    def facilitator_url(self) -> str:
        return self.url + "/facilitator"

    @property
    def api_key(self) -> str:
        return self.config.api_key or ""

    @property
    def network(self) -> str:
        return self.config.net.v1_name

    @property
    def x402_version(self) -> int:
        return self.config.profile.x402_version

    @property
    def profile(self) -> SandboxProfile:
        """The reading of the real API this server plays (``profile.label`` names it)."""
        return self.config.profile

    @property
    def pay_to(self) -> str:
        return self.state.pay_to

    @property
    def assets(self) -> dict[str, Any]:
        return dict(self.state.assets)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped

    # -- helpers (in-process, no HTTP round trip) ---------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {**self.state.stats.snapshot(), "faults_fired": self.state.faults.fired_counts()}

    def reset_stats(self) -> None:
        self.state.stats.reset()

    def settlements(self, payer: str | None = None) -> list[dict[str, Any]]:
        return self.state.chain.settlements(payer=payer)

    def set_faults(self, faults: Faults | None = None, **fields: Any) -> Faults:
        """Replace the faults: ``set_faults(Faults(burst_429=2))`` or ``set_faults(burst_429=2)``; no args clears."""
        if faults is not None and fields:
            raise TypeError("pass a Faults object or keyword fields, not both")
        new = faults if faults is not None else Faults(**fields)
        self.state.set_faults(new)
        return new

    def mine(self, *, drop: bool = False) -> dict[str, str]:
        """Mine every broadcast transfer (``settle_pending``) now, or ``drop`` them: ``{tx: outcome}``."""
        return self.state.facilitator.mempool.mine(drop=drop)

    def fund(
        self, address: str, asset: str = "usdc", amount: Any = "100", *, approve_permit2: bool = False
    ) -> dict[str, Any]:
        """The faucet; ``approve_permit2`` also grants Permit2 an unlimited allowance for the asset."""
        return self.state.fund(address, asset, amount, approve_permit2=approve_permit2)

    def balance(self, address: str, asset: str = "usdc") -> int:
        """Balance in atomic units."""
        return self.state.balance(address, asset)

    # -- lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving, join the thread, close the socket and the database. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT_S)
        self._sock.close()
        self.state.close()

    close = stop

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"SandboxServer({self.url}, x402 v{self.x402_version}, {self.network}, {state}, "
            f"wallet={self.wallet.address})"
        )


def serve(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    profile: SandboxProfile | str | None = None,
    x402_version: int | None = None,
    network: str | None = None,
    seed: int = DEFAULT_SEED,
    faults: Faults | None = None,
    db_path: str | None = None,
    fund: dict[str, Any] | bool | None = True,
    api_key: str | None = None,
    rate_limit: float = 20.0,
    rate_burst: int = 40,
    anchor: date | str | None = None,
    max_timeout_seconds: int = 60,
    config: SandboxConfig | None = None,
    log_level: str = "warning",
    approve_permit2: bool | None = None,
    **switches: Any,
) -> SandboxServer:
    """Start a sandbox on ``host:port`` (``port=0``: a free port) in a background thread.

    Returns once it accepts connections. ``profile`` is the reading of the real API
    it plays: ``"classic"`` (default), ``"docs-2026"`` or a
    :class:`~tm402_nb.sandbox.profiles.SandboxProfile`; ``x402_version``, ``network``,
    ``anchor`` (pins the data to that day) and any other switch given by name
    (``field_case="lower"``, ``date_range="error"``, ...) flip that switch of it.
    ``fund=True`` gives the throwaway wallet 100 USDC and 10,000 TMAI; pass a dict
    (``{"usdc": "5"}``) to choose, or ``False`` for none. ``approve_permit2`` also grants
    the Permit2 contract an unlimited allowance for each funded asset (as the faucet's
    ``approve_permit2`` does); ``None`` (default) grants it when TMAI is paid by Permit2
    (``tmai_transfer="permit2"``) or the agent is offered upto (``agent_scheme="upto"``, always
    Permit2), so the throwaway wallet pays out of the box, and ``False``
    leaves it unapproved (payments are then refused ``permit2_allowance_required``).
    ``config`` overrides every other setting.
    """
    if config is None:
        config = SandboxConfig.build(
            profile,
            network=network,
            x402_version=x402_version,
            seed=seed,
            api_key=api_key,
            db_path=db_path,
            anchor=anchor,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            max_timeout_seconds=max_timeout_seconds,
            faults=faults or Faults(),
            **switches,
        )
    else:
        config = replace(config)
    if fund is True:
        funding: dict[str, Any] | None = dict(DEFAULT_FUNDING)
    elif fund is False or fund is None:
        funding = None
    else:
        funding = dict(fund)
    if approve_permit2 is None:
        # TMAI by Permit2, or the agent upto (always Permit2): the throwaway wallet has approved it, as a user would once.
        approve_permit2 = config.profile.tmai_transfer == "permit2" or config.profile.agent_scheme == "upto"
    return SandboxServer(config, host, port, funding, log_level, approve_permit2)
