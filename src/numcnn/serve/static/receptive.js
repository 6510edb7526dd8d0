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
  canvas.dataset.rows = r.rows ? r.rows.join(",") : "";
  canvas.dataset.cols = r.cols ? r.cols.join(",") : "";
  const pixel = `Receptive field of pixel (y ${r.y}, x ${r.x}) of layer ${r.layer}`;
  if (r.rows) {
    const [r0, r1] = r.rows, [c0, c1] = r.cols;
    ctx.fillStyle = "rgba(217, 72, 15, 0.25)";
    ctx.fillRect(c0 * cell, r0 * cell, (c1 - c0 + 1) * cell, (r1 - r0 + 1) * cell);
    ctx.strokeStyle = "#d9480f";
    ctx.lineWidth = 2;
    ctx.strokeRect(c0 * cell + 1, r0 * cell + 1, (c1 - c0 + 1) * cell - 2, (r1 - r0 + 1) * cell - 2);
    const whole = r.height === h && r.width === w ? ": the whole image" : "";
    $("receptive-size").innerHTML = `${pixel}: rows ${r0}–${r1}, columns ${c0}–${c1} of the ${h} x ${w} input, ` +
      `<strong id="receptive-extent">${r.height} x ${r.width}</strong> pixels${whole}. ` +
      "Only these pixels can change it, in any channel.";
  } else {
    $("receptive-size").innerHTML = `${pixel}: <strong id="receptive-extent">0 x 0</strong> pixels. Its window ` +
      "lies wholly in the padding: no pixel of the input reaches it, only the biases.";
  }
  const span = (range) => (range ? `${range[0]}–${range[1]}` : "none");
  const rows = r.trace.map((step) => {
    const size = step.rows ? `${step.rows[1] - step.rows[0] + 1} x ${step.cols[1] - step.cols[0] + 1}` : "0 x 0";
    return `<tr><th scope="row">${step.path}</th><td class="what"></td><td>${span(step.rows)}</td>` +
      `<td>${span(step.cols)}</td><td>${size}</td></tr>`;
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
