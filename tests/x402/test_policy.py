"""SpendPolicy: choose the right offer, refuse the rest before signing."""

from __future__ import annotations

import threading

import pytest

from tm402_nb.errors import BudgetExceeded, ConfigurationError, PaymentRefused
from tm402_nb.x402.messages import PaymentRequired
from tm402_nb.x402.networks import TMAI_BASE, USDC_BASE, USDC_BASE_SEPOLIA, Asset
from tm402_nb.x402.policy import AssetLimit, SpendPolicy
from tm402_nb.x402.recorder import PaymentRecord

PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
SANDBOX_TMAI = Asset("TMAI", "0x" + "7a" * 20, "eip155:84532", 18, None, None, False, False)


def offer(
    amount="17000",
    network="base-sepolia",
    asset=USDC_BASE_SEPOLIA.address,
    pay_to=PAY_TO,
    timeout=60,
    extra=None,
    scheme="exact",
):
    d = {
        "scheme": scheme,
        "network": network,
        "maxAmountRequired": str(amount),
        "asset": asset,
        "payTo": pay_to,
        "maxTimeoutSeconds": timeout,
    }
    if extra is not None:
        d["extra"] = extra
    return d


def challenge(*offers):
    return PaymentRequired.from_json({"x402Version": 1, "accepts": list(offers)}, source="body")


def test_default_cap_is_ten_cents_and_testnet_only():
    p = SpendPolicy()
    assert p.max_per_call == 100_000
    assert p.networks == ("eip155:84532",)
    assert p.select(challenge(offer(amount=100_000))).amount == 100_000
    with pytest.raises(BudgetExceeded) as info:
        p.select(challenge(offer(amount=100_001)))
    msg = str(info.value)
    assert "0.100001 USDC" in msg and "0.10 USD" in msg and "max_per_call" in msg


def test_picks_cheapest_allowed_not_first():
    p = SpendPolicy()
    chosen = p.select(challenge(offer(amount=68_000), offer(amount=17_000), offer(amount=34_000)))
    assert chosen.amount == 17_000


def test_preferred_asset_wins_then_falls_back():
    tmai_offer = offer(amount=10**18, asset=SANDBOX_TMAI.address, extra={"name": "Token Metrics AI", "version": "1"})
    usdc = offer(amount=17_000)
    p = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI], asset_limits={"TMAI": {"max_per_call": "5"}})
    assert p.select(challenge(usdc, tmai_offer)).asset.symbol == "TMAI"
    p2 = SpendPolicy(pay_with="usdc", extra_assets=[SANDBOX_TMAI], asset_limits={"TMAI": {"max_per_call": "5"}})
    assert p2.select(challenge(tmai_offer, usdc)).asset.symbol == "USDC"
    # TMAI over its own cap: refuse; switching assets must never get around a cap.
    p3 = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI], asset_limits={"TMAI": {"max_per_call": "0.5"}})
    with pytest.raises(BudgetExceeded, match="TMAI"):
        p3.select(challenge(tmai_offer, usdc))
    # Preferred asset not offered at all: the other allowed asset is fine.
    assert p3.select(challenge(usdc)).asset.symbol == "USDC"


TMAI_EXTRA = {"name": "Token Metrics AI", "version": "1"}


def test_a_non_usd_asset_that_cannot_be_valued_is_refused_naming_the_setting():
    tmai_offer = offer(amount=10**18, asset=SANDBOX_TMAI.address, extra=TMAI_EXTRA)
    p = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI])
    with pytest.raises(BudgetExceeded, match="cannot be valued in USD") as info:
        p.select(challenge(tmai_offer))
    assert "usd_rates" in info.value.hint and info.value.details["setting"] == "usd_rates"
    assert p.spent_usd() == 0


def test_tmai_counts_at_the_same_challenges_usdc_price_against_usd_caps():
    """Regression: TMAI skipped the budget and per-call cap; four 1.53 TMAI payments went through 0.01 USDC."""
    tmai_offer = offer(amount=153 * 10**16, asset=SANDBOX_TMAI.address, extra=TMAI_EXTRA)
    both = challenge(offer(amount=17_000), tmai_offer)
    p = SpendPolicy(budget="0.04", pay_with="tmai", extra_assets=[SANDBOX_TMAI])
    chosen = p.select(both)
    assert chosen.asset.symbol == "TMAI" and chosen.usd == 17_000  # the same call's dollar price
    for _ in range(2):
        p.authorize(p.select(both))
        p.commit(p.select(both))
    assert p.spent_usd() == 34_000
    with pytest.raises(BudgetExceeded, match="session budget"):
        p.select(both)  # a third would pass 0.04 USD, whatever asset it is paid in
    tight = SpendPolicy(max_per_call="0.01", pay_with="tmai", extra_assets=[SANDBOX_TMAI])
    with pytest.raises(BudgetExceeded, match="per-call cap"):
        tight.select(both)


