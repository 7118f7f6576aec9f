"""The dashboard in a real headless browser (Debian's chromium, driven by Selenium): every number on
the page equals the Stats API's for the same view (read from the data-metric/data-value attributes),
filters live in the URL (click a row, remove a chip, back and forward), the export's CSVs equal the
API, traffic strings are never run as HTML, and pages load offline. Screenshots of each page go to
test-artifacts/."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.parse
import zipfile
from dataclasses import replace
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from selenium.webdriver.support.ui import Select

from core.lake import layout
from core.lake.storage import FileStorage
from events.days import day_bounds
from serving.dashboard.panels import PANELS, PROPS_TAB, TABS, TOPLINE, with_key
from serving.realtime.duckdb_store import DuckDBStore
from serving.registry import Registry
from serving.store import restatements
from tests.harness import free_port, make_settings, wait_until
from tests.serving.conftest import D1, D2, MINUTE, agg_row, clean_event, close_day, day1, day2, serving

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
A = "a.example"
XSS = '<img src=x onerror="window.__xss=1">'
RANGE = f"period=custom&date={D1},{D2}"


def located(event: dict, country: str, region: str, city: str) -> dict:
    return {**event, "country": country, "region": region, "city": city}


@pytest.fixture
def site(tmp_path):
    """a.example over D1 and D2 (with countries, a campaign that looks like a formula, and a page,
    source, event and property carrying HTML), a goal, speed rows of the last minutes; b.example
    private. (URL, b's token)."""
    settings = make_settings(tmp_path / "data", serving_port=free_port())
    storage = FileStorage(settings.data_dir)
    t = day_bounds(D1)[0]
    countries = [("US", "California", "San Francisco"), ("DE", "Berlin", "Berlin"), ("US", "Texas", "Austin")]
    first = [located(e, *countries[i % 3]) for i, e in enumerate(day1())]
    odd = [
        clean_event(A, t + 400 * MINUTE, "x1", f"/{XSS}", source=XSS, country="FR", props={XSS: XSS}),
        clean_event(A, t + 401 * MINUTE, "x1", f"/{XSS}", name=XSS, props={"plan": XSS}),
        clean_event(A, t + 410 * MINUTE, "x2", "/landing", source="Newsletter", campaign="=1+2"),
    ]
    close_day(storage, D1, first + odd)
    close_day(storage, D2, [located(e, "DE", "Bavaria", "Munich") for e in day2()])
    # D2 as the API answered it live, before the nightly job closed it (10 pageviews, 5 visitors).
    restatements.record(storage, D2, {A: (9, 5)}, {A: (10, 5)}, "live", "1")
    # What the nightly job filtered out of D1 (views/rejected, as batch_layer.job writes it).
    bot = json.dumps({"ts": t, "page": f"/{XSS}", "source": "", "browser": "Googlebot"})
    rejected = pa.table(
        {
            "site": [A, A, "b.example"],
            "reason": ["bot", "duplicate", "bot"],
            "family": ["Googlebot", "", "curl"],
            "events": [7, 2, 4],
            "samples": [[bot], [bot], [bot]],
        }
    )
    sink = io.BytesIO()
    pq.write_table(rejected, sink)
    storage.write_atomic(f"{layout.view_dir(layout.REJECTED_VIEW, D1)}/part-0.parquet", sink.getvalue())
    live = DuckDBStore(settings.realtime_db)
    now = int(time.time() * 1000)
    live.ingest([agg_row(now - 3 * MINUTE, 4, ["r1", "r2"], site=A, page="/live", source="Google")])
    live.db.close()
    registry = Registry(settings.registry_database_url)
    registry.create_site(A, public=True)
    registry.create_site("b.example")
    registry.create_goal(A, event="Signup")
    token = registry.create_token("b.example")
    with serving(settings, D2) as base:
        yield base, token


def loaded(browser, url: str | None = None, state: str = "true"):
    """Wait for the page (a site page: the view its URL names) to be drawn."""
    if url is not None:
        browser.get(url)

    def drawn() -> bool:
        body = browser.find_element("tag name", "body")
        if body.get_attribute("data-loaded") not in (state, "error"):
            return False
        return (
            body.get_attribute("data-page") != "site"
            or state != "true"
            or (body.get_attribute("data-view") == browser.execute_script("return location.search"))
        )

    wait_until(drawn, 30, message=f"{url or browser.current_url} loaded")
    assert browser.find_element("tag name", "body").get_attribute("data-loaded") == state, browser.find_element(
        "id", "error"
    ).text
    return browser


def value_of(browser, metric: str, within: str = "#numbers"):
    found = browser.find_element("css selector", f'{within} [data-metric="{metric}"]').get_attribute("data-value")
    return None if found is None else json.loads(found)


def table_rows(browser, prop: str) -> list[list]:
    """A panel table's rows: the row's value, then each metric's exact value."""
    rows = []
    for tr in table_trs(browser, prop):
        cells = tr.find_elements("css selector", "td[data-metric]")
        rows.append([tr.get_attribute("data-value"), *(json.loads(td.get_attribute("data-value")) for td in cells)])
    return rows


def table_trs(browser, prop: str) -> list:
    """The rows of the table of a property (compared as text: a property may hold any character)."""
    tables = [
        t
        for t in browser.find_elements("css selector", "table[data-property]")
        if t.get_attribute("data-property") == prop
    ]
    return [tr for t in tables for tr in t.find_elements("css selector", "tbody tr")]


def panel_drawn(browser, panel: str, also=lambda: True) -> None:
    """Wait for a panel's newest drawing (and ``also``)."""
    card = f"#panel-{panel}"
    wait_until(
        lambda: browser.find_element("css selector", card).get_attribute("data-loaded") == "true" and also(),
        20,
        message=f"panel {panel} drawn",
    )


def row_of(browser, prop: str, value: str):
    return next(tr for tr in table_trs(browser, prop) if tr.get_attribute("data-value") == value)


def api(base: str, path: str, **params):
    response = httpx.get(f"{base}/api/v1/stats/{path}", params={"site_id": A, **params})
    assert response.status_code == 200, response.text
    return response.json()


def api_rows(base: str, tab, filters: str = "", limit: int = 10) -> list[list]:
    key = tab.property.removeprefix("event:props:").split(":", 1)[-1]
    answer = api(
        base,
        "breakdown",
        period="custom",
        date=f"{D1},{D2}",
        property=tab.property,
        metrics=",".join(tab.metrics),
        filters=tab.filters(filters),
        limit=limit,
    )
    return [[r[key], *(r[m] for m in tab.metrics)] for r in answer["results"]]


def filters_in_url(browser) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlparse(browser.current_url).query).get("filters", [""])[0]


