// The operations page: open cases on the city map, coloured by status, and the 30-day trend chart.
(function () {
  "use strict";

  var COLOURS = { submitted: "#5b6570", dispatched: "#1f5fb8", acknowledged: "#4b3fb5", returned: "#b85c00",
    in_progress: "#7b2fa8", resolved: "#0d7a6e", verified: "#1c7a3a" };

  function casesMap() {
    var element = document.getElementById("ops-map");
    if (!element || !window.WeCityMap) return;
    var labels = {};
    try { labels = JSON.parse(element.getAttribute("data-status-labels") || "{}"); } catch (e) { labels = {}; }
    var locale = element.getAttribute("data-locale");
    var created = window.WeCityMap.create(element, { labels: true });
    created.ready.then(function (result) {
      return fetch(element.getAttribute("data-cases-url"), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (collection) {
          var hot = document.getElementById("hotspot-data");
          if (hot) {
            // Significant hot spots under the cases: outlined cells, the darker the stronger (Gi*).
            L.geoJSON(JSON.parse(hot.textContent), {
              style: function (feature) {
                var z = feature.properties.gi_star;
                return { color: "#b3261e", weight: 2, fillColor: "#b3261e", fillOpacity: Math.min(0.15 + z / 20, 0.45) };
              },
              onEachFeature: function (feature, layer) {
                layer.bindTooltip(element.getAttribute("data-hotspot-label") + " · " + feature.properties.cases +
                  " · Gi* " + feature.properties.gi_star.toFixed(2));
              }
            }).addTo(result.map);
          }
          var points = L.geoJSON(collection, {
            pointToLayer: function (feature, latlng) {
              var p = feature.properties;
              var marker = L.circleMarker(latlng, {
                radius: 6, weight: p.overdue ? 3 : 1, color: p.overdue ? "#b3261e" : "#ffffff",
                fillColor: COLOURS[p.status] || "#333", fillOpacity: 0.9
              }).bindTooltip("#" + feature.id + " " + (locale === "en" ? p.name_en : p.name_zh) + " · " +
                (labels[p.status] || p.status));
              // Every marker leads to its case, as every figure leads to its cases.
              marker.on("click", function () { window.location.href = "/staff/cases/" + feature.id; });
              return marker;
            }
          }).addTo(result.map);
          // Open cases gather in the built-up districts: show where they are rather than the whole county.
          if (collection.features.length > 1 && points.getBounds().isValid()) {
            result.map.fitBounds(points.getBounds().pad(0.15), { animate: false, maxZoom: 14 });
          }
          element.setAttribute("data-cases-loaded", String(collection.features.length));
        });
    });
  }

  function trendChart() {
    var element = document.getElementById("trend-chart");
    if (!element || !window.echarts) return;
    var data = JSON.parse(document.getElementById("trend-data").textContent);
    var chart = window.echarts.init(element, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      color: ["#0b4f9c", "#1c6b3a"],
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { color: "#1b1f24" } },
      grid: { left: 36, right: 12, top: 36, bottom: 28 },
      xAxis: { type: "category", data: data.days.map(function (d) { return d.slice(5); }),
        axisLabel: { color: "#4a5562" } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#4a5562" } },
      series: [
        { name: element.getAttribute("data-received-label"), type: "line", data: data.received, smooth: false, symbolSize: 5 },
        { name: element.getAttribute("data-closed-label"), type: "line", data: data.closed, smooth: false, symbolSize: 5 }
      ]
    });
    element.setAttribute("data-chart-ready", "true");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function forecastChart() {
    var element = document.getElementById("forecast-chart");
    var source = document.getElementById("forecast-data");
    if (!element || !source || !window.echarts) return;
    var data = JSON.parse(source.textContent);
    var days = data.recent.days.concat(data.days).map(function (d) { return d.slice(5); });
    var gap = data.recent.days.map(function () { return null; });
    var chart = window.echarts.init(element, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      color: ["#0b4f9c", "#b85c00", "#b85c00"],
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { color: "#1b1f24" } },
      grid: { left: 36, right: 12, top: 36, bottom: 28 },
      xAxis: { type: "category", data: days, axisLabel: { color: "#4a5562" } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#4a5562" } },
      series: [
        { name: element.getAttribute("data-recent-label"), type: "line", data: data.recent.counts, symbolSize: 4 },
        { name: element.getAttribute("data-forecast-label"), type: "line", data: gap.concat(data.forecast), symbolSize: 4,
          lineStyle: { type: "dashed" } },
        { name: element.getAttribute("data-interval-label"), type: "line", data: gap.concat(data.upper), symbol: "none",
          lineStyle: { width: 1, type: "dotted" } },
        { name: element.getAttribute("data-interval-label"), type: "line", data: gap.concat(data.lower), symbol: "none",
          lineStyle: { width: 1, type: "dotted", color: "#b85c00" } }
      ]
    });
    element.setAttribute("data-chart-ready", "true");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    casesMap();
    trendChart();
    forecastChart();
  });
})();
