// numcnn serve: the receptive field of the picked pixel, traced back to the input image by
// /api/receptive through every layer before it, and drawn on the image.
"use strict";

async function showReceptive(z) {
  const { path, y, x } = z;
  try {
    const r = await getJSON(`/api/receptive?layer=${encodeURIComponent(path)}&y=${y}&x=${x}`);
    if (state.zoom !== z || z.y !== y || z.x !== x) return;  // a newer pixel was picked meanwhile
    drawReceptive(r);
  } catch (err) {
    $("receptive").hidden = false;
    $("receptive-size").textContent = err.message;
  }
}

function drawReceptive(r) {
  const image = state.result.input;
  const [, h, w] = image.shape;
  const canvas = $("receptive-map");
  const cell = Math.max(1, Math.floor(200 / Math.max(h, w)));
  const picture = document.createElement("canvas");
  paintImage(picture, image);
  canvas.width = w * cell;
  canvas.height = h * cell;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(picture, 0, 0, w * cell, h * cell);
  const [r0, r1] = r.rows, [c0, c1] = r.cols;
  ctx.fillStyle = "rgba(217, 72, 15, 0.25)";
  ctx.fillRect(c0 * cell, r0 * cell, (c1 - c0 + 1) * cell, (r1 - r0 + 1) * cell);
  ctx.strokeStyle = "#d9480f";
  ctx.lineWidth = 2;
  ctx.strokeRect(c0 * cell + 1, r0 * cell + 1, (c1 - c0 + 1) * cell - 2, (r1 - r0 + 1) * cell - 2);
  canvas.dataset.rows = r.rows.join(",");
  canvas.dataset.cols = r.cols.join(",");
  const whole = r.height === h && r.width === w ? ": the whole image" : "";
  $("receptive-size").innerHTML = `Receptive field of pixel (y ${r.y}, x ${r.x}) of layer ${r.layer}: rows ${r0}–${r1}, ` +
    `columns ${c0}–${c1} of the ${h} x ${w} input, <strong id="receptive-extent">${r.height} x ${r.width}</strong> pixels${whole}. ` +
    "Only these pixels can change it, in any channel.";
  const rows = r.trace.map((step) => {
    const [a, b] = step.rows, [c, d] = step.cols;
    return `<tr><th scope="row">${step.path}</th><td class="what"></td><td>${a}–${b}</td><td>${c}–${d}</td>` +
      `<td>${b - a + 1} x ${d - c + 1}</td></tr>`;
  });
  const body = $("receptive-trace-body");
  body.innerHTML = `<p class="legend">Going back from the pixel: the region each layer reads on its input ` +
    "(a block reads the union of its two branches; padding is no pixel and is left out).</p>" +
    `<table><thead><tr><th>layer</th><th></th><th>rows</th><th>columns</th><th>size</th></tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>`;
  body.querySelectorAll("td.what").forEach((td, k) => { td.textContent = state.info[r.trace[k].path].description; });
  $("receptive-trace").hidden = false;
  $("receptive").hidden = false;
}
