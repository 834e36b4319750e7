// The city's own street map under the Leaflet maps (docs/basemap.md). MapLibre GL draws the platform's
// vector tiles (one PMTiles file read by byte ranges) inside a Leaflet layer in the tile pane, so the
// districts, pins and case markers that map.js and the pages draw with Leaflet stay on top of it.
// Loaded as a module only on pages whose map has an imported base map; map.js calls WeCityBasemap.add.
const script = document.querySelector("script[data-maplibre]");

function hasWebGL() {
  try {
    const canvas = document.createElement("canvas");
    return !!(canvas.getContext("webgl2") || canvas.getContext("webgl"));
  } catch (error) {
    return false;
  }
}

function classicScript(src) {
  return new Promise(function (resolve, reject) {
    const element = document.createElement("script");
    element.src = src;
    element.onload = resolve;
    element.onerror = function () { reject(new Error("could not load " + src)); };
    document.head.appendChild(element);
  });
}

async function load() {
  if (!hasWebGL()) throw new Error("this browser has no WebGL");
  const maplibregl = await import(script.getAttribute("data-maplibre"));
  // The Leaflet plugin is a UMD script that reads the library from the global when it runs.
  window.maplibregl = maplibregl;
  await classicScript(script.getAttribute("data-leaflet-gl"));
  const protocol = new window.pmtiles.Protocol();
  maplibregl.addProtocol("pmtiles", protocol.tile);
  return maplibregl;
}

let loading = null;

window.WeCityBasemap = {
  // Puts the base map named by the element's data-basemap-style under the Leaflet `map`; resolves to the layer.
  add: async function (map, element) {
    loading = loading || load();
    await loading;
    const response = await fetch(element.getAttribute("data-basemap-style"), { credentials: "same-origin" });
    if (!response.ok) throw new Error("base map style " + response.status);
    const style = await response.json();
    // The style names the archive by path; the pmtiles protocol fetches it by full address.
    Object.values(style.sources).forEach(function (source) {
      if (source.url && source.url.indexOf("pmtiles://") === 0) {
        source.url = "pmtiles://" + new URL(source.url.slice("pmtiles://".length), window.location.href).href;
      }
    });
    const layer = window.L.maplibreGL({
      style: style,
      localIdeographFontFamily: (style.metadata || {})["wecity:ideograph_fonts"] || "sans-serif",
      interactive: false
    });
    layer.addTo(map);
    return layer;
  }
};
