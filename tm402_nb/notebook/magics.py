"""``%tm`` and ``%%tm``: Token Metrics data in one line, with the cost under the cell.

Settings are ``%config TMMagics.<name>`` traits (or ``[tool.tm402]`` in a
``pyproject.toml`` next to the notebook). A flag beats the config; the config
beats the default. Every failure is a :class:`~tm402_nb.errors.TM402Error`
with a one-line rendering, so a failing cell fails nbmake and papermill too.
"""

from __future__ import annotations

import re
import sys
import warnings
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

from IPython.core.magic import (
    Magics,
    line_cell_magic,
    magics_class,
    needs_local_scope,
    no_var_expand,
    output_can_be_silenced,
)
from traitlets import Bool, Enum, Int, TraitError, TraitType, observe, validate
from traitlets.config.configurable import Configurable

from .. import errors
from ..errors import BudgetExceeded, ConfigurationError, TM402Error
from ..money import plain, to_atomic
from .parse import LedgerArgs, MagicUsageError, TMCommand, parse_cell, parse_line

if TYPE_CHECKING:
    from ..session.core import Session

HELP = """%tm ENDPOINT [SYMBOLS ...] [--start D] [--end D] [--limit N] [--param k=v ...] [--params $dict]
    [--save NAME] [--dry-run] [--refresh] [--max-cost X] [--pages N] [--pay-with usdc|tmai] [--empty ok]
%tm quote ENDPOINT [SYMBOLS ...]     what it would cost; nothing paid
%tm endpoints | wallet | feed | budget [AMOUNT] | connect sandbox|x402|api-key
%tm ledger [--today|--all|--session ID] [--by endpoint|day|cell] [--calls] [--csv] [--resolve]
                                     this session's payments by default; every column with --csv
%tm doctor [ENDPOINT|URL]            preflight: wallet, clock, RPC, balance, one unpaid 402 probe; pays nothing
%tm ask QUESTION...                  ask TMAI, the AI agent (one paid call; the answer shows as Markdown)
%tm approve ASSET [AMOUNT|unlimited] [--yes]
                                     Permit2's allowance of the wallet's token; with an amount, the one-time
                                     approval a Permit2 payment (TMAI) needs: a transaction, gas paid in ETH
%%tm [--save NAME] [--dry-run] ...   body: `endpoint: tm-grade` + `symbol: [BTC, ETH]`, or one call per line
--max-cost X: the most this request may pay in all (USD); it is refused before paying when its quote is more
--pages N: read up to N pages where the data's size is unknown (each page is a call)
%config TMMagics.max_per_call = 0.05 (also max_per_cell, budget, confirm_above, pay_with, cache_ttl,
    show_footer, feedback, short_errors)"""


