// Starts Swagger UI on /docs (a file, not an inline script, so that the page keeps the portal's CSP).
(function () {
  "use strict";

  var element = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: element.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    // Tags start folded: with every operation of every domain open at once (150 and more), Swagger UI
    // stops rendering after the first few tags.
    docExpansion: "none",
    showExtensions: true,
    showCommonExtensions: true,
    // No badge fetched from validator.swagger.io: nothing on this page leaves the platform.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis]
  });
})();
