// numcnn serve: the page. It draws what the server computes; every number shown comes from
// numcnn (the /api routes). Nothing here recomputes the model.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  model: null,      // GET /api/model
  info: {},         // every layer's entry of /api/model by its path ("3", "3.0", "3.shortcut.0")
  blob: null,       // the image last sent, re-sent for /api/detail and /api/playground
  result: null,     // POST /api/explain, arrays decoded
  entries: {},      // every layer's entry of the explain answer by path, blocks' inner layers included
  zoom: null,       // {path, channel, y, x} while the dialog is open
  drawn: false,
};

// -- numbers and arrays ------------------------------------------------------------------------
function decode(enc) {
  // {"shape", "data": base64 little-endian float32} -> {shape, data: Float32Array, min, max}
  const bin = atob(enc.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return { shape: enc.shape, data: new Float32Array(bytes.buffer), min: enc.min, max: enc.max };
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "-inf";
  const s = Number(v).toFixed(digits);
  return s === "-" + (0).toFixed(digits) ? (0).toFixed(digits) : s;
}

function planes(shape) {
  // An output of shape [C, H, W] is C maps of H x W; [K] is one map of 1 x K.
  return shape.length === 3 ? { c: shape[0], h: shape[1], w: shape[2] } : { c: 1, h: 1, w: shape[shape.length - 1] };
}

function shapeText(shape) {
  return shape.join(" x ");
}

// -- colours -------------------------------------------------------------------------------------
function colour(v, lo, hi) {
  // Signed data: blue - white - red around 0; otherwise black to white.
  if (lo < 0) {
    const m = Math.max(-lo, hi) || 1;
    const t = Math.max(-1, Math.min(1, v / m));
    return t >= 0 ? [255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t))]
                  : [Math.round(255 * (1 + t)), Math.round(255 * (1 + t)), 255];
  }
  const g = hi > lo ? Math.round(255 * (v - lo) / (hi - lo)) : 0;
  return [g, g, g];
}

