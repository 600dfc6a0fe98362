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
  @media (max-width: 30rem) { body { margin: .75rem; } }
  /* min-width: 0, or a fieldset is as wide as its widest line and a phone scrolls sideways */
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 0 0 1rem; padding: .75rem 1rem; min-width: 0; }
  .over { outline: 2px dashed #1a73e8; background: #f0f6ff; }
  label { display: inline-block; margin: 0 1rem .35rem 0; }
  [hidden] { display: none !important; }
  input[type=number] { width: 6rem; }
  input[type=file] { max-width: 100%; }
  #samples img, #heatmap { width: 112px; height: 112px; image-rendering: pixelated; background: #000; margin: 0 .5rem .5rem 0; }
  #samples figure { display: inline-block; margin: 0; text-align: center; font-size: 12px; }
  #samples figure button { display: block; margin: 2px auto 0; font-size: 11px; }
  #conditionImg { width: 56px; height: 56px; image-rendering: pixelated; background: #000; vertical-align: middle; overflow: hidden; }
  #conditionBox { margin: .5rem 0; }
  .error { color: #b00020; white-space: pre-wrap; overflow-wrap: anywhere; margin: .5rem 0; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
  .error:empty { display: none; }
  table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: right; }
  small { color: #666; }
</style>
</head>
<body>
<h1>spn-serve</h1>
<p>Subscale Pixel Networks: each image is drawn one <em>slice</em> (every S-th pixel at one offset) at a time, each slice
pixel by pixel; with Multidimensional Upscaling a small low-depth image comes first, then its size, then its depth.
The images below fill in slice by slice as the server streams them. <a href="docs">API documentation</a>.</p>

<fieldset id="serverBox">
  <legend>Server</legend>
  <label>API key <input id="key" type="password" autocomplete="off" placeholder="only if the server sets API_KEYS"></label>
  <button id="connect" type="button">Load models</button>
  <label>Model <select id="model"></select></label>
  <small id="modelInfo"></small>
  <p id="modelsError" class="error" role="alert"></p>
</fieldset>

<fieldset id="sampleBox">
  <legend>Sample</legend>
  <label>Images <input id="count" type="number" min="1" max="16" step="1" value="4"></label>
  <label>Temperature <input id="temperature" type="number" min="0.05" max="2" step="0.05" value="1"></label>
  <label>Seed <input id="seed" type="number" min="0" max="4294967295" step="1" placeholder="random"></label>
  <label>Stop after <select id="stopAfter"></select></label>
  <div id="conditionBox">
    <label>Start from <select id="mode">
      <option value="">nothing</option>
      <option value="upscale">this image's small version (upscale)</option>
      <option value="add-depth">this image's high bits (add depth)</option>
      <option value="complete">this image's first slices (complete)</option>
    </select></label>
    <label id="slicesLabel" hidden>Slices kept <input id="slices" type="number" min="1" step="1" value="1"></label>
    <label>Image <input id="conditionFile" type="file" accept="image/png,image/jpeg,image/webp"></label>
    <img id="conditionImg" alt="the image to start from" hidden>
    <label><input id="conditionConvert" type="checkbox" checked> convert to the model's size and channels</label>
    <small>or drop an image here, or press <em>start from this</em> under a sample</small>
  </div>
  <button id="sample" type="button">Sample</button>
  <p id="sampleError" class="error" role="alert"></p>
  <p id="status" data-slices="0"></p>
  <p id="sampleDone" class="sr-only" role="status"></p>
  <div id="samples"></div>
</fieldset>

<fieldset id="scoreBox">
  <legend>Likelihood</legend>
  <label>Image <input id="file" type="file" accept="image/png,image/jpeg,image/webp"></label>
  <label><input id="convert" type="checkbox" checked> convert to the model's size and channels</label>
  <small>or drop an image here; it is scored again when the model changes</small>
  <p id="scoreError" class="error" role="alert"></p>
  <p id="score" role="status"></p>
  <img id="heatmap" alt="bits per pixel" hidden>
  <p><small id="heatmapLegend"></small></p>
  <table id="stages"></table>
</fieldset>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
let models = [];
/** the image sampling starts from, base64 (no data: prefix), or "" */
let conditionImage = "";
/** the image the Likelihood box scores (chosen or dropped), or null */
let scoreFile = null;
/** bumped by each scoring, so that only the latest one shows its answer */
let scoreSeq = 0;
let sampling = false;

function headers(extra) {
  const h = Object.assign({}, extra);
  const key = $("key").value.trim();
  if (key) h.authorization = "Bearer " + key;
  return h;
}

/** Shows an error in its box, next to what was pressed: the server's {error, error_type}, or a message. */
function showError(id, where, body) {
  const el = $(id);
  el.textContent = where + ": " + (body && body.error ? body.error + " (" + body.error_type + ")" : String(body));
  el.scrollIntoView({ block: "nearest" });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** fetch, waiting and trying again (up to 5 times) while the server answers 429 or 503 with a
 * Retry-After (its queue is full, or its models are loading); other answers are returned as they are. */
async function fetchPatiently(url, init, onWait) {
  for (let tries = 0; ; tries++) {
    const res = await fetch(url, init);
    const after = Number(res.headers.get("retry-after"));
    if ((res.status !== 429 && res.status !== 503) || !res.headers.has("retry-after") || tries >= 5) return res;
    const s = Math.min(30, Math.max(1, Number.isFinite(after) ? after : 1));
    onWait("the server is busy (" + res.status + "): trying again in " + s + " s...");
    await sleep(s * 1000);
  }
}

/** The image type of a file from its first bytes (the server reads PNG, JPEG and WebP, whatever the
 * file's name says), or "" for anything else. */
async function imageType(file) {
  const b = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  const text = (from, to) => String.fromCharCode(...b.slice(from, to));
  if (b[0] === 0x89 && text(1, 4) === "PNG") return "image/png";
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (text(0, 4) === "RIFF" && text(8, 12) === "WEBP") return "image/webp";
  return "";
}

const notAnImage = (file) => "'" + file.name + "' is not a PNG, JPEG or WebP image";

async function loadModels() {
  $("modelsError").textContent = "";
  const chosen = $("model").value;
  let res, body;
  try {
    res = await fetchPatiently("models", { headers: headers() }, (m) => { $("modelInfo").textContent = m; });
    body = await res.json().catch(() => null);
  } catch (e) {
    res = null;
    body = "could not reach the server (" + e.message + ")";
  }
  if (!res || !res.ok) {
    models = [];
    $("model").replaceChildren();
    $("modelInfo").textContent = "";
    $("sample").disabled = true;
    showError("modelsError", "models", body);
    return;
  }
  models = body.models;
  const keep = models.some((m) => m.name === chosen) ? chosen : null;
  $("model").replaceChildren(...models.map((m) => {
    const pick = keep ? m.name === keep : m.default;
    return new Option(m.name, m.name, pick, pick);
  }));
  $("sample").disabled = sampling;
  modelChanged();
}

const currentModel = () => models.find((x) => x.name === $("model").value);

function modelChanged() {
  const m = currentModel();
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
    ", stages " + stages.join(" > ") + ", on " + m.provider + ". " + m.description;
  if (scoreFile) score();
}

/** The conversions that make any image fit a model: its size, and its number of channels. */
function convertFor(name) {
  const m = models.find((x) => x.name === name);
  const c = { resize: true };
  if (m) c[m.image.channels === 1 ? "grayscale" : "rgb"] = true;
  return c;
}

/** Which stages generate anything when sampling starts from the chosen condition (as the server
 * plans it): a stop-after stage with nothing generated up to it is refused, so it is not offered. */
function updateStopAfter() {
  const m = currentModel();
  if (!m) return;
  const mode = $("mode").value;
  const k = Math.floor(Number($("slices").value)) || 1;
  const gives = m.stages.map((s, i) => {
    const start = mode === "upscale" ? (i === 0 ? s.lastSlice : s.firstSlice)
      : mode === "add-depth" ? (s.role === "depth upscaler" ? s.firstSlice : s.lastSlice)
      : mode === "complete" ? Math.max(s.firstSlice, k) : s.firstSlice;
    return start < s.lastSlice;
  });
  const options = [...$("stopAfter").options];
  options.forEach((o, i) => { o.disabled = !gives.slice(0, i + 1).some(Boolean); });
  if ($("stopAfter").selectedOptions[0]?.disabled) $("stopAfter").value = options[options.length - 1].value;
}

function modeChanged() {
  $("slicesLabel").hidden = $("mode").value !== "complete";
  updateStopAfter();
}

function setCondition(base64, type) {
  conditionImage = base64;
  $("conditionImg").src = base64 ? "data:" + (type || "image/png") + ";base64," + base64 : "";
  $("conditionImg").hidden = !base64;
  if (base64 && !$("mode").value) $("mode").value = [...$("mode").options].reverse().find((o) => !o.disabled).value;
  modeChanged();
}

/** A chosen or dropped file as the image to start from (base64: the server decodes it). */
async function useConditionFile(file) {
  $("sampleError").textContent = "";
  const type = await imageType(file);
  if (!type) {
    $("conditionFile").value = "";
    showError("sampleError", "image to start from", notAnImage(file));
    return;
  }
  const url = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  setCondition(url.slice(url.indexOf(",") + 1), type);
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

/** A number field's value, checked here as the server would check it, in the page's own words:
 * within its input's min and max, and a whole number where its step is 1 (the bounds live in the
 * markup once; the slices' max follows the model). Empty is allowed only where optional. */
function field(id, label, optional) {
  const input = $(id);
  const text = input.value.trim();
  if (text === "" && optional) return undefined;
  const n = Number(text);
  const min = Number(input.min);
  const max = Number(input.max);
  const whole = input.step === "1";
  if (text === "" || !Number.isFinite(n) || (whole && !Number.isInteger(n)) || n < min || n > max) {
    input.focus();
    throw new Error(label + " must be " + (whole ? "a whole number" : "a number") + " from " + input.min + " to " + input.max + (text === "" ? "" : ", not " + text));
  }
  return n;
}

/** The request the form describes; throws with a message naming the field that is wrong. */
function sampleRequest(m) {
  const request = {
    model: m.name,
    count: field("count", "Images"),
    temperature: field("temperature", "Temperature"),
    stopAfter: $("stopAfter").value,
  };
  const seed = field("seed", "Seed", true);
  if (seed !== undefined) request.seed = seed;
  const mode = $("mode").value;
  if (mode) {
    if (!conditionImage) throw new Error("choose an image to start from (or drop one here), or start from nothing");
    request.condition = { mode: mode, image: conditionImage };
    if (mode === "complete") request.condition.slices = field("slices", "Slices kept");
    if ($("conditionConvert").checked) request.condition.convert = convertFor(m.name);
  }
  return request;
}

/** One figure per image, replacing the last results (only once the new stream has begun). */
function makeFigures(count) {
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
  return figures;
}

async function sample() {
  if (sampling) return;
  $("sampleError").textContent = "";
  const m = currentModel();
  if (!m) { showError("sampleError", "sample", "no model: load the models first"); return; }
  let request;
  try {
    request = sampleRequest(m);
  } catch (e) {
    showError("sampleError", "sample", e.message);
    return;
  }
  let figures = null;
  let slices = 0;
  let events = 0;   // slices and stage ends handled (data-events: what a test can wait for)
  $("status").dataset.slices = "0";
  $("status").dataset.events = "0";
  $("status").textContent = "waiting...";
  $("sampleDone").textContent = "";
  sampling = true;
  $("sample").disabled = true;
  // A stream cut before its end (a dropped connection) is asked for again with the id of the last
  // event it had (Last-Event-ID): the server sends the rest of the same stream.
  let lastId = null;
  let ended = false;
  let unreachable = null;   // why the last try got no answer at all
  try {
    for (let attempt = 0; !ended; attempt++) {
      if (attempt > 0) {
        if (attempt > 3) {
          showError("sampleError", "sample", figures ? "the stream was cut and could not be resumed"
            : "could not reach the server (" + (unreachable ? unreachable.message : "no answer") + ")");
          $("status").textContent = "stopped after " + slices + " slices";
          $("sampleDone").textContent = "sampling stopped";
          return;
        }
        $("status").textContent = figures ? "connection lost: resuming" + (lastId ? " after event " + lastId : "") + "..."
          : "no answer from the server: trying again...";
        await sleep(1000);
      }
      const h = { "content-type": "application/json", accept: "text/event-stream" };
      if (lastId) h["last-event-id"] = lastId;
      let res;
      try {
        res = await fetchPatiently("sample", { method: "POST", headers: headers(h), body: JSON.stringify(request) }, (msg) => { $("status").textContent = msg; });
      } catch (e) {
        unreachable = e;
        continue;   // no answer at all: try again
      }
      if (!res.ok) {
        showError("sampleError", "sample", await res.json().catch(() => res.status + " " + res.statusText));
        $("status").textContent = slices ? "stopped after " + slices + " slices" : "";
        return;
      }
      if (!figures) figures = makeFigures(request.count);
      try {
        await readEvents(res.body, onEvent);
      } catch (e) {
        // the connection dropped mid-stream: resume below
      }
    }
  } catch (e) {
    showError("sampleError", "sample", e.message);
  } finally {
    sampling = false;
    $("sample").disabled = !models.length;
    // disabling the button dropped its focus to the page: it gets it back, unless the user has
    // moved on to another field meanwhile
    const lost = !document.activeElement || document.activeElement === document.body;
    if (lost && !$("sample").disabled) $("sample").focus();
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
        figures[i].img.title = request.model + ", seed " + data.seed + ", sample " + i;
        figures[i].cap.textContent = im.bitsPerDim.toFixed(3) + " bits/dim";
        const use = document.createElement("button");
        use.type = "button";
        use.className = "use";
        use.textContent = "start from this";
        use.setAttribute("aria-label", "start from this: sample " + (i + 1));   // the visible words first (WCAG 2.5.3)
        use.addEventListener("click", () => { $("conditionFile").value = ""; setCondition(im.png); });
        figures[i].cap.after(use);
      });
      $("sampleDone").textContent = "done: " + data.images.length + (data.images.length === 1 ? " image" : " images") + ", seed " + data.seed;
      $("status").textContent = "done: seed " + data.seed + ", " + slices + " slices in " + Math.round(data.timings.totalMs) + " ms (first after " +
        Math.round(data.timings.firstSliceMs) + " ms) with " + request.model +
        (data.condition && data.condition.input.conversions.length ? "; the given image was " + data.condition.input.conversions.join(", then ") : "");
    } else if (name === "error") {
      showError("sampleError", "sample", data);
      $("status").textContent = "stopped after " + slices + " slices";
      $("sampleDone").textContent = "sampling stopped";
    }
    if (name === "done" || name === "error") ended = true;
  }
}

function clearScore() {
  $("score").textContent = "";
  $("heatmap").hidden = true;
  $("heatmap").removeAttribute("src");
  $("heatmapLegend").textContent = "";
  $("stages").replaceChildren();
}

async function score() {
  const file = scoreFile;
  const model = $("model").value;
  if (!file) return;
  const seq = ++scoreSeq;
  const fail = (body) => { if (seq === scoreSeq) { clearScore(); showError("scoreError", "likelihood", body); } };
  $("scoreError").textContent = "";
  if (!model) { fail("no model: load the models first"); return; }
  const type = await imageType(file);
  if (!type) { fail(notAnImage(file)); return; }
  $("score").textContent = "scoring " + file.name + " under " + model + "...";
  const query = new URLSearchParams({ model: model, perPixel: "true" });
  if ($("convert").checked) for (const [k, v] of Object.entries(convertFor(model))) query.set(k, String(v));
  let res, body;
  try {
    res = await fetchPatiently("likelihood?" + query, { method: "POST", headers: headers({ "content-type": type }), body: file },
      (msg) => { if (seq === scoreSeq) $("score").textContent = msg; });
    body = await res.json().catch(() => null);
  } catch (e) {
    fail("could not reach the server (" + e.message + ")");
    return;
  }
  if (seq !== scoreSeq) return;   // a newer scoring has begun
  if (!res.ok) { fail(body || res.status + " " + res.statusText); return; }
  $("score").textContent = body.bitsPerDim.toFixed(4) + " bits/dim (" + body.bits.toFixed(1) + " bits) under " + body.model;
  $("heatmap").src = "data:image/png;base64," + body.perPixel.png;
  $("heatmap").hidden = false;
  const range = body.perPixel.minBits.toFixed(2) + " (dark) to " + body.perPixel.maxBits.toFixed(2) + " (bright) bits per pixel";
  $("heatmap").title = range;
  $("heatmapLegend").textContent = "heat map: " + range;
  const row = (cells, tag) => {
    const tr = document.createElement("tr");
    for (const c of cells) { const td = document.createElement(tag); td.textContent = c; tr.append(td); }
    return tr;
  };
  $("stages").replaceChildren(row(["stage", "bits/dim"], "th"), ...body.stages.map((s) => row([s.stage, s.bitsPerDim.toFixed(4)], "td")));
}

/** Files dropped on a box go to it; dropped anywhere else they would make the browser leave the page. */
function dropTarget(box, onFile) {
  box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("over"); });
  box.addEventListener("dragleave", () => box.classList.remove("over"));
  box.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    box.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) onFile(file);
  });
}
for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());

$("connect").addEventListener("click", loadModels);
$("model").addEventListener("change", modelChanged);
$("sample").addEventListener("click", sample);
$("mode").addEventListener("change", modeChanged);
$("slices").addEventListener("input", updateStopAfter);
$("conditionFile").addEventListener("change", () => { if ($("conditionFile").files[0]) useConditionFile($("conditionFile").files[0]); });
$("file").addEventListener("change", () => { scoreFile = $("file").files[0] || null; score(); });
$("convert").addEventListener("change", score);
$("conditionImg").addEventListener("error", () => {
  if ($("conditionImg").getAttribute("src")) showError("sampleError", "image to start from", "the browser cannot show it (a damaged file?); the server will say whether it can read it");
});
dropTarget($("scoreBox"), (file) => { scoreFile = file; $("file").value = ""; score(); });
dropTarget($("conditionBox"), useConditionFile);
loadModels();
</script>
</body>
</html>
`;