def test_tmai_alone_is_valued_at_the_users_rate():
    tmai_offer = offer(amount=2 * 10**17, asset=SANDBOX_TMAI.address, extra=TMAI_EXTRA)  # 0.2 TMAI
    p = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI], usd_rates={"TMAI": "0.25"})
    assert p.select(challenge(tmai_offer)).usd == 50_000  # 0.2 × 0.25 USD
    with pytest.raises(ConfigurationError, match="usd_rates"):
        SpendPolicy(usd_rates={"TMAI": "0"})


def test_a_second_stablecoin_shares_the_one_usd_budget():
    """Regression: each stablecoin had its own full budget."""
    other = Asset("USDX", "0x" + "cd" * 20, "eip155:84532", 18, "USDX", "1", True, True)
    p = SpendPolicy(budget="0.03", extra_assets=[other])
    usdc = p.select(challenge(offer(amount=20_000)))
    p.commit(usdc)
    usdx = challenge(offer(amount=20 * 10**15, asset=other.address, extra={"name": "USDX", "version": "1"}))
    with pytest.raises(BudgetExceeded, match="session budget"):
        p.select(usdx)


def test_mainnet_refused_on_testnet_session():
    p = SpendPolicy()
    with pytest.raises(PaymentRefused, match="mainnet is not allowed") as info:
        p.select(challenge(offer(network="base", asset=USDC_BASE.address)))
    assert "nothing was signed" in str(info.value)
    mainnet = SpendPolicy(network="base")
    assert mainnet.select(challenge(offer(network="base", asset=USDC_BASE.address))).network.chain_id == 8453
    both = SpendPolicy(allow_mainnet=True)
    assert set(both.networks) == {"eip155:84532", "eip155:8453"}


@pytest.mark.parametrize(
    "bad, why",
    [
        (offer(scheme="upto"), "scheme"),
        (offer(network="solana-devnet"), "unknown network"),
        (offer(asset="0x" + "11" * 20), "unknown asset"),
        (offer(asset="usdc"), "not a token address"),
        (offer(pay_to="merchant.eth"), "not an address"),
        (offer(timeout=0), "maxTimeoutSeconds"),
        (offer(timeout=-5), "maxTimeoutSeconds"),
        (offer(timeout=86_401), "maxTimeoutSeconds"),
        (offer(network="base", asset=TMAI_BASE.address), "mainnet"),
    ],
)
def test_bad_offers_are_refused_with_reason(bad, why):
    with pytest.raises(PaymentRefused, match=why):
        SpendPolicy().select(challenge(bad))


def test_unverified_tmai_address_needs_configuration():
    tm = offer(network="base", asset=TMAI_BASE.address, amount=10**17, extra={"name": "TMAI", "version": "1"})
    with pytest.raises(PaymentRefused, match="unverified"):
        SpendPolicy(network="base").select(challenge(tm))
    ok = SpendPolicy(network="base", pay_with="tmai", usd_rates={"TMAI": "0.05"})
    assert ok.select(challenge(tm)).asset == TMAI_BASE


def test_limiting_an_unverified_asset_configures_it():
    tm = offer(network="base", asset=TMAI_BASE.address, amount=10**17, extra={"name": "TMAI", "version": "1"})
    p = SpendPolicy(network="base", asset_limits={"TMAI": AssetLimit(max_per_call="1")}, usd_rates={"TMAI": "0.05"})
    assert p.pay_with == "usdc" and p.select(challenge(tm)).asset == TMAI_BASE


