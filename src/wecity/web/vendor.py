"""Paths of the vendored browser libraries under /static (see static/vendor/README.md)."""

VENDOR = {
    "leaflet_js": "/static/vendor/leaflet-1.9.4/leaflet.js",
    "leaflet_css": "/static/vendor/leaflet-1.9.4/leaflet.css",
    "htmx_js": "/static/vendor/htmx-2.0.11/htmx.min.js",
    "markercluster_js": "/static/vendor/leaflet.markercluster-1.5.3/leaflet.markercluster-src.js",
    "markercluster_css": "/static/vendor/leaflet.markercluster-1.5.3/MarkerCluster.css",
    "markercluster_default_css": "/static/vendor/leaflet.markercluster-1.5.3/MarkerCluster.Default.css",
    "exifr_js": "/static/vendor/exifr-7.1.3/lite.umd.js",
    "maplibre_js": "/static/vendor/maplibre-gl-6.20.0/maplibre-gl.mjs",
    "maplibre_css": "/static/vendor/maplibre-gl-6.20.0/maplibre-gl.css",
    "maplibre_leaflet_js": "/static/vendor/maplibre-gl-leaflet-0.1.4/leaflet-maplibre-gl.js",
    "pmtiles_js": "/static/vendor/pmtiles-4.5.0/pmtiles.js",
    "echarts_js": "/static/vendor/echarts-6.1.0/echarts.min.js",
    "swagger_js": "/static/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js",
    "swagger_css": "/static/vendor/swagger-ui-dist-5.35.0/swagger-ui.css",
}