def check_the_view(browser, base: str, filters: str) -> None:
    """Top-line numbers (and changes), the chart and every panel's first tab equal the API's."""
    agg = api(
        base,
        "aggregate",
        period="custom",
        date=f"{D1},{D2}",
        metrics=",".join(TOPLINE),
        filters=filters,
        compare="previous_period",
    )["results"]
    for metric in TOPLINE:
        assert value_of(browser, metric) == agg[metric]["value"], metric
        assert value_of(browser, f"{metric}_change") == agg[metric]["change"], metric
    series = api(base, "timeseries", period="custom", date=f"{D1},{D2}", metrics="visitors,pageviews", filters=filters)
    points = json.loads(browser.find_element("id", "chart").get_attribute("data-points"))
    assert points == [[p["date"], p["visitors"], p["pageviews"]] for p in series["results"]]
    for panel in PANELS:
        assert table_rows(browser, panel.tabs[0].property) == api_rows(base, panel.tabs[0], filters), panel.id


def test_a_filtered_link_shows_the_apis_numbers_offline(site, browser):
    base, _ = site
    ARTIFACTS.mkdir(exist_ok=True)
    loaded(browser, f"{base}/sites/{A}?{RANGE}&filters=visit:country==US;visit:browser==Chrome")
    check_the_view(browser, base, "visit:country==US;visit:browser==Chrome")
    chips = [c.text for c in browser.find_elements("css selector", "#filters .chip")]
    assert chips == ["country is United States of America×", "browser is Chrome×"]
    assert value_of(browser, "visitors") == 2 and value_of(browser, "pageviews") == 3  # v1 (/, /docs), v3 (/blog/b)
    previous = json.loads(browser.find_element("id", "chart").get_attribute("data-previous"))
    assert [p[0] for p in previous] == ["2026-11-18", "2026-11-19"]  # the previous period, drawn dashed
    # Offline: every resource the page loaded came from this server.
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(base) for u in urls), urls
    browser.save_screenshot(str(ARTIFACTS / "dashboard-filtered.png"))


