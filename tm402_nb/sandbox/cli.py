"""``tm402-nb sandbox`` / ``python -m tm402_nb.sandbox``: run the sandbox in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .config import DEFAULT_PORT, DEFAULT_SEED, SandboxConfig
from .faults import Faults
from .profiles import PROFILES, SWITCHES


def build_parser(prog: str = "tm402-nb sandbox") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run a local Token Metrics-compatible x402 API with its own facilitator (synthetic data).",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data and identity seed")
    p.add_argument("--db", dest="db_path", default=None, help="SQLite file for balances (default: a temp file)")
    p.add_argument("--api-key", default=None, help="API key for x-api-key mode (default: derived from the seed)")
    p.add_argument("--rate-limit", type=float, default=20.0, help="requests/second per caller (0 = off)")
    p.add_argument("--rate-burst", type=int, default=40, help="burst size per caller")
    _add_profile_flags(p)
    f = p.add_argument_group("faults")
    f.add_argument("--latency-ms", type=int, default=0, help="add latency to every /v2 request")
    f.add_argument("--burst-429", type=int, default=0, metavar="N", help="the next N requests get 429")
    f.add_argument("--error-5xx-rate", type=float, default=0.0, metavar="P", help="probability of a 500")
    f.add_argument("--error-5xx-next", type=int, default=0, metavar="N", help="the next N requests get 500")
    f.add_argument("--settle-failure", action="store_true", help="every settlement fails")
    f.add_argument("--slow-settle", action="store_true", help="settlement runs past validBefore")
    f.add_argument("--malformed-challenge", action="store_true", help="send unparseable 402 challenges")
    f.add_argument("--oversized-challenge", action="store_true", help="send ~20 KB 402 challenges")
    f.add_argument("--drop-after-settle", action="store_true", help="close the connection after settling")
    f.add_argument(
        "--settle-pending",
        action="store_true",
        help="every settlement is broadcast but answered settlement_pending (mined after --settle-pending-reads)",
    )
    f.add_argument(
        "--settle-pending-reads",
        type=int,
        default=1,
        metavar="N",
        help="JSON-RPC requests before a pending settlement is mined (0: only POST /sandbox/mine; default 1)",
    )
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    return p


def _add_profile_flags(p: argparse.ArgumentParser) -> None:
    """``--profile`` and one flag per switch, read from the switch table (tm402_nb.sandbox.profiles)."""
    g = p.add_argument_group(
        "profile",
        "Which reading of the real API to play (reference/live-api-2026.md). Start from a preset; each flag "
        "below flips one switch of it.",
    )
    g.add_argument(
        "--profile",
        default="classic",
        metavar="NAME",
        help=f"preset: {', '.join(PROFILES)} (default classic)",
    )
    for switch in SWITCHES.values():
        values = "|".join(str(v) for v in switch.values)
        extra = "|ENDPOINT,..." if switch.name == "field_case" else ""
        g.add_argument(
            switch.flag,
            dest=switch.name,
            default=None,
            metavar=f"{{{values}{extra}}}",
            help=switch.summary.replace("%", "%%"),
        )
    g.add_argument(
        "--anchor",
        default=None,
        metavar="YYYY-MM-DD",
        help="pin the newest day of data to this day (sets --data-dates fixed)",
    )


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    faults = Faults(
        latency_ms=args.latency_ms,
        burst_429=args.burst_429,
        error_5xx_rate=args.error_5xx_rate,
        error_5xx_next=args.error_5xx_next,
        settle_failure=args.settle_failure,
        slow_settle_past_valid_before=args.slow_settle,
        malformed_challenge=args.malformed_challenge,
        oversized_challenge=args.oversized_challenge,
        drop_after_settle=args.drop_after_settle,
        settle_pending=args.settle_pending,
        settle_pending_reads=args.settle_pending_reads,
    )
    switches = {name: getattr(args, name) for name in SWITCHES}
    return SandboxConfig.build(
        args.profile,
        anchor=args.anchor,
        seed=args.seed,
        api_key=args.api_key,
        db_path=args.db_path,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        faults=faults,
        **switches,
    )


def banner(config: SandboxConfig, url: str, pay_to: str, assets: dict) -> str:
    profile = config.profile
    lines = [
        "tm402 sandbox — a local Token Metrics-compatible x402 API (SYNTHETIC DATA)",
        f"  API         {url}/v2   (docs: {url}/docs)",
        f"  Profile     {profile.label}   (every switch: {url}/sandbox)",
        f"  Data        newest day {config.anchor_date.isoformat()} "
        f"({'pinned' if profile.data_dates == 'fixed' else 'yesterday, UTC'})",
        f"  x402        v{profile.x402_version} on {config.net.v1_name} ({config.net.caip2}), payTo {pay_to}",
    ]
    for key, a in assets.items():
        lines.append(f"  {key:<11} {a.address}  ({a.decimals} decimals)")
    lines += [
        f"  API key     {config.api_key}   (header x-api-key)",
        f"  Facilitator {url}/facilitator/{{verify,settle,supported}}",
        f"  JSON-RPC    {url}/rpc",
        f"  Faucet      curl -X POST {url}/sandbox/faucet -H 'content-type: application/json' "
        '-d \'{"address": "0x…", "asset": "usdc", "amount": "100"}\'',
    ]
    if profile.tmai_transfer == "permit2":
        lines.append(
            '              TMAI is paid by Permit2: add "approve_permit2": true to approve the Permit2 contract '
            "(else payments are refused permit2_allowance_required)"
        )
    return "\n".join(lines)


def cli_main(argv: Sequence[str] | None = None, *, prog: str = "tm402-nb sandbox") -> int:
    """Parse ``argv`` and serve until interrupted. Returns the process exit code."""
    import uvicorn

    from .app import create_app

    args = build_parser(prog).parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    state = app.state.sandbox
    shown_port = args.port if args.port else "<random>"
    print(banner(config, f"http://{args.host}:{shown_port}", state.pay_to, state.assets), flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    except KeyboardInterrupt:
        pass
    finally:
        state.close()
    return 0


main = cli_main
