// The city map: district outlines from the platform's own GeoJSON; a tile layer only when configured.
(function () {
  "use strict";

  var PALETTE = ["#0b4f9c", "#1c6b3a", "#8a4b00", "#6a3d9a", "#b3261e", "#00697a", "#5b6b00", "#9c2a6f", "#3d4a5c"];

  function areaName(feature, locale) {
    var p = feature.properties || {};
    return locale === "en" ? (p.name_en || p.name_zh) : (p.name_zh || p.name_en);
  }

  // Exposed for the pages that put more on a city map (report pin, case locations, operations).
  window.WeCityMap = {
    create: function (element, options) {
      options = options || {};
      var locale = element.getAttribute("data-locale") || "zh_CN";
      var tileUrl = element.getAttribute("data-tile-url");
      var map = L.map(element, { attributionControl: !!tileUrl, zoomSnap: 0.25 });
      if (tileUrl) {
        L.tileLayer(tileUrl, { maxZoom: 19, attribution: element.getAttribute("data-tile-attribution") || "" }).addTo(map);
      }
      map.setView([28.2, 112.95], 9);
      var ready = fetch(element.getAttribute("data-areas-url") || "/api/v1/areas", { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("areas " + response.status);
          return response.json();
        })
        .then(function (collection) {
          var index = 0;
          var layer = L.geoJSON(collection, {
            style: function () {
              var colour = PALETTE[index++ % PALETTE.length];
              return { color: colour, weight: 2, fillColor: colour, fillOpacity: tileUrl ? 0.08 : 0.16 };
            },
            onEachFeature: function (feature, featureLayer) {
              var name = areaName(feature, locale);
              featureLayer.bindTooltip(name, { sticky: true });
              if (options.labels !== false) {
                featureLayer.on("add", function () {
                  var centre = featureLayer.getBounds().getCenter();
                  L.tooltip({ permanent: true, direction: "center", className: "area-label", interactive: false })
                    .setLatLng(centre).setContent(name).addTo(map);
                });
              }
            },
            interactive: options.interactive !== false
          }).addTo(map);
          if (layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { padding: [8, 8] });
          element.setAttribute("data-areas-loaded", String(collection.features.length));
          return { map: map, areas: layer };
        })
        .catch(function (error) {
          element.setAttribute("data-areas-error", String(error));
          var note = document.createElement("p");
          note.className = "alert error";
          note.setAttribute("role", "alert");
          note.textContent = element.getAttribute("data-error-text") || String(error);
          element.parentNode.insertBefore(note, element.nextSibling);
          return { map: map, areas: null };
        });
      return { map: map, ready: ready };
    }
  };

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("city-map");
    if (element && element.hasAttribute("data-autostart")) window.WeCityMap.create(element);
  });
})();
