// llm4ms web page: talks only to this server's JSON API (/api/...), draws mirror plots as SVG.
// Plain modern JS, no build step, no network beyond the local server. All library text goes through
// textContent (never innerHTML), so names in a library cannot inject markup.
"use strict";

const COLORS = { query: "#1f5fa8", reference: "#6b6b6b", matched: "#e8590c" };
const SVG_NS = "http://www.w3.org/2000/svg";
let lastSearch = null; // {params, queries} of the results on screen, for the CSV download

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function apiError(response) {
  try {
    const body = await response.json();
    return body.error || JSON.stringify(body);
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

function fmt(value, digits) {
  return value === null || value === undefined || Number.isNaN(value) ? "" : Number(value).toFixed(digits);
}

// ---- library info ------------------------------------------------------------------------------
async function loadLibraryInfo() {
  try {
    const response = await fetch("/api/library");
    if (!response.ok) throw new Error(await apiError(response));
    const info = await response.json();
    const lib = info.library;
    const model = (lib.model && (lib.model.reference || lib.model.identity)) || "unknown model";
    $("library-info").textContent =
      `Library: ${lib.spectra.toLocaleString()} spectra (${(lib.with_structure || 0).toLocaleString()} with structure)` +
      ` · model ${model} · up to ${info.limits.max_spectra} queries and ${info.limits.max_upload_mb} MB per search`;
    $("k").max = info.limits.max_k;
    // the file picker offers the extensions the readers know (llm4ms.io.formats), each optionally .gz
    $("files").accept = [...Object.values(info.formats || {}).flat(), ".gz"].join(",");
  } catch (err) {
    $("library-info").textContent = `Library info unavailable: ${err.message}`;
  }
}

// ---- search ------------------------------------------------------------------------------------
function searchParams() {
  return {
    k: parseInt($("k").value || "10", 10),
    mass: $("mass").value === "" ? null : Number($("mass").value),
    mass_tolerance: $("mass_tolerance").value === "" ? null : Number($("mass_tolerance").value),
    precursor_tolerance: $("precursor_tolerance").value.trim() === "" ? null : $("precursor_tolerance").value.trim(),
    ion_mode: $("ion_mode").value === "" ? null : $("ion_mode").value,
  };
}

async function onSearch(event) {
  event.preventDefault();
  showError("");
  const params = searchParams();
  const form = new FormData();
  form.append("text", $("text").value);
  for (const file of $("files").files) form.append("files", file, file.name);
  for (const [key, value] of Object.entries(params)) if (value !== null) form.append(key, String(value));
  const button = $("search-btn");
  button.disabled = true;
  $("status").textContent = "searching…";
  try {
    const response = await fetch("/api/search", { method: "POST", body: form });
    if (!response.ok) throw new Error(await apiError(response));
    const result = await response.json();
    lastSearch = { params, queries: result.queries };
    renderResults(result);
    const hits = result.queries.reduce((n, q) => n + q.hits.length, 0);
    $("status").textContent = `${result.queries.length} queries, ${hits} hits in ${result.elapsed_ms} ms`;
  } catch (err) {
    $("status").textContent = "";
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

function renderResults(result) {
  const root = $("results");
  root.replaceChildren();
  const toolbar = el("div", { class: "toolbar" },
    el("button", { id: "download-csv", type: "button", onclick: downloadCsv }, "Download CSV"),
    el("span", { class: "muted" }, "Click a hit to see the mirror plot (query up, library down, matched peaks in orange)."));
  root.append(toolbar);
  result.queries.forEach((query) => root.append(renderQuery(query)));
  // Show the best hit of the first query straight away.
  const first = root.querySelector("tr.hit-row");
  if (first) first.click();
}

function renderQuery(query) {
  const label = query.name || query.id || `query ${query.index + 1}`;
  const mass = query.mass !== null && query.mass !== undefined ? ` · mass ${fmt(query.mass, 4)}` : "";
  const precursor = query.precursor_mz !== null && query.precursor_mz !== undefined
    ? ` · precursor ${fmt(query.precursor_mz, 4)}${query.adduct ? " " + query.adduct : ""}` : "";
  const card = el("section", { class: "query", "data-query": query.index },
    el("h2", {}, `Query ${query.index + 1}: ${label} `,
       el("span", { class: "muted" }, `${query.n_peaks} peaks${mass}${precursor}`)));
  const mirror = el("div", { class: "mirror" }, el("div", { class: "placeholder muted" }, "select a hit"));
  if (!query.hits.length) {
    card.append(el("p", { class: "muted" }, "No hits (check the mass, precursor and ion-mode filters)."));
    return card;
  }
  // MS/MS libraries: precursor m/z and adduct columns, shown only when a hit has them
  const msms = query.hits.some((hit) => (hit.precursor_mz !== null && hit.precursor_mz !== undefined) || hit.adduct);
  const columns = ["#", "score", "structure", "name", "formula", "InChIKey", "mass"];
  if (msms) columns.push("precursor m/z", "adduct");
  const head = el("tr", {}, ...columns.map((h) => el("th", {}, h)));
  const body = el("tbody");
  for (const hit of query.hits) {
    const picture = hit.smiles
      ? el("img", { src: `/api/structure/${hit.library_index}.svg`, alt: hit.smiles, loading: "lazy",
                    onerror: (e) => e.target.remove() })
      : null;
    const row = el("tr", { class: "hit-row", "data-library-index": hit.library_index, "data-rank": hit.rank },
      el("td", { class: "num" }, hit.rank),
      el("td", { class: "num" }, fmt(hit.score, 3)),
      el("td", { class: "structure" }, picture),
      el("td", {}, hit.name || hit.id || ""),
      el("td", {}, hit.formula || ""),
      el("td", { class: "key" }, hit.inchikey || ""),
      el("td", { class: "num" }, fmt(hit.mass, 4)));
    if (msms) row.append(el("td", { class: "num" }, fmt(hit.precursor_mz, 4)), el("td", {}, hit.adduct || ""));
    row.addEventListener("click", () => selectHit(query, hit, row, mirror));
    body.append(row);
  }
  card.append(el("div", { class: "query-body" }, el("table", { class: "hits" }, el("thead", {}, head), body), mirror));
  return card;
}

async function selectHit(query, hit, row, mirror) {
  row.parentElement.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
  row.classList.add("selected");
  mirror.replaceChildren(el("div", { class: "placeholder muted" }, "loading mirror plot…"));
  try {
    const response = await fetch("/api/mirror", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query: { peaks: query.peaks, name: query.name || `query ${query.index + 1}` },
                             library_index: hit.library_index, score: hit.score }),
    });
    if (!response.ok) throw new Error(await apiError(response));
    const data = await response.json();
    mirror.replaceChildren(drawMirror(data), mirrorInfo(hit, data));
  } catch (err) {
    mirror.replaceChildren(el("div", { class: "error" }, err.message));
  }
}

function mirrorInfo(hit, data) {
  const picture = hit.smiles ? el("img", { src: `/api/structure/${hit.library_index}.svg`, alt: "", onerror: (e) => e.target.remove() }) : null;
  return el("div", { class: "mirror-info" }, picture,
    el("div", {}, el("strong", {}, `#${hit.rank} ${hit.name || hit.id || ""}`)),
    el("div", { class: "muted" }, `score ${fmt(hit.score, 4)} · ${data.matched_peaks} matched peaks (±${data.tolerance} m/z)`),
    el("div", { class: "muted" }, [hit.formula, hit.inchikey, hit.smiles].filter(Boolean).join(" · ")),
    data.reference.precursor ? el("div", { class: "muted" },
      `library ${data.reference.precursor}` + (data.query.precursor ? ` · query ${data.query.precursor}` : "")) : null,
    data.note ? el("div", { class: "muted" }, data.note) : null);
}

// ---- mirror plot (SVG) ---------------------------------------------------------------------------
function niceStep(span, target) {
  const raw = span / target;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = [1, 2, 5, 10].find((m) => m * power >= raw) || 10;
  return unit * power;
}

function drawMirror(data) {
  const W = 640, H = 400, left = 50, right = 12, top = 46, bottom = 40;
  const mid = top + (H - top - bottom) / 2, half = (H - top - bottom) / 2 - 14;
  const all = data.query.mz.concat(data.reference.mz);
  let lo = Math.min(...all), hi = Math.max(...all);
  const pad = Math.max(5, 0.04 * (hi - lo));
  lo = Math.max(0, lo - pad); hi = hi + pad;
  const x = (mz) => left + ((mz - lo) / (hi - lo)) * (W - left - right);
  const y = (pct, sign) => mid - sign * (pct / 100) * half;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "mirror-plot",
                            "aria-label": `mirror plot of ${data.query.name} against ${data.reference.name}` });
  let title = `${data.query.name}  vs  ${data.reference.name}`;
  if (title.length > 70) title = title.slice(0, 69) + "…";
  if (data.score !== null) title += `  (score ${data.score.toFixed(3)})`;
  root.append(svg("text", { x: 8, y: 16, "font-size": 13, "font-weight": 600, fill: "#1d232b" }, title));
  // axes and grid
  const step = niceStep(hi - lo, 8);
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: top, y2: H - bottom, stroke: "#eef0f3" }));
    root.append(svg("text", { x: x(t), y: H - bottom + 16, "font-size": 11, "text-anchor": "middle", fill: "#5f6b7a" }, String(Math.round(t))));
  }
  for (const [pct, sign] of [[100, 1], [50, 1], [50, -1], [100, -1]]) {
    root.append(svg("line", { x1: left, x2: W - right, y1: y(pct, sign), y2: y(pct, sign), stroke: "#eef0f3" }));
    root.append(svg("text", { x: left - 6, y: y(pct, sign) + 4, "font-size": 11, "text-anchor": "end", fill: "#5f6b7a" }, String(pct)));
  }
  root.append(svg("text", { x: left - 6, y: mid + 4, "font-size": 11, "text-anchor": "end", fill: "#5f6b7a" }, "0"));
  root.append(svg("text", { x: (left + W - right) / 2, y: H - 6, "font-size": 12, "text-anchor": "middle", fill: "#1d232b" }, "m/z"));
  root.append(svg("text", { x: 14, y: mid, "font-size": 11, "text-anchor": "middle", fill: "#5f6b7a",
                            transform: `rotate(-90 14 ${mid})` }, "query ↑   intensity %   library ↓"));
  // peaks: unmatched first, matched on top
  for (const [side, sign] of [["query", 1], ["reference", -1]]) {
    const d = data[side];
    const order = d.mz.map((_, i) => i).sort((a, b) => Number(d.matched[a]) - Number(d.matched[b]));
    for (const i of order) {
      const color = d.matched[i] ? COLORS.matched : COLORS[side];
      root.append(svg("line", { x1: x(d.mz[i]), x2: x(d.mz[i]), y1: mid, y2: y(d.intensity[i], sign),
                                stroke: color, "stroke-width": d.matched[i] ? 2.2 : 1.6,
                                class: d.matched[i] ? "peak matched" : `peak ${side}` }));
    }
    const placed = []; // skip a label that would overprint a taller neighbour's
    const byHeight = [...d.labels].sort((a, b) => d.intensity[b] - d.intensity[a]);
    for (const i of byHeight) {
      const px = x(d.mz[i]), py = y(d.intensity[i], sign);
      if (placed.some(([qx, qy]) => Math.abs(qx - px) < 18 && Math.abs(qy - py) < 14)) continue;
      placed.push([px, py]);
      const label = Number.isInteger(d.mz[i]) ? String(d.mz[i]) : d.mz[i].toFixed(2);
      root.append(svg("text", { x: x(d.mz[i]), y: y(d.intensity[i], sign) + (sign > 0 ? -4 : 12), "font-size": 10,
                                "text-anchor": "middle", fill: "#1d232b" }, label));
    }
  }
  root.append(svg("line", { x1: left, x2: W - right, y1: mid, y2: mid, stroke: "#1d232b", "stroke-width": 1 }));
  // legend
  const items = [["query", COLORS.query], ["library", COLORS.reference], [`matched (${data.matched_peaks})`, COLORS.matched]];
  let lx = left;
  for (const [name, color] of items) {
    root.append(svg("rect", { x: lx, y: 28, width: 16, height: 4, fill: color }));
    root.append(svg("text", { x: lx + 21, y: 34, "font-size": 11, fill: "#1d232b" }, name));
    lx += 110;
  }
  return root;
}

