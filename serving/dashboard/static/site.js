// The site page: the view's state lives in the URL (?period=&date=&filters=, filters in the Stats
// API v1 syntax), so any view is a link and back/forward work; every render reads it from there.
"use strict";

const SITE = siteOfPath();
const LABELS = {
  visitors: "Unique visitors", visits: "Total visits", pageviews: "Total pageviews", views_per_visit: "Views per visit",
  bounce_rate: "Bounce rate", visit_duration: "Visit duration", events: "Events", conversion_rate: "Conversion rate",
};
const COLUMN = { visitors: "Visitors", visits: "Visits", pageviews: "Pageviews", events: "Events", conversion_rate: "CR" };
let CONFIG = null;
let generation = 0; // a render's number: answers of an older render are dropped
let realtimeTimer = null;
const activeTab = {}; // panel id -> its tab shown
const activeKey = {}; // panel id -> the custom property shown in its properties tab

// --- the URL's state ---------------------------------------------------------------------------
function splitUnescaped(text, sep) {
  const parts = []; let current = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\\") { current += text.slice(i, i + 2); i++; } else if (text[i] === sep) { parts.push(current); current = ""; } else current += text[i];
  }
  return [...parts, current];
}
const unescapeValue = (v) => v.replace(/\\(.)/g, "$1");
const escapeValue = (v) => v.replace(/[\\;|]/g, "\\$&");

function readState() {
  const q = new URLSearchParams(location.search);
  const filters = splitUnescaped(q.get("filters") || "", ";").filter((f) => f.trim());
  return { period: q.get("period") || "30d", date: q.get("date") || "", filters };
}

function urlOf(state) {
  const q = new URLSearchParams({ period: state.period });
  if (state.date) q.set("date", state.date);
  if (state.filters.length) q.set("filters", state.filters.join(";"));
  return `${location.pathname}?${q}`;
}

function navigate(state) {
  history.pushState(null, "", urlOf(state));
  render();
}

function addFilter(property, value) {
  const state = readState();
  const filter = `${property}==${escapeValue(value)}`;
  if (!state.filters.includes(filter)) state.filters.push(filter);
  navigate(state);
}

function parseFilter(filter) {
  const eq = filter.indexOf("=="), ne = filter.indexOf("!=");
  const negated = ne >= 0 && (eq < 0 || ne < eq);
  const at = negated ? ne : eq;
  return { property: filter.slice(0, at), negated, values: splitUnescaped(filter.slice(at + 2), "|").map(unescapeValue) };
}

const propertyLabel = (property) => property.replace(/^(visit|event):(props:)?/, "").replace(/_/g, " ");
const params = (state) => ({ site_id: SITE, period: state.period, date: state.date, filters: state.filters.join(";") });