function paint(canvas, data, offset, h, w, lo, hi) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = colour(data[offset + i], lo, hi);
    img.data.set([r, g, b, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

function paintImage(canvas, arr) {
  // The model's input (C, H, W) in [0, 1]: gray or RGB.
  const [c, h, w] = arr.shape;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const px = [0, 1, 2].map((k) => Math.round(255 * Math.max(0, Math.min(1, arr.data[(c === 3 ? k : 0) * h * w + i]))));
    img.data.set([...px, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

function paintPadded(ctx, map, offset, h, w, [top, bottom, left, right], cell) {
  // One h x w plane of map (from offset in map.data) with its padding around it, checkered.
  for (let y = 0; y < h + top + bottom; y++) for (let x = 0; x < w + left + right; x++) {
    const iy = y - top, ix = x - left;
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
      ctx.fillStyle = (x + y) % 2 ? "#d8d8d8" : "#eeeeee";  // padding
    } else {
      const [r, g, b] = colour(map.data[offset + iy * w + ix], map.min, map.max);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
    }
    ctx.fillRect(x * cell, y * cell, cell, cell);
  }
}

function strokeWindow(ctx, rows, cols, cell, style, dash) {
  // A window's taps at rows x cols (on the padded plane), each outlined, and the whole window.
  ctx.setLineDash(dash);
  ctx.strokeStyle = style;
  ctx.lineWidth = 2;
  for (const r of rows) for (const c of cols) ctx.strokeRect(c * cell + 1, r * cell + 1, cell - 2, cell - 2);
  ctx.lineWidth = 3;
  ctx.strokeRect(cols[0] * cell, rows[0] * cell, (cols[cols.length - 1] - cols[0] + 1) * cell,
                 (rows[rows.length - 1] - rows[0] + 1) * cell);
  ctx.setLineDash([]);
}

// -- talking to the server ---------------------------------------------------------------------
async function post(path, blob) {
  const response = await fetch(path, { method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function getJSON(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// -- the model -----------------------------------------------------------------------------------
async function loadModel() {
  const response = await fetch("/api/model");
  const m = await response.json();
  state.model = m;
  const [c, h, w] = m.input_shape;
  const norm = m.normalization ? `; normalised per channel: mean ${m.normalization.mean.map((v) => fmt(v, 3)).join(", ")}, std ${m.normalization.std.map((v) => fmt(v, 3)).join(", ")}` : "";
  $("model-info").textContent = `${m.source}${m.model ? " (" + m.model + (m.dataset ? " on " + m.dataset : "") + ")" : ""}: ` +
    `input ${c} x ${h} x ${w}, ${m.classes.length} classes, ${m.parameters.toLocaleString()} parameters${norm}`;
  if (c === 1) {
    $("draw-area").hidden = false;
    clearCanvas();
  } else {
    say("Drop or choose a photo to begin.");
  }
  buildLayers();
  await openExamples();
}

// The page starts alive: one test image per class, the first explained at once. A model with no
// examples is explained on its blank input, so that no box is ever empty.
async function openExamples() {
  const response = await fetch("/api/examples");
  const { examples } = await response.json();
  const strip = $("examples");
  strip.replaceChildren();
  for (const [i, ex] of examples.entries()) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.dataset.index = String(i);
    button.title = `Explain this ${ex.name}`;
    button.setAttribute("aria-label", `Example ${i + 1}: ${ex.name}`);
    const img = document.createElement("img");
    img.src = `data:image/png;base64,${ex.png}`;
    img.alt = ex.name;
    button.appendChild(img);
    button.addEventListener("click", () => chooseExample(button, ex));
    strip.appendChild(button);
  }
  strip.hidden = examples.length === 0;
  if (examples.length) {
    await chooseExample(strip.firstChild, examples[0]);
  } else {
    await explain(await blankBlob());
  }
}

async function chooseExample(button, ex) {
  for (const other of $("examples").children) other.classList.toggle("chosen", other === button);
  const bytes = Uint8Array.from(atob(ex.png), (c) => c.charCodeAt(0));
  await explain(new Blob([bytes], { type: "image/png" }));
}

function blankBlob() {
  if (!$("draw-area").hidden) return canvasBlob();
  const [, h, w] = state.model.input_shape;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#808080";
  ctx.fillRect(0, 0, w, h);
  return new Promise((resolve) => canvas.toBlob((b) => resolve(b), "image/png"));
}

// -- input: drawing and files --------------------------------------------------------------------
function inkColours() {
  const dark = state.model && state.model.dark_background;
  return dark ? ["#000", "#fff"] : ["#fff", "#000"];  // [background, ink]: draw what the model saw in training
}

function clearCanvas() {
  const canvas = $("draw");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = inkColours()[0];
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  state.drawn = false;
  say("Draw in the box, or drop or choose a photo.");
}

function canvasBlob() {
  return new Promise((resolve) => $("draw").toBlob((b) => resolve(b), "image/png"));
}

// Answers can come back out of order; each request takes a number and an answer older than
// what is already shown is dropped.
let sent = 0, shown = 0;
function fresh(ticket) {
  if (ticket < shown) return false;
  shown = ticket;
  return true;
}

let predicting = false, predictAgain = false;
async function predictWhileDrawing() {
  // At most one request in flight; the newest drawing is sent when it returns.
  if (predicting) { predictAgain = true; return; }
  predicting = true;
  try {
    const ticket = ++sent;
    const body = await post("/api/predict", await canvasBlob());
    if (fresh(ticket)) showBars(body.predictions);
  } catch (err) {
    say(err.message, true);
  } finally {
    predicting = false;
    if (predictAgain) { predictAgain = false; predictWhileDrawing(); }
  }
}

function setUpDrawing() {
  const canvas = $("draw");
  const ctx = canvas.getContext("2d");
  let last = null;
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    document.body.dataset.ready = "0";
    last = point(e);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = point(e);
    stroke(last, p);
    last = p;
    predictWhileDrawing();
  });
  const end = async () => {
    if (!last) return;
    last = null;
    // No prediction after the stroke: one sent now would take a newer ticket than the
    // explanation and, answered first, have the explanation dropped as stale.
    predictAgain = false;
    explain(await canvasBlob());
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  function stroke(a, b) {
    ctx.strokeStyle = inkColours()[1];
    ctx.lineWidth = Number($("brush").value);
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
    state.drawn = true;
  }
  $("clear").addEventListener("click", clearCanvas);
}

function setUpFiles() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) explain(e.target.files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) explain(e.dataTransfer.files[0]);
  });
}

// -- explain: everything at once -----------------------------------------------------------------
async function explain(blob) {
  say("Computing…");
  document.body.dataset.ready = "0";
  const ticket = ++sent;
  try {
    const body = await post("/api/explain", blob);
    if (!fresh(ticket)) return;
    state.blob = blob;
    state.entries = {};
    const decodeLayer = (l) => {
      const layer = { ...l, output: decode(l.output), children: (l.children || []).map(decodeLayer) };
      state.entries[l.path] = layer;
      return layer;
    };
    state.result = { ...body, input: decode(body.input), saliency: decode(body.saliency),
                     layers: body.layers.map(decodeLayer) };
    showAll();
    runPlayground();
    say(body.inverted ? "Inverted to light-on-dark, as the model was trained." : "Done.");
    document.body.dataset.ready = "1";
  } catch (err) {
    say(err.message, true);
  }
}

function showAll() {
  const r = state.result;
  const [c, h, w] = r.input.shape;
  paintImage($("seen"), r.input);
  const norm = state.model.normalization ? " Layer 0 (Normalize) then computes (x - mean) / std." : "";
  $("seen-caption").textContent = `What the model sees: ${c} x ${h} x ${w} after resizing, in [0, 1]` +
    `${r.inverted ? ", inverted" : ""}.${norm}`;
  showSaliency(r.saliency);
  showBars(r.predictions);
  showSoftmax(r);
  r.layers.forEach(showLayer);
  if (state.zoom) drawZoom();
}

function showSaliency(s) {
  // |gradient|, the largest over channels, per input pixel.
  const [c, h, w] = s.shape;
  const mag = new Float32Array(h * w);
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) mag[i] = Math.max(mag[i], Math.abs(s.data[k * h * w + i]));
  const hi = mag.reduce((a, b) => Math.max(a, b), 0);
  paint($("saliency"), mag, 0, h, w, 0, hi);
  const top = state.result.predictions[0];
  $("saliency-caption").textContent = `Saliency: |d logit("${top.class}") / d input|, from numcnn's backward pass; bright pixels change the score most.`;
}

function showBars(predictions) {
  const bars = $("bars");
  bars.replaceChildren();
  for (const p of predictions.slice(0, 10)) {
    const li = document.createElement("li");
    li.dataset.class = p.class;
    li.dataset.probability = p.probability;
    li.innerHTML = `<span class="name"></span><span class="bar"><span></span></span><span class="p"></span>`;
    li.querySelector(".name").textContent = p.class;
    li.querySelector(".bar span").style.width = `${(100 * p.probability).toFixed(1)}%`;
    li.querySelector(".p").textContent = `${(100 * p.probability).toFixed(1)}%`;
    li.setAttribute("aria-label", `${p.class}: ${(100 * p.probability).toFixed(1)} percent`);
    bars.appendChild(li);
  }
}

function showSoftmax(r) {
  const m = Math.max(...r.logits);
  const exps = r.logits.map((z) => Math.exp(z - m));
  const total = exps.reduce((a, b) => a + b, 0);
  const rows = r.logits.map((z, k) => `<tr><th scope="row"></th><td>${fmt(z)}</td><td>${fmt(exps[k])}</td>` +
    `<td>${fmt(r.probabilities[k])}</td></tr>`).join("");
  $("softmax-body").innerHTML = `<p class="legend">p<sub>k</sub> = exp(z<sub>k</sub> - max z) / sum<sub>j</sub> exp(z<sub>j</sub> - max z),` +
    ` max z = ${fmt(m)}, sum = ${fmt(total)}.</p><table><thead><tr><th>class</th><th>logit z</th>` +
    `<th>exp(z - max z)</th><th>p</th></tr></thead><tbody>${rows}</tbody></table>`;
  $("softmax-body").querySelectorAll("tbody th").forEach((th, k) => { th.textContent = state.model.classes[k]; });
}

// -- the layer overview ----------------------------------------------------------------------------
// Every layer is a box with one small map per channel. A block (Residual, Sequential) has its
// own layers in a box inside that opens: they are listed by path and explained like the others.
const MAX_MAPS = 128;

function boxId(path) {
  return `layer-${path.replace(/\./g, "-")}`;
}

function sourceOf(path) {
  // The map a layer reads: the output of the layer before it, or the model's input.
  const from = state.info[path].input_path;
  return from === null ? state.result.input : state.entries[from].output;
}

function buildLayers() {
  const root = $("layers");
  root.replaceChildren();
  state.info = {};
  state.model.layers.forEach((layer) => root.appendChild(layerBox(layer)));
}

function layerBox(layer) {
  state.info[layer.path] = layer;
  const box = document.createElement("div");
  box.className = "layer";
  box.id = boxId(layer.path);
  box.dataset.path = layer.path;
  const { c, h, w } = planes(layer.output_shape);
  const heading = document.createElement("h3");
  heading.innerHTML = `<span></span> -> <span class="shape"></span>`;
  const role = layer.branch === "shortcut" ? "shortcut: " : "";
  heading.children[0].textContent = `${layer.path} · ${role}${layer.description}`;
  heading.children[1].textContent = shapeText(layer.output_shape);
  box.appendChild(heading);
  const maps = document.createElement("div");
  maps.className = "maps";
  const cell = Math.max(1, Math.min(8, Math.floor(56 / Math.max(h, w > 64 ? 1 : w))));
  for (let k = 0; k < Math.min(c, MAX_MAPS); k++) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.layer = layer.path;
    button.dataset.channel = k;
    button.setAttribute("aria-label", `Layer ${layer.path} ${layer.type}, channel ${k}: enlarge`);
    const canvas = document.createElement("canvas");
    canvas.style.width = `${Math.min(w * cell, 280)}px`;
    canvas.style.height = `${h * cell}px`;
    button.appendChild(canvas);
    button.addEventListener("click", () => openZoom(layer.path, k));
    maps.appendChild(button);
  }
  box.appendChild(maps);
  if (c > MAX_MAPS) {
    const more = document.createElement("p");
    more.className = "hint";
    more.textContent = `${c - MAX_MAPS} more channels not shown.`;
    box.appendChild(more);
  }
  if (layer.children) box.appendChild(blockBox(layer));
  return box;
}

