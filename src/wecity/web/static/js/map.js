// The city map: district outlines from the platform's own GeoJSON over a background: the city's own street
// map when one is imported (data-basemap-style, drawn by basemap.js), else the tile server's raster tiles when
// one is configured (data-tile-url), else a plain tint.
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
      var basemapStyle = element.getAttribute("data-basemap-style");
      var background = !!(tileUrl || basemapStyle);
      var map = L.map(element, background ? { attributionControl: true, zoomSnap: 0.25, maxZoom: 19 }
                                          : { attributionControl: false, zoomSnap: 0.25, maxZoom: 19 });
      element.wecityMap = map;  // for scripts and browser tests that place things on this map
      var addTiles = function () {
        L.tileLayer(tileUrl, { maxZoom: 19, attribution: element.getAttribute("data-tile-attribution") || "" }).addTo(map);
      };
      if (basemapStyle && window.WeCityBasemap) {
        element.setAttribute("data-basemap", "loading");
        window.WeCityBasemap.add(map, element).then(function (layer) {
          element.wecityBasemap = layer;  // layer.getMaplibreMap(): what the browser tests ask what was drawn
          element.setAttribute("data-basemap", "ready");
        }).catch(function (error) {
          // No WebGL, say: the tile server's raster tiles if there is one, else the plain tint.
          element.setAttribute("data-basemap", "failed: " + error);
          if (tileUrl) addTiles();
        });
      } else if (tileUrl) {
        addTiles();
      }
      map.setView([28.2, 112.95], 9);
      var ready = fetch(element.getAttribute("data-areas-url") || "/api/v1/areas", { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("areas " + response.status);
          return response.json();
        })
        .then(function (collection) {
          var index = 0;
          var labels = [];
          var layer = L.geoJSON(collection, {
            style: function () {
              var colour = PALETTE[index++ % PALETTE.length];
              return { color: colour, weight: 2, fillColor: colour, fillOpacity: background ? 0.08 : 0.16 };
            },
            onEachFeature: function (feature, featureLayer) {
              var name = areaName(feature, locale);
              featureLayer.bindTooltip(name, { sticky: true });
              if (options.labels !== false) {
                labels.push({
                  layer: featureLayer,
                  tooltip: L.tooltip({ permanent: true, direction: "center", className: "area-label", interactive: false })
                    .setContent(name)
                });
              }
            },
            interactive: options.interactive !== false
          }).addTo(map);
          // The container may have changed size since the map was made (fonts, a phone's viewport).
          map.invalidateSize();
          // No animation: the map is settled when it says it is ready (data-areas-loaded).
          if (layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { padding: [8, 8], animate: false });
          // A name is shown on a district only when the district is wide enough on screen for it, so
          // small central districts do not bury each other's names; hovering still names every district.
          var placeLabels = function () {
            labels.forEach(function (label) {
              var bounds = label.layer.getBounds();
              var west = map.latLngToContainerPoint(bounds.getSouthWest());
              var east = map.latLngToContainerPoint(bounds.getNorthEast());
              var wide = Math.abs(east.x - west.x) >= label.tooltip.getContent().length * (locale === "en" ? 8 : 14) + 8;
              if (wide) {
                label.tooltip.setLatLng(label.layer.getCenter ? label.layer.getCenter() : bounds.getCenter());
                if (!map.hasLayer(label.tooltip)) label.tooltip.addTo(map);
              } else if (map.hasLayer(label.tooltip)) {
                map.removeLayer(label.tooltip);
              }
            });
          };
          placeLabels();
          map.on("zoomend", placeLabels);
          element.wecityAreas = collection;  // for the report form's "is the pin inside the city?"
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
      if (window.ResizeObserver) new ResizeObserver(function () { map.invalidateSize(); }).observe(element);
      return { map: map, ready: ready };
    }
  };

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("city-map");
    if (element && element.hasAttribute("data-autostart")) window.WeCityMap.create(element);
  });
})();