def test_clicking_rows_filters_and_back_and_forward_work(site, browser):
    base, _ = site
    loaded(browser, f"{base}/sites/{A}?{RANGE}")
    check_the_view(browser, base, "")
    row_of(browser, "event:page", "/pricing").click()
    loaded(browser)
    assert filters_in_url(browser) == "event:page==/pricing"
    assert [c.text for c in browser.find_elements("css selector", "#filters .chip")] == ["page is /pricing×"]
    check_the_view(browser, base, "event:page==/pricing")
    browser.find_element("css selector", 'table[data-property="visit:channel"] tbody tr').click()
    loaded(browser)
    channel = filters_in_url(browser).split(";")[1]
    assert channel.startswith("visit:channel==")
    check_the_view(browser, base, f"event:page==/pricing;{channel}")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-clicked.png"))

    browser.back()
    loaded(browser)
    assert filters_in_url(browser) == "event:page==/pricing"
    check_the_view(browser, base, "event:page==/pricing")
    browser.forward()
    loaded(browser)
    assert filters_in_url(browser) == f"event:page==/pricing;{channel}"
    browser.find_element("css selector", '#filters .chip[data-filter="event:page==/pricing"] .remove').click()
    loaded(browser)
    assert filters_in_url(browser) == channel
    check_the_view(browser, base, channel)


def test_tabs_the_map_goals_and_events(site, browser):
    base, _ = site
    loaded(browser, f"{base}/sites/{A}?{RANGE}")
    countries = {r[0]: r[1] for r in api_rows(base, PANELS[2].tabs[0], limit=300) if r[0]}  # "": unknown
    shaded = {
        p.get_attribute("data-code"): int(p.get_attribute("data-value"))
        for p in browser.find_elements("css selector", "svg.map path[data-value]")
    }
    assert shaded == countries and set(countries) == {"US", "DE", "FR"}
    us = browser.find_element("css selector", 'svg.map path[data-code="US"] title')
    assert us.get_attribute("textContent") == f"United States of America: {countries['US']} visitors"

    goals = table_rows(browser, "event:goal")
    assert goals[0][0] == "Signup" and goals[0][3] > 0  # with its conversion rate
    for panel in PANELS:
        for i, tab in enumerate(t for t in panel.tabs[1:] if t.property != PROPS_TAB):
            browser.find_element("css selector", f'#panel-{panel.id} .tab[data-tab="{tab.file}"]').click()
            panel_drawn(browser, panel.id)
            assert table_rows(browser, tab.property) == api_rows(base, tab), (panel.id, i)
    assert XSS in [r[0] for r in table_rows(browser, "event:name")]
    browser.save_screenshot(str(ARTIFACTS / "dashboard-tabs.png"))

    browser.find_element("css selector", '#panel-locations .tab[data-tab="countries"]').click()
    panel_drawn(browser, "locations", lambda: browser.find_elements("css selector", 'svg.map path[data-code="DE"]'))
    browser.find_element("css selector", 'svg.map path[data-code="DE"]').click()
    loaded(browser)
    assert filters_in_url(browser) == "visit:country==DE"
    browser.back()
    loaded(browser)

    # Custom properties: the keys of the view's events to choose from, then each key's values.
    browser.find_element("css selector", '#panel-goals .tab[data-tab="properties"]').click()
    panel_drawn(browser, "goals")
    keys = httpx.get(f"{base}/api/sites/{A}/props", params={"period": "custom", "date": f"{D1},{D2}"}).json()
    options = browser.find_elements("css selector", "#panel-goals select.prop-key option")
    assert [o.get_attribute("value") for o in options] == [k["key"] for k in keys["results"]]
    assert sorted(k["key"] for k in keys["results"]) == sorted(["plan", XSS])
    for key in ("plan", XSS):
        Select(browser.find_element("css selector", "#panel-goals select.prop-key")).select_by_value(key)
        prop = f"event:props:{key}"
        panel_drawn(browser, "goals")
        assert table_rows(browser, prop) == api_rows(base, replace(PANELS[4].tabs[2], property=prop))
    row_of(browser, f"event:props:{XSS}", XSS).click()
    loaded(browser)
    assert filters_in_url(browser) == f"event:props:{XSS}=={XSS}"
    assert value_of(browser, "visitors") == 1