function blockBox(layer) {
  const block = document.createElement("details");
  block.className = "block";
  block.dataset.path = layer.path;
  const body = layer.children.filter((child) => child.branch !== "shortcut").length;
  const shortcut = layer.children.some((child) => child.branch === "shortcut");
  const summary = document.createElement("summary");
  summary.textContent = `Open the block: its ${body} layer${body === 1 ? "" : "s"}` +
    (shortcut ? " and its shortcut" : "") + (layer.type === "Residual" ? ", then their sum" : "");
  block.appendChild(summary);
  const inner = document.createElement("div");
  inner.className = "block-body";
  layer.children.forEach((child) => inner.appendChild(layerBox(child)));
  block.appendChild(inner);
  block.addEventListener("toggle", () => {
    if (block.open && state.result) state.entries[layer.path].children.forEach(showLayer);
  });
  return block;
}

function showLayer(layer) {
  // layer: an entry of the explain answer; a block's inner layers are painted while it is open.
  const { h, w } = planes(layer.output.shape);
  const out = layer.output;
  const box = $(boxId(layer.path));
  box.querySelectorAll(":scope > .maps canvas").forEach((canvas, k) => {
    paint(canvas, out.data, k * h * w, h, w, out.min, out.max);  // one scale for the whole layer
  });
  if (layer.children.length && box.querySelector(":scope > details.block").open) layer.children.forEach(showLayer);
}

// -- start -----------------------------------------------------------------------------------------
// The other scripts (detail.js, playground.js) load after this one: start once all are in.
document.addEventListener("DOMContentLoaded", () => {
  setUpDrawing();
  setUpFiles();
  setUpZoom();
  setUpPlayground();
  loadModel().catch((err) => say(`Cannot load the model: ${err.message}`, true));
});
