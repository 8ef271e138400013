"""``tm402-nb`` command line: sandbox, demo, ledger."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_ledger(args: argparse.Namespace) -> int:
    from .ledger import Ledger

    with Ledger(args.path) as ledger:
        frame = ledger.calls() if args.calls else ledger.payments()
        if args.csv:
            frame.to_csv(sys.stdout, index=False)
        elif frame.empty:
            print(f"no {'calls' if args.calls else 'payments'} recorded in {ledger.path}")
        else:
            import pandas as pd

            with pd.option_context("display.width", 160, "display.max_columns", 12):
                cols = ["created_at", "status", "endpoint", "amount", "asset_symbol", "network", "tx"]
                print((frame if args.calls else frame[cols]).to_string(index=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tm402-nb", description="Pay per call for Token Metrics data with x402.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("sandbox", help="run the local Token Metrics-compatible x402 sandbox", add_help=False)
    sub.add_parser("demo", help="start the sandbox, make paid calls and show their cost", add_help=False)

    p_ledger = sub.add_parser("ledger", help="show the payment ledger")
    p_ledger.add_argument("--csv", action="store_true", help="write CSV to stdout")
    p_ledger.add_argument("--calls", action="store_true", help="show calls instead of payments")
    p_ledger.add_argument("--path", default=None, help="ledger file (default: $TM402_HOME or the user data dir)")
    p_ledger.set_defaults(func=_cmd_ledger)

    argv = list(sys.argv[1:] if argv is None else argv)
    # Sub-tools with their own argument parsers get the rest of the line untouched.
    if argv and argv[0] == "sandbox":
        from .sandbox import cli_main

        return int(cli_main(argv[1:]) or 0)
    if argv and argv[0] == "demo":
        from .demo import main as demo_main

        return int(demo_main(argv[1:]) or 0)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # noqa: BLE001 - one clean line for a command-line user
        from .errors import TM402Error

        if isinstance(exc, TM402Error):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
