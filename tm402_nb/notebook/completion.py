"""Tab completion and inspection for ``%tm`` and ``%%tm``, answered by the kernel.

Completion is a matcher on IPython's completer (Matcher API v2, IPython ≥ 8.6), so JupyterLab,
VS Code and terminal IPython all get it: they ask the kernel. On a ``%tm`` line it offers
subcommands, endpoint names and aliases with their price, the flags that endpoint takes,
``--param`` names and their choices, and the symbols this session has resolved; in a ``%%tm``
cell the body's keys (``endpoint:``, parameter names) and their values. It reads only what is
already in memory (the catalogue, the session's symbol table): completing never connects,
never calls the API and never pays. On a ``%tm`` line it speaks alone: no Python keywords,
builtins or file names.

IPython 9 gives a matcher's completions a ``type`` but no ``signature`` (only Jedi's have
one), so the price travels in the type: JupyterLab shows it right of the name, terminal
IPython beside it.

Inspection: ``%tm?`` shows the magic's docstring (the syntax and subcommands). ``%tm grade?``
reaches IPython as ``pinfo grade`` and Shift-Tab on ``%tm grade`` as an inspection of
``grade``: neither names ``%tm``, and neither finds a Python object by that name. IPython has
no hook for names it cannot find, so the extension wraps the shell's ``_object_find`` (the
one lookup ``?``, ``%pinfo`` and the kernel's inspect_request share): a name that is still
not found, met in a ``%tm`` line or ``%%tm`` cell, answers with the endpoint's parameters,
fields and price. ``%tm help grade`` and ``%tm grade ?`` show the same text without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..tokenmetrics.catalogue import ENDPOINTS, Endpoint, Param, UnknownEndpoint, get_endpoint
from .parse import FLAGS, LEDGER_FLAGS, LEDGER_GROUPS, SHORT

#: Subcommands (as parse.py reads them) and what each does, in the order they are offered.
SUBCOMMANDS: dict[str, str] = {
    "quote": "what a call would cost; pays nothing",
    "endpoints": "the catalogue, with prices",
    "ledger": "payments of this session",
    "wallet": "address, balances, spend",
    "budget": "show or set the session budget",
    "feed": "live payment feed",
    "connect": "switch mode: sandbox, x402, api-key",
    "doctor": "preflight; pays nothing",
    "ask": "a question to TMAI, the AI agent (one paid call)",
    "approve": "let Permit2 move a token (TMAI): a transaction, gas in ETH",
    "help": "syntax; help ENDPOINT for one endpoint",
}
#: ``%tm connect MODE``.
MODES = {
    "sandbox": "local API, synthetic data, no real money",
    "x402": "pay per call from TM402_PRIVATE_KEY",
    "api-key": "your Token Metrics plan (TM_API_KEY)",
}
#: ``%tm approve ASSET``.
APPROVE_ASSETS = {
    "tmai": "paid by Permit2: needs the approval",
    "usdc": "paid by EIP-3009 unless a server asks for Permit2",
}
#: What each ``%tm ledger`` flag (parse.LEDGER_FLAGS, the one list of them) shows.
LEDGER_HELP = {
    "--today": "today's payments, every session",
    "--all": "every payment in this ledger",
    "--session": "one session's payments (its id)",
    "--by": "spend by endpoint, day or cell",
    "--calls": "calls, not payments",
    "--csv": "as CSV",
    "--resolve": "decide unknown and pending payments on chain",
}
assert set(LEDGER_HELP) == set(LEDGER_FLAGS), "every ledger flag parse.py reads is explained here"

#: ``--pay-with`` values.
ASSETS = (("usdc", "asset · USDC"), ("tmai", "asset · TMAI, 10% cheaper"))
#: What each flag does, as its completion's type says it.
FLAG_HELP = {
    "--start": "first day, YYYY-MM-DD",
    "--end": "last day, YYYY-MM-DD",
    "--limit": "rows per page",
    "--pages": "read up to N pages",
    "--param": "NAME=VALUE",
    "--params": "$dict of parameters",
    "--save": "save as a variable",
    "--dry-run": "quote only; pays nothing",
    "--refresh": "skip the cache; pays again",
    "--max-cost": "most this may pay, USD",
    "--pay-with": "usdc or tmai",
}
#: Flags on the ``%%tm`` line itself (the request is in the body).
CELL_FLAGS = ("--save", "--dry-run", "--refresh", "--max-cost", "--pages", "--pay-with")
#: Parameters with a flag or a place of their own, so ``--param`` does not offer them.
_OWN_PLACE = frozenset({"symbol", "token_id", "startDate", "endDate", "limit"})
#: Names suggested when the session has resolved no symbol yet (sandbox mode only).
WELL_KNOWN = 12

_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*)?%tm(?P<rest>\s.*)$")
_CELL = re.compile(r"^\s*%%tm(?:\s|$)")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z_][A-Za-z0-9_-]*)\s*:(?P<value>.*)$")

Candidate = tuple[str, str]  # (text, type)


# -- the catalogue as words --------------------------------------------------------------------------------
def price_text(endpoint: Endpoint) -> str:
    """``"0.017 USDC"``, or ``"free"`` for tier 0 (the catalogue's expected price)."""
    return "free" if endpoint.free else f"{endpoint.expected_usd.normalize():f} USDC"


def lookup(name: str) -> Endpoint | None:
    """The endpoint called ``name`` (name or alias, as the magic reads it), or None; never raises."""
    try:
        return get_endpoint(name)
    except UnknownEndpoint:
        return None


def endpoint_flags(endpoint: Endpoint, action: str = "call", *, cell_body: bool = False) -> list[str]:
    """The flags a ``%tm ENDPOINT`` (or ``%tm quote ENDPOINT``) line can take, in the help's order."""
    flags = []
    if endpoint.dated:
        flags += ["--start", "--end"]
    if endpoint.param("limit") is not None:
        flags.append("--limit")
    if endpoint.paged:
        flags.append("--pages")
    if _other_params(endpoint):
        flags.append("--param")
    flags.append("--params")
    if not cell_body:
        flags.append("--save")
    if action == "call":
        flags += ["--dry-run", "--refresh"]
        if not endpoint.free:
            flags.append("--max-cost")
    if not endpoint.free:
        flags.append("--pay-with")
    return flags


def _other_params(endpoint: Endpoint) -> list[Param]:
    """The parameters ``--param`` offers: those without a flag or a place of their own."""
    return [p for p in endpoint.params if p.name not in _OWN_PLACE]


def _param_text(p: Param) -> str:
    if p.choices:
        return " | ".join(str(c) for c in p.choices)
    bits = [p.doc or p.type.__name__]
    if p.required:
        bits.append("required")
    return ", ".join(bits)


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def endpoint_help(endpoint: Endpoint) -> str:
    """What ``%tm help ENDPOINT``, ``%tm ENDPOINT?`` and Shift-Tab show: parameters, fields, price."""
    e = endpoint
    price = "free" if e.free else f"{price_text(e)} a call (expected; the server's 402 challenge sets what is paid)"
    positional = " SYMBOL ..." if e.token_keyed else ""
    # \0 holds a flag and its value together while the line wraps
    usage = " ".join(f"[{f}{'' if not FLAGS[f][1] else chr(0) + _metavar(f)}]" for f in endpoint_flags(e))
    lines = [
        f"%tm {e.name}: {e.summary}",
        f"price     {price}",
    ]
    if e.aliases:
        lines.append(f"aliases   {', '.join(e.aliases)}")
    lines += _wrapped("usage", f"%tm {e.name}{positional} {usage}")
    width = max((len(p.name) for p in e.params), default=0)
    for i, p in enumerate(e.params):
        kind = "list" if p.list else ""
        lines.append(f"{'params' if i == 0 else '':<10}{p.name:<{width}}  {kind:<4}  {_param_text(p)}")
    if e.dated:
        lines += _wrapped(
            "dates",
            f"--start/--end YYYY-MM-DD; long ranges are fetched in windows of {e.window_days} days"
            + ("; without --start, the latest page only" if e.history else ""),
        )
    if e.fields:
        lines += _wrapped("fields", ", ".join(e.fields))
    if e.nested:
        lines.append(f"nested    {e.nested} is exploded into one row per item")
    lines.append(f"cached    answers stay fresh {_duration(e.ttl)} (--refresh pays again)")
    if e.chart:
        lines.append(f"chart     df.tm.plot() draws its {e.chart} chart")
    return "\n".join(lines)


def _wrapped(label: str, text: str) -> list[str]:
    lines = textwrap.wrap(
        text, width=100, initial_indent=f"{label:<10}", subsequent_indent=" " * 10, break_on_hyphens=False
    )
    return [line.replace(chr(0), " ") for line in lines]


def _metavar(flag: str) -> str:
    return {
        "--start": "D",
        "--end": "D",
        "--limit": "N",
        "--pages": "N",
        "--param": "k=v",
        "--params": "$dict",
        "--save": "NAME",
        "--max-cost": "X",
        "--pay-with": "usdc|tmai",
    }.get(flag, "V")


class TokenMetricsEndpoint:
    # What ``?`` and Shift-Tab find for an endpoint named in a ``%tm`` line or ``%%tm`` cell. (No
    # class docstring: the inspector would print it under the endpoint's own.)

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.__doc__ = endpoint_help(endpoint)  # the inspector's "Docstring"

    def __repr__(self) -> str:  # the inspector's "String form"
        return f"%tm {self.endpoint.name} · {price_text(self.endpoint)} · {self.endpoint.summary}"


# -- what the session already knows (never a call) ----------------------------------------------------------
def known_symbols() -> dict[str, int | None]:
    """Symbol → token id for the symbols the current session has resolved or was told (overrides).

    In memory only: no session is opened and nothing is fetched. When the session has resolved
    none and it runs the embedded sandbox, its largest tokens by market cap (the sandbox holds
    its universe in this process), without ids.
    """
    from ..session import current_session

    s = current_session()
    if s is None:
        return {}
    known: dict[str, int | None] = {}
    for client in (getattr(s, "client", None), getattr(s, "_aclient", None)):
        if client is None:
            continue
        resolver = getattr(client, "_symbols", None)
        learnt = getattr(resolver, "_known", None)
        if isinstance(learnt, dict):
            with contextlib.suppress(RuntimeError):  # resolved by another thread as we copied: next Tab sees it
                known.update(dict(learnt))
        overrides = getattr(client, "symbol_overrides", None)
        if isinstance(overrides, Mapping):
            known.update(dict(overrides))
    if not known:
        universe = getattr(
            getattr(getattr(getattr(s, "sandbox", None), "state", None), "market", None), "universe", None
        )
        for token in getattr(universe, "tokens", ())[: WELL_KNOWN * 2]:
            if len(known) < WELL_KNOWN and isinstance(getattr(token, "symbol", None), str):
                known.setdefault(token.symbol.upper(), None)
    return known


# -- completion -----------------------------------------------------------------------------------------
class _Nothing(list[Any]):
    """An empty completion list that IPython still counts as an answer.

    IPython honours a matcher's ``suppress`` only when it returned completions
    (``has_any_completions`` asks ``len()``), so a ``%tm`` line with nothing to offer (the
    value after ``--start``, a symbol nobody resolved) would get Jedi's builtins and the
    file names. ``len()`` says one; iterating yields nothing.
    """

    def __len__(self) -> int:
        return 1


def _match(candidates: Iterable[Candidate], fragment: str) -> list[Candidate]:
    """Those of ``candidates`` that start with ``fragment``, ignoring case."""
    want = fragment.lower()
    return [(text, kind) for text, kind in candidates if text.lower().startswith(want)]


def endpoint_candidates(fragment: str) -> list[Candidate]:
    """Endpoints whose name or alias starts with ``fragment`` (aliases only once something is typed),
    then those with a later word starting with it (``sig`` → ``trading-signals``)."""
    f = fragment.lower()
    first: list[Candidate] = []
    later: list[Candidate] = []
    for e in ENDPOINTS:
        if e.method != "GET":
            continue  # the agent is asked (%tm ask), not called with parameters
        price = price_text(e)
        if e.name.startswith(f):
            first.append((e.name, f"endpoint · {price}"))
        elif f and any(part.startswith(f) for part in e.name.split("-")[1:]):
            later.append((e.name, f"endpoint · {price}"))
        if f:
            first += [(a, f"{e.name} · {price}") for a in e.aliases if a.startswith(f)]
    return first + later


def _symbol_candidates(fragment: str, used: set[str]) -> list[Candidate]:
    f = fragment.upper()
    out = []
    for symbol, token_id in known_symbols().items():
        if symbol.startswith(f) and symbol not in used:
            out.append((symbol, f"symbol · token {token_id}" if token_id is not None else "symbol"))
    return out


class TMCompleter:
    """Completions for one shell: ``%tm`` lines, the ``%%tm`` line and its body."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    # -- entry point ------------------------------------------------------------------------------------
    def complete(self, full_text: str, cursor_line: int, cursor_column: int) -> tuple[str, list[Candidate]] | None:
        """(fragment replaced, candidates) when the cursor is in ``%tm`` text, else None (not ours)."""
        lines = full_text.split("\n")
        line = lines[cursor_line][:cursor_column]
        first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
        if first is not None and _CELL.match(lines[first]) and cursor_line >= first:
            if cursor_line == first:
                head = line.lstrip()
                if not head.startswith("%%tm") or head == "%%tm":
                    return None  # the cursor is on the magic's name: IPython completes that
                return self._cell_line(head[4:])
            body = [ln for i, ln in enumerate(lines) if i > first and i != cursor_line]
            return self._cell_body(line, body)
        m = _LINE.match(line)
        if m is None:
            return None
        words, fragment = _split(m.group("rest"))
        return self._words(words, fragment)

    # -- %tm lines ----------------------------------------------------------------------------------------
    def _words(self, words: list[str], fragment: str, *, cell_body: bool = False) -> tuple[str, list[Candidate]]:
        if not words:
            if fragment.startswith("-"):
                return fragment, []
            subs = {"quote": SUBCOMMANDS["quote"]} if cell_body else SUBCOMMANDS
            return fragment, _match(((k, f"command · {v}") for k, v in subs.items()), fragment) + endpoint_candidates(
                fragment
            )
        head = words[0].lower()
        if head in SUBCOMMANDS and head != "quote":
            return self._subcommand(head, words[1:], fragment)
        action = "call"
        if head == "quote":
            action, words = "quote", words[1:]
            if not words:
                return fragment, [] if fragment.startswith("-") else endpoint_candidates(fragment)
        endpoint = lookup(words[0])
        if endpoint is None:
            return fragment, []
        return self._arguments(endpoint, action, words[1:], fragment, cell_body=cell_body)

    def _subcommand(self, head: str, args: list[str], fragment: str) -> tuple[str, list[Candidate]]:
        if head == "connect" and not args:
            return fragment, _match(((k, f"mode · {v}") for k, v in MODES.items()), fragment)
        if head in ("doctor", "help") and not args and not fragment.startswith("-"):
            return fragment, endpoint_candidates(fragment)
        if head == "approve":
            if fragment.startswith("-"):
                return fragment, _match([("--yes", "flag · send without asking")], fragment) if len(args) == 2 else []
            if not args:
                return fragment, _match(((k, f"asset · {v}") for k, v in APPROVE_ASSETS.items()), fragment)
            if len(args) == 1:
                return fragment, _match([("unlimited", "amount · no limit (or a number of tokens)")], fragment)
            return fragment, []
        if head == "ledger":
            if args and args[-1] == "--by":
                return fragment, _match(((b, "spend by") for b in LEDGER_GROUPS), fragment)
            if fragment.startswith("--by="):
                value = fragment[len("--by=") :]
                return value, _match(((b, "spend by") for b in LEDGER_GROUPS), value)
            flags = ((f, f"flag · {h}") for f, h in LEDGER_HELP.items() if f not in args)
            return fragment, _match(flags, fragment)
        return fragment, []

    def _arguments(
        self, endpoint: Endpoint, action: str, words: list[str], fragment: str, *, cell_body: bool
    ) -> tuple[str, list[Candidate]]:
        flags = endpoint_flags(endpoint, action, cell_body=cell_body)
        if fragment.startswith("-") and "=" in fragment:  # --flag=value
            flag, _, value = fragment.partition("=")
            return self._value(endpoint, _long(flag), value, words)
        previous = _long(words[-1]) if words else ""
        if previous in FLAGS and FLAGS[previous][1]:
            return self._value(endpoint, previous, fragment, words)
        used = {_long(w.partition("=")[0]) for w in words if w.startswith("-")}
        offered = [(f, f"flag · {FLAG_HELP[f]}") for f in flags if f not in used or FLAGS[f][2]]
        if fragment.startswith("-"):
            return fragment, _match(offered, fragment)
        part = fragment.rsplit(",", 1)[-1]
        out: list[Candidate] = []
        if endpoint.token_keyed:
            given = {p.strip().upper() for w in words if not w.startswith("-") for p in w.split(",")}
            given |= {p.strip().upper() for p in fragment.split(",")[:-1]}
            out = _symbol_candidates(part, given)
        if not fragment:
            out += offered
        return part, out

    def _value(self, endpoint: Endpoint, flag: str, value: str, words: list[str]) -> tuple[str, list[Candidate]]:
        if flag == "--param":
            name, eq, chosen = value.partition("=")
            if eq:
                param = endpoint.param(name.strip())
                choices = param.choices or () if param is not None else ()
                return chosen, _match(((str(c), f"{name.strip()} choice") for c in choices), chosen)
            given = {w.partition("=")[0] for w in words}
            params = (
                (f"{p.name}=", f"param · {_param_text(p)}") for p in _other_params(endpoint) if p.name not in given
            )
            return value, _match(params, value)
        if flag == "--pay-with":
            return value, _match(ASSETS, value)
        if flag == "--params":
            return value, self._dict_variables(value)
        return value, []

    def _dict_variables(self, fragment: str) -> list[Candidate]:
        namespace = getattr(self.shell, "user_ns", None) or {}
        hidden = getattr(self.shell, "user_ns_hidden", None) or {}  # In, Out, get_ipython, ...
        want = fragment.removeprefix("$")
        return [
            (f"${name}", "dict of parameters")
            for name, value in list(namespace.items())
            if isinstance(name, str)
            and not name.startswith("_")
            and name not in hidden
            and name.startswith(want)
            and isinstance(value, Mapping)
        ]

    # -- %%tm ------------------------------------------------------------------------------------------------
    def _cell_line(self, rest: str) -> tuple[str, list[Candidate]]:
        words, fragment = _split(rest)
        if fragment.startswith("--pay-with="):
            value = fragment.partition("=")[2]
            return value, _match(ASSETS, value)
        previous = _long(words[-1]) if words else ""
        if previous == "--pay-with":
            return fragment, _match(ASSETS, fragment)
        if previous in FLAGS and FLAGS[previous][1]:
            return fragment, []
        used = {_long(w.partition("=")[0]) for w in words}
        return fragment, _match(((f, f"flag · {FLAG_HELP[f]}") for f in CELL_FLAGS if f not in used), fragment)

    def _cell_body(self, line: str, others: list[str]) -> tuple[str, list[Candidate]]:
        body = [ln for ln in others if ln.strip() and not ln.strip().startswith("#")]
        keyed = [m for m in (_KEY.match(ln) for ln in body) if m is not None]
        endpoint_line = next((m for m in keyed if m.group("key").lower() == "endpoint"), None)
        yaml = endpoint_line is not None
        endpoint = lookup(endpoint_line.group("value").strip().strip("'\"")) if endpoint_line else None
        current = _KEY.match(line)
        if current is not None and (yaml or current.group("key").lower() == "endpoint" or not body):
            return self._body_value(current.group("key"), current.group("value"), endpoint)
        fragment = line.lstrip()
        if yaml:
            used = {m.group("key") for m in keyed}
            return fragment, _match(self._keys(endpoint, used), fragment)
        words, last = _split(line)
        if not body and not words:  # the first line: either style
            keys = _match([("endpoint:", "key · the endpoint to call")], fragment)
            return fragment, keys + self._words([], fragment, cell_body=True)[1]
        return self._words(words, last, cell_body=True)

    @staticmethod
    def _keys(endpoint: Endpoint | None, used: set[str]) -> list[Candidate]:
        keys: list[Candidate] = []
        if "endpoint" not in {u.lower() for u in used}:
            keys.append(("endpoint:", "key · the endpoint to call"))
        params = endpoint.params if endpoint is not None else ()
        if endpoint is None or endpoint.token_keyed:
            keys.append(("symbol:", "key · symbols, e.g. [BTC, ETH]"))
        for p in params:
            if p.name != "symbol":
                keys.append((f"{p.name}:", f"key · {_param_text(p)}"))
        return [(k, t) for k, t in keys if k[:-1] not in used and not (k == "symbol:" and "symbols" in used)]

    def _body_value(self, key: str, raw: str, endpoint: Endpoint | None) -> tuple[str, list[Candidate]]:
        value = raw.lstrip()
        if key.lower() == "endpoint":
            return value, endpoint_candidates(value)
        part = re.split(r"[\s,\[]", value)[-1]
        if key.lower() in ("symbol", "symbols"):
            given = {p.strip().upper() for p in re.split(r"[\s,\[\]]", value)[:-1] if p.strip()}
            return part, _symbol_candidates(part, given)
        param = endpoint.param(key) if endpoint is not None else None
        if param is not None and param.choices:
            return part, _match(((str(c), f"{key} choice") for c in param.choices), part)
        return part, []


def _long(flag: str) -> str:
    """``-s`` → ``--save``: a short flag's long name (others unchanged)."""
    return SHORT.get(flag, flag)


def _split(text: str) -> tuple[list[str], str]:
    """The finished words before the cursor and the one being typed ('' after a space)."""
    words = text.split()
    if not text or text[-1].isspace():
        return words, ""
    return words[:-1], words[-1] if words else ""


def make_matcher(completer: TMCompleter) -> Callable[..., Any]:
    """The IPython matcher (API v2) for ``completer``: ours alone on ``%tm`` text, absent elsewhere."""
    from IPython.core.completer import SimpleCompletion, context_matcher

    @context_matcher(identifier=MATCHER_ID, priority=1)
    def tm402_matcher(context: Any) -> dict[str, Any]:
        found = completer.complete(context.full_text, context.cursor_line, context.cursor_position)
        if found is None:
            return {"completions": [], "suppress": False}
        fragment, candidates = found
        completions = [SimpleCompletion(text, type=kind) for text, kind in dict(candidates).items()]
        return {
            "completions": completions or _Nothing(),
            "matched_fragment": fragment,
            "suppress": True,
            "ordered": True,
        }

    return tm402_matcher


MATCHER_ID = "tm402_nb.completion"


# -- inspection -------------------------------------------------------------------------------------------
class Inspection:
    """``%tm grade?`` and Shift-Tab on an endpoint: the endpoint's help, where IPython finds nothing."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cell: str | None = None  # the cell running now (terminal IPython has no kernel to ask)
        self.original: Callable[..., Any] | None = None

    def pre_run_cell(self, info: Any = None) -> None:
        self.cell = getattr(info, "raw_cell", None)

    def post_run_cell(self, result: Any = None) -> None:
        self.cell = None

    def find(self, oname: str, namespaces: Any = None) -> Any:
        assert self.original is not None
        info = self.original(oname, namespaces)
        if (info.get("found") if isinstance(info, dict) else info.found) or not isinstance(oname, str):
            return info
        try:
            endpoint = self.endpoint_for(oname)
        except Exception:  # help must never break `?`: IPython then says "not found", as before
            endpoint = None
        if endpoint is None:
            return info
        found = {
            "obj": TokenMetricsEndpoint(endpoint),
            "found": True,
            "namespace": "%tm endpoint",
            "parent": None,
            "ismagic": False,
            "isalias": False,
        }
        # OInfo is a dataclass in IPython 9, a NamedTuple before, a dict in older releases.
        if isinstance(info, dict):
            return {**info, **found}
        if dataclasses.is_dataclass(info) and not isinstance(info, type):
            return dataclasses.replace(info, **found)
        return info._replace(**found)

    def endpoint_for(self, oname: str) -> Endpoint | None:
        """The endpoint ``oname`` names, when the code being run or inspected is ``%tm`` text."""
        code, cursor = self._context()
        if not code or "%tm" not in code or not oname.strip():
            return None
        name = oname.strip().lstrip("%")
        if cursor is not None:
            start = max(code.rfind(c, 0, cursor) for c in " \t\n[,:") + 1
            end = min([i for i in (code.find(c, cursor) for c in " \t\n],:?") if i >= 0] + [len(code)])
            word = code[start:end]
            if word.endswith(name) or word.startswith(name):
                return lookup(word) or lookup(name)
            return lookup(name)
        words = [w.rstrip("?") for w in re.split(r"[\s\[\],:]+", code)]
        for word in reversed(words):
            if word.endswith(name) and lookup(word) is not None:
                return lookup(word)
        return lookup(name)

    def _context(self) -> tuple[str | None, int | None]:
        """(code, cursor) of the request the kernel is answering, else the cell running now."""
        kernel = getattr(self.shell, "kernel", None)
        try:
            parent = kernel.get_parent() if kernel is not None else None
        except Exception:  # an older kernel, or none: fall back on the running cell
            parent = None
        if isinstance(parent, dict):
            kind = parent.get("header", {}).get("msg_type")
            content = parent.get("content", {})
            if kind == "inspect_request":
                return content.get("code"), content.get("cursor_pos")
            if kind == "execute_request":
                return content.get("code"), None
        return self.cell, None


# -- wiring -----------------------------------------------------------------------------------------------
def install(ip: Any) -> dict[str, Any]:
    """Register the matcher and the inspection fallback on ``ip``; returns what :func:`uninstall` needs."""
    completer = TMCompleter(ip)
    matcher = make_matcher(completer)
    ip.Completer.custom_matchers.append(matcher)
    inspection = Inspection(ip)
    inspection.original = ip._object_find
    ip._object_find = inspection.find
    ip.events.register("pre_run_cell", inspection.pre_run_cell)
    ip.events.register("post_run_cell", inspection.post_run_cell)
    return {"matcher": matcher, "inspection": inspection}


def uninstall(ip: Any, installed: dict[str, Any]) -> None:
    matcher = installed.get("matcher")
    if matcher is not None and matcher in ip.Completer.custom_matchers:
        ip.Completer.custom_matchers.remove(matcher)
    inspection = installed.get("inspection")
    if inspection is None:
        return
    for event, fn in (("pre_run_cell", inspection.pre_run_cell), ("post_run_cell", inspection.post_run_cell)):
        with contextlib.suppress(ValueError):
            ip.events.unregister(event, fn)
    if ip.__dict__.get("_object_find") == inspection.find:
        del ip._object_find  # back to the class's method (unless someone wrapped ours since)
