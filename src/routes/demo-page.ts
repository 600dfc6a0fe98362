// The demo page at GET /demo: one self-contained HTML file (no build step, no external assets)
// that uses the public API as any client would: GET /models, POST /sample as an event stream read
// with fetch (so an API key can be sent; EventSource cannot send headers; a stream cut mid-way is
// asked for again with Last-Event-ID and continues), POST /likelihood with a file's bytes. Kept as
// a string so that the compiled server (dist/src) carries it.

export const DEMO_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spn-serve demo</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; max-width: 60rem; color: #222; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 0 0 1rem; padding: .75rem 1rem; }
  label { margin-right: 1rem; white-space: nowrap; }
  input[type=number] { width: 6rem; }
  #samples img, #heatmap { width: 112px; height: 112px; image-rendering: pixelated; background: #000; margin: 0 .5rem .5rem 0; }
  #samples figure { display: inline-block; margin: 0; text-align: center; font-size: 12px; }
  #samples figure button { display: block; margin: 2px auto 0; font-size: 11px; }
  #conditionImg { width: 56px; height: 56px; image-rendering: pixelated; background: #000; vertical-align: middle; }
  #conditionBox { margin: .5rem 0; }
  #error { color: #b00020; white-space: pre-wrap; }
  table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: right; }
  small { color: #666; }
</style>
</head>
<body>
<h1>spn-serve</h1>
<p>Subscale Pixel Networks: each image is drawn one <em>slice</em> (every S-th pixel at one offset) at a time, each slice
pixel by pixel; with Multidimensional Upscaling a small low-depth image comes first, then its size, then its depth.
The images below fill in slice by slice as the server streams them. <a href="docs">API documentation</a>.</p>

<fieldset>
  <legend>Server</legend>
  <label>API key <input id="key" type="password" autocomplete="off" placeholder="only if the server sets API_KEYS"></label>
  <button id="connect" type="button">Load models</button>
  <label>Model <select id="model"></select></label>
  <small id="modelInfo"></small>
</fieldset>

<fieldset>
  <legend>Sample</legend>
  <label>Images <input id="count" type="number" min="1" max="16" value="4"></label>
  <label>Temperature <input id="temperature" type="number" min="0.05" max="2" step="0.05" value="1"></label>
  <label>Seed <input id="seed" type="number" min="0" placeholder="random"></label>
  <label>Stop after <select id="stopAfter"></select></label>
  <div id="conditionBox">
    <label>Start from <select id="mode">
      <option value="">nothing</option>
      <option value="upscale">this image's small version (upscale)</option>
      <option value="add-depth">this image's high bits (add depth)</option>
      <option value="complete">this image's first slices (complete)</option>
    </select></label>
    <label id="slicesLabel" hidden>Slices kept <input id="slices" type="number" min="1" value="1"></label>
    <label>Image <input id="conditionFile" type="file" accept="image/png,image/jpeg,image/webp"></label>
    <img id="conditionImg" alt="the image to start from" hidden>
    <label><input id="conditionConvert" type="checkbox" checked> convert to the model's size and channels</label>
    <small>or press <em>start from this</em> under a sample</small>
  </div>
  <button id="sample" type="button">Sample</button>
  <p id="status" data-slices="0"></p>
  <div id="samples"></div>
</fieldset>

<fieldset>
  <legend>Likelihood</legend>
  <label>Image <input id="file" type="file" accept="image/png,image/jpeg,image/webp"></label>
  <label><input id="convert" type="checkbox" checked> convert to the model's size and channels</label>
  <p id="score"></p>
  <img id="heatmap" alt="bits per pixel" hidden>
  <table id="stages"></table>
</fieldset>

<p id="error" role="alert"></p>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
let models = [];
/** the image sampling starts from, base64 (no data: prefix), or "" */
let conditionImage = "";

function headers(extra) {
  const h = Object.assign({}, extra);
  const key = $("key").value.trim();
  if (key) h.authorization = "Bearer " + key;
  return h;
}

function showError(where, body) {
  $("error").textContent = where + ": " + (body && body.error ? body.error + " (" + body.error_type + ")" : String(body));
}

async function loadModels() {
  $("error").textContent = "";
  const res = await fetch("models", { headers: headers() });
  const body = await res.json().catch(() => null);
  if (!res.ok) { showError("models", body); return; }
  models = body.models;
  $("model").replaceChildren(...models.map((m) => new Option(m.name, m.name, m.default, m.default)));
  modelChanged();
}

function modelChanged() {
  const m = models.find((x) => x.name === $("model").value);
  if (!m) return;
  const stages = m.stages.map((s) => s.name);
  $("stopAfter").replaceChildren(...stages.map((s, i) => new Option(s, s, i === stages.length - 1, i === stages.length - 1)));
  // the conditioning modes this model has: upscale needs a stage after the small image, add-depth a depth upscaler
  const modes = { upscale: m.stages.length > 1, "add-depth": m.stages.some((s) => s.role === "depth upscaler"), complete: true };
  for (const o of $("mode").options) if (o.value) o.disabled = !modes[o.value];
  if ($("mode").selectedOptions[0].disabled) $("mode").value = "";
  $("slices").max = String(m.subscaleFactor * m.subscaleFactor - 1);
  modeChanged();
  $("modelInfo").textContent = m.image.height + "x" + m.image.width + "x" + m.image.channels + ", S = " + m.subscaleFactor +
    ", stages " + stages.join(" > ") + ", on " + m.provider;
}

/** The conversions that make any image fit a model: its size, and its number of channels. */
function convertFor(name) {
  const m = models.find((x) => x.name === name);
  const c = { resize: true };
  if (m) c[m.image.channels === 1 ? "grayscale" : "rgb"] = true;
  return c;
}

function modeChanged() {
  $("slicesLabel").hidden = $("mode").value !== "complete";
}

function setCondition(base64) {
  conditionImage = base64;
  $("conditionImg").src = base64 ? "data:image/png;base64," + base64 : "";
  $("conditionImg").hidden = !base64;
  if (base64 && !$("mode").value) $("mode").value = $("mode").options[$("mode").options.length - 1].value;
  modeChanged();
}

/** The chosen file's bytes as base64 (the server decodes PNG, JPEG or WebP). */
function conditionFileChanged() {
  const file = $("conditionFile").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = String(reader.result);
    setCondition(url.slice(url.indexOf(",") + 1));
    $("conditionImg").src = url;
  };
  reader.readAsDataURL(file);
}

