"""Venue feed fields of the Market JSON survive market_from_dict → market_to_dict (engine.account reads them)."""
import copy

import pytest

from engine.account import feeds_from_market_dict
from engine.market import MarketError, market_from_dict, market_to_dict
from engine.samples import demo_market

BASE = market_to_dict(demo_market())


def with_feeds() -> dict:
    data = copy.deepcopy(BASE)
    data.update(stable_price=0.998, stable_confidence=0.9)
    btc = data["underlyings"]["BTC"]
    btc.update(spot_confidence=0.95, perp_mark=btc["spot"] + 25.0, perp_confidence=0.8)
    btc["smile"][0].update(forward_confidence=0.7, rate_confidence=0.6, vol_confidence=0.5)
    return data


def test_feed_fields_survive_a_round_trip():
    data = with_feeds()
    saved = market_to_dict(market_from_dict(data))
    assert saved["stable_price"] == 0.998 and saved["stable_confidence"] == 0.9
    btc = saved["underlyings"]["BTC"]
    assert (btc["spot_confidence"], btc["perp_confidence"]) == (0.95, 0.8)
    assert btc["perp_mark"] == data["underlyings"]["BTC"]["spot"] + 25.0
    first = btc["smile"][0]
    assert (first["forward_confidence"], first["rate_confidence"], first["vol_confidence"]) == (0.7, 0.6, 0.5)
    feeds = feeds_from_market_dict(saved)
    expiry = market_from_dict(data).underlyings["BTC"].smile[0].expiry
    assert feeds.stable_price == 0.998 and feeds.stable_confidence == 0.9
    assert feeds.spot_conf("BTC") == 0.95 and feeds.perp_conf("BTC") == 0.8
    assert feeds.slice("BTC", expiry).confidence == 0.5


def test_absent_feed_fields_take_their_defaults_and_stay_absent():
    market = market_from_dict(BASE)
    assert (market.stable_price, market.stable_confidence) == (1.0, 1.0)
    u = market.underlyings["BTC"]
    assert (u.spot_confidence, u.perp_confidence, u.perp_price) == (1.0, 1.0, u.spot)
    s = u.smile[0]
    assert (s.forward_confidence, s.rate_confidence, s.vol_confidence) == (1.0, 1.0, 1.0)
    saved = market_to_dict(market)
    assert "stable_price" not in saved and "spot_confidence" not in saved["underlyings"]["BTC"]
    assert "vol_confidence" not in saved["underlyings"]["BTC"]["smile"][0]


def test_confidences_survive_a_spot_shock():
    market = market_from_dict(with_feeds()).with_spot_shock(-0.2)
    assert market.underlyings["BTC"].spot_confidence == 0.95 and market.stable_price == 0.998


@pytest.mark.parametrize("path, value, field", [
    ((), ("stable_confidence", 1.5), "stable_confidence"),
    ((), ("stable_price", 0.0), "stable_price"),
    (("underlyings", "BTC"), ("spot_confidence", -0.1), "underlyings.BTC.spot_confidence"),
    (("underlyings", "BTC", "smile", 0), ("vol_confidence", "high"), "underlyings.BTC.smile[0].vol_confidence"),
])
def test_bad_feed_field_names_itself(path, value, field):
    data = copy.deepcopy(BASE)
    target = data
    for key in path:
        target = target[key]
    target[value[0]] = value[1]
    with pytest.raises(MarketError, match=field.replace("[", r"\[").replace("]", r"\]")):
        market_from_dict(data)
