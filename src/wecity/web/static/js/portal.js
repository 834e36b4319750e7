// Small progressive enhancements shared by every page; every page works without them.
(function () {
  "use strict";
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
