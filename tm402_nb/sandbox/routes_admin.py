"""Sandbox-only routes: info, faucet, balances, stats, settlements, faults; the facilitator; JSON-RPC."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from ..errors import X402ProtocolError
from . import envelope, rpc
from .catalogue import ENDPOINTS
from .facilitator import INVALID_PAYLOAD
from .faults import Faults
from .state import ETH, SandboxState, display, is_eth


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > 64 * 1024:
        raise ValueError("request body is over 64 KB")
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ValueError("request body is not valid JSON") from None


class FaucetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(description="0x address to fund")
    asset: str = Field(
        "usdc", description="`usdc`, `tmai`, the token's contract address, or `eth` (the native coin gas is paid in)"
    )
    amount: str | int | float = Field(description="amount in display units, e.g. `100` or `0.5`")
    approve_permit2: bool = Field(
        False, description="also grant the Permit2 contract an unlimited allowance for this asset (Permit2 payments)"
    )


# -- sandbox admin -----------------------------------------------------------------------------------
sandbox = APIRouter(prefix="/sandbox", tags=["Sandbox"])


@sandbox.get("", summary="What this sandbox is: profile, network, x402 version, assets, payee, prices")
async def info(request: Request) -> dict[str, Any]:
    st = _state(request)
    cfg = st.config
    prices = st.prices
    return {
        "sandbox": True,
        # Which reading of the real API this server plays (tm402_nb.sandbox.profiles): its name
        # ("docs-2026", or "classic with field_case=lower"), the preset, the flipped switches, every switch.
        "profile": st.profile.to_json(),
        "network": st.network.v1_name,
        "caip2": st.network.caip2,
        "chain_id": st.network.chain_id,
        "x402_version": st.profile.x402_version,
        "seed": cfg.seed,
        "anchor_date": st.market.calendar.anchor.isoformat(),
        "api_key": cfg.api_key,
        "pay_to": st.pay_to,
        "assets": {
            k: {
                "symbol": a.symbol,
                "address": a.address,
                "decimals": a.decimals,
                "eip712": a.extra,
                "transfer": st.profile.tmai_transfer if k == "tmai" else "eip3009",
            }
            for k, a in st.assets.items()
        },
        "rate_limit": {"per_second": st.limiter.rate, "burst": st.limiter.burst},
        "endpoints": [
            {
                "path": e.path,
                "tier": prices.tier(e.name),
                "usd": str(prices.usd(e.name)),
                "usdc": display(prices.atomic(e.name, "usdc", 6), 6),
                "tmai": display(prices.atomic(e.name, "tmai", 18), 18),
            }
            for e in ENDPOINTS
        ],
    }


@sandbox.post("/faucet", summary="Fund an address with sandbox USDC, TMAI or ETH for gas (display units)")
async def faucet(request: Request, body: FaucetRequest) -> Response:
    try:
        if body.approve_permit2 and is_eth(body.asset):
            raise ValueError("approve_permit2 applies to a token (usdc, tmai), not to ETH")
        return JSONResponse(
            _state(request).fund(body.address, body.asset, body.amount, approve_permit2=body.approve_permit2)
        )
    except ValueError as exc:
        return envelope.error(400, str(exc), "invalid_faucet_request")


@sandbox.get("/balance", summary="Balance of an address (display and atomic units)")
async def balance(
    request: Request,
    address: Annotated[str, Query(description="0x address")],
    asset: Annotated[str, Query(description="usdc, tmai, a contract address, or eth")] = "usdc",
) -> Response:
    st = _state(request)
    try:
        a = ETH if is_eth(asset) else st.asset(asset)
        if not (address.startswith("0x") and len(address) == 42):
            raise ValueError(f"address must be 0x followed by 40 hex digits, got {address[:50]!r}")
        atomic = st.chain.balance(a.address, address)
    except ValueError as exc:
        return envelope.error(400, str(exc), "invalid_parameter")
    return JSONResponse(
        {"address": address, "asset": a.symbol, "balance": display(atomic, a.decimals), "balance_atomic": str(atomic)}
    )


@sandbox.get("/stats", summary="Request, challenge, payment and settlement counters")
async def stats(request: Request) -> dict[str, Any]:
    st = _state(request)
    return {**st.stats.snapshot(), "faults_fired": st.faults.fired_counts()}


@sandbox.post("/stats/reset", summary="Zero the counters")
async def stats_reset(request: Request) -> dict[str, Any]:
    _state(request).stats.reset()
    return {"success": True}


@sandbox.get("/settlements", summary="Every settlement: payer, nonce, amount, asset, transaction")
async def settlements(
    request: Request,
    payer: Annotated[str | None, Query(description="only this payer")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> dict[str, Any]:
    rows = _state(request).chain.settlements(payer=payer, limit=limit)
    return {"length": len(rows), "settlements": rows}


@sandbox.get("/faults", summary="The faults currently switched on")
async def get_faults(request: Request) -> dict[str, Any]:
    st = _state(request)
    return {"faults": st.faults.snapshot().to_json(), "fired": st.faults.fired_counts()}


@sandbox.post("/faults", summary="Replace the faults (JSON object of Faults fields; {} clears them)")
async def set_faults(request: Request) -> Response:
    st = _state(request)
    try:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object of fault fields")
        faults = Faults.from_json(body)
    except (ValueError, TypeError) as exc:
        return envelope.error(400, str(exc), "invalid_faults")
    st.set_faults(faults)
    return JSONResponse({"faults": faults.to_json()})


@sandbox.post("/mine", summary='Mine every broadcast transfer now (settlement_pending); {"drop": true} discards them')
async def mine(request: Request) -> Response:
    st = _state(request)
    try:
        body = await _json_body(request)
    except ValueError:
        body = None
    drop = isinstance(body, dict) and body.get("drop") is True
    mined = st.facilitator.mempool.mine(drop=drop)
    return JSONResponse({"length": len(mined), "transactions": mined})


# -- facilitator -----------------------------------------------------------------------------------------
facilitator = APIRouter(prefix="/facilitator", tags=["Facilitator (x402 spec §7)"])


@facilitator.get("/supported", summary="Supported (x402Version, scheme, network) kinds")
async def supported(request: Request) -> dict[str, Any]:
    return _state(request).facilitator.supported()


async def _parse(request: Request) -> Any:
    st = _state(request)
    try:
        body = await _json_body(request)
        return st.facilitator.parse_request(body)
    except (ValueError, X402ProtocolError) as exc:
        return getattr(exc, "message", str(exc))


@facilitator.post("/verify", summary="Verify a payment against requirements (no state change)")
async def verify(request: Request) -> Response:
    parsed = await _parse(request)
    if isinstance(parsed, str):
        return JSONResponse(
            {"isValid": False, "invalidReason": INVALID_PAYLOAD, "invalidMessage": parsed}, status_code=400
        )
    payload, req = parsed
    return JSONResponse(_state(request).facilitator.verify(payload, req).to_json())


@facilitator.post("/settle", summary="Verify and execute a payment")
async def settle(request: Request) -> Response:
    st = _state(request)
    parsed = await _parse(request)
    if isinstance(parsed, str):
        return JSONResponse(
            {
                "success": False,
                "errorReason": INVALID_PAYLOAD,
                "errorMessage": parsed,
                "transaction": "",
                "network": st.network.caip2,
            },
            status_code=400,
        )
    payload, req = parsed
    pending = st.faults.take_settle_pending()
    result = st.facilitator.settle(
        payload, req, path="/facilitator/settle", pending=pending, confirm_reads=st.faults.faults.settle_pending_reads
    )
    if result.success:
        st.stats.count("settlements")
    return JSONResponse(result.to_json())


# -- JSON-RPC ------------------------------------------------------------------------------------------------
rpc_router = APIRouter(tags=["JSON-RPC"])


@rpc_router.post("/rpc", summary="eth_chainId, eth_blockNumber, eth_call(balanceOf) and a few more")
async def json_rpc(request: Request) -> Response:
    try:
        body = await _json_body(request)
    except ValueError:
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
    out = rpc.handle(_state(request), body)
    if out is None or out == []:
        return Response(status_code=204)
    return JSONResponse(out)
