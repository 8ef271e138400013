"""``tm402-nb`` command line: sandbox, demo, get, quote, estimate, doctor, approve, endpoints, ledger."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session.core import Session


def _cmd_ledger(args: argparse.Namespace) -> int:
    """The ledger file's payments (or calls), readable, in at most 100 columns; ``--csv`` has every column.

    A terminal has no session of its own, so every session's rows are shown unless ``--today``
    or ``--session ID`` (an id from the ``session`` column, or a notebook's ``s.id``) narrows them.
    """
    import shutil

    from .ledger import Ledger
    from .notebook.ledger_view import WIDTH, LedgerQuery, ledger_csv, ledger_view

    if args.resolve:
        return _resolve_ledger(args)
    scope = "today" if args.today else "session" if args.session else "all"
    query = LedgerQuery(scope=scope, session_id=args.session, by=args.by, calls=args.calls)
    with Ledger(args.path) as ledger:
        if args.csv:
            ledger_csv(ledger, query).to_csv(sys.stdout, index=False)
        else:
            view = ledger_view(ledger, query)
            print(view.to_text(width=min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)))
    return 0


def _resolve_ledger(args: argparse.Namespace) -> int:
    """``tm402-nb ledger --resolve``: decide unknown and settlement_pending payments from the chain.

    The chain is read at ``--rpc URL`` (else ``$TM402_RPC_URL``); rows on another network than the
    node's are not checked. A sandbox's chain ends with its session: check those from the notebook.
    """
    import os

    from .errors import ConfigurationError
    from .ledger import Ledger
    from .notebook.ledger_view import resolve_open_payments
    from .x402.chain import ChainReader
    from .x402.networks import get_network

    if args.by or args.calls or args.csv or args.today:
        raise ConfigurationError(
            "ledger --resolve checks payments on chain; it takes no --by, --calls, --csv or --today"
        )
    rpc = args.rpc or os.environ.get("TM402_RPC_URL")
    if not rpc:
        raise ConfigurationError(
            "ledger --resolve needs a node to ask",
            hint="give --rpc URL (or set $TM402_RPC_URL) for the payments' chain",
        )
    reader = ChainReader(rpc)
    net = get_network(f"eip155:{reader.chain_id()}")
    with Ledger(args.path) as ledger:
        ledger.attach_chain(reader, networks=(net.caip2, net.v1_name))
        print(resolve_open_payments(ledger, session_id=args.session, source=f"{rpc} ({net.v1_name})").to_text())
    return 0


def _endpoint_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in ("symbol", "token_id", "start", "end", "limit"):
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            from .tokenmetrics.errors import ParamError

            raise ParamError(f"--param {item!r} must look like name=value")
        params[key.strip()] = value.strip()
    return params


def _connect(args: argparse.Namespace) -> Session:
    from .session.core import Session

    kw: dict[str, object] = {"progress": False}
    if getattr(args, "budget", None) is not None:
        kw["budget"] = args.budget
    if args.network:
        kw["network"] = args.network
    if args.pay_with:
        kw["pay_with"] = args.pay_with
    return Session(args.mode, **kw)


def _cmd_get(args: argparse.Namespace) -> int:
    with _connect(args) as s:
        frame = s.client.frame(
            args.endpoint,
            refresh=args.refresh,
            # --max-cost X: the most this request may pay in all, so no one payment of it is refused below X.
            max_cost=args.max_cost,
            max_per_call=args.max_cost,
            max_pages=args.pages,
            **_endpoint_params(args),
        )
        if args.json:
            sys.stdout.write(frame.to_json(orient="records", date_format="iso") + "\n")
        elif args.csv:
            frame.to_csv(sys.stdout, index=frame.index.name is not None)
        else:
            import pandas as pd

            with pd.option_context("display.width", 160, "display.max_columns", 12, "display.max_rows", 40):
                print(frame)
        meta = frame.attrs.get("tm402", {})
        amount = ", ".join(f"{v} {k}" for k, v in meta.get("amount", {}).items()) or "0.00"
        print(
            f"[{s.mode}] {meta.get('calls', 0)} calls, {meta.get('paid', 0)} paid, {meta.get('cached', 0)} cached"
            f" · {amount}",
            file=sys.stderr,
        )
    return 0


def _cmd_quote(args: argparse.Namespace) -> int:
    with _connect(args) as s:
        print(repr(s.client.quote(args.endpoint, max_pages=args.pages, **_endpoint_params(args))))
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from .estimate import Estimate, EstimateFailed, estimate_notebook, format_text

    def show(estimate: Estimate) -> None:
        if args.json:
            import json

            print(json.dumps(estimate.to_dict(), indent=2, ensure_ascii=False))
        else:
            print(format_text(estimate))

    try:
        estimate = estimate_notebook(
            args.notebook,
            live=args.live,
            live_url=args.live_url,
            timeout=args.timeout,
            probe_timeout=args.probe_timeout,
        )
    except EstimateFailed as exc:
        show(exc.estimate)  # what the cells before the failing one paid
        failure = exc.estimate.failure
        sys.stdout.flush()
        print(f"error: {failure.text if failure else exc}", file=sys.stderr)
        if failure is not None and failure.traceback:
            print(failure.traceback, file=sys.stderr)
        return 2
    show(estimate)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when every check passed (warnings allowed), 1 when one failed."""
    from .session.doctor import run_doctor

    options = {k: v for k, v in (("network", args.network), ("base_url", args.base_url)) if v}
    report = run_doctor(args.mode, probe=args.probe, timeout=args.timeout, **options)
    if args.json:
        import json

        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.text())
    return 0 if report.ok else 1


