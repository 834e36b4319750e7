// The report form's enhancements: category search, detail fields per category, a map pin and geolocation.
// Without JavaScript the form still works: every category is listed and the place can be described in words.
(function () {
  "use strict";

  function filterCategories(form) {
    var search = form.querySelector("[data-category-search]");
    var empty = form.querySelector("#no-category-match");
    search.addEventListener("input", function () {
      var words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      form.querySelectorAll("[data-category-group]").forEach(function (group) {
        var any = false;
        group.querySelectorAll("label.choice").forEach(function (choice) {
          var text = (choice.getAttribute("data-keywords") || "").toLowerCase();
          var match = words.every(function (w) { return text.indexOf(w) !== -1; });
          var checked = choice.querySelector("input").checked;
          choice.hidden = !(match || checked);
          if (!choice.hidden) { any = true; shown++; }
        });
        group.hidden = !any;
      });
      empty.hidden = shown > 0;
    });
  }

  function detailFields(form) {
    var update = function () {
      var chosen = form.querySelector("input[name=service_code]:checked");
      form.querySelectorAll("[data-for-category]").forEach(function (field) {
        var on = chosen && field.getAttribute("data-for-category") === chosen.value;
        field.hidden = !on;
        field.querySelectorAll("input, select").forEach(function (input) { input.disabled = !on; });
      });
    };
    form.addEventListener("change", function (event) {
      if (event.target.name === "service_code") update();
    });
    update();
  }

  function locationPicker(form) {
    var element = document.getElementById("report-map");
    var lat = document.getElementById("lat");
    var lon = document.getElementById("long");
    var status = form.querySelector("[data-location-status]");
    var created = window.WeCityMap.create(element, { labels: false });
    var map = created.map;
    var marker = null;

    function place(latlng, pan) {
      var rounded = { lat: Math.round(latlng.lat * 1e6) / 1e6, lng: Math.round(latlng.lng * 1e6) / 1e6 };
      if (!marker) {
        marker = L.marker(rounded, { draggable: true, keyboard: true, title: status.getAttribute("data-text-found").split(":")[0] })
          .addTo(map);
        marker.on("dragend", function () { place(marker.getLatLng(), false); });
      } else {
        marker.setLatLng(rounded);
      }
      if (pan) map.setView(rounded, Math.max(map.getZoom(), 15));
      lat.value = rounded.lat;
      lon.value = rounded.lng;
      element.setAttribute("data-pinned", "true");
      status.textContent = status.getAttribute("data-text-found")
        .replace("%(lat)s", rounded.lat.toFixed(5)).replace("%(long)s", rounded.lng.toFixed(5));
      // Tell the form (and htmx's nearby-case lookup) that the place changed.
      lat.dispatchEvent(new Event("change", { bubbles: true }));
    }

    map.on("click", function (event) { place(event.latlng, false); });
    created.ready.then(function () {
      if (lat.value && lon.value) place({ lat: parseFloat(lat.value), lng: parseFloat(lon.value) }, true);
    });

    var centre = form.querySelector("[data-pin-centre]");
    centre.hidden = false;
    centre.addEventListener("click", function () { place(map.getCenter(), false); });

    var locate = form.querySelector("[data-locate]");
    if (navigator.geolocation) {
      locate.hidden = false;
      locate.addEventListener("click", function () {
        status.textContent = status.getAttribute("data-text-locating");
        navigator.geolocation.getCurrentPosition(
          function (position) { place({ lat: position.coords.latitude, lng: position.coords.longitude }, true); },
          function () { status.textContent = status.getAttribute("data-text-denied"); },
          { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
      });
    }
  }

  // Show the chosen photo, so a person sees at once whether it is the right one.
  function photoPreviews(form) {
    form.querySelectorAll("input[type=file][name=photo]").forEach(function (input) {
      var preview = document.createElement("img");
      preview.className = "thumb preview";
      preview.alt = "";
      preview.hidden = true;
      input.parentNode.appendChild(preview);
      input.addEventListener("change", function () {
        if (preview.src) URL.revokeObjectURL(preview.src);
        var file = input.files && input.files[0];
        preview.hidden = !file;
        if (file) {
          preview.src = URL.createObjectURL(file);
          preview.alt = (input.getAttribute("data-preview-alt") || "") + " " + file.name;
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("report-form");
    if (!form) return;
    photoPreviews(form);
    filterCategories(form);
    detailFields(form);
    locationPicker(form);
  });
})();
