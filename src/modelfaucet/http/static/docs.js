// Starts Swagger UI (GET /docs) or ReDoc (GET /redoc) on this service's OpenAPI document.
// A file of its own, not an inline script, so the pages run under a Content-Security-Policy
// that allows scripts from this origin only. The page names the document in data-openapi-url.
"use strict";

window.addEventListener("load", function () {
  var swagger = document.getElementById("swagger-ui");
  if (swagger && window.SwaggerUIBundle) {
    window.ui = window.SwaggerUIBundle({
      url: swagger.getAttribute("data-openapi-url"),
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    });
  }
  var redoc = document.getElementById("redoc");
  if (redoc && window.Redoc) {
    window.Redoc.init(redoc.getAttribute("data-openapi-url"), {}, redoc);
  }
});
