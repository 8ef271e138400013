"""``python -m tm402_nb.sandbox [--port N] [--x402-version 1|2] ...``"""

from .cli import cli_main

raise SystemExit(cli_main(prog="python -m tm402_nb.sandbox"))