def test_traffic_strings_are_text_never_html(site, browser):
    base, _ = site
    loaded(browser, f"{base}/sites/{A}?{RANGE}")
    page = row_of(browser, "event:page", f"/{XSS}")
    assert page.find_element("css selector", ".text").text == f"/{XSS}"
    page.click()  # the filter chip shows it too
    loaded(browser)
    assert XSS in browser.find_element("css selector", "#filters .chip").text
    assert value_of(browser, "pageviews") == 1 and value_of(browser, "visitors") == 1
    browser.find_element("css selector", '#panel-goals .tab[data-tab="custom_events"]').click()
    panel_drawn(browser, "goals")
    browser.find_element("css selector", '#panel-sources .tab[data-tab="sources"]').click()
    panel_drawn(browser, "sources")
    assert [r[0] for r in table_rows(browser, "visit:source")] == [XSS]
    assert browser.execute_script("return window.__xss") is None
    assert not browser.find_elements("css selector", "main img")  # nothing became an element


def test_filtered_out_traffic_is_shown(site, browser):
    base, _ = site
    loaded(browser, f"{base}/sites/{A}?{RANGE}")
    answer = httpx.get(f"{base}/api/v1/stats/rejected", params={"site_id": A, "period": "custom", "date": f"{D1},{D2}"})
    assert [(r["reason"], r["family"], r["events"]) for r in answer.json()["results"]] == [
        ("bot", "Googlebot", 7),
        ("duplicate", "", 2),
    ]
    assert table_rows(browser, "rejected") == [["bot:Googlebot", 7], ["duplicate", 2]]
    texts = [tr.text for tr in table_trs(browser, "rejected")]
    assert texts[0].startswith("Bots: Googlebot") and texts[1].startswith("Duplicates")
    assert "/<img src=x onerror=" in table_trs(browser, "rejected")[0].get_attribute("title")  # a sample, as text
    assert browser.execute_script("return window.__xss") is None


def test_export_zip_equals_the_api_and_escapes_formulas(site, browser, tmp_path):
    base, token = site
    filters = "visit:country==US"
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    loaded(browser, f"{base}/sites/{A}?{RANGE}&filters={filters}")
    browser.find_element("id", "export").click()
    wait_until(lambda: list(tmp_path.glob("*.zip")), 30, message="the export downloaded")
    (archive,) = tmp_path.glob("*.zip")
    assert archive.name == f"a.example-custom-{D1}_{D2}.zip"
    with zipfile.ZipFile(archive) as zipped:
        files = {name: list(csv.reader(io.StringIO(zipped.read(name).decode()))) for name in zipped.namelist()}
    view = {"period": "custom", "date": f"{D1},{D2}", "filters": filters}
    keys = httpx.get(f"{base}/api/sites/{A}/props", params=view)
    tabs = [t for t in TABS if t.property != PROPS_TAB] + [with_key(TABS[-1], k["key"]) for k in keys.json()["results"]]
    assert set(files) == {"visitors.csv", *(f"{tab.file}.csv" for tab in tabs)}
    series = api(base, "timeseries", period="custom", date=f"{D1},{D2}", metrics=",".join(TOPLINE), filters=filters)
    assert files["visitors.csv"][0] == ["date", *TOPLINE]
    assert files["visitors.csv"][1:] == [
        [p["date"], *("" if p[m] is None else str(p[m]) for m in TOPLINE)] for p in series["results"]
    ]
    for tab in tabs:
        rows = api_rows(base, tab, filters, limit=1000)
        assert files[f"{tab.file}.csv"][1:] == [[str(v) for v in row] for row in rows], tab.file

    everything = httpx.get(f"{base}/api/sites/{A}/export", params={"period": "custom", "date": f"{D1},{D2}"})
    with zipfile.ZipFile(io.BytesIO(everything.content)) as zipped:
        campaigns = list(csv.reader(io.StringIO(zipped.read("utm_campaigns.csv").decode())))
    assert ["'=1+2", "1", "1"] in campaigns  # a spreadsheet shows it, never computes it
    assert httpx.get(f"{base}/api/sites/b.example/export").status_code == 401
    private = httpx.get(f"{base}/api/sites/b.example/export", headers={"Authorization": f"Bearer {token}"})
    assert private.status_code == 200 and private.headers["content-type"] == "application/zip"


