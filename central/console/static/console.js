// smileloop console: the few behaviours htmx does not cover. No inline scripts (the CSP forbids them).
(function () {
  "use strict";

  // A language picked from the header's list takes effect at once.
  document.addEventListener("change", function (e) {
    if (e.target.matches("select[data-autosubmit]")) e.target.form.submit();
  });

  // The live alert list: server-sent events put a new alert on top, or replace its row when it changes.
  var source = null;
  function follow() {
    var list = document.getElementById("alert-list");
    if (!list || !window.EventSource) return;
    var url = list.getAttribute("data-stream");
    if (source && source.url.endsWith(url)) return;
    if (source) source.close();
    source = new EventSource(url);
    var dot = document.getElementById("live");
    source.addEventListener("open", function () { if (dot) dot.classList.add("on"); });
    source.addEventListener("error", function () { if (dot) dot.classList.remove("on"); });
    source.addEventListener("logout", function () { window.location = "/login"; });
    source.addEventListener("alert", function (e) {
      var msg = JSON.parse(e.data);
      var rows = document.getElementById("alert-rows");
      if (!rows) return;
      var tpl = document.createElement("template");
      tpl.innerHTML = msg.html.trim();
      var row = tpl.content.firstElementChild;
      var old = document.getElementById("alert-" + msg.id);
      if (old) old.replaceWith(row); else rows.insertBefore(row, rows.firstChild);
      var empty = document.querySelector("#alert-list .empty");
      if (empty) empty.remove();
    });
  }
  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:afterSettle", follow);

  // Charts: any <canvas data-chart="…json…"> becomes a Chart.js chart (dashboards).
  function charts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (c) {
      if (c.chart) c.chart.destroy();
      c.chart = new window.Chart(c, JSON.parse(c.getAttribute("data-chart")));
    });
  }
  document.addEventListener("DOMContentLoaded", function () { charts(document); });
  document.addEventListener("htmx:afterSettle", function (e) { charts(e.target); });
})();
