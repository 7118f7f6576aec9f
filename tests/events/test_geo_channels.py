"""Where visitors are (DB-IP's database, fetched at setup) and which channel brought them (the
channels table), as golden tables; and both through the one enrichment, row and vectorized."""

from __future__ import annotations

import pandas as pd
import pytest

from events.channels import CHANNELS, channel_of
from events.enrich import enrich_event, enrich_frame
from events.geo import NOWHERE, Location, database_build, geo_database, locate

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    "network,expected",
    [
        ("8.8.8.0", Location("US", "California", "Mountain View")),
        ("81.2.69.0", Location("GB", "England", "London")),
        ("2a00:1450:4001::", Location("DE", "Hesse", "Frankfurt am Main")),
        # Private, reserved, documentation and broken addresses are nowhere, never an error.
        ("10.1.2.0", NOWHERE),
        ("192.168.0.0", NOWHERE),
        ("127.0.0.0", NOWHERE),
        ("198.51.100.0", NOWHERE),
        ("::1", NOWHERE),
        ("fe80::", NOWHERE),
        ("", NOWHERE),
        ("not an address", NOWHERE),
        ("999.1.1.0", NOWHERE),
    ],
)
def test_locations(network, expected):
    assert locate(network) == expected


def test_the_database_is_the_pinned_build():
    assert geo_database() is not None, "run `make setup`: it fetches the IP location database"
    assert database_build() == "dbip-city-lite 2026-06-05"


def test_a_missing_database_locates_nothing(monkeypatch, tmp_path):
    from events import geo

    monkeypatch.setenv(geo.GEO_DIR_VARIABLE, str(tmp_path))
    assert geo.geo_database() is None and locate("8.8.8.0") == NOWHERE and database_build() == ""


@pytest.mark.parametrize(
    "source,source_class,medium,campaign,click_id,channel",
    [
        ("Direct / None", "direct", "", "", "", "Direct"),
        ("Internal", "internal", "", "", "", "Direct"),
        ("Google", "search", "", "", "", "Organic Search"),
        ("Google", "search", "cpc", "", "", "Paid Search"),
        ("Direct / None", "direct", "", "", "gclid", "Paid Search"),  # an ad click without referrer
        ("Bing", "search", "", "", "msclkid", "Paid Search"),
        ("Facebook", "social", "", "", "", "Organic Social"),
        ("facebook", "other", "paid_social", "", "", "Paid Social"),  # utm_source names a social site
        ("YouTube", "social", "", "", "", "Organic Video"),
        ("YouTube", "social", "cpc", "", "", "Paid Video"),
        ("amazon.com", "other", "", "", "", "Organic Shopping"),
        ("newsletter", "other", "email", "", "", "Email"),
        ("Gmail", "email", "", "", "", "Email"),
        ("partner", "other", "affiliate", "", "", "Affiliates"),
        ("adnet", "other", "display", "", "", "Display"),
        ("adnet", "other", "cpc", "", "", "Paid Other"),
        ("adnet", "other", "cpc", "winter cross-network", "", "Cross-network"),
        ("sms", "other", "", "", "", "SMS"),
        ("podcast-app", "other", "audio", "", "", "Audio"),
        ("firebase", "other", "", "", "", "Mobile Push Notifications"),
        ("example-blog.net", "other", "", "", "", "Referral"),
        ("hn", "other", "social", "", "", "Organic Social"),
    ],
)
def test_channels(source, source_class, medium, campaign, click_id, channel):
    assert channel_of(source, source_class, medium, campaign, click_id) == channel
    assert channel in CHANNELS


def test_enrichment_locates_and_channels_row_and_vectorized_alike():
    raws = [
        {"url": "https://a.example/?utm_source=google&utm_medium=cpc", "referrer": "", "ip_trunc": "8.8.8.0"},
        {"url": "https://a.example/?gclid=abc", "referrer": "https://www.google.com/", "ip_trunc": "81.2.69.0"},
        {"url": "https://a.example/", "referrer": "https://t.co/x", "ip_trunc": "10.0.0.0"},
        {"url": "https://a.example/", "referrer": "", "ip_trunc": ""},
    ]
    raws = [{"event_id": f"e{i}", "ts": 1, "site": "a.example", "ua": "", **r} for i, r in enumerate(raws)]
    rows = [enrich_event(raw)[0] for raw in raws]
    wanted = [
        ("Paid Search", "US", "California", "Mountain View"),
        ("Paid Search", "GB", "England", "London"),
        ("Organic Social", "", "", ""),
        ("Direct", "", "", ""),
    ]
    assert [(r["channel"], r["country"], r["region"], r["city"]) for r in rows] == wanted
    frame = enrich_frame(pd.DataFrame(raws))
    assert list(frame[["channel", "country", "region", "city"]].itertuples(index=False, name=None)) == wanted
