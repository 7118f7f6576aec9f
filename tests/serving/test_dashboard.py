"""The dashboard in a real headless browser (Debian's chromium, driven by Selenium): pages load
offline, show exactly the numbers the Stats API gives, ask for a token on a private site; the
test saves screenshots (test-artifacts/)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.harness import wait_until
from tests.serving.conftest import D1, D2

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def loaded(browser, url: str, state: str = "true"):
    browser.get(url)
    wait_until(
        lambda: browser.find_element("tag name", "body").get_attribute("data-loaded") in (state, "error"),
        30,
        message=f"{url} loaded",
    )
    return browser


def text_of(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def test_site_page_shows_the_api_numbers(server, browser):
    base, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    params = {"site_id": "a.example", "period": "custom", "date": f"{D1},{D2}"}
    loaded(browser, f"{base}/sites/a.example?period=custom&date={D1},{D2}")
    assert browser.find_element("tag name", "body").get_attribute("data-loaded") == "true"
    assert not browser.find_element("id", "token-form").is_displayed()  # public: no token asked

    agg = httpx.get(
        f"{base}/api/v1/stats/aggregate", params={**params, "metrics": "visitors,pageviews,visits,bounce_rate"}
    ).json()["results"]
    assert text_of(browser, "visitors") == f"{agg['visitors']['value']:,}" == "9"
    assert text_of(browser, "pageviews") == f"{agg['pageviews']['value']:,}" == "17"
    assert text_of(browser, "visits") == "10" and text_of(browser, "bounce_rate") == f"{agg['bounce_rate']['value']}%"

    series = httpx.get(f"{base}/api/v1/stats/timeseries", params={**params, "metrics": "visitors,pageviews"}).json()
    points = browser.find_element("id", "chart").get_attribute("data-points")
    assert points == str([[p["date"], p["visitors"], p["pageviews"]] for p in series["results"]]).replace(
        "'", '"'
    ).replace(" ", "")

    pages = httpx.get(
        f"{base}/api/v1/stats/breakdown",
        params={**params, "property": "event:page", "metrics": "visitors,pageviews", "limit": 10},
    ).json()
    rows = browser.find_elements("css selector", 'table[data-property="event:page"] tbody tr')
    assert (
        [r.text.split() for r in rows]
        == [[p["page"], f"{p['visitors']:,}", f"{p['pageviews']:,}"] for p in pages["results"]]
        == [["/docs", "6", "11"], ["/", "2", "2"], ["/pricing", "2", "2"], ["/blog/a", "1", "1"], ["/blog/b", "1", "1"]]
    )
    assert (
        browser.find_element("css selector", 'table[data-property="visit:source"] tbody tr').text.split()[0] == "Google"
    )
    channel = browser.find_element("css selector", 'table[data-property="visit:channel"] tbody tr').text
    assert channel.startswith("Organic Search ")  # Google is an organic search
    assert browser.find_elements("css selector", 'table[data-property="visit:country"] tbody tr')
    credit = browser.find_element("css selector", "footer a")  # DB-IP's licence asks for the link
    assert credit.get_attribute("href") == "https://db-ip.com/" and "DB-IP" in credit.text
    assert text_of(browser, "live") == "0"
    browser.save_screenshot(str(ARTIFACTS / "dashboard-site.png"))
    assert (ARTIFACTS / "dashboard-site.png").stat().st_size > 10_000


def test_index_snippet_and_a_private_site(server, browser):
    base, token = server
    browser.get(f"{base}/")
    wait_until(lambda: "a.example" in text_of(browser, "sites"), 20, message="the site list")
    assert "b.example private" in text_of(browser, "sites")

    browser.get(f"{base}/sites/a.example/snippet")
    wait_until(lambda: "p.gif" in text_of(browser, "snippet"), 20, message="the snippet")
    assert "/p.gif?site=a.example" in text_of(browser, "snippet")
    assert 'data-site="a.example"' in text_of(browser, "script-snippet") and "/p.js" in text_of(
        browser, "script-snippet"
    )

    loaded(browser, f"{base}/sites/b.example?period=custom&date={D1},{D2}", state="never")
    assert browser.find_element("id", "token-form").is_displayed()
    assert "pixel tokens create b.example" in text_of(browser, "error")
    browser.find_element("id", "token").send_keys(token)
    browser.find_element("css selector", "#token-form button").click()
    wait_until(
        lambda: browser.find_element("tag name", "body").get_attribute("data-loaded") == "true",
        30,
        message="the private site with its token",
    )
    assert text_of(browser, "pageviews") == "3"
    browser.save_screenshot(str(ARTIFACTS / "dashboard-private.png"))
