"""The account: JSON round trip and errors, collateral in margin and health, coin denomination."""
import pytest

from engine.account import AccountError, account_to_dict, load_account
from engine.instruments import parse_instrument as parse
from engine.margin import compute
from engine.margin.account import account_health, account_requirement
from engine.margin.risk_based import load_preset
from engine.portfolio import Book, Position
from engine.samples import demo_market

MARKET = demo_market()
S = MARKET.spot("BTC")
SHORT_PUT = Book((Position(parse("BTC-25DEC26-90000-P"), -10.0),))
SHORT_CALL = Book((Position(parse("BTC-25DEC26-100000-C"), -10.0),))


def btc(amount, rc):
    return {"cash": 0.0, "collateral": [{"asset": "BTC", "amount": amount, "underlying": "BTC",
                                         "risk_cancelling": rc, "im_haircut": 0.0, "mm_haircut": 0.0}]}


def test_account_json_round_trip_and_old_store():
    data = {"cash": 2000000.0, "collateral": [{"asset": "BTC", "amount": 2.3, "underlying": "BTC",
                                               "im_haircut": 0.05, "mm_haircut": 0.25, "risk_cancelling": False,
                                               "confidence": 1.0}]}
    account = load_account(data)
    assert load_account(account_to_dict(account)) == account
    assert account_to_dict(account)["collateral"][0] == data["collateral"][0]
    assert load_account(250_000.0).cash == 250_000.0 and load_account(250_000.0).collateral == ()


