"""Client and AsyncClient stay twins: the same methods, parameters, defaults and docs; async where it waits."""

from __future__ import annotations

import inspect

import pytest

from tm402_nb.tokenmetrics.client import AsyncClient, Client

#: The sync name → its async twin, where the names differ.
RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__"}
#: Methods that never wait, so they stay plain functions on both.
NEVER_WAIT = {"__init__", "__repr__"}


def methods(cls: type) -> dict[str, object]:
    """Functions the twin itself defines (what it shares lives once, in the common base)."""
    return {name: fn for name, fn in vars(cls).items() if inspect.isfunction(fn)}


def pairs() -> list[tuple[str, str]]:
    return [(name, RENAMED.get(name, name)) for name in sorted(methods(Client))]


def test_the_same_methods():
    assert {RENAMED.get(n, n) for n in methods(Client)} == set(methods(AsyncClient))


def test_the_same_public_api():
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    assert {RENAMED.get(n, n) for n in public(Client)} == public(AsyncClient)
    assert {"get", "frame", "quote", "request", "resolve_symbols"} <= public(Client)


@pytest.mark.parametrize("sync_name, async_name", pairs())
def test_same_parameters_and_defaults(sync_name, async_name):
    sync = inspect.signature(getattr(Client, sync_name)).parameters
    asyn = inspect.signature(getattr(AsyncClient, async_name)).parameters
    described = [(p.name, p.kind, p.default, p.annotation) for p in sync.values()]
    if sync_name == "__init__":  # the transport differs in kind only: httpx's sync or async transport
        assert [d[:3] for d in described] == [(p.name, p.kind, p.default) for p in asyn.values()]
    else:
        assert described == [(p.name, p.kind, p.default, p.annotation) for p in asyn.values()]


@pytest.mark.parametrize("sync_name, async_name", pairs())
def test_async_where_it_waits(sync_name, async_name):
    assert not inspect.iscoroutinefunction(getattr(Client, sync_name))
    waits = sync_name not in NEVER_WAIT
    assert inspect.iscoroutinefunction(getattr(AsyncClient, async_name)) is waits


@pytest.mark.parametrize("sync_name, async_name", [p for p in pairs() if not p[0].startswith("__")])
def test_both_documented(sync_name, async_name):
    assert inspect.getdoc(getattr(Client, sync_name)) is not None or sync_name.startswith("_")
    assert inspect.getdoc(getattr(Client, sync_name)) == inspect.getdoc(getattr(AsyncClient, async_name))
    assert Client.__doc__ and AsyncClient.__doc__
