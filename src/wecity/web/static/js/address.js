// The report form's address search and the pin's place in words (templates/web/_address_search.html).
// Searching asks /api/v1/geo/search as the citizen types; choosing a result moves the pin (report.js listens
// for "wecity:place") and fills the address field when it is empty. Whenever the pin moves (report.js
// fires "change" on #lat), /api/v1/geo/reverse names the nearest road and the district.
// Without JavaScript the search stays hidden and the address field alone carries the place.
(function () {
  "use strict";

  function localName(item, zh) {
    if (!item) return "";
    return (zh ? item.name_zh : item.name_en) || item.name || item.name_zh || item.name_en || "";
  }

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key] || ""; });
  }

  function setUp(form, box) {
    var searchUrl = box.getAttribute("data-search-url");
    var reverseUrl = box.getAttribute("data-reverse-url");
    var zh = (box.getAttribute("data-locale") || "").indexOf("zh") === 0;
    var input = box.querySelector("input[type=search]");
    var list = box.querySelector(".address-results");
    var line = form.querySelector("[data-place-line]");
    var address = document.getElementById("address");
    var lat = document.getElementById("lat");
    var lon = document.getElementById("long");
    var found = [];
    var asked = "";
    var timer = null;
    box.hidden = false;

    function choose(place) {
      list.textContent = "";
      found = [];
      asked = "";  // the same words typed again ask again
      var label = localName(place, zh);
      input.value = label;
      if (address && !address.value.trim()) address.value = label;
      form.dispatchEvent(new CustomEvent("wecity:place", { detail: { lat: place.lat, lng: place.long } }));
    }

    function render(results) {
      list.textContent = "";
      found = results || [];
      if (!found.length) {
        var none = document.createElement("li");
        none.className = "hint";
        none.textContent = box.getAttribute("data-text-none");
        list.appendChild(none);
        return;
      }
      found.forEach(function (place) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "address-result";
        var name = document.createElement("strong");
        name.textContent = localName(place, zh);
        button.appendChild(name);
        var where = [localName(place.district, zh)];
        if (place.approximate && place.kind !== "district") where.push(box.getAttribute("data-text-approximate"));
        var detail = where.filter(Boolean).join(" ");
        if (detail) {
          var small = document.createElement("span");
          small.className = "hint";
          small.textContent = detail;
          button.appendChild(document.createTextNode(" "));
          button.appendChild(small);
        }
        button.addEventListener("click", function () { choose(place); });
        item.appendChild(button);
        list.appendChild(item);
      });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var text = input.value.trim();
        if (!text) { list.textContent = ""; asked = ""; return; }
        if (text === asked) return;
        asked = text;
        fetch(searchUrl + "?limit=6&q=" + encodeURIComponent(text), { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (answer) { if (answer && asked === text) render(answer.results); })
          .catch(function () { list.textContent = ""; });
      }, 250);
    });
    // Enter chooses the first result instead of sending the whole report.
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault();
      if (found.length) choose(found[0]);
    });

    var reverseTimer = null;
    var shown = "";
    function describe() {
      if (!line || !lat.value || !lon.value) return;
      var key = lat.value + "," + lon.value;
      if (key === shown) return;
      shown = key;
      fetch(reverseUrl + "?lat=" + encodeURIComponent(lat.value) + "&long=" + encodeURIComponent(lon.value),
        { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (!answer || shown !== key) return;
          var road = answer.road ? localName(answer.road, zh) : "";
          var district = localName(answer.district, zh);
          if (road && district) line.textContent = fill(box.getAttribute("data-text-near"), { road: road, district: district });
          else if (road) line.textContent = fill(box.getAttribute("data-text-near-road"), { road: road });
          else line.textContent = district;
        })
        .catch(function () { line.textContent = ""; });
    }
    lat.addEventListener("change", function () {
      clearTimeout(reverseTimer);
      reverseTimer = setTimeout(describe, 150);
    });
    if (lat.value && lon.value) describe();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("report-form");
    var box = form && form.querySelector("[data-address-search]");
    if (!box || !window.fetch) return;
    setUp(form, box);
  });
})();
