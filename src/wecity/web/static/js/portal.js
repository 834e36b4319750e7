// Small progressive enhancements shared by every page; every page works without them.
(function () {
  "use strict";
  // The phone menu: one button folds the navigation away, so it never runs off the side of the screen.
  var nav = document.querySelector(".main-nav");
  var toggle = nav && nav.querySelector(".menu-toggle");
  if (toggle) {
    nav.classList.add("foldable");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      nav.classList.toggle("open", open);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && nav.classList.contains("open")) {
        toggle.setAttribute("aria-expanded", "false");
        nav.classList.remove("open");
        toggle.focus();
      }
    });
  }
  // After htmx swaps content in, move keyboard focus to an alert in it, so screen-reader and keyboard
  // users notice the change; background refreshes (polling) never take the focus away.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-focus-on-swap")) return;
    var focusable = target.querySelector("[role=alert]");
    if (focusable) {
      if (!focusable.hasAttribute("tabindex")) focusable.setAttribute("tabindex", "-1");
      focusable.focus();
    }
  });
})();
