// numcnn serve: the page. It draws what the server computes; every number shown comes from
// numcnn (the /api routes). Nothing here recomputes the model.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  model: null,      // GET /api/model
  blob: null,       // the image last sent, re-sent for /api/detail
  result: null,     // POST /api/explain, arrays decoded
  zoom: null,       // {layer, channel, y, x} while the dialog is open
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

// -- talking to the server ---------------------------------------------------------------------
async function post(path, blob) {
  const response = await fetch(path, { method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" } });
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
    state.result = { ...body, input: decode(body.input), saliency: decode(body.saliency),
                     layers: body.layers.map((l) => ({ ...l, output: decode(l.output) })) };
    showAll();
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
const MAX_MAPS = 128;

function buildLayers() {
  const root = $("layers");
  root.replaceChildren();
  state.model.layers.forEach((layer) => {
    const box = document.createElement("div");
    box.className = "layer";
    box.id = `layer-${layer.index}`;
    const { c, h, w } = planes(layer.output_shape);
    const heading = document.createElement("h3");
    heading.innerHTML = `<span></span> -> <span class="shape"></span>`;
    heading.children[0].textContent = `${layer.index} · ${layer.description}`;
    heading.children[1].textContent = shapeText(layer.output_shape);
    box.appendChild(heading);
    const maps = document.createElement("div");
    maps.className = "maps";
    const cell = Math.max(1, Math.min(8, Math.floor(56 / Math.max(h, w > 64 ? 1 : w))));
    for (let k = 0; k < Math.min(c, MAX_MAPS); k++) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.layer = layer.index;
      button.dataset.channel = k;
      button.setAttribute("aria-label", `Layer ${layer.index} ${layer.type}, channel ${k}: enlarge`);
      const canvas = document.createElement("canvas");
      canvas.style.width = `${Math.min(w * cell, 280)}px`;
      canvas.style.height = `${h * cell}px`;
      button.appendChild(canvas);
      button.addEventListener("click", () => openZoom(layer.index, k));
      maps.appendChild(button);
    }
    box.appendChild(maps);
    if (c > MAX_MAPS) {
      const more = document.createElement("p");
      more.className = "hint";
      more.textContent = `${c - MAX_MAPS} more channels not shown.`;
      box.appendChild(more);
    }
    root.appendChild(box);
  });
}

function showLayer(layer) {
  const { h, w } = planes(layer.output.shape);
  const out = layer.output;
  document.querySelectorAll(`#layer-${layer.index} .maps canvas`).forEach((canvas, k) => {
    paint(canvas, out.data, k * h * w, h, w, out.min, out.max);  // one scale for the whole layer
  });
}

// -- one map, enlarged, and one pixel explained ----------------------------------------------------
function openZoom(index, channel) {
  if (!state.result) return;
  state.zoom = { layer: index, channel, y: 0, x: 0, picked: false };
  $("detail").replaceChildren();
  $("zoom").showModal();
  drawZoom();
  $("zoom-map").focus();
}

function zoomLayer() {
  return state.result.layers[state.zoom.layer];
}

function drawZoom() {
  const z = state.zoom;
  const layer = zoomLayer();
  const info = state.model.layers[z.layer];
  const { h, w } = planes(layer.output.shape);
  const canvas = $("zoom-map");
  const cell = Math.max(2, Math.floor(Math.min(360, window.innerWidth - 60) / Math.max(h, w)));
  canvas.width = w * cell;
  canvas.height = h * cell;
  const ctx = canvas.getContext("2d");
  const out = layer.output;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = colour(out.data[z.channel * h * w + y * w + x], out.min, out.max);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x * cell, y * cell, cell, cell);
  }
  if (cell >= 8) {
    ctx.strokeStyle = "rgba(128,128,128,0.35)";
    for (let y = 0; y <= h; y++) { ctx.beginPath(); ctx.moveTo(0, y * cell); ctx.lineTo(w * cell, y * cell); ctx.stroke(); }
    for (let x = 0; x <= w; x++) { ctx.beginPath(); ctx.moveTo(x * cell, 0); ctx.lineTo(x * cell, h * cell); ctx.stroke(); }
  }
  ctx.strokeStyle = "#d9480f";
  ctx.lineWidth = 3;
  ctx.strokeRect(z.x * cell + 1.5, z.y * cell + 1.5, cell - 3, cell - 3);
  ctx.lineWidth = 1;
  canvas.dataset.cell = cell;
  $("zoom-title").textContent = `Layer ${z.layer} · ${info.description} · channel ${z.channel} of ` +
    `${shapeText(info.output_shape)}`;
  const value = out.data[z.channel * h * w + z.y * w + z.x];
  $("zoom-pixel").textContent = `Pixel (y ${z.y}, x ${z.x}) = ${fmt(value)}` +
    (info.detail ? "" : "  (details are shown for the convolution and pooling layers)");
}

