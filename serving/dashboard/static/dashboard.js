// The dashboard's shared helpers, and the sites index and snippet pages. No dependencies.
// Every string from traffic is put on the page as text (textContent), never parsed as HTML.
"use strict";

const tokenKey = (site) => `pixel-token:${site}`;
const siteOfPath = () => decodeURIComponent(location.pathname.split("/")[2] || "");

// The dashboard's requests have a rate budget of their own (serving.ratelimit).
function headers(site) {
  const token = site && localStorage.getItem(tokenKey(site));
  return { "X-Pixel-Dashboard": "1", ...(token ? { Authorization: `Bearer ${token}` } : {}) };
}

function apiUrl(path, params) {
  const url = new URL(path, location.origin);
  Object.entries(params || {}).forEach(([k, v]) => v !== undefined && v !== null && v !== "" && url.searchParams.set(k, v));
  return url;
}

async function fetchOk(path, params, site) {
  const response = await fetch(apiUrl(path, params), { headers: headers(site || (params && params.site_id)) });
  if (!response.ok) {
    let message = response.statusText;
    try { const body = await response.json(); message = body.error || body.detail || message; } catch (e) { /* not JSON */ }
    throw Object.assign(new Error(message), { status: response.status });
  }
  return response;
}

const api = async (path, params, site) => (await fetchOk(path, params, site)).json();

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child); // strings become text nodes
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A number element: its text for people, its exact value in data-value for tools and tests.
function metricEl(tag, metric, value, text, cls) {
  const node = el(tag, { class: cls || "", "data-metric": metric }, text);
  if (value !== null && value !== undefined) node.dataset.value = String(value);
  return node;
}

function showError(err) {
  const box = document.getElementById("error");
  const form = document.getElementById("token-form");
  if (err.status === 401 && form) form.hidden = false;
  if (box) { box.textContent = err.message; box.hidden = false; }
}

function sparkline(points) {
  const W = 120, H = 28, max = Math.max(1, ...points);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "sparkline", "data-points": JSON.stringify(points) });
  const xy = points.map((v, i) => `${(i * W / Math.max(1, points.length - 1)).toFixed(1)},${(H - 2 - v * (H - 4) / max).toFixed(1)}`);
  svg.append(svgEl("polyline", { points: xy.join(" ") }));
  return svg;
}

async function indexPage() {
  const list = document.getElementById("sites");
  const sites = await api("/api/sites");
  list.replaceChildren();
  if (!sites.length) list.append(el("li", { class: "muted" }, "No sites yet."));
  await Promise.all(sites.map(async (site) => {
    const link = el("a", { href: `/sites/${encodeURIComponent(site.domain)}` }, site.domain);
    const stats = el("span", { class: "site-stats" });
    const li = el("li", { "data-site": site.domain }, link, el("span", { class: "muted" }, site.public ? " public" : " private"), stats);
    list.append(li);
    try {
      const series = await api("/api/v1/stats/timeseries", { site_id: site.domain, period: "7d", metrics: "visitors" });
      const today = series.results[series.results.length - 1];
      stats.append(metricEl("span", "visitors", today.visitors, fmt(today.visitors), "today"), " visitors today ",
        sparkline(series.results.map((p) => p.visitors || 0)));
    } catch (err) {
      stats.append(el("span", { class: "muted" }, err.status === 401 ? "token needed: open the site" : err.message));
    }
  }));
  document.body.dataset.loaded = "true";
}

async function snippetPage() {
  const site = siteOfPath();
  document.getElementById("site-name").textContent = site;
  document.getElementById("back").href = `/sites/${encodeURIComponent(site)}`;
  const { collector_url } = await api("/api/config");
  document.getElementById("snippet").textContent = `<img src="${collector_url}/p.gif?site=${encodeURIComponent(site)}" alt="" width="1" height="1" referrerpolicy="no-referrer-when-downgrade">`;
  const queue = "window.pixel = window.pixel || function () { (window.pixel.q = window.pixel.q || []).push(arguments) };";
  document.getElementById("script-snippet").textContent = `<script defer data-site="${site}" src="${collector_url}/p.js"></script>\n<script>${queue}</script>`;
}

const PAGE = { index: indexPage, snippet: snippetPage }[document.body.dataset.page];
if (PAGE) PAGE().catch((err) => { showError(err); document.body.dataset.loaded = "error"; });
