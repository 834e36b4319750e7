// The sensors page: every located sensor entity on the city map, red with an open case, grey when quiet.
(function () {
  "use strict";

  function colour(p) {
    if (p.case_id) return "#b3261e";
    return p.quiet ? "#8a9099" : "#1c7a3a";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("sensor-map");
    if (!element || !window.WeCityMap) return;
    var types = {};
    try { types = JSON.parse(element.getAttribute("data-type-labels") || "{}"); } catch (e) { types = {}; }
    // Readings are shown on the city's clocks, as the page's own times are, not on the browser's.
    var zone = element.getAttribute("data-time-zone") || undefined;
    var created = window.WeCityMap.create(element, { labels: true });
    created.ready.then(function (result) {
      return fetch(element.getAttribute("data-sensors-url"), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (collection) {
          var points = L.geoJSON(collection, {
            pointToLayer: function (feature, latlng) {
              var p = feature.properties;
              var text = (types[p.type] || p.type) + " · " + feature.id + " · " +
                element.getAttribute("data-updated-label") + " " +
                new Date(p.modified_at).toLocaleString(undefined, { timeZone: zone });
              if (p.quiet) text += " · " + element.getAttribute("data-quiet-label");
              if (p.case_id) text += " · " + element.getAttribute("data-case-label") + " #" + p.case_id;
              var marker = L.circleMarker(latlng, {
                radius: p.case_id ? 7 : 5, weight: 1, color: "#ffffff", fillColor: colour(p), fillOpacity: 0.9
              }).bindTooltip(text);
              if (p.case_id) marker.on("click", function () { window.location.href = "/staff/cases/" + p.case_id; });
              return marker;
            }
          }).addTo(result.map);
          if (collection.features.length > 1 && points.getBounds().isValid()) {
            result.map.fitBounds(points.getBounds(), { padding: [16, 16], animate: false });
          }
          element.setAttribute("data-sensors-loaded", String(collection.features.length));
        });
    });
  });
})();