class Amount(TraitType):
    """A USD amount: a number or a decimal string, or None for "no limit". Never a '$'."""

    default_value = None
    allow_none = True
    info_text = "a USD amount like 0.05 (or None for no limit)"

    def validate(self, obj: Any, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        try:
            to_atomic(value, 6, what=self.name or "amount")
        except ConfigurationError as exc:
            raise TraitError(str(exc)) from None
        return repr(value) if isinstance(value, float) else str(value).strip()


@magics_class
class TMMagics(Magics, Configurable):
    """The ``%tm`` line magic and ``%%tm`` cell magic."""

    max_per_call = Amount("0.10", config=True, help="Largest payment for one call, in USD (None: no cap).")
    max_per_cell = Amount(None, config=True, help="Largest total a single cell may pay, in USD (None: no cap).")
    budget = Amount(None, config=True, help="Session budget in USD (unset: the session's own, 1.00 by default).")
    confirm_above = Amount(
        None, config=True, help="Ask [y/N] before a request that may pay more than this, in USD (None: never ask)."
    )
    pay_with = Enum(["usdc", "tmai"], "usdc", config=True, help="Asset to pay with when a server offers both.")
    cache_ttl = Int(
        None, allow_none=True, config=True, help="Seconds a cached answer stays fresh (None: the endpoint's own TTL)."
    )
    show_footer = Bool(True, config=True, help="Show the cost footer under cells that made calls.")
    feedback = Int(1, config=True, help="0: silent, 1: footer and status line, 2: also a line per call.")
    short_errors = Bool(True, config=True, help="One-line errors (False: full tracebacks).")

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        # Settings the user chose (config, %config, pyproject); set before the
        # Configurable loads the config, whose values count as chosen.
        self._explicit: set[str] = set()
        self._configured_session: Session | None = None
        Configurable.__init__(self, config=shell.config if shell is not None else None)
        Magics.__init__(self, shell=shell, **kwargs)
        errors.SHORT_ERRORS[0] = self.short_errors

    # -- traits -----------------------------------------------------------------------
    @validate("feedback")
    def _check_feedback(self, proposal: Any) -> int:
        if proposal["value"] not in (0, 1, 2):
            raise TraitError("feedback must be 0, 1 or 2")
        return proposal["value"]

    @validate("cache_ttl")
    def _check_ttl(self, proposal: Any) -> int | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError("cache_ttl must be ≥ 0 seconds (0 disables caching)")
        return value

    @observe(
        "max_per_call",
        "max_per_cell",
        "budget",
        "confirm_above",
        "pay_with",
        "cache_ttl",
        "show_footer",
        "feedback",
        "short_errors",
    )
    def _changed(self, change: Any) -> None:
        self._explicit.add(change["name"])
        if change["name"] in ("max_per_cell", "confirm_above"):
            from ..session import CONFIGURED

            CONFIGURED[change["name"]] = change["new"]
        if change["name"] == "short_errors":
            errors.SHORT_ERRORS[0] = bool(change["new"])
        from ..session import current_session

        s = current_session()
        if s is not None:
            self._apply(s, only=change["name"])

    def _apply(self, s: Session, only: str | None = None) -> None:
        """Push the explicitly-set settings onto a session (the config beats connect()'s defaults)."""
        names = [only] if only else list(self._explicit)
        if s.policy is None:
            return
        for name in names:
            if name not in self._explicit:
                continue
            if name == "max_per_call":
                s.policy.set_max_per_call(self.max_per_call)
            elif name == "budget":
                s.policy.set_budget(self.budget)
            elif name == "max_per_cell":
                s.policy.set_max_per_cell(self.max_per_cell)
            elif name == "confirm_above":
                s.confirm_above = self.confirm_above
            elif name == "pay_with":
                s.pay_with = self.pay_with

    def _session(self) -> Session:
        from ..session import session

        s = session()
        if s is not self._configured_session:
            self._apply(s)
            self._configured_session = s
        return s

    # -- the magic -------------------------------------------------------------------------
    @no_var_expand
    @needs_local_scope
    @output_can_be_silenced
    @line_cell_magic
    def tm(self, line: str = "", cell: str | None = None, local_ns: dict[str, Any] | None = None) -> Any:
        namespace = {**(self.shell.user_ns if self.shell is not None else {}), **(local_ns or {})}
        if cell is None:
            asked = _help_asked(line)
            if asked is not None:  # `%tm grade ?`: the endpoint's help, nothing called
                return self._cmd_help(TMCommand("help", args=asked))
            return self._run(parse_line(line, namespace))
        options, calls = parse_cell(line, cell, namespace)
        from ..tokenmetrics.catalogue import get_endpoint

        # Every line's endpoint is checked before the first call: a typo on the last line pays nothing.
        endpoints = [get_endpoint(call.endpoint or "") for call in calls]
        results = CallResults()
        for call, endpoint in zip(calls, endpoints, strict=True):
            call.dry_run = call.dry_run or options.dry_run
            call.refresh = call.refresh or options.refresh
            call.max_cost = call.max_cost or options.max_cost
            call.max_pages = call.max_pages or options.max_pages
            call.pay_with = call.pay_with or options.pay_with
            call.on_empty = call.on_empty or options.on_empty
            results.add(endpoint.name, call.source.strip(), self._run(call, store=False))
        result = next(iter(results.values())) if len(results) == 1 else results
        if options.save:
            self._save(options.save, result)
            return None
        return result

    tm.__doc__ = f"""Token Metrics data in a DataFrame, paid per call with x402; what each cell cost shows under it.

{HELP}

One endpoint's parameters, fields and price: %tm help ENDPOINT, %tm ENDPOINT ?, %tm ENDPOINT? or Shift-Tab
on its name. Tab completes subcommands, endpoints (with their price), flags, --param choices and symbols.
"""

    def _run(self, cmd: TMCommand, *, store: bool = True) -> Any:
        handler = getattr(self, f"_cmd_{cmd.action}", None)
        if handler is None:  # pragma: no cover - parse_line only yields known actions
            raise MagicUsageError(f"unknown %tm command {cmd.action}")
        result = handler(cmd)
        if store and cmd.save:
            self._save(cmd.save, result)
            return None
        return result

    def _save(self, name: str, value: Any) -> None:
        """``--save NAME``: the result becomes a notebook variable instead of the cell's output."""
        if self.shell is None:
            raise MagicUsageError(f"--save {name} needs an IPython shell to save into")
        self.shell.user_ns[name] = value

    # -- calls -------------------------------------------------------------------------
    def _cmd_call(self, cmd: TMCommand) -> Any:
        return self._call(cmd, quote=cmd.dry_run)

    def _cmd_ask(self, cmd: TMCommand) -> Any:
        """``%tm ask QUESTION``: one paid call to TMAI, the AI agent; the answer displays as Markdown."""
        return self._session().client.ask(cmd.args[0])

    def _cmd_quote(self, cmd: TMCommand) -> Any:
        return self._call(cmd, quote=True)

    def _call(self, cmd: TMCommand, *, quote: bool) -> Any:
        from ..tokenmetrics.catalogue import get_endpoint
        from ..tokenmetrics.client import MoreRowsWarning
        from ..tokenmetrics.errors import DataNotFound
        from .feed import StatusLine

        if cmd.endpoint is None:  # pragma: no cover - parse_line always names one
            raise MagicUsageError("%tm needs an endpoint", hint="see %tm help")
        endpoint = get_endpoint(cmd.endpoint)  # unknown → error with the closest names, before connecting
        s = self._session()
        params = cmd.call_params()
        # --pay-with and --max-cost travel with this call only: other calls, in this cell or
        # running concurrently, keep the session's asset and cap.
        try:
            if quote:
                return s.client.quote(endpoint, pay_with=cmd.pay_with, max_pages=cmd.max_pages, **params)
            with warnings.catch_warnings():
                # Said below in the magic's own terms (--pages), not as a Python warning.
                warnings.simplefilter("ignore", MoreRowsWarning)
                frame = s.client.frame(
                    endpoint,
                    refresh=cmd.refresh,
                    ttl=self.cache_ttl if "cache_ttl" in self._explicit else None,
                    pay_with=cmd.pay_with,
                    # --max-cost X: this request may pay X in all, so no one payment of it is refused below X.
                    max_cost=cmd.max_cost,
                    max_per_call=cmd.max_cost,
                    max_pages=cmd.max_pages,
                    on_progress=StatusLine() if self.feedback >= 1 else None,
                    on_empty=cmd.on_empty,
                    **params,
                )
        except BudgetExceeded as exc:
            exc.hint = self._budget_hint(exc, cmd) or exc.hint
            raise
        except DataNotFound as exc:
            exc.hint = exc.details.get("magic_hint") or exc.hint  # the fix in %tm terms (--empty ok)
            raise
        meta = frame.attrs.get("tm402", {})
        if meta.get("more") and self.feedback >= 1:
            pages = meta.get("planned_calls", 1)
            print(
                f"tm402: {endpoint.name}: {len(frame)} rows from the first {pages} page(s); more rows may exist "
                f"(--pages {pages + 1} or more reads further, each page a paid call)",
                file=sys.stderr,
            )
        if self.feedback >= 2:
            print(
                f"tm402: {endpoint.name} → {len(frame)} rows, {meta.get('paid', 0)} paid, {meta.get('cached', 0)} cached"
            )
        return frame

    def _budget_hint(self, exc: BudgetExceeded, cmd: TMCommand) -> str | None:
        """The refusal's fix as this user types it: the flag or ``%config`` line, with the amount."""
        setting = exc.details.get("setting")
        needed = exc.details.get("needed_atomic")
        if not isinstance(needed, int):
            return None
        amount = _typed_usd(needed)
        # The line as typed, minus any --max-cost it already had (the hint adds the right one).
        line = re.sub(r"\s--max-cost(?:=|\s+)\S+", "", " " + cmd.source.strip()).strip()
        total = exc.details.get("asked_atomic")
        flag = f"`%tm {line} --max-cost {_typed_usd(total if isinstance(total, int) else needed)}`"
        if setting == "max_per_call":
            return f"{flag} or `%config TMMagics.max_per_call = {amount}`; nothing was paid"
        if setting == "max_cost":
            return f"{flag}; nothing was paid"
        if setting == "budget":
            return f"`%tm budget {amount}` (or `%config TMMagics.budget = {amount}`) raises the session budget; nothing was paid"
        if setting == "max_per_cell":
            return f"`%config TMMagics.max_per_cell = {amount}` (or None) raises the per-cell cap; nothing was paid"
        return None

    # -- subcommands -------------------------------------------------------------------------
    def _cmd_help(self, cmd: TMCommand) -> Any:
        if cmd.args:  # %tm help ENDPOINT
            from ..tokenmetrics.catalogue import get_endpoint
            from .completion import endpoint_help

            return _Text(endpoint_help(get_endpoint(cmd.args[0])))
        return _Text(HELP)

    def _cmd_endpoints(self, cmd: TMCommand) -> Any:
        from ..tokenmetrics.catalogue import catalogue_frame

        return catalogue_frame()

    def _cmd_ledger(self, cmd: TMCommand) -> Any:
        """This session's payments (``--today``, ``--all``, ``--session ID`` for others), readable;
        ``--by endpoint|day|cell`` sums them, ``--calls`` lists calls, ``--csv`` prints every column."""
        from .ledger_view import LedgerQuery, ledger_csv, ledger_view

        s = self._session()
        args = cmd.ledger or LedgerArgs()
        if args.resolve:
            from .ledger_view import resolve_open_payments

            source = "the sandbox's /rpc" if s.sandbox is not None else (s.rpc_url or "")
            return resolve_open_payments(s.ledger, auth=s.auth, session_id=args.session_id, source=source)
        query = LedgerQuery(
            scope=args.scope, session_id=args.session_id or s.id, by=args.by, calls=args.calls, current_session=s.id
        )
        if cmd.csv:
            print(ledger_csv(s.ledger, query).to_csv(index=False), end="")
            return None
        return ledger_view(s.ledger, query)

    def _cmd_wallet(self, cmd: TMCommand) -> Any:
        s = self._session()
        if s.wallet is None:
            return _Text(f"mode {s.mode}: no wallet (API-key mode pays nothing)")
        lines = [f"wallet   {s.wallet.address}", f"network  {s.network}  ({s.mode})"]
        try:
            for sym, amount in s.balances().items():
                lines.append(f"balance  {plain(amount)} {sym}")
        except TM402Error as exc:
            lines.append(f"balance  unavailable: {exc.message}")
        lines.append(f"spent    {s.budget_text()}")
        return _Text("\n".join(lines))

    def _cmd_budget(self, cmd: TMCommand) -> Any:
        s = self._session()
        if cmd.args:
            amount = cmd.args[0]
            if amount.strip().startswith("$"):
                raise MagicUsageError(f"%tm budget {amount}: write the amount without '$'")
            self.budget = amount  # the trait validates and applies it to the session
        return _Text(s.budget_text())

    def _cmd_feed(self, cmd: TMCommand) -> Any:
        from .feed import PaymentFeed

        PaymentFeed(self._session()).show()
        return None

    def _cmd_doctor(self, cmd: TMCommand) -> Any:
        from ..session.doctor import unavailable

        if len(cmd.args) > 1:
            raise MagicUsageError(
                "%tm doctor takes at most one endpoint or URL to probe", hint="e.g. %tm doctor tm-grade"
            )
        try:
            s = self._session()
        except TM402Error as exc:  # no session to check: that is the finding (a missing key, ...)
            return unavailable(None, None, exc)
        return s.doctor(probe=cmd.args[0] if cmd.args else None)

    def _cmd_approve(self, cmd: TMCommand) -> Any:
        """``%tm approve tmai``: what Permit2 may move; ``%tm approve tmai 50 [--yes]``: approve it to."""
        s = self._session()
        if len(cmd.args) == 1:
            found = s.allowance(cmd.args[0])
            return _Text(f"{found}\n(%tm approve {cmd.args[0]} AMOUNT sends an approval; unlimited for no limit)")
        return s.approve_permit2(cmd.args[0], cmd.args[1], yes=cmd.yes)

    def _cmd_connect(self, cmd: TMCommand) -> Any:
        from ..session import connect

        s = connect(cmd.args[0].lower())
        self._apply(s)
        self._configured_session = s
        return s


def _help_asked(line: str) -> list[str] | None:
    """``%tm grade ?`` (or ``??``): the endpoint to show help for ([] for the syntax), else None."""
    words = line.split()
    if not words or words[-1] not in ("?", "??"):
        return None
    words = words[:-1]
    if words and words[0].lower() == "quote":
        words = words[1:]
    return words[:1]


def _typed_usd(atomic: int) -> str:
    """Micro-dollars as a user would type a cap that holds them: cents, rounded up (or the exact amount below a cent)."""
    need = Decimal(atomic).scaleb(-6)
    return str(need.quantize(Decimal("0.01"), rounding=ROUND_CEILING) if need > Decimal("0.01") else need.normalize())


class CallResults(dict[str, Any]):
    """What a ``%%tm`` cell with several calls returns: one entry per call, in the cell's order.

    Keyed by endpoint name (``"tm-grade"``; a second call of it is ``"tm-grade #2"``). Each
    result shows under its own caption (the line that asked for it): an HTML heading above
    each frame in a notebook, a plain one in text.
    """

    def __init__(self) -> None:
        super().__init__()
        self.captions: dict[str, str] = {}

    def add(self, name: str, source: str, value: Any) -> str:
        key, n = name, 2
        while key in self:
            key, n = f"{name} #{n}", n + 1
        self[key] = value
        self.captions[key] = source
        return key

    def _caption(self, key: str) -> str:
        value = self[key]
        rows = f" · {len(value)} row{'' if len(value) == 1 else 's'}" if hasattr(value, "columns") else ""
        return f"{key} · {self.captions.get(key, '')}{rows}"

    def __repr__(self) -> str:
        parts = []
        for key, value in self.items():
            caption = self._caption(key)
            parts.append(f"{caption}\n{'─' * min(len(caption), 100)}\n{value!r}")
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        import html

        parts = []
        for key, value in self.items():
            body = value._repr_html_() if hasattr(value, "_repr_html_") else None
            parts.append(
                f"<div class='tm402-result-caption' style='font-weight:600;margin:1em 0 .4em'>"
                f"{html.escape(self._caption(key))}</div>"
                + (body if isinstance(body, str) else f"<pre>{html.escape(repr(value))}</pre>")
            )
        return "\n".join(parts)


class _Text:
    """Plain text that displays as text (not a quoted string) in notebooks and logs."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f"<pre style='margin:0'>{html.escape(self.text)}</pre>"