@pytest.mark.parametrize("data, field", [
    ({"cash": "lots"}, "cash"),
    ({"cash": 0, "collateral": [{"asset": "BTC", "amount": "x", "underlying": "BTC"}]}, "collateral[0].amount"),
    ({"cash": 0, "collateral": [{"asset": "USDT", "amount": 1.0}]}, "collateral[0].price"),
    ({"cash": 0, "collateral": [{"asset": "BTC", "amount": 1, "underlying": "BTC", "mm_haircut": 2}]},
     "collateral[0].mm_haircut"),
    ({"cash": 0, "denomination": "DOGE"}, "denomination"),
])
def test_bad_account_names_the_field(data, field):
    with pytest.raises(AccountError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_account(data)


def test_health_refuses_none_or_text_collateral():
    for bad in (None, "1e6"):
        with pytest.raises(AccountError, match="collateral"):
            account_health(SHORT_PUT, MARKET, bad)


def test_usd_only_account_is_unchanged():
    for model in ("risk_based", "standard", "span"):
        alone = compute(SHORT_PUT, MARKET, model)
        with_cash = compute(SHORT_PUT, MARKET, model, account={"cash": 1e6, "collateral": []})
        assert with_cash.initial == alone.initial and with_cash.maintenance == alone.maintenance
    assert account_health(SHORT_PUT, MARKET, 1e6).equity == account_health(SHORT_PUT, MARKET, {"cash": 1e6}).equity


def test_btc_collateral_against_a_short_put_raises_margin():
    # Wrong-way: the put loses when BTC falls and so does the collateral, in the same scenario.
    alone = compute(SHORT_PUT, MARKET, "risk_based").initial
    with_btc = compute(SHORT_PUT, MARKET, "risk_based", account=btc(20.0, True)).initial
    # The binding −16 % scenario adds the collateral's 16 % fall: 0.16 × 20 × S.
    assert with_btc == pytest.approx(alone + 0.16 * 20.0 * S, rel=1e-9)


def test_risk_cancelling_collateral_against_a_short_call_lowers_margin():
    alone = compute(SHORT_CALL, MARKET, "risk_based").initial
    covered = compute(SHORT_CALL, MARKET, "risk_based", account=btc(5.0, True)).initial
    assert covered < alone  # the call's upside loss is offset; the downside is the collateral's own


def test_haircuts_and_oracle_contingency_of_collateral():
    account = {"cash": 0.0, "collateral": [{"asset": "USDE", "amount": 10000.0, "price": 1.0, "im_haircut": 0.05,
                                            "mm_haircut": 0.2, "confidence": 0.5}]}
    r = compute(Book(), MARKET, "risk_based", load_preset("derive"), account=account)
    # MM = 20 % of 10,000; IM = MM + 5 % + (1 − 0.5)·1.0 of 10,000 (confidence 0.5 < 0.55)
    assert r.maintenance == pytest.approx(2000.0)
    assert r.initial == pytest.approx(2000.0 + 500.0 + 5000.0)


def test_coin_margined_equity_is_usd_equity_over_spot():
    account = {"cash": 0.0, "denomination": "BTC",
               "collateral": [{"asset": "BTC", "amount": 5.0, "underlying": "BTC"}]}
    h = account_health(SHORT_PUT, MARKET, account, "risk_based")
    usd = account_health(SHORT_PUT, MARKET, dict(account, denomination="USD"), "risk_based")
    assert h.currency == "BTC" and h.equity == pytest.approx(usd.equity)
    assert h.in_currency(h.equity) == pytest.approx(usd.equity / S)
    r = compute(SHORT_PUT, MARKET, "risk_based", account=account)
    assert r.currency == "BTC" and r.maintenance * S == pytest.approx(h.maintenance, rel=1e-9)


@pytest.mark.parametrize("denomination", ["USD", "BTC"])
def test_liquidation_price_moves_the_collateral_with_spot(denomination):
    account = {"cash": 0.0, "denomination": denomination,
               "collateral": [{"asset": "BTC", "amount": 4.0, "underlying": "BTC"}]}
    h = account_health(SHORT_PUT, MARKET, account, "risk_based")
    assert h.liquidation_shock_down is not None
    moved = MARKET.with_spot_shock(h.liquidation_shock_down)
    there = account_health(SHORT_PUT, moved, account, "risk_based")
    # Repriced at the liquidation price (collateral included), equity equals MM.
    assert there.equity == pytest.approx(there.maintenance, rel=1e-6, abs=1e-3)
    # Without the wrong-way move, the same USD value as cash liquidates further away.
    cash = account_health(SHORT_PUT, MARKET, {"cash": 4.0 * S, "denomination": "USD"}, "risk_based")
    assert cash.liquidation_shock_down is None or cash.liquidation_shock_down < h.liquidation_shock_down


def test_venue_feed_fields_ride_in_the_market_json():
    data = {"valuation_time": "2026-11-24T08:00:00Z", "stable_price": 0.99, "stable_confidence": 0.9,
            "underlyings": {"BTC": {"spot": 95000.0, "spot_confidence": 0.5, "perp_mark": 95100.0,
                                    "perp_confidence": 0.7,
                                    "smile": [{"expiry": "2026-12-25", "atm_vol": 0.5, "forward_confidence": 0.6,
                                               "rate": 0.04}]}}}
    from datetime import date

    from engine.account import feeds_from_market_dict
    from engine.market import market_from_dict
    assert market_from_dict(data).spot("BTC") == 95000.0  # the market loader ignores the feed fields
    feeds = feeds_from_market_dict(data)
    assert (feeds.stable_price, feeds.stable_confidence) == (0.99, 0.9)
    assert feeds.spot_conf("BTC") == 0.5 and feeds.perp_mark["BTC"] == 95100.0 and feeds.perp_conf("BTC") == 0.7
    s = feeds.slice("BTC", date(2026, 12, 25))
    assert s.forward_confidence == 0.6 and s.rate == 0.04 and s.confidence == 0.6
    assert feeds.slice("BTC", date(2027, 1, 1)).confidence == 1.0 and feeds.spot_conf("ETH") == 1.0


def test_coin_denomination_without_market_data_names_the_field():
    from engine.market import market_from_dict
    btc_only = market_from_dict({"valuation_time": "2026-11-24T08:00:00Z", "underlyings": {
        "BTC": {"spot": 95000.0, "smile": [{"expiry": "2026-12-25", "atm_vol": 0.5}]}}})
    with pytest.raises(AccountError, match="denomination"):
        compute(SHORT_PUT, btc_only, "risk_based", account={"cash": 0.0, "denomination": "ETH"})


def test_account_equity_takes_an_account():
    from engine.margin.account import account_equity
    from engine.margin.core import margin_book
    mb = margin_book(SHORT_PUT, MARKET)
    shocked = mb.universe.shocked(-0.1)
    account = {"cash": 1000.0, "collateral": [{"asset": "BTC", "amount": 2.0, "underlying": "BTC"}]}
    # the collateral is worth 2 BTC at the moved spot
    assert account_equity(mb, account, shocked) == pytest.approx(account_equity(mb, 1000.0 + 2 * 0.9 * S, shocked))


@pytest.mark.parametrize("model", ["standard", "span", "tims", "greeks_based"])
def test_coin_account_results_of_other_models_are_usd_over_spot(model):
    usd = compute(SHORT_PUT, MARKET, model)
    coin = compute(SHORT_PUT, MARKET, model, account={"cash": 0.0, "denomination": "BTC"})
    assert coin.currency == "BTC" and coin.initial == pytest.approx(usd.initial / S)
    assert coin.by_position["marginal"].sum() == pytest.approx(usd.by_position["marginal"].sum() / S)


@pytest.mark.parametrize("account", [
    {"cash": 300_000.0},
    {"cash": 5.0, "denomination": "BTC", "collateral": [{"asset": "BTC", "amount": 3.0, "underlying": "BTC"}]},
])
def test_account_requirement_is_the_health_without_its_search(account):
    """The dashboard header's (equity, IM, MM): USD, the same as the health's, and for a coin
    account the coin-denominated compute() result times spot."""
    equity, im, mm = account_requirement(SHORT_PUT, MARKET, account, "risk_based")
    h = account_health(SHORT_PUT, MARKET, account, "risk_based")
    assert (equity, im, mm) == pytest.approx((h.equity, h.initial, h.maintenance))
    r = compute(SHORT_PUT, MARKET, "risk_based", account=account)
    to_usd = S if r.currency == "BTC" else 1.0
    assert (im, mm) == pytest.approx((r.initial * to_usd, r.maintenance * to_usd))
    with pytest.raises(AccountError, match="collateral"):
        account_requirement(SHORT_PUT, MARKET, "lots", "risk_based")
