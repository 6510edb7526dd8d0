// numcnn serve: one map enlarged, and one pixel of it explained with the numbers /api/detail
// computes (a conv's sums, a pooling window, batch norm, an activation, a residual sum).
"use strict";

function openZoom(path, channel, y = 0, x = 0) {
  if (!state.result) return;
  state.zoom = { path, channel, y, x };
  $("detail").replaceChildren();
  $("receptive").hidden = true;
  $("receptive-trace").hidden = true;
  if (!$("zoom").open) $("zoom").showModal();
  drawZoom();
  $("zoom-map").focus();
}

function zoomLayer() {
  return state.entries[state.zoom.path];
}

// From one detail to the layer it names: that layer's map, the same pixel picked.
function goTo(path, channel, y, x) {
  openZoom(path, channel, y, x);
  pick(y, x);
}

function drawZoom() {
  const z = state.zoom;
  const layer = zoomLayer();
  const info = state.info[z.path];
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
  $("zoom-title").textContent = `Layer ${z.path} · ${info.description} · channel ${z.channel} of ` +
    `${shapeText(info.output_shape)}`;
  const value = out.data[z.channel * h * w + z.y * w + z.x];
  $("zoom-pixel").textContent = `Pixel (y ${z.y}, x ${z.x}) = ${fmt(value)}` +
    (info.detail ? "" : `  (a ${info.type} has no detail; its receptive field is drawn)`);
}