def test_any_unverified_known_asset_is_configured_by_naming_it(monkeypatch):
    """Nothing in the policy is specific to TMAI: another unverified token works the same way."""
    abc = Asset("ABC", "0x" + "ab" * 20, "eip155:84532", 18, "ABC", "1", False, False)
    for module in ("tm402_nb.x402.policy", "tm402_nb.x402.networks"):
        monkeypatch.setattr(f"{module}.KNOWN_ASSETS", (USDC_BASE_SEPOLIA, abc))
    abc_offer = offer(amount=10**18, asset=abc.address)
    with pytest.raises(PaymentRefused, match="pay_with='abc'"):
        SpendPolicy().select(challenge(abc_offer))
    named = SpendPolicy(pay_with="ABC", asset_limits={"ABC": {"max_per_call": "2"}})
    assert named.pay_with == "abc" and named.select(challenge(offer(), abc_offer)).asset == abc


def test_pay_with_must_name_a_known_asset():
    with pytest.raises(ConfigurationError, match="known asset"):
        SpendPolicy(pay_with="doge")
    assert SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI]).pay_with == "tmai"


def test_one_choice_can_prefer_another_asset_without_changing_the_policy():
    tmai_offer = offer(amount=10**18, asset=SANDBOX_TMAI.address, extra={"name": "Token Metrics AI", "version": "1"})
    both = challenge(offer(amount=17_000), tmai_offer)
    p = SpendPolicy(extra_assets=[SANDBOX_TMAI], asset_limits={"TMAI": {"max_per_call": "5"}})
    assert p.select(both, pay_with="tmai").asset.symbol == "TMAI"
    assert p.select(both, pay_with="TMAI").asset.symbol == "TMAI"
    assert p.select(both).asset.symbol == "USDC" and p.pay_with == "usdc"


def test_one_choice_can_carry_its_own_per_call_cap():
    p = SpendPolicy()  # 0.10 per call
    twenty_cents = challenge(offer(amount=200_000))
    o = p.select(twenty_cents, max_per_call="0.50")
    p.authorize(o, max_per_call="0.50")
    p.check_batch(o, 2, max_per_call="0.50")
    for refuse in (
        lambda: p.select(twenty_cents),
        lambda: p.authorize(o),
        lambda: p.check_batch(o, 2),
        lambda: p.select(twenty_cents, max_per_call="0.15"),
    ):
        with pytest.raises(BudgetExceeded, match="per-call cap"):
            refuse()
    assert p.max_per_call == 100_000  # the policy itself never changed


def test_unknown_asset_without_domain_is_refused():
    custom = Asset("XYZ", "0x" + "22" * 20, "eip155:84532", 6, None, None, True, True)
    p = SpendPolicy(extra_assets=[custom], assets=[custom])
    with pytest.raises(PaymentRefused, match="EIP-712"):
        p.select(challenge(offer(asset=custom.address)))
    assert p.select(challenge(offer(asset=custom.address, extra={"name": "XYZ", "version": "1"}))).asset == custom


def test_payee_allow_list_and_pinning():
    other = "0x" + "33" * 20
    p = SpendPolicy(payees=[PAY_TO])
    with pytest.raises(PaymentRefused, match="allowed payees"):
        p.select(challenge(offer(pay_to=other)))
    pinned = SpendPolicy()
    first = pinned.select(challenge(offer()), origin="http://a:80")
    pinned.commit(first, "http://a:80")
    with pytest.raises(PaymentRefused, match="payee changed"):
        pinned.select(challenge(offer(pay_to=other)), origin="http://a:80")
    assert pinned.select(challenge(offer(pay_to=other)), origin="http://b:80")  # another server is fine


def test_session_budget_counts_and_releases():
    p = SpendPolicy(budget="0.05")
    o = p.select(challenge(offer(amount=20_000)))
    p.authorize(o)
    p.commit(o)
    p.commit(o)
    with pytest.raises(BudgetExceeded, match="left of the session budget"):
        p.authorize(o)
    p.release(o)  # a refused payment gives its money back
    p.authorize(o)
    assert p.spent_usd() == 20_000


def test_daily_cap_is_read_from_the_ledger(ledger):
    p = SpendPolicy(daily_cap="0.05")
    o = p.select(challenge(offer(amount=20_000)))
    for _ in range(2):
        with ledger.transaction() as tx:
            p.authorize(o, tx)
            tx.insert_payment(PaymentRecord(20_000, o.asset.address, o.network.caip2, PAY_TO, "0x1", "0x2", 0))
    with ledger.transaction() as tx, pytest.raises(BudgetExceeded, match="daily cap"):
        p.authorize(o, tx)
    # A fresh policy (another kernel) sees the same spending.
    with ledger.transaction() as tx, pytest.raises(BudgetExceeded):
        SpendPolicy(daily_cap="0.05").authorize(o, tx)