// --- formatting ----------------------------------------------------------------------------------
function duration(seconds) {
  const s = Math.round(seconds), m = Math.floor(s / 60);
  return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

function formatMetric(metric, value) {
  if (value === null || value === undefined) return "–";
  if (metric === "bounce_rate" || metric === "conversion_rate") return `${value}%`;
  if (metric === "visit_duration") return duration(value);
  if (metric === "views_per_visit") return String(value);
  return fmt(value);
}

// --- the report ----------------------------------------------------------------------------------
function renderChips(state) {
  const box = document.getElementById("filters");
  box.replaceChildren(...state.filters.map((filter, i) => {
    const f = parseFilter(filter);
    const label = f.property === "visit:country" ? f.values.map(countryName) : f.values;
    const remove = el("button", { type: "button", class: "remove", title: "remove this filter" }, "×");
    remove.addEventListener("click", () => navigate({ ...state, filters: state.filters.filter((_f, j) => j !== i) }));
    return el("span", { class: "chip", "data-filter": filter },
      el("span", { class: "chip-property" }, propertyLabel(f.property)), f.negated ? " is not " : " is ",
      el("strong", {}, label.join(" or ")), remove);
  }));
}

function renderNumbers(results) {
  const box = document.getElementById("numbers");
  box.replaceChildren(...CONFIG.topline.map((metric) => {
    const { value, change } = results[metric] || {};
    const changeText = change === null || change === undefined ? "" : `${change > 0 ? "↑" : change < 0 ? "↓" : ""} ${Math.abs(change)}${metric === "bounce_rate" ? " pt" : "%"}`;
    const good = metric === "bounce_rate" ? change < 0 : change > 0;
    return el("div", { class: "number" },
      el("span", { class: "label" }, LABELS[metric]),
      metricEl("span", metric, value, formatMetric(metric, value), "value"),
      metricEl("span", `${metric}_change`, change, changeText, `change ${change ? (good ? "up" : "down") : ""}`));
  }));
}

function restatedText(r) {
  const pct = r.change_pct.pageviews;
  return `${r.source === "live" ? "live" : "earlier run"} ${fmt(r.before.pageviews)}, final ${fmt(r.after.pageviews)} pageviews${pct === null ? "" : ` (${pct > 0 ? "+" : ""}${pct}%)`}`;
}

function drawChart(svg, now, before, restated) {
  const W = 800, H = 220, pad = 34;
  const max = Math.max(1, ...now.map((p) => p.visitors || 0), ...before.map((p) => p.visitors || 0));
  const n = Math.max(now.length, before.length);
  const x = (i) => pad + (n > 1 ? (i * (W - 2 * pad)) / (n - 1) : (W - 2 * pad) / 2);
  const y = (v) => H - pad - ((v || 0) * (H - 2 * pad)) / max;
  const line = (points) => points.map((p, i) => `${x(i).toFixed(1)},${y(p.visitors).toFixed(1)}`).join(" ");
  svg.dataset.points = JSON.stringify(now.map((p) => [p.date, p.visitors, p.pageviews]));
  svg.dataset.previous = JSON.stringify(before.map((p) => [p.date, p.visitors, p.pageviews]));
  svg.replaceChildren();
  if (!now.length) return;
  svg.append(svgEl("polygon", { class: "area", points: `${x(0)},${H - pad} ${line(now)} ${x(now.length - 1)},${H - pad}` }));
  if (before.length) svg.append(svgEl("polyline", { class: "previous", points: line(before) }));
  svg.append(svgEl("polyline", { class: "line", points: line(now) }));
  now.forEach((p, i) => {
    const change = (restated || {})[p.date];
    const dot = svgEl("circle", { cx: x(i).toFixed(1), cy: y(p.visitors).toFixed(1), r: change ? 5 : 3, class: change ? "dot restated" : "dot" });
    const then = before[i] ? `; previous period ${before[i].date}: ${fmt(before[i].visitors)}` : "";
    const note = change ? `; restated: ${restatedText(change)}` : "";
    if (change) dot.setAttribute("data-restated", restatedText(change));
    dot.append(svgEl("title", {}, `${p.date}: ${fmt(p.visitors)} visitors, ${fmt(p.pageviews)} pageviews${then}${note}`));
    svg.append(dot);
  });
  svg.append(svgEl("text", { x: pad, y: H - 10 }, now[0].date));
  svg.append(svgEl("text", { x: W - pad, y: H - 10, "text-anchor": "end" }, now[now.length - 1].date));
  svg.append(svgEl("text", { x: 4, y: pad - 8 }, fmt(max)));
}

function isoDay(date) { return date.toISOString().slice(0, 10); }
function previousRange([first, last]) {
  const a = new Date(`${first}T00:00:00Z`), b = new Date(`${last}T00:00:00Z`);
  const days = Math.round((b - a) / 86400000) + 1;
  return [isoDay(new Date(a - days * 86400000)), isoDay(new Date(a - 86400000))];
}

function panelsSkeleton() {
  const box = document.getElementById("panels");
  box.replaceChildren(...CONFIG.panels.map((panel) => {
    activeTab[panel.id] = activeTab[panel.id] || 0;
    const tabs = el("div", { class: "tabs", role: "tablist" }, ...panel.tabs.map((tab, i) => {
      const button = el("button", { type: "button", class: "tab", "data-tab": tab.file }, tab.title);
      button.addEventListener("click", () => { activeTab[panel.id] = i; renderPanel(panel, readState(), generation); });
      return button;
    }));
    return el("div", { class: "panel", id: `panel-${panel.id}`, "data-panel": panel.id }, el("h2", {}, panel.title), tabs, el("div", { class: "panel-body" }));
  }), el("div", { class: "panel", id: "panel-rejected" }, el("h2", {}, "Filtered out"),
    el("p", { class: "muted note" }, "Closed days' events the nightly job left out of the numbers (the view's filters don't apply)."),
    el("div", { class: "panel-body" })));
}

const REASONS = { bot: "Bots", duplicate: "Duplicates", too_late: "Too late" };

async function renderRejected(state, gen) {
  const card = document.getElementById("panel-rejected");
  card.dataset.loaded = "false";
  const rows = (await api("/api/v1/stats/rejected", { site_id: SITE, period: state.period, date: state.date })).results;
  if (gen !== generation) return;
  const body = card.querySelector(".panel-body");
  if (!rows.length) { body.replaceChildren(el("p", { class: "muted empty" }, "Nothing filtered out on closed days of this view.")); card.dataset.loaded = "true"; return; }
  body.replaceChildren(el("table", { "data-property": "rejected" },
    el("thead", {}, el("tr", {}, el("th", {}, "Why"), el("th", {}, "Events"))),
    el("tbody", {}, ...rows.map((r) => {
      const label = `${REASONS[r.reason] || r.reason.replace(/_/g, " ")}${r.family ? `: ${r.family}` : ""}`;
      const tr = el("tr", { "data-value": `${r.reason}${r.family ? ":" + r.family : ""}` },
        el("td", { class: "label" }, el("span", { class: "text" }, label)), metricEl("td", "events", r.events, fmt(r.events)));
      tr.title = r.samples.map((sample) => JSON.stringify(sample)).join("\n"); // samples, as text
      return tr;
    }))));
  card.dataset.loaded = "true";
}

// The properties tab: the keys of the view's events to choose from, then one key's values.
async function propsTab(panel, tab, state) {
  const filters = state.filters.join(";");
  const keys = (await api(`/api/sites/${encodeURIComponent(SITE)}/props`, { period: state.period, date: state.date, filters }, SITE)).results;
  if (!keys.length) return [null, null];
  const chosen = keys.some((k) => k.key === activeKey[panel.id]) ? activeKey[panel.id] : keys[0].key;
  const select = el("select", { class: "prop-key", "aria-label": "property" }, ...keys.map((k) => el("option", { value: k.key }, k.key)));
  select.value = chosen;
  select.addEventListener("change", () => { activeKey[panel.id] = select.value; renderPanel(panel, readState(), generation); });
  return [{ ...tab, property: `${tab.property}:${chosen}`, title: chosen }, select];
}

async function renderPanel(panel, state, gen) {
  const card = document.getElementById(`panel-${panel.id}`);
  card.dataset.loaded = "false";
  try { await drawPanel(panel, state, gen, card); } finally { if (gen === generation) card.dataset.loaded = "true"; }
}

async function drawPanel(panel, state, gen, card) {
  let tab = panel.tabs[activeTab[panel.id]];
  card.querySelectorAll(".tab").forEach((b, i) => b.classList.toggle("active", i === activeTab[panel.id]));
  const body = card.querySelector(".panel-body");
  let picker = null, rows, key, isMap;
  try {
    if (tab.property === CONFIG.props_tab) {
      [tab, picker] = await propsTab(panel, tab, state);
      if (!tab) {
        if (gen === generation) body.replaceChildren(el("p", { class: "muted empty" }, "No custom properties in this view (closed days only)."));
        return;
      }
    }
    key = tab.property.replace(/^(visit|event):(props:)?/, "");
    isMap = tab.property === "visit:country";
    const limit = isMap ? 300 : CONFIG.rows;
    const filters = [...state.filters, ...(tab.filter ? [tab.filter] : [])].join(";");
    rows = (await api("/api/v1/stats/breakdown", { ...params(state), filters, property: tab.property, metrics: tab.metrics.join(","), limit })).results;
  } catch (err) {
    if (gen !== generation) return;
    const hint = tab.property === "event:goal" ? `no goals yet: pixel goals create ${SITE} --event NAME` : err.message;
    body.replaceChildren(el("p", { class: "muted empty" }, hint));
    return;
  }
  if (gen !== generation) return;
  if (isMap) await loadMapData().catch(() => null); // names for the rows; the map itself below
  const shown = rows.slice(0, CONFIG.rows);
  const max = Math.max(1, ...shown.map((r) => r.visitors || 0));
  const table = el("table", { "data-property": tab.property },
    el("thead", {}, el("tr", {}, el("th", {}, tab.title), ...tab.metrics.map((m) => el("th", {}, COLUMN[m] || m)))),
    el("tbody", {}, ...shown.map((row) => {
      const value = row[key];
      const label = value === "" || value === null ? "(none)" : isMap ? `${countryName(value)}` : value;
      const cell = el("td", { class: "label" }, el("span", { class: "bar", style: `width:${(100 * (row.visitors || 0) / max).toFixed(1)}%` }), el("span", { class: "text" }, label));
      const tr = el("tr", { "data-value": value ?? "" }, cell, ...tab.metrics.map((m) => metricEl("td", m, row[m], formatMetric(m, row[m]))));
      if (value) { tr.classList.add("clickable"); tr.title = "filter by this"; tr.addEventListener("click", () => addFilter(tab.property, value)); }
      return tr;
    })));
  const parts = picker ? [picker] : [];
  if (isMap) {
    const svg = svgEl("svg", { class: "map", role: "img", "aria-label": "visitors by country" });
    parts.push(svg);
    drawMap(svg, Object.fromEntries(rows.filter((r) => r.country).map((r) => [r.country, r.visitors || 0])), (code) => addFilter("visit:country", code))
      .catch((err) => svg.replaceWith(el("p", { class: "muted" }, `map unavailable: ${err.message}`)));
  }
  parts.push(shown.length ? table : el("p", { class: "muted empty" }, "No data for this view."));
  body.replaceChildren(...parts);
}

// The numbers and chart, and the panels, at once: neither waits for the other.
const renderReport = (state, gen) => Promise.all([renderSummary(state, gen), renderRejected(state, gen), ...CONFIG.panels.map((panel) => renderPanel(panel, state, gen))]);

async function renderSummary(state, gen) {
  const [agg, view] = await Promise.all([
    api("/api/v1/stats/aggregate", { ...params(state), metrics: CONFIG.topline.join(","), compare: "previous_period" }),
    api(`/api/sites/${encodeURIComponent(SITE)}/query`, { period: state.period, date: state.date, filters: state.filters.join(";") }),
  ]);
  if (gen !== generation) return;
  renderNumbers(agg.results);
  const warning = document.getElementById("warning");
  warning.textContent = agg.warning || ""; warning.hidden = !agg.warning;
  document.getElementById("api-query").textContent = JSON.stringify(view, null, 2);
  const interval = CONFIG.chart_intervals[state.period] || "date";
  const series = { site_id: SITE, metrics: CONFIG.chart_metrics.join(","), interval, filters: state.filters.join(";") };
  const [now, before, restated] = await Promise.all([
    api("/api/v1/stats/timeseries", { ...series, period: state.period, date: state.date }),
    api("/api/v1/stats/timeseries", { ...series, period: "custom", date: previousRange(view.date_range).join(",") }),
    api("/api/v1/stats/restatements", { site_id: SITE, period: "custom", date: view.date_range.join(",") }),
  ]);
  if (gen !== generation) return;
  const latest = Object.fromEntries(restated.results.map((r) => [r.date, r])); // a day's last restatement
  drawChart(document.getElementById("chart"), now.results, before.results, latest);
}

// --- realtime ------------------------------------------------------------------------------------
function rowsInto(tbody, rows, key) {
  tbody.replaceChildren(...rows.map((r) => el("tr", { "data-value": r[key] },
    el("td", {}, r[key] || "(none)"), metricEl("td", "visitors", r.visitors, fmt(r.visitors)), metricEl("td", "pageviews", r.pageviews, fmt(r.pageviews)))));
}

async function renderRealtime(gen) {
  const rt = await api(`/api/sites/${encodeURIComponent(SITE)}/realtime`, {}, SITE);
  if (gen !== generation) return;
  for (const [id, key] of [["rt-now", "visitors_now"], ["rt-visitors", "visitors"], ["rt-pageviews", "pageviews"]]) {
    const node = document.getElementById(id);
    node.textContent = fmt(rt[key]); node.dataset.value = String(rt[key]);
  }
  const svg = document.getElementById("rt-chart");
  const W = 800, H = 160, max = Math.max(1, ...rt.series.map((p) => p.pageviews));
  const width = W / Math.max(1, rt.series.length);
  svg.dataset.points = JSON.stringify(rt.series.map((p) => [p.minute, p.visitors, p.pageviews]));
  svg.replaceChildren(...rt.series.map((p, i) => {
    const h = ((H - 20) * p.pageviews) / max;
    const bar = svgEl("rect", { x: (i * width + 1).toFixed(1), y: (H - 10 - h).toFixed(1), width: (width - 2).toFixed(1), height: h.toFixed(1), class: "bar" });
    bar.append(svgEl("title", {}, `${new Date(p.minute).toISOString().slice(11, 16)} UTC: ${fmt(p.pageviews)} pageviews`));
    return bar;
  }));
  rowsInto(document.querySelector("#rt-pages tbody"), rt.pages, "page");
  rowsInto(document.querySelector("#rt-sources tbody"), rt.sources, "source");
}

// --- the page ------------------------------------------------------------------------------------
let rendered = false;
async function render() {
  const gen = ++generation;
  const started = rendered ? performance.now() : 0; // the first render: since the navigation began
  const view = location.search;
  const state = readState();
  document.body.dataset.loaded = "false";
  document.getElementById("error").hidden = true;
  const form = document.getElementById("range");
  form.period.value = state.period;
  form.classList.toggle("show-custom", state.period === "custom");
  if (state.period === "custom" && state.date) [form.from.value, form.to.value] = state.date.split(",");
  if (state.filters.some((f) => f.startsWith("visit:country"))) await loadMapData().catch(() => null); // names
  renderChips(state);
  clearInterval(realtimeTimer);
  const realtime = state.period === "realtime";
  document.getElementById("report").hidden = realtime;
  document.getElementById("realtime").hidden = !realtime;
  form.querySelector(".actions").hidden = realtime; // the export and the query are of a report
  try {
    if (realtime) {
      await renderRealtime(gen);
      realtimeTimer = setInterval(() => renderRealtime(generation).catch(showError), 10000);
    } else {
      await renderReport(state, gen);
    }
    if (gen === generation) {
      rendered = true;
      document.body.dataset.renderMs = String(Math.round(performance.now() - started)); // time to render
      document.body.dataset.view = view; // which view is drawn (tools wait for the URL's)
      document.body.dataset.loaded = "true";
    }
  } catch (err) {
    if (gen !== generation) return;
    showError(err);
    document.body.dataset.loaded = "error";
  }
}

async function download() {
  const state = readState();
  const response = await fetchOk(`/api/sites/${encodeURIComponent(SITE)}/export`, { period: state.period, date: state.date, filters: state.filters.join(";") }, SITE);
  const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name ? name[1] : "export.zip" });
  document.body.append(link); link.click(); link.remove();
  document.body.dataset.exported = "true";
}