async function pick(y, x) {
  const z = state.zoom;
  z.y = y;
  z.x = x;
  drawZoom();
  if (!state.model.layers[z.layer].detail) return;
  const query = `layer=${z.layer}&channel=${z.channel}&y=${y}&x=${x}`;
  try {
    const d = await post(`/api/detail?${query}`, state.blob);
    if (state.zoom !== z || z.y !== y || z.x !== x) return;  // a newer pixel was picked meanwhile
    showDetail(d);
  } catch (err) {
    $("detail").textContent = err.message;
  }
}

function setUpZoom() {
  const canvas = $("zoom-map");
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    const cell = Number(canvas.dataset.cell) * r.width / canvas.width;
    const { h, w } = planes(zoomLayer().output.shape);
    pick(Math.min(h - 1, Math.floor((e.clientY - r.top) / cell)), Math.min(w - 1, Math.floor((e.clientX - r.left) / cell)));
  });
  canvas.addEventListener("keydown", (e) => {
    const z = state.zoom;
    const { h, w } = planes(zoomLayer().output.shape);
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      z.y = Math.max(0, Math.min(h - 1, z.y + moves[e.key][0]));
      z.x = Math.max(0, Math.min(w - 1, z.x + moves[e.key][1]));
      drawZoom();
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      pick(z.y, z.x);
    }
  });
  $("zoom-close").addEventListener("click", () => $("zoom").close());
  $("zoom").addEventListener("close", () => { state.zoom = null; });
}

function table(rows, cellClass) {
  // rows: 2-D array of numbers or null (padding of a max pool)
  return `<table>${rows.map((row, i) => `<tr>${row.map((v, j) =>
    `<td class="${cellClass ? cellClass(i, j) : ""}">${fmt(v, 3)}</td>`).join("")}</tr>`).join("")}</table>`;
}

function windowPicture(d) {
  // The layer's input channel under the window, padded, with the window and the next one
  // along (stride) drawn over it.
  const canvas = document.createElement("canvas");
  const [c, h, w] = d.input_shape;
  const win = d.window;
  const [pt, pb, pl, pr] = win.pads;
  const source = d.layer === 0 ? state.result.input : state.result.layers[d.layer - 1].output;
  const channel = d.input_channels ? d.input_channels[0] : d.channel;
  const hp = h + pt + pb, wp = w + pl + pr;
  const cell = Math.max(3, Math.floor(Math.min(300, window.innerWidth - 80) / Math.max(hp, wp)));
  canvas.width = wp * cell;
  canvas.height = hp * cell;
  const ctx = canvas.getContext("2d");
  for (let y = 0; y < hp; y++) for (let x = 0; x < wp; x++) {
    const iy = y - pt, ix = x - pl;
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
      ctx.fillStyle = (x + y) % 2 ? "#d8d8d8" : "#eeeeee";  // padding
    } else {
      const [r, g, b] = colour(source.data[channel * h * w + iy * w + ix], source.min, source.max);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
    }
    ctx.fillRect(x * cell, y * cell, cell, cell);
  }
  const box = (rows, cols, style, dash) => {
    ctx.setLineDash(dash);
    ctx.strokeStyle = style;
    ctx.lineWidth = 2;
    for (const r of rows) for (const col of cols) ctx.strokeRect((col + pl) * cell + 1, (r + pt) * cell + 1, cell - 2, cell - 2);
    ctx.lineWidth = 3;  // and the whole window
    ctx.strokeRect((cols[0] + pl) * cell, (rows[0] + pt) * cell, (cols[cols.length - 1] - cols[0] + 1) * cell,
                   (rows[rows.length - 1] - rows[0] + 1) * cell);
    ctx.setLineDash([]);
  };
  const next = win.cols.map((col) => col + win.stride[1]);
  if (next[next.length - 1] < w + pr) box(win.rows, next, "#0b63c5", [3, 3]);
  box(win.rows, win.cols, "#d9480f", []);
  const figure = document.createElement("figure");
  figure.appendChild(canvas);
  const caption = document.createElement("figcaption");
  caption.style.maxWidth = `${canvas.width}px`;
  caption.textContent = `Input channel ${channel} (${c} x ${h} x ${w}) with padding ${pt === pb && pl === pr ? pt : win.pads.join("/")}` +
    ` (checkered). Orange: the window of this output pixel; dashed blue: the next pixel's window, ` +
    `stride ${win.stride[1]} to the right.`;
  figure.appendChild(caption);
  return figure;
}

function showDetail(d) {
  const root = $("detail");
  root.replaceChildren();
  const head = document.createElement("p");
  head.className = "equation";
  head.innerHTML = `Output (channel ${d.channel}, y ${d.y}, x ${d.x}) of layer ${d.layer} = <strong id="detail-value"></strong>`;
  head.querySelector("#detail-value").textContent = fmt(d.value);
  root.appendChild(head);
  const grid = document.createElement("div");
  grid.className = "detail-grid";
  grid.appendChild(windowPicture(d));
  root.appendChild(grid);
  if (d.kind === "conv") showConv(d, grid, root);
  else if (d.kind === "conv_transpose") showConvTranspose(d, root);
  else showPool(d, grid, root);
}

