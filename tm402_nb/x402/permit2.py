"""Permit2: the contracts and the on-chain reads a Permit2 payment depends on.

A token without EIP-3009 (Token Metrics' TMAI) is paid in x402 through Uniswap's
canonical Permit2 contract: the payer approves Permit2 once (an ERC-20 ``approve``),
then signs a ``PermitWitnessTransferFrom`` whose spender is the x402 Permit2 proxy.
Permit2 nonces are per owner (not per token) and kept in a bitmap: nonce ``n`` is bit
``n & 0xff`` of word ``n >> 8`` of ``nonceBitmap(owner, word)``.

The addresses are the same on every EVM chain (deterministic deployments).
"""

from __future__ import annotations

from eth_hash.auto import keccak

__all__ = [
    "ALLOWANCE",
    "APPROVE",
    "EXACT_PERMIT2_PROXY",
    "NONCE_BITMAP",
    "PERMIT2_ADDRESS",
    "UPTO_PERMIT2_PROXY",
    "nonce_position",
]

#: Uniswap's canonical Permit2.
PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
#: The spender an ``exact`` Permit2 payment names (x402ExactPermit2Proxy).
EXACT_PERMIT2_PROXY = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"
#: The spender an ``upto`` Permit2 payment names (x402UptoPermit2Proxy).
UPTO_PERMIT2_PROXY = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"


def _selector(signature: str) -> str:
    return "0x" + keccak(signature.encode())[:4].hex()


#: ERC-20 ``allowance(address owner, address spender)``.
ALLOWANCE = _selector("allowance(address,address)")
#: ERC-20 ``approve(address spender, uint256 amount)``.
APPROVE = _selector("approve(address,uint256)")
#: Permit2 ``nonceBitmap(address owner, uint256 wordPosition)``.
NONCE_BITMAP = _selector("nonceBitmap(address,uint256)")


def nonce_position(nonce: int) -> tuple[int, int]:
    """(word, bit) of a Permit2 nonce in its owner's bitmap.

    >>> nonce_position(0), nonce_position(257)
    ((0, 0), (1, 1))
    """
    if not 0 <= nonce < 2**256:
        raise ValueError("a Permit2 nonce is a uint256")
    return nonce >> 8, nonce & 0xFF
