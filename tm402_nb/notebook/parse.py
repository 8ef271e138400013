"""Parsing ``%tm`` lines and ``%%tm`` cells into :class:`TMCommand` objects. No I/O, no payments.

Line grammar::

    %tm ENDPOINT [SYMBOLS ...] [--start D] [--end D] [--limit N] [--param k=v ...] [--params $dict]
        [--save NAME] [--dry-run] [--refresh] [--max-cost X] [--pages N] [--pay-with usdc|tmai] [--empty ok]
    %tm endpoints | quote ENDPOINT ... | wallet | budget [AMOUNT] | feed | connect MODE | doctor | help
    %tm ledger [--today | --all | --session ID] [--by endpoint|day|cell] [--calls] [--csv]
    %tm ledger --resolve [--session ID]
    %tm ask QUESTION...   (the rest of the line, as typed, is the question to TMAI, the AI agent)
    %tm approve ASSET [AMOUNT|unlimited] [--yes]   (Permit2's allowance; with an amount, the approval)

Values are never expanded by IPython (``$`` amounts would be mangled); ``{{name}}``
inserts a notebook variable explicitly and ``--params $dict`` passes a dict of
parameters, both type-checked before anything is sent. An inserted value is always
one value: it is substituted after the line is split into words, so text such as
``"BTC --max-cost 5"`` can never become a flag, and in a ``%%tm`` body it is
substituted after the body is split into lines and keys.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError

#: flag → (destination, takes a value, may repeat)
FLAGS: dict[str, tuple[str, bool, bool]] = {
    "--start": ("start", True, False),
    "--end": ("end", True, False),
    "--limit": ("limit", True, False),
    "--param": ("param", True, True),
    "--params": ("params", True, False),
    "--save": ("save", True, False),
    "--dry-run": ("dry_run", False, False),
    "--refresh": ("refresh", False, False),
    "--max-cost": ("max_cost", True, False),
    "--pages": ("max_pages", True, False),
    "--pay-with": ("pay_with", True, False),
    "--csv": ("csv", False, False),
    "--empty": ("on_empty", True, False),
}
SHORT = {"-s": "--save", "-n": "--dry-run", "-r": "--refresh"}
#: ``%tm ledger`` flags → (what they set, takes a value). ``--today``/``--all``/``--session`` pick the
#: rows (this session's by default), ``--by`` sums them, ``--calls`` lists calls, ``--csv`` prints CSV.
LEDGER_FLAGS: dict[str, tuple[str, bool]] = {
    "--today": ("scope", False),
    "--all": ("scope", False),
    "--session": ("session", True),
    "--by": ("by", True),
    "--calls": ("calls", False),
    "--csv": ("csv", False),
    "--resolve": ("resolve", False),
}
#: What ``%tm ledger --by`` sums over.
LEDGER_GROUPS = ("endpoint", "day", "cell")
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALARS = (str, int, float, Decimal, date, datetime)


class MagicUsageError(ConfigurationError):
    """A malformed ``%tm`` line or ``%%tm`` cell. A real exception (not IPython's UsageError),
    so nbmake and papermill fail the cell; nothing was sent or paid."""


@dataclass
class LedgerArgs:
    """What ``%tm ledger`` was asked to show: which rows (``session``, ``today``, ``all``, or one
    session by id), summed ``by`` endpoint, day or cell, or the calls instead of the payments."""

    scope: str = "session"
    session_id: str | None = None
    by: str | None = None
    calls: bool = False
    #: ``--resolve``: decide unknown and settlement_pending payments from the chain.
    resolve: bool = False


@dataclass
class TMCommand:
    """One parsed request."""

    action: str  # "call" or a subcommand
    endpoint: str | None = None
    symbols: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    save: str | None = None
    dry_run: bool = False
    refresh: bool = False
    max_cost: str | None = None
    max_pages: int | None = None
    pay_with: str | None = None
    #: ``--empty ok``: no rows is an empty frame, not DataNotFound ("empty"); ``--empty raise``: the error.
    on_empty: str | None = None
    csv: bool = False
    args: list[str] = field(default_factory=list)  # subcommand arguments
    source: str = ""
    ledger: LedgerArgs | None = None  # %tm ledger's flags
    yes: bool = False  # %tm approve --yes: send without asking

    def call_params(self) -> dict[str, Any]:
        p = dict(self.params)
        if self.symbols:
            p["symbol"] = list(self.symbols)
        if self.token_ids:
            p["token_id"] = list(self.token_ids)
        return p


def _check_value(name: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        raise MagicUsageError(f"{name} must be text, a number or a date, got {value!r}")
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple, set)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        for item in items:
            if isinstance(item, bool) or not isinstance(item, _SCALARS):
                raise MagicUsageError(f"{name} must hold text, numbers or dates, got {type(item).__name__}")
        return items
    raise MagicUsageError(
        f"{name} has an unsupported type {type(value).__name__}", hint="use text, a number, a date, or a list of those"
    )


def render_template(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{{name}}`` with the notebook variable ``name`` (checked, lists comma-joined)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in namespace:
            raise MagicUsageError(f"{{{{{name}}}}}: no variable named {name!r} in the notebook")
        value = _check_value(f"{{{{{name}}}}}", namespace[name])
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return value.isoformat() if isinstance(value, (date, datetime)) else str(value)

    return _TEMPLATE.sub(sub, text)


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as exc:
        raise MagicUsageError(f"cannot parse the %tm line: {exc}", hint="check the quotes") from None


def _suggest(flag: str) -> str:
    close = difflib.get_close_matches(flag, list(FLAGS), n=1, cutoff=0.5)
    return f"did you mean {close[0]}?" if close else "see %tm help"


def _flag_value(tokens: list[str], i: int, flag: str, eq: str, inline: str, *, prefix: str) -> tuple[int, str]:
    """The value of the flag at ``tokens[i]``: after its ``=``, else the next word (and its index)."""
    if eq:
        return i, inline
    if i + 1 >= len(tokens):
        raise MagicUsageError(f"{prefix}{flag} needs a value")
    return i + 1, tokens[i + 1]


def _words(line: str, namespace: Mapping[str, Any]) -> tuple[list[str], set[int]]:
    """The line's words with ``{{var}}`` filled in each, and which words were filled (values, never flags)."""
    words, filled = [], set()
    for i, word in enumerate(_split(line)):
        rendered = render_template(word, namespace)
        if rendered != word:
            filled.add(i)
        words.append(rendered)
    return words, filled


def parse_line(line: str, namespace: Mapping[str, Any] | None = None) -> TMCommand:
    """Parse a ``%tm`` line. ``namespace`` resolves ``{{var}}`` and ``--params $dict``."""
    namespace = namespace or {}
    source = line
    head_word, _, rest = line.strip().partition(" ")
    if head_word.lower() == "ask":
        # The rest of the line is the question, as typed: no flags, no quoting rules ("What's next?").
        question = render_template(rest, namespace).strip()
        if not question:
            raise MagicUsageError("%tm ask needs a question", hint="e.g. %tm ask Which layer-1 tokens look strongest?")
        return TMCommand("ask", args=[question], source=source)
    tokens, filled = _words(line, namespace)
    if not tokens:
        return TMCommand("help", source=source)
    head = tokens[0].lower()
    if head == "ledger":
        return _parse_ledger(tokens[1:], source)
    if head == "approve":
        return _parse_approve(tokens[1:], source)
    if head in ("endpoints", "wallet", "feed", "help", "budget", "connect", "doctor"):
        cmd = TMCommand(head, args=tokens[1:], source=source)
        for tok in cmd.args:
            if tok.startswith("--") and tok not in ("--csv",):
                raise MagicUsageError(f"%tm {head} takes no flag {tok}")
        cmd.csv = "--csv" in cmd.args
        cmd.args = [a for a in cmd.args if a != "--csv"]
        if head == "budget" and len(cmd.args) > 1:
            raise MagicUsageError("%tm budget takes at most one amount", hint="e.g. %tm budget 2.50")
        if head == "connect" and len(cmd.args) != 1:
            raise MagicUsageError("%tm connect needs a mode", hint="sandbox, x402 or api-key")
        return cmd
    action = "call"
    if head == "quote":
        action, tokens = "quote", tokens[1:]
        filled = {i - 1 for i in filled if i > 0}
        if not tokens or tokens[0].startswith("-"):
            raise MagicUsageError("%tm quote needs an endpoint", hint="e.g. %tm quote ai-reports BTC")
    cmd = TMCommand(action, endpoint=tokens[0], source=source)
    seen: set[str] = set()
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-") and not _is_number(tok) and i not in filled:
            flag, eq, inline = tok.partition("=")
            flag = SHORT.get(flag, flag)
            if flag not in FLAGS:
                raise MagicUsageError(f"unknown flag {flag}", hint=_suggest(flag))
            dest, takes_value, repeats = FLAGS[flag]
            if flag in seen and not repeats:
                raise MagicUsageError(f"{flag} is given twice", hint="give each flag once")
            seen.add(flag)
            if takes_value:
                i, value = _flag_value(tokens, i, flag, eq, inline, prefix="")
                _apply(cmd, dest, flag, value, namespace)
            else:
                if eq:
                    raise MagicUsageError(f"{flag} takes no value")
                setattr(cmd, dest, True)
        else:
            for part in (p.strip() for p in tok.split(",") if p.strip()):
                if part.isdigit():
                    cmd.token_ids.append(int(part))
                else:
                    cmd.symbols.append(_symbol(part))
        i += 1
    return cmd


def _parse_approve(tokens: list[str], source: str) -> TMCommand:
    """``%tm approve ASSET [AMOUNT|unlimited] [--yes]``."""
    cmd = TMCommand("approve", source=source)
    for tok in tokens:
        if tok == "--yes":
            cmd.yes = True
        elif tok.startswith("--"):
            raise MagicUsageError(f"%tm approve takes no flag {tok}", hint="only --yes (send without asking)")
        elif tok.startswith("$"):
            raise MagicUsageError(f"%tm approve {tok}: write the amount without '$' (it is in token units)")
        else:
            cmd.args.append(tok)
    if not 1 <= len(cmd.args) <= 2:
        raise MagicUsageError(
            "%tm approve needs an asset, and an amount to approve",
            hint="e.g. %tm approve tmai 50 (or unlimited); %tm approve tmai shows the allowance",
        )
    if cmd.yes and len(cmd.args) == 1:
        raise MagicUsageError("%tm approve --yes needs an amount to approve", hint="e.g. %tm approve tmai 50 --yes")
    return cmd


def _parse_ledger(tokens: list[str], source: str) -> TMCommand:
    """``%tm ledger [--today|--all|--session ID] [--by endpoint|day|cell] [--calls] [--csv] [--resolve]``."""
    cmd = TMCommand("ledger", source=source)
    args = LedgerArgs()
    seen: set[str] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        flag, eq, inline = tok.partition("=")
        if tok.lower() == "all":  # the older spelling, `%tm ledger all`
            flag = "--all"
        elif flag not in LEDGER_FLAGS:
            close = difflib.get_close_matches(flag, list(LEDGER_FLAGS), n=1, cutoff=0.5)
            raise MagicUsageError(
                f"%tm ledger takes no {'flag' if tok.startswith('-') else 'argument'} {tok}",
                hint=f"did you mean {close[0]}?"
                if close
                else "%tm ledger [--today|--all|--session ID] [--by endpoint|day|cell] [--calls] [--csv]",
            )
        dest, takes_value = LEDGER_FLAGS[flag]
        # --today, --all and --session each choose the rows: one of them at most.
        group = "rows" if dest in ("scope", "session") else dest
        if group in seen:
            if group == "rows":
                raise MagicUsageError(
                    "%tm ledger: --today, --all and --session each choose the rows", hint="give one of them"
                )
            raise MagicUsageError(f"%tm ledger: {flag} is given twice", hint="give each flag once")
        seen.add(group)
        value = ""
        if takes_value:
            i, value = _flag_value(tokens, i, flag, eq, inline, prefix="%tm ledger ")
        elif eq:
            raise MagicUsageError(f"%tm ledger {flag} takes no value")
        if dest == "scope":
            args.scope = flag[2:]
        elif dest == "session":
            args.scope, args.session_id = "session", value
        elif dest == "by":
            if value.lower() not in LEDGER_GROUPS:
                raise MagicUsageError(f"--by {value}: sums by {', '.join(LEDGER_GROUPS)}", hint="e.g. --by endpoint")
            args.by = value.lower()
        elif dest == "calls":
            args.calls = True
        elif dest == "resolve":
            args.resolve = True
        else:
            cmd.csv = True
        i += 1
    if args.resolve and (args.by or args.calls or cmd.csv or args.scope == "today"):
        raise MagicUsageError(
            "%tm ledger --resolve checks payments on chain; it takes no --by, --calls, --csv or --today",
            hint="%tm ledger --resolve [--session ID]",
        )
    cmd.ledger = args
    return cmd


def _symbol(text: str) -> str:
    """``text`` as a symbol, upper-cased; refused unless it is one word that is not a flag."""
    if not text or any(ch.isspace() for ch in text) or text.startswith("-") or any(ch in text for ch in "[]:"):
        raise MagicUsageError(
            f"{text!r} is not a symbol",
            hint="a symbol is one word (an inserted {{variable}} is one value, never a flag)",
        )
    return text.upper()


def _is_number(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _apply(cmd: TMCommand, dest: str, flag: str, value: str, namespace: Mapping[str, Any]) -> None:
    if dest in ("start", "end"):
        cmd.params["startDate" if dest == "start" else "endDate"] = value
    elif dest == "limit":
        try:
            cmd.params["limit"] = int(value)
        except ValueError:
            raise MagicUsageError(f"--limit must be an integer, got {value!r}") from None
    elif dest == "param":
        key, eq, val = value.partition("=")
        if not eq or not key.strip():
            raise MagicUsageError(f"--param {value!r} must look like name=value")
        cmd.params[key.strip()] = val.strip()
    elif dest == "params":
        name = value[1:] if value.startswith("$") else value
        if not _NAME.match(name):
            raise MagicUsageError(f"--params needs a variable holding a dict, like --params $p (got {value!r})")
        if name not in namespace:
            raise MagicUsageError(f"--params: no variable named {name!r} in the notebook")
        given = namespace[name]
        if not isinstance(given, Mapping):
            raise MagicUsageError(f"--params ${name} must be a dict, got {type(given).__name__}")
        for k, v in given.items():
            if not isinstance(k, str):
                raise MagicUsageError(f"--params ${name}: keys must be parameter names, got {k!r}")
            cmd.params[k] = _check_value(f"--params ${name}[{k!r}]", v)
    elif dest == "save":
        if not _NAME.match(value):
            raise MagicUsageError(f"--save needs a variable name, got {value!r}")
        cmd.save = value
    elif dest == "max_cost":
        if value.strip().startswith("$"):
            raise MagicUsageError(
                f"--max-cost {value}: write the amount without '$'",
                hint=f"e.g. --max-cost {value.strip()[1:] or '0.05'}",
            )
        try:
            amount = Decimal(value)
        except ArithmeticError:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            raise MagicUsageError(f"--max-cost must be a number of USD, got {value!r}", hint="e.g. --max-cost 0.07")
        cmd.max_cost = value
    elif dest == "max_pages":
        if not value.strip().isdigit() or int(value) < 1:
            raise MagicUsageError(f"--pages must be a whole number of pages ≥ 1, got {value!r}", hint="e.g. --pages 3")
        cmd.max_pages = int(value)
    elif dest == "on_empty":
        choice = {"ok": "empty", "empty": "empty", "raise": "raise", "error": "raise"}.get(value.strip().lower())
        if choice is None:
            raise MagicUsageError(
                f"--empty must be ok or raise, got {value!r}", hint="--empty ok: no rows, an empty frame"
            )
        cmd.on_empty = choice
    elif dest == "pay_with":
        if value.lower() not in ("usdc", "tmai"):
            raise MagicUsageError(f"--pay-with must be usdc or tmai, got {value!r}")
        cmd.pay_with = value.lower()


_KEY_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(.*?)\s*$")


def _yaml_value(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        return [v.strip().strip("'\"") for v in raw[1:-1].split(",") if v.strip()]
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def parse_cell(line: str, cell: str, namespace: Mapping[str, Any] | None = None) -> tuple[TMCommand, list[TMCommand]]:
    """Parse a ``%%tm`` cell: flags on the first line, then a small YAML-like body
    (``endpoint:`` and parameters) or one call per line. Returns (cell options, calls)."""
    namespace = namespace or {}
    options = parse_line("_cell " + line, namespace) if line.strip() else TMCommand("call", endpoint="_cell")
    if options.symbols or options.token_ids or options.params:
        raise MagicUsageError(
            "the %%tm line takes only options (--save, --dry-run, --refresh, --max-cost, "
            "--pay-with); put the request in the cell body"
        )
    # Lines and keys first, values second: an inserted value can add neither a line nor a key.
    lines = [ln for ln in cell.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
        raise MagicUsageError(
            "the %%tm cell is empty",
            hint="write `endpoint: tm-grade` and `symbol: [BTC, ETH]` on separate lines, or one call per line "
            "like `grade BTC ETH`",
        )
    if _KEY_LINE.match(lines[0]) and lines[0].split(":")[0].strip().lower() == "endpoint":
        call = TMCommand("call", source=cell)
        for ln in lines:
            m = _KEY_LINE.match(ln)
            if not m:
                raise MagicUsageError(f"cannot read {ln.strip()!r}", hint="write `name: value` or `name: [a, b]`")
            key, value = m.group(1), _yaml_value(render_template(m.group(2), namespace))
            if key.lower() == "endpoint":
                if call.endpoint is not None:
                    raise MagicUsageError("endpoint is given twice")
                call.endpoint = str(value)
            elif key.lower() in ("symbol", "symbols"):
                items = value if isinstance(value, list) else str(value).split(",")
                call.symbols += [_symbol(str(v).strip()) for v in items if str(v).strip()]
            elif key in call.params:
                raise MagicUsageError(f"{key} is given twice")
            else:
                call.params[key] = value
        if not call.endpoint:
            raise MagicUsageError("the %%tm body needs an `endpoint:` line")
        return options, [call]
    calls = [parse_line(ln, namespace) for ln in lines]
    for c in calls:
        if c.action not in ("call", "quote"):
            raise MagicUsageError(f"%%tm runs data calls, not `{c.action}`", hint=f"use %tm {c.action} on its own")
    return options, calls
