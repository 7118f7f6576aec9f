// pixel's tracker: pageviews (and single-page-app navigations), custom events with properties,
// opt-in outbound-link and file-download clicks. No cookies, no storage.
// <script defer data-site="example.com" src="https://px.example.com/p.js"></script>
// Options (attributes): data-api (default: this script's origin + /api/event), data-local
// (also count localhost), data-outbound-links, data-file-downloads.
// Custom events: pixel("Signup", {props: {plan: "pro"}}); calls made before the script loads
// are kept if the page defines the queue: window.pixel = window.pixel || function () {
// (window.pixel.q = window.pixel.q || []).push(arguments) }.
(function () {
  "use strict";
  var w = window, d = document, l = w.location, s = d.currentScript;
  if (!s) return;
  var site = s.getAttribute("data-site") || l.hostname;
  var api = s.getAttribute("data-api") || new URL(s.src).origin + "/api/event";
  var local = /^(localhost|127\.|\[::1\]$)/.test(l.hostname) || l.protocol === "file:";
  var queued = (w.pixel && w.pixel.q) || [];

  function send(name, options) {
    if (local && !s.hasAttribute("data-local")) return;
    var body = { n: name, u: l.href, d: site, r: d.referrer || null, w: w.innerWidth };
    if (options && options.props) body.p = options.props;
    var text = JSON.stringify(body);
    if (navigator.sendBeacon && navigator.sendBeacon(api, new Blob([text], { type: "text/plain" }))) return;
    fetch(api, { method: "POST", body: text, keepalive: true, headers: { "Content-Type": "text/plain" } });
  }

  var last;
  function pageview() {
    if (last === l.pathname) return; // a pushState to the same path is no new page
    last = l.pathname;
    send("pageview");
  }

  var push = history.pushState;
  history.pushState = function () {
    push.apply(this, arguments);
    pageview();
  };
  w.addEventListener("popstate", pageview);

  var outbound = s.hasAttribute("data-outbound-links"), downloads = s.hasAttribute("data-file-downloads");
  var FILES = /\.(pdf|xlsx?|docx?|txt|rtf|csv|exe|key|pp[st]x?|7z|pkg|rar|gz|zip|avi|mov|mp4|mpe?g|wmv|midi?|mp3|wav|wma|dmg|iso|msi)$/i;
  if (outbound || downloads) {
    d.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a[href]");
      if (!a) return;
      var url = new URL(a.href, l.href);
      if (downloads && FILES.test(url.pathname)) send("File Download", { props: { url: url.href } });
      else if (outbound && url.host !== l.host && /^https?:$/.test(url.protocol))
        send("Outbound Link: Click", { props: { url: url.href } });
    }, true);
  }

  w.pixel = function (name, options) { send(name, options); };
  pageview();
  for (var i = 0; i < queued.length; i++) send(queued[i][0], queued[i][1]);
})();
