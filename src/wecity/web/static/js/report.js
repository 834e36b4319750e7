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
    // The photo's own location, once the citizen said yes (photoPlace below).
    form.addEventListener("wecity:photo-location", function (event) { place(event.detail, true); });
    // The address search (address.js) moves the pin to the place chosen.
    form.addEventListener("wecity:place", function (event) { place(event.detail, true); });
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

  // A photo that knows where it was taken (EXIF GPS, read here in the browser: nothing is sent) offers to
  // move the pin there; only a "yes" moves it, and the move looks for nearby reports like any other.
  function photoPlace(form) {
    var box = document.getElementById("photo-place");
    if (!box || !window.exifr) return;
    var text = document.getElementById("photo-place-text");
    var offered = null;
    form.querySelectorAll("input[type=file][name=photo]").forEach(function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        if (!file) return;
        window.exifr.gps(file).then(function (gps) {
          if (!gps || !isFinite(gps.latitude) || !isFinite(gps.longitude)) return;
          if (Math.abs(gps.latitude) > 90 || Math.abs(gps.longitude) > 180) return;
          offered = { lat: gps.latitude, lng: gps.longitude };
          text.textContent = box.getAttribute("data-text")
            .replace("%(lat)s", gps.latitude.toFixed(5)).replace("%(long)s", gps.longitude.toFixed(5));
          box.hidden = false;
        }).catch(function () { /* no readable EXIF: nothing to offer */ });
      });
    });
    document.getElementById("photo-place-yes").addEventListener("click", function () {
      box.hidden = true;
      if (offered) form.dispatchEvent(new CustomEvent("wecity:photo-location", { detail: offered }));
    });
    document.getElementById("photo-place-no").addEventListener("click", function () { box.hidden = true; });
  }

  // Checks in the browser before anything is sent, each said in words beside its field: a photo too
  // large for the city, a pin outside the city's districts, a missing category, answer or description.
  // A form the server still refuses is sent in the background so the chosen photos stay chosen; its
  // errors are put beside the fields of this page.
  function formChecks(form) {
    var description = document.getElementById("description");
    var counter = document.getElementById("description-counter");
    var maxBytes = parseInt(form.getAttribute("data-max-photo-bytes"), 10) || 0;
    var whereCheck = document.getElementById("where-check");
    var mapElement = document.getElementById("report-map");

    function fieldError(input, id, text) {
      var old = document.getElementById(id);
      if (old) old.remove();
      if (!text) {
        input.removeAttribute("aria-invalid");
        return;
      }
      var p = document.createElement("p");
      p.className = "field-error";
      p.id = id;
      p.textContent = text;
      input.parentNode.insertBefore(p, input);
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", id);
    }

    if (description && counter) {
      var count = function () {
        counter.textContent = counter.getAttribute("data-text")
          .replace("%(n)s", String(description.value.length)).replace("%(max)s", counter.getAttribute("data-max"));
      };
      description.addEventListener("input", count);
      count();
    }

    form.querySelectorAll("input[type=file][name=photo]").forEach(function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var tooLarge = file && maxBytes && file.size > maxBytes;
        fieldError(input, "check-" + input.id, tooLarge ? form.getAttribute("data-photo-too-large")
          .replace("%(size)s", (file.size / 1048576).toFixed(1)).replace("%(max)s", String(Math.round(maxBytes / 1048576))) : "");
        if (tooLarge) input.value = "";
      });
    });

    // The city's districts as the map drew them, for "is the pin inside the city?".
    function inRing(ring, x, y) {
      var inside = false;
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
        if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
      }
      return inside;
    }
    function inPolygon(rings, x, y) {
      if (!inRing(rings[0], x, y)) return false;
      for (var k = 1; k < rings.length; k++) if (inRing(rings[k], x, y)) return false;
      return true;
    }
    function insideCity(lat, lng) {
      var areas = mapElement && mapElement.wecityAreas;
      if (!areas) return true;  // not loaded: the server checks
      return areas.features.some(function (f) {
        var g = f.geometry;
        if (!g) return false;
        if (g.type === "Polygon") return inPolygon(g.coordinates, lng, lat);
        if (g.type === "MultiPolygon") return g.coordinates.some(function (p) { return inPolygon(p, lng, lat); });
        return false;
      });
    }
    function checkWhere() {
      var lat = parseFloat(document.getElementById("lat").value);
      var lng = parseFloat(document.getElementById("long").value);
      var outside = isFinite(lat) && isFinite(lng) && !insideCity(lat, lng);
      whereCheck.hidden = !outside;
      whereCheck.textContent = outside ? mapElement.getAttribute("data-outside-text") : "";
      return !outside;
    }
    document.getElementById("lat").addEventListener("change", checkWhere);

    function problems() {
      var found = [];
      var chosen = form.querySelector("input[name=service_code]:checked");
      if (!chosen) found.push({ target: document.getElementById("step-category"), text: form.getAttribute("data-choose-category") });
      if (chosen) {
        form.querySelectorAll("[data-for-category='" + chosen.value + "'] [data-required-text]").forEach(function (input) {
          if (!input.value) found.push({ target: input, text: input.getAttribute("data-required-text") });
        });
        var needs = (description.getAttribute("data-needs-description") || "").split(" ");
        if (needs.indexOf(chosen.value) !== -1 && !description.value.trim()) {
          found.push({ target: description, text: description.getAttribute("data-required-text") });
        }
      }
      if (!checkWhere()) found.push({ target: document.getElementById("address"), text: whereCheck.textContent });
      return found;
    }

    function showSummary(found) {
      var old = document.getElementById("form-check");
      if (old) old.remove();
      if (!found.length) return;
      var box = document.createElement("div");
      box.className = "alert error";
      box.id = "form-check";
      box.setAttribute("role", "alert");
      box.tabIndex = -1;
      var title = document.createElement("p");
      title.textContent = form.getAttribute("data-summary-title");
      box.appendChild(title);
      var list = document.createElement("ul");
      found.forEach(function (problem) {
        var item = document.createElement("li");
        var link = document.createElement("a");
        link.href = "#" + problem.target.id;
        link.textContent = problem.text;
        item.appendChild(link);
        list.appendChild(item);
      });
      box.appendChild(list);
      form.parentNode.insertBefore(box, form);
      box.focus();
    }

    // The server's answer to a refused form, put into this page: its summary and its field errors.
    function showServerErrors(html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("#form-error, #form-check, p.field-error[id^=error-]").forEach(function (e) { e.remove(); });
      doc.querySelectorAll("p.field-error[id^=error-]").forEach(function (error) {
        var input = error.nextElementSibling;
        var here = input && input.id && document.getElementById(input.id);
        if (here) {
          here.parentNode.insertBefore(document.importNode(error, true), here);
          here.setAttribute("aria-invalid", "true");
          here.setAttribute("aria-describedby", error.id);
        }
      });
      var key = doc.querySelector("input[name=idempotency_key]");
      if (key) form.querySelector("input[name=idempotency_key]").value = key.value;
      var summary = doc.getElementById("form-error");
      if (summary) {
        var copy = document.importNode(summary, true);
        copy.querySelectorAll("p.hint").forEach(function (hint) { hint.remove(); });  // the photos are still chosen
        form.parentNode.insertBefore(copy, form);
        copy.tabIndex = -1;
        copy.focus();
      }
    }

    form.addEventListener("submit", function (event) {
      var found = problems();
      if (found.length) {
        event.preventDefault();
        showSummary(found);
        return;
      }
      if (!window.fetch || !window.FormData) return;
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          if (response.redirected && response.ok) { window.location.assign(response.url); return null; }
          return response.text().then(showServerErrors);
        })
        .catch(function () { form.submit(); })
        .then(function () { button.disabled = false; });
    });
  }

  // Category suggestions as the citizen types (the city's model, POST /api/v1/ai/suggest): the three
  // likeliest categories with their probabilities; a tap chooses one in step 1.
  function suggestions(form) {
    var url = form.getAttribute("data-suggest-url");
    if (!url || !window.fetch) return;
    var locale = form.getAttribute("data-locale");
    var search = form.querySelector("[data-category-search]");

    function choose(code) {
      if (search && search.value) {  // the keyword filter may hide the category: show them all again
        search.value = "";
        search.dispatchEvent(new Event("input", { bubbles: true }));
      }
      var radio = Array.prototype.find.call(form.querySelectorAll("input[name=service_code]"),
        function (r) { return r.value === code; });
      if (!radio) return;
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      radio.focus();
    }

    function render(box, answer) {
      box.textContent = "";
      if (!answer || !answer.suggestions || !answer.suggestions.length) { box.classList.add("is-empty"); return; }
      var label = document.createElement("span");
      label.className = "hint";
      label.textContent = box.getAttribute("data-label");
      box.appendChild(label);
      answer.suggestions.forEach(function (s) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "chip";
        button.setAttribute("data-code", s.code);
        button.textContent = (locale === "en" ? s.name_en : s.name_zh) + " · " + Math.round(s.probability * 100) + "%";
        button.addEventListener("click", function () { choose(s.code); });
        box.appendChild(button);
      });
      box.classList.remove("is-empty");
    }

    function attach(input, box) {
      if (!input || !box) return;
      var timer = null;
      var asked = "";
      input.addEventListener("input", function () {
        box.classList.add("is-reserved");
        clearTimeout(timer);
        timer = setTimeout(function () {
          var text = input.value.trim();
          if (text.length < 2) { render(box, null); asked = ""; return; }
          if (text === asked) return;
          asked = text;
          fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ description: text, k: 3 }) })
            .then(function (response) { return response.ok ? response.json() : null; })
            .then(function (answer) { if (asked === text) render(box, answer); })
            .catch(function () { render(box, null); });
        }, 250);
      });
    }

    attach(search, document.getElementById("category-suggestions"));
    attach(document.getElementById("description"), document.getElementById("description-suggestions"));
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("report-form");
    if (!form) return;
    suggestions(form);
    photoPreviews(form);
    filterCategories(form);
    detailFields(form);
    locationPicker(form);
    photoPlace(form);
    formChecks(form);
  });
})();
