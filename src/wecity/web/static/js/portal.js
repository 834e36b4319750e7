// Small progressive enhancements shared by every page; every page works without them.
(function () {
  "use strict";
  // After htmx swaps content in, move keyboard focus to the new content's heading or alert, so
  // screen-reader and keyboard users notice the change.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target) return;
    var focusable = target.querySelector("[role=alert], h2, h1");
    if (focusable) {
      if (!focusable.hasAttribute("tabindex")) focusable.setAttribute("tabindex", "-1");
      focusable.focus();
    }
  });
})();