def _cmd_approve(args: argparse.Namespace) -> int:
    """Without an amount, the allowance; with one, the approval (asked unless --yes)."""
    from .session.core import Session

    kw = {k: v for k, v in (("network", args.network), ("rpc_url", args.rpc_url)) if v}
    with Session(args.mode, progress=False, **kw) as s:
        if args.amount is None:
            print(s.allowance(args.asset))
        else:
            print(s.approve_permit2(args.asset, args.amount, yes=args.yes).text())
    return 0


def _cmd_endpoints(args: argparse.Namespace) -> int:
    from .tokenmetrics.catalogue import catalogue_frame

    frame = catalogue_frame()
    if args.csv:
        frame.to_csv(sys.stdout)
    else:
        import pandas as pd

        with pd.option_context("display.max_colwidth", 48):
            print(frame[["usdc", "aliases", "summary"]].to_string())
    return 0


def _add_call_args(p: argparse.ArgumentParser) -> None:
    from .tokenmetrics.modes import Mode

    p.add_argument("endpoint", help="endpoint name or alias (see `tm402-nb endpoints`)")
    p.add_argument("--symbol", help="comma-separated symbols, e.g. BTC,ETH")
    p.add_argument("--token-id", dest="token_id", help="comma-separated token ids")
    p.add_argument("--start", help="first day, YYYY-MM-DD")
    p.add_argument("--end", help="last day, YYYY-MM-DD")
    p.add_argument("--limit", type=int, help="rows (one page, ≤ 100)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="any other API parameter")
    modes = [m.value for m in (Mode.SANDBOX, Mode.X402, Mode.API_KEY)]
    p.add_argument("--mode", choices=modes, help="default: from the environment")
    p.add_argument("--network", choices=("base-sepolia", "base"))
    p.add_argument("--pay-with", dest="pay_with", choices=("usdc", "tmai"))
    p.add_argument(
        "--max-cost", dest="max_cost", help="the most this request may pay in all, USD (refused whole before paying)"
    )
    p.add_argument("--pages", type=int, help="read up to N pages where the data's size is unknown (each a call)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Sub-tools with their own argument parsers get the rest of the line untouched.
    if argv and argv[0] == "sandbox":
        from .sandbox import cli_main

        return int(cli_main(argv[1:]) or 0)
    if argv and argv[0] == "demo":
        from .demo import main as demo_main

        return int(demo_main(argv[1:]) or 0)

    parser = argparse.ArgumentParser(prog="tm402-nb", description="Pay per call for Token Metrics data with x402.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("sandbox", help="run the local Token Metrics-compatible x402 sandbox", add_help=False)
    sub.add_parser("demo", help="start the sandbox, make paid calls and show their cost", add_help=False)

    p_get = sub.add_parser("get", help="fetch an endpoint as a table (pays per call in x402 mode)")
    _add_call_args(p_get)
    p_get.add_argument("--budget", help="session budget in USD")
    p_get.add_argument("--refresh", action="store_true", help="ignore the cache and pay again")
    fmt = p_get.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    p_get.set_defaults(func=_cmd_get)

    p_quote = sub.add_parser("quote", help="what a request would cost; pays nothing")
    _add_call_args(p_quote)
    p_quote.set_defaults(func=_cmd_quote)

    p_est = sub.add_parser(
        "estimate",
        help="what Run All would pay, per cell: runs the notebook in the sandbox (nothing real paid)",
        description="Run every cell of a notebook against the sandbox in a throwaway home and print, per cell,"
        " the paid calls and their cost, and the total. The notebook file is not written. The sandbox's row"
        " counts (and so its page counts) are an estimate of the real API's.",
    )
    p_est.add_argument("notebook", help="path to the .ipynb file")
    p_est.add_argument(
        "--live",
        action="store_true",
        help="also price the same paid calls at the real API's current prices (one unpaid 402 probe per endpoint;"
        " nothing signed or paid)",
    )
    p_est.add_argument(
        "--live-url",
        dest="live_url",
        metavar="URL",
        help="API root the --live probes go to (default: $TM402_BASE_URL, else the real Token Metrics API);"
        " implies --live",
    )
    p_est.add_argument("--json", action="store_true", help="print the result as JSON (cells, totals, notes)")
    p_est.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds each cell may run (120)")
    p_est.add_argument(
        "--probe-timeout", dest="probe_timeout", type=float, default=5.0, metavar="S", help="seconds per live probe (5)"
    )
    p_est.set_defaults(func=_cmd_estimate)

    p_doc = sub.add_parser(
        "doctor",
        help="preflight: wallet, clock, RPC, balances, one unpaid 402 probe; pays nothing",
        description="Check everything a paid call depends on, paying nothing: mode, network and wallet address;"
        " the clock against the server's Date header; the RPC's chain id; balances against the budget; one"
        " unpaid 402 probe, decoded, with the spend policy's verdict; the ledger's unknown and reserved"
        " payments; the server's variant. Exit status 0 when no check failed, 1 when one did.",
    )
    p_doc.add_argument("--mode", choices=("sandbox", "x402", "api-key"), help="default: from the environment")
    p_doc.add_argument("--network", choices=("base-sepolia", "base"))
    p_doc.add_argument(
        "--base-url",
        dest="base_url",
        metavar="URL",
        help="API root, or any x402 URL, to check (x402 and api-key modes)",
    )
    p_doc.add_argument(
        "--probe", metavar="ENDPOINT|URL", help="the paid request to send unpaid (default: tm-grade?token_id=3375)"
    )
    p_doc.add_argument("--json", action="store_true", help="print the report as JSON")
    p_doc.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per request (10)")
    p_doc.set_defaults(func=_cmd_doctor)

    p_app = sub.add_parser(
        "approve",
        help="the one-time ERC-20 approval to Permit2 a TMAI payment needs (a transaction; gas in ETH)",
        description="Without AMOUNT: what Permit2 may move of the wallet's ASSET. With it: send approve(Permit2,"
        " AMOUNT) on the token from the wallet, after showing the token, spender, amount, the most the gas may cost"
        " (paid in ETH) and the network, and asking (--yes sends unasked; with no terminal to ask on it is refused)."
        " Refused when the wallet's ETH cannot pay the gas.",
    )
    p_app.add_argument("asset", help="tmai, usdc, or the token's address")
    p_app.add_argument("amount", nargs="?", help="in token units, e.g. 50, or unlimited")
    p_app.add_argument("--yes", action="store_true", help="send without asking")
    p_app.add_argument("--mode", choices=("sandbox", "x402"), help="default: from the environment")
    p_app.add_argument("--network", choices=("base-sepolia", "base"))
    p_app.add_argument("--rpc-url", dest="rpc_url", metavar="URL", help="JSON-RPC node (default: $TM402_RPC_URL)")
    p_app.set_defaults(func=_cmd_approve)

    p_eps = sub.add_parser("endpoints", help="the endpoint catalogue with prices")
    p_eps.add_argument("--csv", action="store_true")
    p_eps.set_defaults(func=_cmd_endpoints)

    p_ledger = sub.add_parser(
        "ledger",
        help="show the payment ledger (every session; --today, --session ID, --by, --calls, --csv)",
        description="The ledger's payments, readable: times in seconds (UTC), amounts with their asset, network"
        " names as the footer writes them, short tx ids, and a summary line (count, spent per asset, reserved and"
        " unknown). A terminal has no session, so every session is shown unless --today or --session ID narrows"
        " it (ids are in the session column; in a notebook, s.id). --csv writes every column.",
    )
    rows = p_ledger.add_mutually_exclusive_group()
    rows.add_argument("--all", action="store_true", help="every session (the default here)")
    rows.add_argument("--today", action="store_true", help="today's rows (UTC, as the daily cap counts)")
    rows.add_argument("--session", metavar="ID", help="one session's rows")
    p_ledger.add_argument("--by", choices=("endpoint", "day", "cell"), help="spend summed per endpoint, day or cell")
    p_ledger.add_argument("--calls", action="store_true", help="show calls (paid, cached, free) instead of payments")
    p_ledger.add_argument(
        "--csv", action="store_true", help="write the rows' every column as CSV to stdout (with --by: the sums)"
    )
    p_ledger.add_argument("--path", default=None, help="ledger file (default: $TM402_HOME or the user data dir)")
    p_ledger.add_argument(
        "--resolve",
        action="store_true",
        help="decide every unknown and settlement_pending payment from the chain (by its nonce) and record it",
    )
    p_ledger.add_argument(
        "--rpc", metavar="URL", default=None, help="the node --resolve asks (default: $TM402_RPC_URL)"
    )
    p_ledger.set_defaults(func=_cmd_ledger)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        from .errors import TM402Error

        if isinstance(exc, TM402Error):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