/** Reads an event stream from a fetch body, calling onEvent(name, data, id) for each event. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      let id = null;
      const data = [];
      for (const line of block.split("\\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
        else if (line.startsWith("id: ")) id = line.slice(4);
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\\n")), id);
    }
  }
}

async function sample() {
  $("error").textContent = "";
  const count = Number($("count").value);
  const request = { model: $("model").value, count: count, temperature: Number($("temperature").value), stopAfter: $("stopAfter").value };
  if ($("seed").value !== "") request.seed = Number($("seed").value);
  const mode = $("mode").value;
  if (mode) {
    if (!conditionImage) { showError("sample", "choose an image to start from, or start from nothing"); return; }
    request.condition = { mode: mode, image: conditionImage };
    if (mode === "complete") request.condition.slices = Number($("slices").value);
    if ($("conditionConvert").checked) request.condition.convert = convertFor(request.model);
  }
  const figures = [];
  $("samples").replaceChildren();
  for (let i = 0; i < count; i++) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = "sample " + i;
    img.className = "sample";
    const cap = document.createElement("figcaption");
    fig.append(img, cap);
    $("samples").append(fig);
    figures.push({ img: img, cap: cap });
  }
  let slices = 0;
  let events = 0;   // slices and stage ends handled (data-events: what a test can wait for)
  $("status").dataset.slices = "0";
  $("status").dataset.events = "0";
  $("status").textContent = "waiting...";
  $("sample").disabled = true;
  // A stream cut before its end (a dropped connection) is asked for again with the id of the last
  // event it had (Last-Event-ID): the server sends the rest of the same stream.
  let lastId = null;
  let ended = false;
  try {
    for (let attempt = 0; !ended; attempt++) {
      if (attempt > 0) {
        if (attempt > 3) { showError("sample", "the stream was cut and could not be resumed"); return; }
        $("status").textContent = "connection lost: resuming" + (lastId ? " after event " + lastId : "") + "...";
        await new Promise((r) => setTimeout(r, 1000));
      }
      const h = { "content-type": "application/json", accept: "text/event-stream" };
      if (lastId) h["last-event-id"] = lastId;
      let res;
      try {
        res = await fetch("sample", { method: "POST", headers: headers(h), body: JSON.stringify(request) });
      } catch (e) {
        continue;   // no answer at all: try again
      }
      if (!res.ok) { showError("sample", await res.json().catch(() => res.statusText)); $("status").textContent = ""; return; }
      try {
        await readEvents(res.body, onEvent);
      } catch (e) {
        // the connection dropped mid-stream: resume below
      }
    }
  } catch (e) {
    showError("sample", e.message);
  } finally {
    $("sample").disabled = false;
  }

  function onEvent(name, data, id) {
    if (id && id !== "end") lastId = id;
    if (name === "slice" || name === "stage") $("status").dataset.events = String(++events);
    if (name === "slice") {
      slices++;
      $("status").dataset.slices = String(slices);
      figures[data.sample].img.src = "data:image/png;base64," + data.imagePng;
      $("status").textContent = "sample " + data.sample + ": " + data.stage + ", slice " + data.slice + " at (" + data.offset.join(", ") + ")";
    } else if (name === "done") {
      data.images.forEach((im, i) => {
        figures[i].img.src = "data:image/png;base64," + im.png;
        figures[i].cap.textContent = im.bitsPerDim.toFixed(3) + " bits/dim";
        const use = document.createElement("button");
        use.type = "button";
        use.className = "use";
        use.textContent = "start from this";
        use.addEventListener("click", () => setCondition(im.png));
        figures[i].cap.after(use);
      });
      $("status").textContent = "done: seed " + data.seed + ", " + slices + " slices in " + Math.round(data.timings.totalMs) + " ms (first after " +
        Math.round(data.timings.firstSliceMs) + " ms)" +
        (data.condition && data.condition.input.conversions.length ? "; the given image was " + data.condition.input.conversions.join(", then ") : "");
    } else if (name === "error") {
      showError("sample", data);
    }
    if (name === "done" || name === "error") ended = true;
  }
}

async function score() {
  $("error").textContent = "";
  const file = $("file").files[0];
  if (!file) return;
  $("score").textContent = "scoring...";
  const query = new URLSearchParams({ model: $("model").value, perPixel: "true" });
  if ($("convert").checked) for (const [k, v] of Object.entries(convertFor($("model").value))) query.set(k, String(v));
  const res = await fetch("likelihood?" + query, { method: "POST", headers: headers({ "content-type": file.type || "application/octet-stream" }), body: file });
  const body = await res.json().catch(() => null);
  if (!res.ok) { $("score").textContent = ""; showError("likelihood", body); return; }
  $("score").textContent = body.bitsPerDim.toFixed(4) + " bits/dim (" + body.bits.toFixed(1) + " bits) under " + body.model;
  $("heatmap").src = "data:image/png;base64," + body.perPixel.png;
  $("heatmap").hidden = false;
  $("heatmap").title = body.perPixel.minBits.toFixed(2) + " (dark) to " + body.perPixel.maxBits.toFixed(2) + " (bright) bits per pixel";
  const row = (cells, tag) => {
    const tr = document.createElement("tr");
    for (const c of cells) { const td = document.createElement(tag); td.textContent = c; tr.append(td); }
    return tr;
  };
  $("stages").replaceChildren(row(["stage", "bits/dim"], "th"), ...body.stages.map((s) => row([s.stage, s.bitsPerDim.toFixed(4)], "td")));
}

$("connect").addEventListener("click", loadModels);
$("model").addEventListener("change", modelChanged);
$("sample").addEventListener("click", sample);
$("mode").addEventListener("change", modeChanged);
$("conditionFile").addEventListener("change", conditionFileChanged);
$("file").addEventListener("change", score);
loadModels();
</script>
</body>
</html>
`;