def test_daily_cap_without_ledger_is_a_configuration_error():
    p = SpendPolicy(daily_cap="1")
    o = p.select(challenge(offer()))
    with pytest.raises(ConfigurationError, match="ledger"):
        p.authorize(o)


def test_scope_cap():
    p = SpendPolicy()
    scope = p.open_scope("cell", "0.03")
    o = p.select(challenge(offer(amount=17_000)))
    p.authorize(o)
    p.commit(o)
    with pytest.raises(BudgetExceeded, match="cell cap"):
        p.select(challenge(offer(amount=17_000)))
    p.close_scope(scope)
    assert p.select(challenge(offer(amount=17_000)))


@pytest.mark.parametrize("value", ["$0.10", "ten", "-1", "0.0000001", float("nan")])
def test_bad_amount_settings(value):
    with pytest.raises(ConfigurationError):
        SpendPolicy(max_per_call=value)


def test_concurrent_threads_cannot_overspend():
    p = SpendPolicy(budget="1.00")
    o = p.select(challenge(offer(amount=30_000)))
    approved = []

    def worker():
        for _ in range(20):
            with p.lock:
                try:
                    p.authorize(o)
                except BudgetExceeded:
                    continue
                p.commit(o)
                approved.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(approved) == 33  # floor(1.00 / 0.03)
    assert p.spent_usd() == 990_000


def test_release_gives_back_to_the_scopes_the_payment_was_counted_in():
    """Regression: releasing a payment from an earlier cell credited the cell open now."""
    p = SpendPolicy()
    o = p.select(challenge(offer(amount=20_000)))
    cell1 = p.open_scope("cell", "0.05")
    scopes = p.commit(o)
    p.close_scope(cell1)
    cell2 = p.open_scope("cell", "0.05")
    p.commit(o)
    p.commit(o)
    p.release(o, scopes)  # the cell-1 payment is refused later
    assert cell2.spent == 40_000
    with pytest.raises(BudgetExceeded, match="cell cap"):
        p.authorize(o)


@pytest.mark.parametrize(
    ("anchor", "policy_kw"),
    [
        (offer(amount=1, network="base", asset=USDC_BASE.address), {}),  # another network
        (offer(amount=1, scheme="bogus"), {}),  # a scheme this policy does not pay
        (offer(amount=1, extra={"name": "USD Coin", "version": "2", "assetTransferMethod": "teleport"}), {}),
        (offer(amount=1), {"assets": [SANDBOX_TMAI]}),  # USDC is not among the allowed assets
        (offer(amount=1, timeout=10**9), {}),  # a timeout this policy refuses
    ],
    ids=["other-network", "scheme", "transfer-method", "asset-not-allowed", "timeout"],
)
def test_tmai_is_never_valued_by_a_stablecoin_price_the_policy_would_not_pay(anchor, policy_kw):
    """Review: a hostile server listed an unpayable 1-unit USDC price beside 1000 TMAI, and the
    TMAI payment counted as 0.000001 USD against every cap."""
    tmai_offer = offer(amount=1000 * 10**18, asset=SANDBOX_TMAI.address, extra=TMAI_EXTRA)
    p = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI], **policy_kw)
    with pytest.raises(PaymentRefused) as info:
        p.select(challenge(anchor, tmai_offer))
    assert info.value.details["setting"] == "usd_rates" and p.spent_usd() == 0
    # With the user's rate it is valued at that rate (the unpayable price plays no part).
    rated = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI], usd_rates={"TMAI": "0.02"}, **policy_kw)
    with pytest.raises(BudgetExceeded) as over:
        rated.select(challenge(anchor, tmai_offer))
    assert over.value.details["asked_usd"] == 20_000_000  # 1000 TMAI at 0.02 USD


def test_tmai_takes_the_highest_payable_stablecoin_price_of_the_challenge():
    tmai_offer = offer(amount=10**18, asset=SANDBOX_TMAI.address, extra=TMAI_EXTRA)
    cheap_elsewhere = offer(amount=1, network="base", asset=USDC_BASE.address)
    p = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI])
    chosen = p.select(challenge(cheap_elsewhere, offer(amount=17_000), offer(amount=34_000), tmai_offer))
    assert chosen.asset.symbol == "TMAI" and chosen.usd == 34_000
