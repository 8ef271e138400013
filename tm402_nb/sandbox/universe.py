"""The sandbox's token universe: a few hundred tokens, fixed for every seed.

Only three ids are Token Metrics' real ones (BTC 3375, ETH 3306, LTC 3377, from
the reference). Every other id is synthetic (50001 and up) so that nothing here
claims to be a real Token Metrics id. Symbols collide on purpose, as on the real
API: ``ETH`` is Ethereum plus several bridged ETHs with far smaller market caps,
and ``BTC`` likewise. The universe does not depend on the server's seed (ids and
names stay put); the seed only drives the price paths in :mod:`.market`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property

from eth_hash.auto import keccak

#: First day of data for the oldest tokens ("pricing data starts on 2019-01-01").
GENESIS = date(2019, 1, 1)

SYNTHETIC_ID_BASE = 50001
REAL_IDS = {"bitcoin": 3375, "ethereum": 3306, "litecoin": 3377}

CATEGORIES = (
    "layer-1",
    "layer-2",
    "defi",
    "nft",
    "gaming",
    "meme",
    "ai",
    "infrastructure",
    "exchange-token",
    "privacy",
    "oracle",
    "storage",
    "rwa",
    "stablecoin",
    "bridged",
)
EXCHANGES = (
    "binance",
    "coinbase",
    "kraken",
    "okx",
    "bybit",
    "gate",
    "kucoin",
    "mexc",
    "bitget",
    "htx",
    "uniswap-v3-base",
    "aerodrome-base",
    "uniswap-v3-ethereum",
)


@dataclass(frozen=True)
class Token:
    token_id: int
    name: str
    symbol: str
    slug: str
    price: float  # price on the anchor day, USD
    market_cap: float  # on the anchor day, USD
    categories: tuple[str, ...]
    exchanges: tuple[str, ...]
    start: date  # first day with data
    chain: str | None  # chain of the token contract, None for a native coin
    peg: str | None = None  # slug of the asset it tracks (bridged/wrapped), "usd" for stables
    vol: float = 0.05  # daily idiosyncratic volatility
    beta: float = 1.0  # exposure to the market factor
    fundamental: float = 60.0  # long-run fundamental grade
    technology: float = 60.0  # long-run technology grade
    rank: int = 0  # 1 = largest market cap

    @cached_property
    def contract_address(self) -> str | None:
        if self.chain is None:
            return None
        return "0x" + keccak(f"tm402-sandbox-contract:{self.slug}".encode())[-20:].hex()

    @property
    def tm_link(self) -> str:
        return f"https://app.tokenmetrics.com/en/{self.slug}"


# name, symbol, slug, price, market cap (USD), categories, start year, chain, vol, beta, fundamental, technology
_FAMOUS: tuple[tuple, ...] = (
    ("Bitcoin", "BTC", "bitcoin", 96849.0, 1.93e12, ("layer-1",), 2019, None, 0.012, 1.00, 92, 84),
    ("Ethereum", "ETH", "ethereum", 3152.4, 3.80e11, ("layer-1", "defi"), 2019, None, 0.020, 1.15, 90, 91),
    ("Tether", "USDT", "tether", 1.0, 1.83e11, ("stablecoin",), 2019, "ethereum", 0.0, 0.0, 70, 55),
    ("XRP", "XRP", "xrp", 2.25, 1.35e11, ("layer-1",), 2019, None, 0.030, 1.05, 74, 66),
    ("BNB", "BNB", "bnb", 921.0, 1.27e11, ("exchange-token", "layer-1"), 2019, None, 0.018, 0.9, 80, 72),
    ("Solana", "SOL", "solana", 139.8, 7.80e10, ("layer-1",), 2020, None, 0.035, 1.3, 84, 88),
    ("USDC", "USDC", "usd-coin", 1.0, 7.50e10, ("stablecoin",), 2019, "ethereum", 0.0, 0.0, 78, 60),
    ("TRON", "TRX", "tron", 0.29, 2.70e10, ("layer-1",), 2019, None, 0.022, 0.8, 66, 62),
    ("Dogecoin", "DOGE", "dogecoin", 0.163, 2.40e10, ("meme",), 2019, None, 0.040, 1.3, 58, 40),
    ("Cardano", "ADA", "cardano", 0.50, 1.80e10, ("layer-1",), 2019, None, 0.032, 1.15, 70, 78),
    ("Hyperliquid", "HYPE", "hyperliquid", 36.2, 1.20e10, ("defi", "layer-1"), 2024, None, 0.045, 1.2, 72, 76),
    (
        "Chainlink",
        "LINK",
        "chainlink",
        14.1,
        9.50e9,
        ("oracle", "infrastructure"),
        2019,
        "ethereum",
        0.035,
        1.2,
        82,
        86,
    ),
    ("Bitcoin Cash", "BCH", "bitcoin-cash", 480.0, 9.60e9, ("layer-1",), 2019, None, 0.030, 1.1, 64, 58),
    ("Stellar", "XLM", "stellar", 0.26, 8.30e9, ("layer-1",), 2019, None, 0.030, 1.0, 66, 64),
    ("Litecoin", "LTC", "litecoin", 95.3, 7.20e9, ("layer-1",), 2019, None, 0.028, 1.05, 68, 60),
    ("Hedera", "HBAR", "hedera", 0.16, 6.80e9, ("layer-1",), 2019, None, 0.035, 1.15, 70, 74),
    ("Monero", "XMR", "monero", 360.0, 6.60e9, ("privacy",), 2019, None, 0.028, 0.9, 66, 70),
    ("Sui", "SUI", "sui", 1.82, 6.50e9, ("layer-1",), 2023, None, 0.050, 1.4, 74, 82),
    ("Avalanche", "AVAX", "avalanche", 15.2, 6.40e9, ("layer-1",), 2020, None, 0.040, 1.3, 76, 82),
    ("Shiba Inu", "SHIB", "shiba-inu", 0.0000092, 5.40e9, ("meme",), 2020, "ethereum", 0.045, 1.4, 50, 38),
    ("Toncoin", "TON", "toncoin", 1.92, 4.80e9, ("layer-1",), 2021, None, 0.035, 1.0, 68, 70),
    ("Uniswap", "UNI", "uniswap", 7.2, 4.50e9, ("defi", "exchange-token"), 2020, "ethereum", 0.040, 1.3, 80, 84),
    ("Polkadot", "DOT", "polkadot", 2.7, 4.30e9, ("layer-1", "infrastructure"), 2020, None, 0.038, 1.25, 72, 86),
    ("Bittensor", "TAO", "bittensor", 330.0, 3.20e9, ("ai",), 2023, None, 0.055, 1.4, 74, 80),
    (
        "Internet Computer",
        "ICP",
        "internet-computer",
        5.5,
        3.00e9,
        ("layer-1", "storage"),
        2021,
        None,
        0.045,
        1.3,
        62,
        80,
    ),
    ("Aave", "AAVE", "aave", 190.0, 2.90e9, ("defi",), 2020, "ethereum", 0.042, 1.35, 84, 85),
    ("NEAR Protocol", "NEAR", "near", 2.2, 2.80e9, ("layer-1", "ai"), 2020, None, 0.045, 1.35, 72, 84),
    ("Pepe", "PEPE", "pepe", 0.0000055, 2.30e9, ("meme",), 2023, "ethereum", 0.060, 1.6, 44, 30),
    ("Aptos", "APT", "aptos", 3.0, 2.20e9, ("layer-1",), 2022, None, 0.045, 1.35, 70, 82),
    ("Ethereum Classic", "ETC", "ethereum-classic", 13.5, 2.10e9, ("layer-1",), 2019, None, 0.035, 1.1, 56, 54),
    ("Arbitrum", "ARB", "arbitrum", 0.24, 1.30e9, ("layer-2",), 2023, "ethereum", 0.045, 1.35, 74, 84),
    ("Filecoin", "FIL", "filecoin", 1.9, 1.30e9, ("storage",), 2020, None, 0.045, 1.3, 62, 76),
    ("Cosmos Hub", "ATOM", "cosmos", 2.6, 1.20e9, ("layer-1", "infrastructure"), 2019, None, 0.040, 1.25, 68, 84),
    ("Render", "RENDER", "render", 1.9, 1.00e9, ("ai", "infrastructure"), 2020, "ethereum", 0.055, 1.45, 70, 74),
    ("Fetch.ai", "FET", "fetch-ai", 0.29, 7.00e8, ("ai",), 2019, "ethereum", 0.055, 1.45, 66, 76),
    ("Immutable", "IMX", "immutable", 0.38, 7.00e8, ("gaming", "layer-2"), 2021, "ethereum", 0.050, 1.4, 66, 78),
    ("Injective", "INJ", "injective", 6.8, 6.70e8, ("defi", "layer-1"), 2020, None, 0.050, 1.4, 70, 80),
    ("Optimism", "OP", "optimism", 0.35, 6.50e8, ("layer-2",), 2022, "ethereum", 0.048, 1.4, 72, 84),
    ("Lido DAO", "LDO", "lido-dao", 0.70, 6.30e8, ("defi",), 2021, "ethereum", 0.048, 1.35, 74, 78),
    ("Aerodrome Finance", "AERO", "aerodrome-finance", 0.78, 6.90e8, ("defi",), 2023, "base", 0.060, 1.5, 70, 72),
    ("Token Metrics AI", "TMAI", "token-metrics-ai", 0.01, 1.00e7, ("ai",), 2024, "base", 0.060, 1.2, 66, 70),
)

# Tokens that share a symbol with a big one (name, symbol, slug, pegged-to, market cap, chain).
_COLLISIONS: tuple[tuple, ...] = (
    ("Wormhole Bridged ETH", "ETH", "wormhole-bridged-eth", "ethereum", 8.1e7, "solana"),
    ("StarkGate Bridged ETH", "ETH", "starkgate-bridged-eth", "ethereum", 6.2e7, "starknet"),
    ("Polygon PoS Bridged ETH", "ETH", "polygon-pos-bridged-eth", "ethereum", 4.4e7, "polygon-pos"),
    ("Linea Bridged ETH", "ETH", "linea-bridged-eth", "ethereum", 2.9e7, "linea"),
    ("Wrapped Bitcoin", "WBTC", "wrapped-bitcoin", "bitcoin", 1.20e10, "ethereum"),
    ("Wormhole Bridged BTC", "BTC", "wormhole-bridged-btc", "bitcoin", 5.3e7, "solana"),
    ("Avalanche Bridged BTC", "BTC", "avalanche-bridged-btc", "bitcoin", 3.6e7, "avalanche"),
    ("Osmosis Bridged BTC", "BTC", "osmosis-bridged-btc", "bitcoin", 1.1e7, "osmosis"),
    ("Bridged USDC (Sandbox Chain)", "USDC", "bridged-usdc-sandbox", "usd-coin", 2.2e7, "polygon-pos"),
)

_SYLLABLES = (
    "ra",
    "zen",
    "vo",
    "lux",
    "qua",
    "tor",
    "mi",
    "nex",
    "sol",
    "ka",
    "dri",
    "fi",
    "on",
    "ar",
    "bel",
    "cy",
    "do",
    "ex",
    "gal",
    "hy",
    "io",
    "ju",
    "kel",
    "lo",
    "mar",
    "no",
    "pi",
    "rix",
    "sa",
    "tu",
    "vex",
    "wy",
)
_SUFFIX = ("", " Protocol", " Network", " Finance", " Labs", " Chain", " AI", " DAO", " Swap", " Verse")


def _generated(rng: random.Random, count: int, taken_symbols: set[str], taken_names: set[str]) -> list[tuple]:
    out: list[tuple] = []
    while len(out) < count:
        n = rng.choice((2, 2, 3))
        stem = "".join(rng.choice(_SYLLABLES) for _ in range(n))
        name = stem.capitalize() + rng.choice(_SUFFIX)
        symbol = (stem[:3] + stem[-1]).upper() if rng.random() < 0.3 else stem[: rng.choice((3, 4))].upper()
        if name in taken_names or symbol in taken_symbols or not symbol.isalpha():
            continue
        taken_names.add(name)
        taken_symbols.add(symbol)
        out.append((name, symbol, name.lower().replace(" ", "-").replace(".", "")))
    return out


def build_universe(total: int = 300) -> tuple[Token, ...]:
    """Build the fixed universe (same for every seed), ordered by market cap."""
    rng = random.Random(3375)  # fixed: ids and names never depend on the server seed
    tokens: list[Token] = []
    next_id = SYNTHETIC_ID_BASE

    def new_id(slug: str) -> int:
        nonlocal next_id
        if slug in REAL_IDS:
            return REAL_IDS[slug]
        next_id += 1
        return next_id - 1

    for name, sym, slug, price, mcap, cats, year, chain, vol, beta, fund, tech in _FAMOUS:
        exchanges = tuple(sorted(rng.sample(EXCHANGES[:10], rng.randint(5, 9))))
        if chain == "base":
            exchanges = tuple(sorted({*exchanges[:3], "uniswap-v3-base", "aerodrome-base"}))
        tokens.append(
            Token(
                new_id(slug),
                name,
                sym,
                slug,
                price,
                mcap,
                cats,
                exchanges,
                date(year, 1, 1) if year > 2019 else GENESIS,
                chain,
                "usd" if "stablecoin" in cats else None,
                vol,
                beta,
                float(fund),
                float(tech),
            )
        )
    by_slug = {t.slug: t for t in tokens}
    for name, sym, slug, peg, mcap, chain in _COLLISIONS:
        base = by_slug[peg]
        start = max(base.start, date(2021, 1, 1) if chain != "ethereum" else base.start)
        tokens.append(
            Token(
                new_id(slug),
                name,
                sym,
                slug,
                base.price,
                mcap,
                ("bridged", *base.categories[:1]),
                tuple(sorted(rng.sample(EXCHANGES[8:], 2))),
                start,
                chain,
                peg,
                0.0,
                0.0,
                max(30.0, base.fundamental - 25),
                max(30.0, base.technology - 20),
            )
        )
    taken_symbols = {t.symbol for t in tokens}
    taken_names = {t.name for t in tokens}
    filler = _generated(rng, max(0, total - len(tokens)), taken_symbols, taken_names)
    # Market caps fall log-uniformly from ~$600M to ~$1M across the filler tokens.
    n = len(filler)
    for i, (name, sym, slug) in enumerate(filler):
        mcap = 6e8 * (1e6 / 6e8) ** (i / max(1, n - 1)) * rng.uniform(0.85, 1.15)
        price = 10 ** rng.uniform(-4, 2.5)
        cats = tuple(sorted(set(rng.sample(CATEGORIES[:13], rng.choice((1, 1, 2))))))
        chain = rng.choice((None, "ethereum", "ethereum", "base", "solana", "binance-smart-chain", "arbitrum-one"))
        exchanges = tuple(sorted(rng.sample(EXCHANGES, rng.randint(1, 5))))
        start = date(rng.randint(2019, 2024), rng.randint(1, 12), rng.randint(1, 28))
        if start < GENESIS:
            start = GENESIS
        vol = rng.uniform(0.04, 0.09)
        tokens.append(
            Token(
                new_id(slug),
                name,
                sym,
                slug,
                price,
                mcap,
                cats,
                exchanges,
                start,
                chain,
                None,
                vol,
                rng.uniform(0.8, 1.4),
                rng.uniform(25, 80),
                rng.uniform(20, 85),
            )
        )
    tokens.sort(key=lambda t: -t.market_cap)
    return tuple(replace(t, rank=i + 1) for i, t in enumerate(tokens))


class Universe:
    """Lookups over the token list; every list it returns is in market-cap order."""

    def __init__(self, tokens: tuple[Token, ...] | None = None) -> None:
        self.tokens = tokens if tokens is not None else build_universe()
        self.by_id = {t.token_id: t for t in self.tokens}
        self.by_slug = {t.slug: t for t in self.tokens}
        self._by_symbol: dict[str, list[Token]] = {}
        self._by_name: dict[str, list[Token]] = {}
        for t in self.tokens:
            self._by_symbol.setdefault(t.symbol.upper(), []).append(t)
            self._by_name.setdefault(t.name.lower(), []).append(t)

    def __len__(self) -> int:
        return len(self.tokens)

    def select(
        self,
        token_ids: list[int] | None = None,
        symbols: list[str] | None = None,
        names: list[str] | None = None,
        categories: list[str] | None = None,
        exchanges: list[str] | None = None,
        min_market_cap: float | None = None,
        min_volume: float | None = None,
        min_fdv: float | None = None,
        blockchain_addresses: list[str] | None = None,
    ) -> list[Token]:
        """Tokens matching every given filter (a list matches any of its items)."""
        chosen: list[Token] = list(self.tokens)
        if token_ids is not None:
            wanted = set(token_ids)
            chosen = [t for t in chosen if t.token_id in wanted]
        if symbols is not None:
            wanted_s = {s.upper() for s in symbols}
            chosen = [t for t in chosen if t.symbol.upper() in wanted_s]
        if names is not None:
            wanted_n = {n.lower() for n in names}
            chosen = [t for t in chosen if t.name.lower() in wanted_n]
        if categories is not None:
            wanted_c = {c.lower() for c in categories}
            chosen = [t for t in chosen if wanted_c.intersection(t.categories)]
        if exchanges is not None:
            wanted_e = {e.lower() for e in exchanges}
            chosen = [t for t in chosen if wanted_e.intersection(t.exchanges)]
        if min_market_cap is not None:
            chosen = [t for t in chosen if t.market_cap >= min_market_cap]
        if min_fdv is not None:
            chosen = [t for t in chosen if t.market_cap * 1.25 >= min_fdv]
        if min_volume is not None:
            chosen = [t for t in chosen if t.market_cap * 0.05 >= min_volume]
        if blockchain_addresses is not None:
            wanted_a = {a.lower() for a in blockchain_addresses}
            chosen = [t for t in chosen if t.contract_address and f"{t.chain}:{t.contract_address}".lower() in wanted_a]
        return chosen