// A transposed convolution spreads each input pixel over a window of the output: the clicked
// output gathers the input pixels whose windows reach it, each times one tap of the kernel.
function showConvTranspose(d, root) {
  const rows = d.sources.map((s) => [`(${s.channel}, ${s.row}, ${s.col})`, `(${s.tap[0]}, ${s.tap[1]})`,
                                     fmt(s.x), fmt(s.weight), fmt(s.product)]);
  const box = document.createElement("div");
  box.className = "channel-box";
  box.innerHTML = `<p>The input pixels that spread into this output, and the kernel tap each passes through:</p>` +
    table([["input (c, y, x)", "tap", "value", "weight", "product"], ...rows], () => "");
  root.appendChild(box);
  const sum = document.createElement("p");
  sum.className = "equation";
  sum.innerHTML = `sum of the ${d.sources.length} products + bias ${fmt(d.bias)} = <strong id="detail-sum">${fmt(d.sum)}</strong> ` +
    `<span class="ok" id="detail-check"></span>`;
  const same = Math.abs(d.sum - d.value) <= 1e-4 * Math.max(1, Math.abs(d.value));
  sum.querySelector("#detail-check").textContent = same ? "= the map's value" : `!= the map's value ${fmt(d.value)}`;
  root.appendChild(sum);
}

function showConv(d, grid, root) {
  d.input_channels.forEach((c, k) => {
    const box = document.createElement("div");
    box.className = "channel-box";
    box.innerHTML = `<p>input channel ${c}: patch</p>${table(d.patch[k], (i, j) => d.window.padding[i][j] ? "pad" : "")}` +
      `<p>x kernel weights W[${d.channel}, ${k}]</p>${table(d.weights[k])}` +
      `<p>sum of the ${d.patch[k].length * d.patch[k][0].length} products = <b>${fmt(d.channel_sums[k])}</b></p>`;
    grid.appendChild(box);
  });
  const sum = document.createElement("p");
  sum.className = "equation";
  const terms = d.channel_sums.map((s) => fmt(s)).join(" + ");
  sum.innerHTML = `Summed over ${d.input_channels.length} input channel(s), plus the bias: ${terms} + ${fmt(d.bias)} = ` +
    `<strong id="detail-sum">${fmt(d.sum)}</strong> <span class="ok" id="detail-check"></span>`;
  root.appendChild(sum);
  const same = Math.abs(d.sum - d.value) <= 1e-4 * (1 + Math.abs(d.value));
  sum.querySelector("#detail-check").textContent = same ? "= the map's value" : `!= the map's value ${fmt(d.value)}`;
  const col = d.im2col;
  const row = document.createElement("div");
  const shown = col.values.slice(0, 600).map((v, i) =>
    `<span class="${i >= col.columns[0] && i < col.columns[1] ? "used" : "other"}">${fmt(v, 3)}</span>`).join(" ");
  row.innerHTML = `<h3>The im2col row</h3><p class="legend">Row ${col.row} (= y ${d.y} x ${state.model.layers[d.layer].output_shape[2]} + x ${d.x})` +
    ` of im2col(input), a ${col.shape[0]} x ${col.shape[1]} matrix: one row per output pixel, columns ordered (channel, ky, kx).` +
    ` The GEMM takes its dot product with W[${d.channel}] flattened, plus the bias: ${fmt(col.dot)}.` +
    `${col.values.length > 600 ? ` First 600 of ${col.values.length} values shown.` : ""}</p><div class="im2col">${shown}</div>`;
  root.appendChild(row);
}

function showPool(d, grid, root) {
  const box = document.createElement("div");
  box.className = "channel-box";
  const winner = d.winner || [-1, -1];
  box.innerHTML = `<p>the window on input channel ${d.channel}</p>` +
    table(d.values, (i, j) => (i === winner[0] && j === winner[1] ? "winner" : d.window.padding[i][j] ? "pad" : ""));
  grid.appendChild(box);
  const text = document.createElement("p");
  text.className = "equation";
  text.innerHTML = d.mode === "max"
    ? `Max pooling: the largest value wins (highlighted, row ${winner[0]}, column ${winner[1]} of the window): <strong id="detail-result"></strong>`
    : `Average pooling: ${fmt(d.sum)} / ${d.divisor} = <strong id="detail-result"></strong>`;
  text.querySelector("#detail-result").textContent = fmt(d.result);
  root.appendChild(text);
}

// -- start -----------------------------------------------------------------------------------------
setUpDrawing();
setUpFiles();
setUpZoom();
loadModel().catch((err) => say(`Cannot load the model: ${err.message}`, true));