// ---- CSV ---------------------------------------------------------------------------------------
async function downloadCsv() {
  if (!lastSearch) return;
  showError("");
  const { params, queries } = lastSearch;
  const body = { ...params, spectra: queries.map((q) => ({ peaks: q.peaks, name: q.name, id: q.id,
                                                            mass: params.mass === null ? q.mass : null,
                                                            metadata: queryMetadata(q) })) };
  for (const key of ["mass", "mass_tolerance", "precursor_tolerance", "ion_mode"]) if (body[key] === null) delete body[key];
  try {
    const response = await fetch("/api/search.csv", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await apiError(response));
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: "llm4ms_hits.csv" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    showError(err.message);
  }
}

function queryMetadata(query) {
  // what the precursor filter reads of a query, sent back with its peaks
  const meta = {};
  if (query.precursor_mz !== null && query.precursor_mz !== undefined) meta.precursor_mz = query.precursor_mz;
  if (query.adduct) meta.precursor_type = query.adduct;
  return meta;
}

function onClear() {
  $("text").value = "";
  $("files").value = "";
  $("results").replaceChildren();
  $("status").textContent = "";
  showError("");
  lastSearch = null;
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", onSearch);
  $("clear-btn").addEventListener("click", onClear);
  loadLibraryInfo();
});