def test_copy_as_api_query_gives_the_same_numbers(site, browser):
    base, _ = site
    loaded(browser, f"{base}/sites/{A}?{RANGE}&filters=visit:browser==Chrome")
    browser.find_element("id", "copy-query").click()
    query = json.loads(browser.find_element("id", "api-query").text)
    assert query["date_range"] == [str(D1), str(D2)] and query["filters"] == [["is", "visit:browser", ["Chrome"]]]
    answer = httpx.post(f"{base}/api/v2/query", json=query).json()
    assert answer["results"][0]["metrics"] == [value_of(browser, m) for m in TOPLINE]


def test_sites_index_realtime_and_a_private_site(site, browser):
    base, token = site
    loaded(browser, f"{base}/")
    a = browser.find_element("css selector", f'li[data-site="{A}"]')
    today = api(base, "aggregate", period="day", metrics="visitors")["results"]["visitors"]["value"]
    assert json.loads(a.find_element("css selector", '[data-metric="visitors"]').get_attribute("data-value")) == today
    week = api(base, "timeseries", period="7d", metrics="visitors")["results"]
    assert json.loads(a.find_element("css selector", "svg.sparkline").get_attribute("data-points")) == [
        p["visitors"] for p in week
    ]
    assert "token needed" in browser.find_element("css selector", 'li[data-site="b.example"]').text
    browser.save_screenshot(str(ARTIFACTS / "dashboard-index.png"))

    browser.get(f"{base}/sites/{A}/snippet")
    wait_until(lambda: "p.gif" in browser.find_element("id", "snippet").text, 20, message="the snippet")
    assert f"/p.gif?site={A}" in browser.find_element("id", "snippet").text
    assert f'data-site="{A}"' in browser.find_element("id", "script-snippet").text

    loaded(browser, f"{base}/sites/{A}?period=realtime")
    assert value_of(browser, "pageviews", "#realtime") == 4 and value_of(browser, "visitors", "#realtime") == 2
    live = browser.find_element("css selector", '#rt-pages tr[data-value="/live"]')
    assert [
        json.loads(td.get_attribute("data-value")) for td in live.find_elements("css selector", "td[data-metric]")
    ] == [2, 4]
    browser.save_screenshot(str(ARTIFACTS / "dashboard-realtime.png"))

    loaded(browser, f"{base}/sites/b.example?{RANGE}", state="error")
    assert browser.find_element("id", "token-form").is_displayed()
    assert "pixel tokens create b.example" in browser.find_element("id", "error").text
    browser.find_element("id", "token").send_keys(token)
    browser.find_element("css selector", "#token-form button").click()
    loaded(browser)
    assert value_of(browser, "pageviews") == 3 and token not in browser.current_url

    browser.set_window_size(390, 844)  # a phone
    loaded(browser, f"{base}/sites/{A}?{RANGE}")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))


def test_the_day_view_is_by_hour_against_the_day_before(site, browser):
    base, _ = site
    loaded(browser, f"{base}/sites/{A}?period=day&date={D2}")
    hours = api(base, "timeseries", period="day", date=str(D2), metrics="visitors,pageviews", interval="hour")
    points = json.loads(browser.find_element("id", "chart").get_attribute("data-points"))
    assert len(points) == 24 and points == [[p["date"], p["visitors"], p["pageviews"]] for p in hours["results"]]
    previous = json.loads(browser.find_element("id", "chart").get_attribute("data-previous"))
    assert previous[0][0] == f"{D1} 00:00:00" and len(previous) == 24
    agg = api(base, "aggregate", period="day", date=str(D2), metrics="visitors", compare="previous_period")
    assert value_of(browser, "visitors") == agg["results"]["visitors"]["value"] == 5
    assert value_of(browser, "visitors_change") == agg["results"]["visitors"]["change"]


def test_restated_days_are_marked_on_the_chart(site, browser):
    base, _ = site
    loaded(browser, f"{base}/sites/{A}?{RANGE}")
    (dot,) = browser.find_elements("css selector", "#chart circle.restated")
    assert dot.get_attribute("data-restated") == "live 9, final 10 pageviews (+11.1%)"
    assert f"{D2}: " in dot.find_element("css selector", "title").get_attribute("textContent")
    answer = httpx.get(
        f"{base}/api/v1/stats/restatements", params={"site_id": A, "period": "custom", "date": f"{D1},{D2}"}
    )
    assert [(r["date"], r["difference"]) for r in answer.json()["results"]] == [
        (str(D2), {"pageviews": 1, "visitors": 0})
    ]
