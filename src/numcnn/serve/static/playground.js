// numcnn serve: the conv arithmetic playground. The user picks the kernel size K, padding P,
// stride S and dilation D; /api/playground works out the output size with their numbers and
// convolves the map with numcnn's own kernel (a K x K mean filter). Settings that cannot work
// come back explained, and are shown as such.
"use strict";

const pg = { layer: null, channel: 0, answer: null, pick: [0, 0], timer: null, sliding: null, sent: 0 };
const PG_FIELDS = ["kernel", "padding", "stride", "dilation"];

function setUpPlayground() {
  for (const name of PG_FIELDS) $(`pg-${name}`).addEventListener("input", schedulePlayground);
  $("pg-image").addEventListener("click", () => {
    pg.layer = null;
    pg.channel = 0;
    runPlayground();
  });
  $("pg-output").addEventListener("click", (e) => {
    const a = pg.answer;
    if (!a || !a.output) return;
    const canvas = $("pg-output");
    const r = canvas.getBoundingClientRect();
    const cell = Number(canvas.dataset.cell) * r.width / canvas.width;
    const [oh, ow] = a.output.shape;
    pg.pick = [Math.min(oh - 1, Math.floor((e.clientY - r.top) / cell)), Math.min(ow - 1, Math.floor((e.clientX - r.left) / cell))];
    drawPlayground();
  });
  $("pg-slide").addEventListener("click", () => {
    if (pg.sliding) {
      stopSliding();
      return;
    }
    $("pg-slide").textContent = "■ Stop";
    pg.sliding = setInterval(() => {
      const a = pg.answer;
      if (!a || !a.output) return;
      const [oh, ow] = a.output.shape;
      const next = (pg.pick[0] * ow + pg.pick[1] + 1) % (oh * ow);  // row by row, as the kernel slides
      pg.pick = [Math.floor(next / ow), next % ow];
      drawPlayground();
    }, 300);
  });
}

function stopSliding() {
  clearInterval(pg.sliding);
  pg.sliding = null;
  $("pg-slide").textContent = "▶ Slide the window";
}

function schedulePlayground() {
  clearTimeout(pg.timer);
  pg.timer = setTimeout(runPlayground, 120);
}

// From a conv layer's detail: its own settings, on the channel of its input the detail showed.
function openPlaygroundAt(path, channel) {
  const config = state.info[path].config;
  const first = (v) => (Array.isArray(v) ? v[0] : v);
  const kernel = first(config.kernel_size), dilation = first(config.dilation ?? 1);
  const padding = config.padding === "valid" ? 0
    : config.padding === "same" ? Math.floor(dilation * (kernel - 1) / 2) : first(config.padding);
  const values = { kernel, padding, stride: first(config.stride ?? 1), dilation };
  for (const name of PG_FIELDS) $(`pg-${name}`).value = values[name];
  pg.layer = path;
  pg.channel = channel;
  pg.pick = [0, 0];
  $("zoom").close();
  $("playground-panel").scrollIntoView();
  runPlayground();
}

async function runPlayground() {
  if (!state.blob) return;
  const values = PG_FIELDS.map((name) => encodeURIComponent($(`pg-${name}`).value.trim()));
  const query = PG_FIELDS.map((name, i) => `${name}=${values[i]}`).join("&") + `&channel=${pg.channel}` +
    (pg.layer ? `&layer=${encodeURIComponent(pg.layer)}` : "");
  const ticket = ++pg.sent;
  document.body.dataset.playground = "0";
  try {
    const a = await post(`/api/playground?${query}`, state.blob);
    if (ticket !== pg.sent) return;
    pg.answer = { ...a, input: decode(a.input), output: a.output ? decode(a.output) : null };
    if (pg.answer.output) {
      const [oh, ow] = pg.answer.output.shape;
      pg.pick = [Math.min(pg.pick[0], oh - 1), Math.min(pg.pick[1], ow - 1)];
    }
    showPlayground();
  } catch (err) {
    if (ticket !== pg.sent) return;
    showProblems([err.message]);
  } finally {
    if (ticket === pg.sent) document.body.dataset.playground = "1";
  }
}

function showProblems(problems) {
  const box = $("pg-invalid");
  box.hidden = problems.length === 0;
  box.replaceChildren(...problems.map((text) => {
    const p = document.createElement("p");
    p.textContent = text;
    return p;
  }));
}

