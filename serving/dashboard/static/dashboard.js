// The dashboard's only script: reads the Stats API and renders; no dependencies.
"use strict";
const TOKEN_KEY = "pixel-token";
const PROPERTIES = [...document.querySelectorAll("table[data-property]")].map((t) => t.dataset.property);

function headers() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, params) {
  const url = new URL(path, location.origin);
  Object.entries(params || {}).forEach(([k, v]) => v !== undefined && v !== null && v !== "" && url.searchParams.set(k, v));
  const response = await fetch(url, { headers: headers() });
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error || body.detail || response.statusText), { status: response.status });
  return body;
}

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };

function showError(err) {
  const el = document.getElementById("error") || document.querySelector("main");
  const form = document.getElementById("token-form");
  if (err.status === 401 && form) form.hidden = false;
  if (el.id === "error") { el.textContent = err.message; el.hidden = false; }
  else el.insertAdjacentHTML("afterbegin", `<p class="error"></p>`), (el.firstChild.textContent = err.message);
}

async function indexPage() {
  const list = document.getElementById("sites");
  const sites = await api("/api/sites");
  list.innerHTML = "";
  if (!sites.length) list.innerHTML = '<li class="muted">No sites yet.</li>';
  for (const site of sites) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/sites/${encodeURIComponent(site.domain)}`; a.textContent = site.domain;
    li.append(a, ` ${site.public ? "public" : "private"}`);
    list.append(li);
  }
}

function rangeParams() {
  const q = new URLSearchParams(location.search);
  const period = q.get("period") || "30d";
  return { period, date: q.get("date") || undefined };
}

function drawChart(points) {
  const svg = document.getElementById("chart");
  const W = 800, H = 220, pad = 30;
  const max = Math.max(1, ...points.map((p) => p.visitors));
  const x = (i) => pad + (points.length > 1 ? (i * (W - 2 * pad)) / (points.length - 1) : (W - 2 * pad) / 2);
  const y = (v) => H - pad - (v * (H - 2 * pad)) / max;
  const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.visitors).toFixed(1)}`).join(" ");
  svg.dataset.points = JSON.stringify(points.map((p) => [p.date, p.visitors, p.pageviews]));
  svg.innerHTML = points.length ? `
    <polygon class="area" points="${x(0)},${H - pad} ${line} ${x(points.length - 1)},${H - pad}"></polygon>
    <polyline class="line" points="${line}"></polyline>
    <text x="${pad}" y="${H - 8}">${points[0].date}</text>
    <text x="${W - pad}" y="${H - 8}" text-anchor="end">${points[points.length - 1].date}</text>
    <text x="4" y="${pad}">${fmt(max)}</text>` : "";
}

async function sitePage() {
  const site = decodeURIComponent(location.pathname.split("/")[2]);
  document.title = `pixel — ${site}`;
  text("site-name", site);
  document.getElementById("snippet-link").href = `/sites/${encodeURIComponent(site)}/snippet`;
  const { period, date } = rangeParams();
  const form = document.getElementById("range");
  form.period.value = period;
  form.classList.toggle("show-custom", period === "custom");
  if (period === "custom" && date) [form.from.value, form.to.value] = date.split(",");
  form.period.addEventListener("change", () => form.classList.toggle("show-custom", form.period.value === "custom"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({ period: form.period.value });
    if (form.period.value === "custom") q.set("date", `${form.from.value},${form.to.value}`);
    location.search = q.toString();
  });
  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    location.reload();
  });

  const base = { site_id: site, period, date };
  try {
    const agg = await api("/api/v1/stats/aggregate", { ...base, metrics: "visitors,pageviews,visits,bounce_rate" });
    const r = agg.results;
    text("visitors", fmt(r.visitors.value));
    text("pageviews", fmt(r.pageviews.value));
    text("visits", fmt(r.visits.value));
    text("bounce_rate", r.bounce_rate.value === null ? "–" : `${r.bounce_rate.value}%`);
    document.getElementById("sessions-note").hidden = !agg.warning;
    const interval = period === "day" ? "hour" : (period === "6mo" || period === "12mo" ? "month" : "date");
    const series = await api("/api/v1/stats/timeseries", { ...base, interval, metrics: "visitors,pageviews" });
    drawChart(series.results);
    await Promise.all(PROPERTIES.map(async (property) => {
      const rows = (await api("/api/v1/stats/breakdown", { ...base, property, metrics: "visitors,pageviews", limit: 10 })).results;
      const key = property.split(":")[1];
      const tbody = document.querySelector(`table[data-property="${property}"] tbody`);
      tbody.innerHTML = "";
      for (const row of rows) {
        const tr = document.createElement("tr");
        for (const value of [row[key] || "(none)", fmt(row.visitors), fmt(row.pageviews)]) {
          const td = document.createElement("td"); td.textContent = value; tr.append(td);
        }
        tbody.append(tr);
      }
    }));
    document.body.dataset.loaded = "true";
  } catch (err) {
    showError(err);
    document.body.dataset.loaded = "error";
  }
  const live = async () => {
    try { text("live", fmt(await api("/api/v1/stats/realtime/visitors", { site_id: site }))); } catch (err) { /* shown above */ }
  };
  live();
  setInterval(live, 10000);
}

async function snippetPage() {
  const site = decodeURIComponent(location.pathname.split("/")[2]);
  text("site-name", site);
  document.getElementById("back").href = `/sites/${encodeURIComponent(site)}`;
  const { collector_url } = await api("/api/config");
  text("snippet", `<img src="${collector_url}/p.gif?site=${encodeURIComponent(site)}" alt="" width="1" height="1" referrerpolicy="no-referrer-when-downgrade">`);
  const queue = "window.pixel = window.pixel || function () { (window.pixel.q = window.pixel.q || []).push(arguments) };";
  text("script-snippet", `<script defer data-site="${site}" src="${collector_url}/p.js"></script>\n<script>${queue}</script>`);
}

({ index: indexPage, site: sitePage, snippet: snippetPage })[document.body.dataset.page]().catch(showError);
