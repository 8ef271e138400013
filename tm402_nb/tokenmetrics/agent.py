"""TMAI, Token Metrics' AI agent (``POST /v2/tmai``): a question in, an answer out.

Unlike every other endpoint it takes a JSON body (``{"messages": [{"user": "..."}]}``)
and answers text and the conversation thread instead of ``data`` rows, so it has its
own small request and answer here; paying for it is the same x402 flow, under the
same caps, ledger and footer as any call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from .answers import interpret
from .catalogue import Endpoint
from .errors import APIError, ParamError
from .modes import Mode

__all__ = ["MAX_QUESTION", "AgentAnswer", "agent_body", "agent_reply"]

#: The longest question sent (the API's limit is not published; the sandbox enforces this one).
MAX_QUESTION = 2000


@dataclass(frozen=True)
class AgentAnswer:
    """The agent's answer (Markdown) to ``question``, with the conversation thread and what it cost.

    Displays as Markdown in a notebook and as its text in a terminal.
    """

    question: str
    answer: str
    thread: tuple[dict[str, str], ...] = ()
    #: The call's cost, as ``df.attrs["tm402"]`` holds it for a frame.
    cost: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.answer

    def __repr__(self) -> str:
        short = self.answer if len(self.answer) <= 70 else self.answer[:69] + "…"
        return f"<AgentAnswer to {self.question[:40]!r}: {short!r}>"

    def _repr_markdown_(self) -> str:
        return self.answer


def agent_body(question: Any) -> dict[str, Any]:
    """The request body for ``question``; ParamError (nothing sent) when it is not a usable question."""
    if not isinstance(question, str) or not question.strip():
        raise ParamError("the agent needs a question, e.g. ask('Which layer-1 tokens look strongest?')")
    question = question.strip()
    if len(question) > MAX_QUESTION:
        raise ParamError(f"the question is {len(question)} characters; the agent takes at most {MAX_QUESTION}")
    return {"messages": [{"user": question}]}


def agent_reply(
    endpoint: Endpoint, response: httpx.Response, *, mode: Mode, retries: int
) -> tuple[str, tuple[dict[str, str], ...]]:
    """(answer, thread) from the agent's response, or the typed error any endpoint's answer gives."""
    body: Any = None
    if response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
    if isinstance(body, dict) and body.get("success") is not False and isinstance(body.get("answer"), str):
        thread = tuple(t for t in body.get("thread") or () if isinstance(t, dict))
        return body["answer"], thread
    if response.status_code == 200 and isinstance(body, dict) and body.get("success") is not False:
        raise APIError(f"{endpoint.name}: the agent's answer has no text", status=200, body=body)
    interpret(endpoint, response, mode=mode, retries=retries)  # raises the error the answer carries
    raise APIError(f"{endpoint.name}: HTTP {response.status_code}", status=response.status_code, body=body)
