// Staff pages: live SLA countdowns, and the case location on the map.
(function () {
  "use strict";

  var formats = {};
  try { formats = JSON.parse(document.body.getAttribute("data-time-formats") || "{}"); } catch (e) { formats = {}; }

  function fill(pattern, values) {
    return pattern.replace(/%\((\w+)\)(02)?d|%\((\w+)\)s/g, function (_, name, pad, sname) {
      var value = values[name || sname];
      return pad && value < 10 ? "0" + value : String(value);
    });
  }

  function duration(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
    if (d) return fill(formats.dh, { d: d, h: h });
    if (h) return fill(formats.hm, { h: h, m: m });
    return fill(formats.m, { m: m });
  }

  // Count from the server's "now" (the platform's clock) when the element arrived, plus the time since.
  function tick() {
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      if (!el.hasAttribute("data-seen")) el.setAttribute("data-seen", String(Date.now()));
      var due = Date.parse(el.getAttribute("data-due"));
      var serverNow = Date.parse(el.getAttribute("data-now")) + (Date.now() - Number(el.getAttribute("data-seen")));
      var left = Math.round((due - serverNow) / 1000);
      el.textContent = fill(left >= 0 ? formats.left : formats.overdue, { t: duration(left) });
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 3600);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (formats.left) {
      tick();
      setInterval(tick, 30000);
      document.addEventListener("htmx:afterSettle", tick);  // a refreshed list counts down at once
    }
    var element = document.getElementById("case-map");
    if (element && window.WeCityMap) {
      var created = window.WeCityMap.create(element, { labels: false, interactive: false });
      var at = [parseFloat(element.getAttribute("data-pin-lat")), parseFloat(element.getAttribute("data-pin-long"))];
      created.ready.then(function (result) {
        L.marker(at, { keyboard: false }).addTo(result.map);
        result.map.setView(at, 15);
      });
    }
  });
})();