async function pick(y, x) {
  const z = state.zoom;
  z.y = y;
  z.x = x;
  drawZoom();
  showReceptive(z);
  if (!state.info[z.path].detail) {
    $("detail").replaceChildren();
    return;
  }
  const query = `layer=${encodeURIComponent(z.path)}&channel=${z.channel}&y=${y}&x=${x}`;
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

function checked(value, shown) {
  // The page's own check: the worked-out number against the map's value, both from the server.
  return Math.abs(shown - value) <= 1e-4 * (1 + Math.abs(value)) ? "= the map's value" : `!= the map's value ${fmt(value)}`;
}

function windowPicture(d) {
  // The layer's input channel under the window, padded, with the window and the next one
  // along (stride) drawn over it.
  const canvas = document.createElement("canvas");
  const [c, h, w] = d.input_shape;
  const win = d.window;
  const [pt, pb, pl, pr] = win.pads;
  const source = sourceOf(d.path);
  const channel = d.input_channels ? d.input_channels[0] : d.channel;
  const hp = h + pt + pb, wp = w + pl + pr;
  const cell = Math.max(3, Math.floor(Math.min(300, window.innerWidth - 80) / Math.max(hp, wp)));
  canvas.width = wp * cell;
  canvas.height = hp * cell;
  const ctx = canvas.getContext("2d");
  paintPadded(ctx, source, channel * h * w, h, w, win.pads, cell);
  const box = (rows, cols, style, dash) =>
    strokeWindow(ctx, rows.map((row) => row + pt), cols.map((col) => col + pl), cell, style, dash);
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
  const where = state.info[d.path].output_shape.length === 3 ? `channel ${d.channel}, y ${d.y}, x ${d.x}` : `feature ${d.x}`;
  head.innerHTML = `Output (${where}) of layer ${d.path} = <strong id="detail-value"></strong>`;
  head.querySelector("#detail-value").textContent = fmt(d.value);
  root.appendChild(head);
  if (["conv", "conv_transpose", "pool"].includes(d.kind)) {
    const grid = document.createElement("div");
    grid.className = "detail-grid";
    grid.appendChild(windowPicture(d));
    root.appendChild(grid);
    if (d.kind === "conv") {
      showConv(d, grid, root, "detail");
      root.appendChild(playgroundButton(d));
    } else if (d.kind === "conv_transpose") showConvTranspose(d, root);
    else showPool(d, grid, root);
  } else if (d.kind === "residual") showResidual(d, root);
  else showPixelFormula(d, root);
}

function playgroundButton(d) {
  const button = document.createElement("button");
  button.type = "button";
  button.id = "to-playground";
  button.textContent = "Change this layer's kernel size, padding, stride and dilation in the playground";
  button.addEventListener("click", () => openPlaygroundAt(d.path, d.input_channels[0]));
  return button;
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
  sum.querySelector("#detail-check").textContent = checked(d.value, d.sum);
  root.appendChild(sum);
}

function showConv(d, grid, root, id) {
  // id names the sum and its check ("detail-sum", "detail-check"): the shortcut's conv in a
  // residual detail has its own.
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
    `<strong id="${id}-sum">${fmt(d.sum)}</strong> <span class="ok" id="${id}-check"></span>`;
  root.appendChild(sum);
  sum.querySelector(`#${id}-check`).textContent = checked(d.value, d.sum);
  const col = d.im2col;
  const row = document.createElement("div");
  const shown = col.values.slice(0, 600).map((v, i) =>
    `<span class="${i >= col.columns[0] && i < col.columns[1] ? "used" : "other"}">${fmt(v, 3)}</span>`).join(" ");
  row.innerHTML = `<h3>The im2col row</h3><p class="legend">Row ${col.row} (= y ${d.y} x ${state.info[d.path].output_shape[2]} + x ${d.x})` +
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


// Batch norm, Normalize and activations: one input pixel in, one out, through a formula.
function showPixelFormula(d, root) {
  const box = document.createElement("div");
  box.className = "formula";
  const n = (v) => (v < 0 ? `(${fmt(v)})` : fmt(v));  // a negative term in brackets
  let lines;
  if (d.kind === "batch_norm") {
    lines = [
      `At inference, batch norm uses the <b>running statistics</b> of channel ${d.channel}, gathered over ` +
        `${d.batches_tracked} training batches (momentum ${d.momentum}), not this picture's own:`,
      "(x − running_mean) / √(running_var + eps) · γ + β",
      `= (${fmt(d.input)} − ${n(d.running_mean)}) / √(${fmt(d.running_var)} + ${d.eps}) · ${n(d.gamma)} + ${n(d.beta)}`,
      `= ${fmt(d.normalized)} · ${n(d.gamma)} + ${n(d.beta)}, with √(running_var + eps) = ${fmt(d.std)}`,
    ];
  } else if (d.kind === "normalize") {
    lines = ["The model's own Normalize: (x − mean) / std, with the training set's mean and std of the channel:",
             `(${fmt(d.input)} − ${n(d.mean)}) / ${fmt(d.std)}`];
  } else {
    const slope = d.slope === null ? "" : ` (slope ${d.slope})`;
    lines = [`${d.function}: ${d.formula}${slope}, at x = ${fmt(d.input)}, the layer's input at this pixel`];
  }
  box.innerHTML = lines.map((line) => `<p class="equation">${line}</p>`).join("") +
    `<p class="equation">= <strong id="detail-result">${fmt(d.result)}</strong> <span class="ok" id="detail-check"></span></p>`;
  box.querySelector("#detail-check").textContent = checked(d.value, d.result);
  root.appendChild(box);
}

// A residual block adds its two branches pixel by pixel: the body's last layer and the skip path
// (the block's input itself, or its shortcut, whose own conv is explained below).
function showResidual(d, root) {
  const info = state.info[d.path];
  const skipName = d.skip.identity
    ? `identity: the block's input (${d.skip.path === null ? "the input image" : "layer " + d.skip.path})`
    : `shortcut ${d.skip.path} · ${state.info[d.skip.path].description}`;
  const box = document.createElement("div");
  box.className = "formula";
  box.innerHTML = `<p class="equation">${info.description}: output = body + skip, at (channel ${d.channel}, y ${d.y}, x ${d.x})</p>` +
    `<table class="branches"><thead><tr><th>branch</th><th>layer</th><th>value</th></tr></thead><tbody>` +
    `<tr><th scope="row">body</th><td></td><td id="residual-body">${fmt(d.body.value)}</td></tr>` +
    `<tr><th scope="row">skip</th><td></td><td id="residual-skip">${fmt(d.skip.value)}</td></tr></tbody></table>` +
    `<p class="equation">${fmt(d.body.value)} + ${d.skip.value < 0 ? `(${fmt(d.skip.value)})` : fmt(d.skip.value)} = <strong id="detail-sum">${fmt(d.sum)}</strong> ` +
    `<span class="ok" id="detail-check"></span></p>`;
  box.querySelector("#detail-check").textContent = checked(d.value, d.sum);
  const cells = box.querySelectorAll("tbody td:nth-child(2)");
  cells[0].appendChild(layerLink(d.body.path, `${d.body.path} · ${state.info[d.body.path].description}`, d));
  if (d.skip.identity && d.skip.path === null) cells[1].textContent = skipName;
  else cells[1].appendChild(layerLink(d.skip.path, skipName, d));
  root.appendChild(box);
  if (d.shortcut_conv) {
    const conv = d.shortcut_conv;
    const head = document.createElement("h3");
    head.textContent = `The shortcut's own convolution at this pixel: layer ${conv.path} · ${conv.description} = ${fmt(conv.value)}, ` +
      "before the rest of the shortcut";
    root.appendChild(head);
    const grid = document.createElement("div");
    grid.className = "detail-grid";
    grid.appendChild(windowPicture(conv));
    root.appendChild(grid);
    showConv(conv, grid, root, "shortcut");
  }
}

function layerLink(path, text, d) {
  // A button to the named layer's map with this pixel picked there.
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.dataset.path = path;
  button.textContent = text;
  button.addEventListener("click", () => goTo(path, d.channel, d.y, d.x));
  return button;
}
