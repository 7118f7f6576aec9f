// The world map: countries from world-atlas's TopoJSON (decoded here, no library), drawn as SVG in
// an equirectangular projection, each filled by its visitors. ISO numeric ids -> alpha-2 codes
// from i18n-iso-countries' table. Labels and tooltips are text nodes.
"use strict";

let mapData = null;

async function loadMapData() {
  if (!mapData) {
    const [topology, codes, names] = await Promise.all(["countries-110m.json", "codes.json", "names-en.json"]
      .map((name) => fetch(`/map/${name}`).then((r) => { if (!r.ok) throw new Error(`map data: ${r.status}`); return r.json(); })));
    const alpha2 = Object.fromEntries(codes.map(([a2, _a3, numeric]) => [numeric, a2]));
    mapData = { shapes: countryShapes(topology, alpha2), names: names.countries };
  }
  return mapData;
}

const countryName = (code) => {
  const name = mapData && mapData.names[code];
  return Array.isArray(name) ? name[0] : name || code;
};

// TopoJSON arcs are delta-encoded and quantized; a ring is a list of arc indexes (~i: reversed).
function countryShapes(topology, alpha2) {
  const [sx, sy] = topology.transform.scale, [tx, ty] = topology.transform.translate;
  const arcs = topology.arcs.map((arc) => {
    let x = 0, y = 0;
    return arc.map(([dx, dy]) => { x += dx; y += dy; return [x * sx + tx, y * sy + ty]; });
  });
  const ring = (indexes) => indexes.flatMap((i, n) => {
    const points = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
    return n ? points.slice(1) : points;
  });
  return topology.objects.countries.geometries.filter((g) => g.arcs).map((g) => ({
    code: alpha2[g.id] || "",
    name: g.properties.name,
    polygons: (g.type === "Polygon" ? [g.arcs] : g.arcs).map((rings) => rings.map(ring)),
  }));
}

const W = 800, H = 400, TOP = 84, BOTTOM = -58; // latitudes shown: no Antarctica
const project = ([lon, lat]) => [((lon + 180) / 360) * W, ((TOP - lat) / (TOP - BOTTOM)) * H];

function pathOf(polygons) {
  return polygons.map((rings) => rings.map((points) =>
    "M" + points.map((p) => project(p).map((v) => v.toFixed(1)).join(",")).join("L") + "Z").join("")).join("");
}

// visitors: {alpha2: number}; onPick(code) when a country is clicked.
async function drawMap(svg, visitors, onPick) {
  const { shapes } = await loadMapData();
  const max = Math.max(1, ...Object.values(visitors));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  for (const shape of shapes) {
    const n = visitors[shape.code] || 0;
    const path = svgEl("path", { d: pathOf(shape.polygons), class: n ? "has-visitors" : "", "data-code": shape.code });
    if (n) {
      path.style.fillOpacity = (0.2 + 0.8 * (n / max)).toFixed(2);
      path.setAttribute("data-metric", "visitors");
      path.setAttribute("data-value", String(n));
      path.addEventListener("click", () => onPick(shape.code));
    }
    path.append(svgEl("title", {}, `${countryName(shape.code)}: ${fmt(n)} visitors`));
    svg.append(path);
  }
}