function axisFormula(t, s, out, id) {
  // One axis of the formula with the user's numbers, as the server worked it out.
  const [k, p, d] = [s.kernel, s.padding, s.dilation];
  return `${out} = ⌊(${t.size} + 2·${p} − ${d}·(${k}−1) − 1) / ${s.stride}⌋ + 1 = ⌊${t.span} / ${s.stride}⌋ + 1 = ` +
    `<strong id="${id}">${t.out}</strong>`;
}

function showPlayground() {
  const a = pg.answer;
  const [h, w] = a.input.shape;
  $("pg-source").textContent = `On ${a.source.description} (${h} x ${w}).`;
  const general = "OH = ⌊(H + 2P − D·(K−1) − 1) / S⌋ + 1";
  const lines = [general];
  if (a.rows) {
    lines.push(axisFormula(a.rows, a.settings, "OH", "pg-oh"));
    lines.push(h === w ? `and OW likewise: <strong id="pg-ow">${a.cols.out}</strong>` : axisFormula(a.cols, a.settings, "OW", "pg-ow"));
  }
  $("pg-formula").innerHTML = lines.map((line) => `<span>${line}</span>`).join("<br>");
  const size = $("pg-out-size");
  size.textContent = a.rows ? `${a.rows.out} x ${a.cols.out}` : "none";
  size.dataset.h = a.rows ? a.rows.out : "";
  size.dataset.w = a.rows ? a.cols.out : "";
  size.classList.toggle("bad", !a.valid);
  showProblems(a.problems);
  $("pg-notes").replaceChildren(...a.notes.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
  drawPlayground();
}

function drawPlayground() {
  const a = pg.answer;
  if (!a) return;
  const s = a.settings;
  const [h, w] = a.input.shape;
  const inRange = Boolean(a.rows);
  const p = inRange ? s.padding : 0;
  const reach = inRange ? a.rows.effective_kernel : 0;
  const hp = h + 2 * p, wp = w + 2 * p;
  const side = Math.max(hp, wp, reach);
  const cell = Math.max(3, Math.floor(Math.min(340, window.innerWidth - 80) / side));
  const canvas = $("pg-input");
  canvas.width = Math.max(wp, reach) * cell;
  canvas.height = Math.max(hp, reach) * cell;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  paintPadded(ctx, a.input, 0, h, w, [p, p, p, p], cell);
  const taps = Array.from({ length: s.kernel }, (_, i) => i * s.dilation);
  const windowAt = (top, left, style, dash) =>
    strokeWindow(ctx, taps.map((t) => top + t), taps.map((t) => left + t), cell, style, dash);
  if (a.output) {
    const [py, px] = pg.pick;
    const [top, left] = [a.starts.rows[py], a.starts.cols[px]];
    if (px + 1 < a.starts.cols.length) windowAt(top, a.starts.cols[px + 1], "#0b63c5", [3, 3]);
    windowAt(top, left, "#d9480f", []);
  } else if (inRange) {
    windowAt(0, 0, "#b00020", [4, 3]);  // the first window, not fitting
  }
  drawPlaygroundOutput();
}

function drawPlaygroundOutput() {
  const a = pg.answer;
  const canvas = $("pg-output");
  const caption = $("pg-out-caption");
  if (!a.output) {
    canvas.width = 1;
    canvas.height = 1;
    canvas.dataset.cell = 1;
    caption.textContent = "No output: see why above.";
    return;
  }
  const out = a.output;
  const [oh, ow] = out.shape;
  const cell = Math.max(3, Math.floor(Math.min(240, window.innerWidth - 80) / Math.max(oh, ow)));
  canvas.width = ow * cell;
  canvas.height = oh * cell;
  canvas.dataset.cell = cell;
  const ctx = canvas.getContext("2d");
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) {
    const [r, g, b] = colour(out.data[y * ow + x], out.min, out.max);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x * cell, y * cell, cell, cell);
  }
  const [py, px] = pg.pick;
  ctx.strokeStyle = "#d9480f";
  ctx.lineWidth = 3;
  ctx.strokeRect(px * cell + 1.5, py * cell + 1.5, cell - 3, cell - 3);
  const k = a.settings.kernel;
  caption.textContent = `Output ${oh} x ${ow}, computed by numcnn's conv2d with a ${k} x ${k} kernel, every weight ` +
    `1/${k * k} = ${fmt(a.weight)}: each output is the mean of its window (padding counts as 0). ` +
    `Pixel (y ${py}, x ${px}) = ${fmt(out.data[py * ow + px])}. Click another to see its window.`;
}