async function copyQuery() {
  const box = document.getElementById("query-box");
  box.hidden = false; box.open = true;
  const text = document.getElementById("api-query").textContent;
  try { await navigator.clipboard.writeText(text); document.getElementById("copy-query").textContent = "Copied"; } catch (e) { /* shown to copy by hand */ }
}

async function sitePage() {
  document.title = `pixel — ${SITE}`;
  document.getElementById("site-name").textContent = SITE;
  document.getElementById("snippet-link").href = `/sites/${encodeURIComponent(SITE)}/snippet`;
  const form = document.getElementById("range");
  form.period.addEventListener("change", () => {
    form.classList.toggle("show-custom", form.period.value === "custom");
    if (form.period.value !== "custom") navigate({ ...readState(), period: form.period.value, date: "" });
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const custom = form.period.value === "custom";
    navigate({ ...readState(), period: form.period.value, date: custom ? `${form.from.value},${form.to.value}` : "" });
  });
  document.getElementById("live-link").addEventListener("click", (ev) => { ev.preventDefault(); navigate({ ...readState(), period: "realtime", date: "" }); });
  document.getElementById("export").addEventListener("click", () => download().catch(showError));
  document.getElementById("copy-query").addEventListener("click", () => copyQuery());
  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(tokenKey(SITE), document.getElementById("token").value.trim());
    document.getElementById("token-form").hidden = true;
    render();
  });
  window.addEventListener("popstate", render);
  loadMapData().catch(() => null); // fetched while the numbers load
  CONFIG = await api("/api/config");
  panelsSkeleton();
  const live = async () => {
    try {
      const n = await api("/api/v1/stats/realtime/visitors", { site_id: SITE });
      const node = document.getElementById("live"); node.textContent = fmt(n); node.dataset.value = String(n);
    } catch (err) { /* the report shows the error */ }
  };
  live();
  setInterval(live, 10000);
  await render();
}

sitePage().catch((err) => { showError(err); document.body.dataset.loaded = "error"; });
