// Staff pages: live SLA countdowns, the case location on the map, and standard replies (fields filled
// before sending; the server checks the same).
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

  // The same placeholder rule as wecity.cases.replies: {{ name }}, the name without braces, up to 40 characters.
  var PLACEHOLDER = /\{\{\s*([^{}]{1,40}?)\s*\}\}/g;

  function replyTemplates() {
    document.querySelectorAll(".template-picker select").forEach(function (select) {
      // Picking a reply shows its fields at once (the button is for browsers without JavaScript).
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll(".reply-template").forEach(function (box) {
      var form = box.closest("form");
      var body = box.getAttribute("data-template");
      var preview = box.querySelector(".reply-preview");
      var error = box.querySelector(".reply-error");
      var inputs = Array.prototype.slice.call(box.querySelectorAll("input[data-field]"));
      function values() {
        var found = {};
        inputs.forEach(function (input) { found[input.getAttribute("data-field")] = input.value.trim(); });
        return found;
      }
      function render() {
        var filled = values();
        preview.textContent = body.replace(PLACEHOLDER, function (whole, name) {
          return filled[name.trim()] || whole;
        });
      }
      inputs.forEach(function (input) { input.addEventListener("input", render); });
      form.noValidate = true;  // our own message names the fields; the server refuses the same
      form.addEventListener("submit", function (event) {
        var empty = inputs.filter(function (input) { return !input.value.trim(); });
        if (empty.length) {
          event.preventDefault();
          error.textContent = box.getAttribute("data-unfilled").replace("%(fields)s",
            empty.map(function (input) { return input.getAttribute("data-field"); }).join(", "));
          error.hidden = false;
          empty.forEach(function (input) { input.setAttribute("aria-invalid", "true"); });
          empty[0].focus();
          return;
        }
        var missing = Array.prototype.slice.call(form.querySelectorAll("[required]")).filter(function (el) {
          return !el.value;
        });
        if (missing.length) {  // other required fields (the evidence photo) keep the browser's own check
          event.preventDefault();
          form.reportValidity();
        }
      });
      render();
    });
    document.querySelectorAll("input[type=file][data-max-files]").forEach(function (input) {
      input.addEventListener("change", function () {
        var most = Number(input.getAttribute("data-max-files"));
        input.setCustomValidity(input.files.length > most ? input.getAttribute("data-too-many") : "");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    replyTemplates();
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
