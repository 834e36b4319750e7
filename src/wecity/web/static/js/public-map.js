// The public map of reports on the city map: markers clustered (leaflet.markercluster), each with its
// category, state, photo and a link to the case; the filters above the map ask the API again.
(function () {
  "use strict";

  function popup(element, p, locale) {
    var box = document.createElement("div");
    box.className = "map-popup";
    var title = document.createElement("strong");
    title.textContent = locale === "en" ? p.category_en : p.category_zh;
    box.appendChild(title);
    var state = document.createElement("span");
    state.className = "badge state-" + p.state;
    state.textContent = element.getAttribute(p.state === "fixed" ? "data-text-fixed" : "data-text-open");
    box.appendChild(document.createTextNode(" "));
    box.appendChild(state);
    if (p.photo) {
      var img = document.createElement("img");
      img.src = p.photo;
      img.alt = element.getAttribute("data-text-photo");
      img.className = "thumb";
      img.loading = "lazy";
      box.appendChild(img);
    }
    var link = document.createElement("a");
    link.href = p.link;
    link.textContent = element.getAttribute("data-text-see");
    box.appendChild(document.createElement("br"));
    box.appendChild(link);
    return box;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("city-map");
    var form = document.getElementById("map-filters");
    if (!element || !form || !window.WeCityMap || !L.markerClusterGroup) return;
    var locale = element.getAttribute("data-locale");
    var created = window.WeCityMap.create(element);
    // At street level every report shows on its own (one place may hold several: they spread on a tap).
    var clusters = L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 50, disableClusteringAtZoom: 18 });
    created.map.addLayer(clusters);
    element.wecityReports = clusters;  // for browser tests that open one report
    var count = document.getElementById("map-count");

    function load() {
      var params = new URLSearchParams(new FormData(form));
      fetch(element.getAttribute("data-reports-url") + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (response) { if (!response.ok) throw new Error("map " + response.status); return response.json(); })
        .then(function (collection) {
          clusters.clearLayers();
          var markers = collection.features.map(function (f) {
            var c = f.geometry.coordinates;
            var marker = L.circleMarker([c[1], c[0]], {
              radius: 7, weight: 2, color: "#fff", fillOpacity: 0.9,
              fillColor: f.properties.state === "fixed" ? "#1c6b3a" : "#b3261e"
            });
            marker.bindPopup(function () { return popup(element, f.properties, locale); });
            marker.caseId = f.properties.case_id;
            return marker;
          });
          clusters.addLayers(markers);
          count.textContent = count.getAttribute("data-text").replace("%(n)s", String(markers.length));
          element.setAttribute("data-reports-loaded", String(markers.length));
        })
        .catch(function (error) { element.setAttribute("data-reports-error", String(error)); });
    }
    form.addEventListener("change", load);
    form.addEventListener("submit", function (event) { event.preventDefault(); load(); });
    load();
  });
})();
