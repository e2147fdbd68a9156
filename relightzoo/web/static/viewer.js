// relightzoo view: live relighting in the browser.
//
// Per-pixel-basis models (ptm, hsh, rbf, low-rank) are relit here, in a WebGL2 shader:
// the server sends the coefficient planes once (float32, four numbers a texel), this file
// evaluates the light basis f(w) for the light (or the environment map's lights), and the
// shader sums planes x weights per pixel. Other models (siren, blend) are rendered by the
// server, a quarter-resolution frame first and the full one after. No external code: the
// page works offline. window.relightzoo exposes hooks the browser tests and benchmarks use.
"use strict";

// ---------------------------------------------------------------------------------------
// light bases (the segments of relightzoo/web/basis.py)

function factorial(n) { let f = 1; for (let i = 2; i <= n; i++) f *= i; return f; }

// Real spherical harmonics up to `degree`, band by band m = -l..l (the recurrence of
// relightzoo.builtins.lowrank.real_harmonics).
function realHarmonics(x, y, z, degree) {
  const out = [];
  if (degree < 0) return out;
  const pc = [1], ps = [0];
  for (let i = 0; i < degree; i++) {
    const c = pc[pc.length - 1], s = ps[ps.length - 1];
    pc.push(c * x - s * y); ps.push(c * y + s * x);
  }
  const p = [];
  for (let m = 0; m <= degree; m++) p.push(m === 0 ? [1] : []);
  for (let m = 0; m <= degree; m++) {
    if (m > 0) p[m].push(p[m - 1][0] * (2 * m - 1));
    if (m + 1 <= degree) p[m].push(z * (2 * m + 1) * p[m][0]);
    for (let l = m + 2; l <= degree; l++) {
      p[m].push(((2 * l - 1) * z * p[m][l - m - 1] - (l + m - 1) * p[m][l - m - 2]) / (l - m));
    }
  }
  for (let l = 0; l <= degree; l++) {
    for (let m = -l; m <= l; m++) {
      const am = Math.abs(m);
      const k = Math.sqrt((2 * l + 1) / (4 * Math.PI) * factorial(l - am) / factorial(l + am));
      const leg = p[am][l - am];
      if (m === 0) out.push(k * leg);
      else if (m > 0) out.push(Math.SQRT2 * k * leg * pc[am]);
      else out.push(Math.SQRT2 * k * leg * ps[am]);
    }
  }
  return out;
}

function hemisphericalHarmonics(x, y, z, order) {
  z = Math.min(Math.max(z, 0), 1);
  const n = Math.hypot(x, y);
  const ux = n > 1e-12 ? x / n : 1, uy = n > 1e-12 ? y / n : 0;
  const z2 = 2 * z - 1, s2 = 2 * Math.sqrt(Math.max(z * (1 - z), 0));
  return realHarmonics(ux * s2, uy * s2, z2, order).map((v) => Math.SQRT2 * v);
}

const ACTIVATIONS = {
  identity: (v) => v, relu: (v) => Math.max(v, 0), silu: (v) => v / (1 + Math.exp(-v)),
  tanh: Math.tanh, sigmoid: (v) => 1 / (1 + Math.exp(-v)), sin: Math.sin, cos: Math.cos,
  softplus: (v) => (v > 20 ? v : Math.log1p(Math.exp(v))), elu: (v) => (v > 0 ? v : Math.expm1(v)),
  leaky_relu: (v) => (v > 0 ? v : 0.01 * v),
};

function mlp(seg, d) {
  let x = seg.input.type === "sh" ? realHarmonics(d[0], d[1], d[2], seg.input.degree) : [d[0], d[1], d[2]];
  for (const layer of seg.layers) {
    const act = ACTIVATIONS[layer.act], w = layer.weight, b = layer.bias, om = layer.omega;
    const y = new Array(w.length);
    for (let i = 0; i < w.length; i++) {
      let s = b[i];
      const row = w[i];
      for (let j = 0; j < row.length; j++) s += row[j] * x[j];
      y[i] = act(om * s);
    }
    x = y;
  }
  return x;
}

function rbf(seg, d) {
  const k = seg.centres.map((c) => {
    const dist = Math.hypot(d[0] - c[0], d[1] - c[1], d[2] - c[2]);
    const angle = 2 * Math.asin(Math.min(Math.max(dist / 2, 0), 1));
    return Math.exp(-0.5 * (angle / seg.sigma) ** 2);
  });
  const q = seg.mixing.length ? seg.mixing[0].length : 0;
  const out = new Array(q).fill(0);
  for (let t = 0; t < k.length; t++) { const row = seg.mixing[t]; for (let j = 0; j < q; j++) out[j] += k[t] * row[j]; }
  return out;
}

function unit(d) { const n = Math.hypot(d[0], d[1], d[2]) || 1; return [d[0] / n, d[1] / n, d[2] / n]; }

// f(w) for one unit direction, from the page alone (segments without "server").
function lightBasis(segments, dir) {
  const d = unit(dir), out = [];
  for (const seg of segments) {
    if (seg.type === "ptm") out.push(d[0] * d[0], d[1] * d[1], d[0] * d[1], d[0], d[1], 1);
    else if (seg.type === "constant") out.push(1);
    else if (seg.type === "sh") out.push(...realHarmonics(d[0], d[1], d[2], seg.degree));
    else if (seg.type === "hsh") out.push(...hemisphericalHarmonics(d[0], d[1], d[2], seg.order));
    else if (seg.type === "rbf") out.push(...rbf(seg, d));
    else if (seg.type === "mlp") out.push(...mlp(seg, d));
    else throw new Error("segment " + seg.type + " is evaluated by the server");
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// state

const S = {
  info: null, light: [0, 0, 1], lighting: "light", env: 0, rotation: 0, exposure: 1,
  views: [], playing: false, playMode: "orbit", a: null, b: null, frames: [], nearest: -1,
};

function polarAzimuth(d) {
  return [Math.acos(Math.min(Math.max(d[2], -1), 1)) * 180 / Math.PI, Math.atan2(d[1], d[0]) * 180 / Math.PI];
}
function fromAngles(polar, azimuth) {
  const p = polar * Math.PI / 180, a = azimuth * Math.PI / 180;
  return [Math.sin(p) * Math.cos(a), Math.sin(p) * Math.sin(a), Math.cos(p)];
}
function rotateZ(d, deg) {
  const a = deg * Math.PI / 180, c = Math.cos(a), s = Math.sin(a);
  return [c * d[0] - s * d[1], s * d[0] + c * d[1], d[2]];
}

function countFrame() {
  const now = performance.now();
  S.frames.push(now);
  while (S.frames.length && S.frames[0] < now - 1000) S.frames.shift();
}
function fps() {
  const now = performance.now();
  const recent = S.frames.filter((t) => t >= now - 1000);
  return recent.length;
}

// ---------------------------------------------------------------------------------------
// the in-page path: WebGL2

const VERTEX = `#version 300 es
in vec2 pos; void main() { gl_Position = vec4(pos, 0.0, 1.0); }`;

// The shader: each pixel reads its L texels of plane values (four numbers each) and
// multiplies each by its layer's weight matrix (a column of 4 weights per R, G, B). L is
// known when the page loads, so the sum is written out as straight-line code with the
// weights in uniforms while they fit (twice as fast in software GL as a loop); beyond that
// a loop reads them from a 3 x L float texture.
function fragmentSource(layers, height, uniformWeights) {
  const head = `#version 300 es
precision highp float; precision highp int; precision highp sampler2DArray; precision highp sampler2D;
uniform sampler2DArray planes;
out vec4 color;
`;
  const pixel = `  ivec2 p = ivec2(int(gl_FragCoord.x), ${height} - 1 - int(gl_FragCoord.y));\n  vec3 acc = vec3(0.0);\n`;
  const tail = "  color = vec4(clamp(acc, 0.0, 1.0), 1.0);\n}";
  if (uniformWeights) {
    let body = "";
    for (let j = 0; j < layers; j++) body += `  acc += texelFetch(planes, ivec3(p, ${j}), 0) * m[${j}];\n`;
    return head + `uniform mat3x4 m[${layers}];\nvoid main() {\n` + pixel + body + tail;
  }
  return head + "uniform sampler2D weights;\nvoid main() {\n" + pixel + `  for (int j = 0; j < ${layers}; j++) {
    vec4 t = texelFetch(planes, ivec3(p, j), 0);
    acc += vec3(dot(t, texelFetch(weights, ivec2(0, j), 0)), dot(t, texelFetch(weights, ivec2(1, j), 0)),
                dot(t, texelFetch(weights, ivec2(2, j), 0)));
  }
` + tail;
}

class WebGLView {
  constructor(index, slot, canvas) {
    this.index = index; this.slot = slot; this.canvas = canvas; this.basis = slot.basis;
    canvas.width = slot.width; canvas.height = slot.height;
  }

  async init() {
    const gl = this.canvas.getContext("webgl2", { preserveDrawingBuffer: true, antialias: false, premultipliedAlpha: false });
    if (!gl) throw new Error("this browser has no WebGL2");
    this.gl = gl;
    const buf = await (await fetch(`/api/planes/${this.index}`)).arrayBuffer();
    const { width: w, height: h } = this.slot, L = this.basis.layers;
    const compile = (type, src) => {
      const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
      return s;
    };
    const prog = gl.createProgram();
    gl.attachShader(prog, compile(gl.VERTEX_SHADER, VERTEX));
    // ?weights=texture takes the texture path whatever the limit (the tests check both paths)
    const forceTexture = new URLSearchParams(location.search).get("weights") === "texture";
    this.uniformWeights = !forceTexture && 3 * L + 16 <= gl.getParameter(gl.MAX_FRAGMENT_UNIFORM_VECTORS);
    gl.attachShader(prog, compile(gl.FRAGMENT_SHADER, fragmentSource(L, h, this.uniformWeights)));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
    gl.useProgram(prog);
    const vbo = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, vbo);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 3, -1, -1, 3]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, "pos");
    gl.enableVertexAttribArray(loc); gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);

    gl.activeTexture(gl.TEXTURE0);
    const planes = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D_ARRAY, planes);
    gl.texParameteri(gl.TEXTURE_2D_ARRAY, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D_ARRAY, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage3D(gl.TEXTURE_2D_ARRAY, 0, gl.RGBA32F, w, h, L, 0, gl.RGBA, gl.FLOAT, new Float32Array(buf));
    gl.uniform1i(gl.getUniformLocation(prog, "planes"), 0);

    this.weights = new Float32Array(L * 3 * 4);
    if (this.uniformWeights) {
      this.weightLoc = gl.getUniformLocation(prog, "m");
    } else {
      gl.activeTexture(gl.TEXTURE1);
      this.weightTex = gl.createTexture();
      gl.bindTexture(gl.TEXTURE_2D, this.weightTex);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA32F, 3, L, 0, gl.RGBA, gl.FLOAT, this.weights);
      gl.uniform1i(gl.getUniformLocation(prog, "weights"), 1);
    }
    gl.viewport(0, 0, w, h);
  }

  // f(w) for directions: in the page, or from the server for a "server" segment.
  async factors(dirs) {
    if (this.basis.in_page) return dirs.map((d) => lightBasis(this.basis.segments, d));
    const q = dirs.map((d) => unit(d).map((v) => v.toPrecision(17)).join(",")).join(";");
    return (await fetch(`/api/factors/${this.index}?dirs=${q}`)).json();
  }

  // The per-(plane, channel) weights of the current lighting, K x 3 flattened plane-major.
  async planeWeights() {
    const K = this.basis.terms, out = new Float64Array(K * 3);
    if (S.lighting === "env") {
      const env = S.info.envmaps[S.env], scale = S.exposure / Math.PI;
      const f = await this.factors(env.dirs.map((d) => rotateZ(d, S.rotation)));
      for (let j = 0; j < f.length; j++) {
        for (let k = 0; k < K; k++) for (let c = 0; c < 3; c++) out[k * 3 + c] += scale * env.weights[j][c] * f[j][k];
      }
    } else {
      const f = (await this.factors([S.light]))[0];
      for (let k = 0; k < K; k++) for (let c = 0; c < 3; c++) out[k * 3 + c] = f[k];
    }
    return out;
  }

  async update() {
    const s = await this.planeWeights();
    this.draw(s);
  }

  draw(s) {
    const gl = this.gl, L = this.basis.layers, n = s.length, w = this.weights;
    w.fill(0);
    for (let e = 0; e < n; e++) w[((Math.floor(e / 4) * 3) + (e % 3)) * 4 + (e % 4)] = s[e];
    if (this.uniformWeights) {
      gl.uniformMatrix3x4fv(this.weightLoc, false, w);  // column c of matrix j: w[(3 j + c) * 4 ..]
    } else {
      gl.activeTexture(gl.TEXTURE1);
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, 3, L, gl.RGBA, gl.FLOAT, w);
    }
    gl.drawArrays(gl.TRIANGLES, 0, 3);
    countFrame();
  }

  // The frame as top-down RGB bytes.
  readFrame() {
    const gl = this.gl, { width: w, height: h } = this.slot;
    const rgba = new Uint8Array(w * h * 4);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const src = ((h - 1 - y) * w + x) * 4, dst = (y * w + x) * 3;
      rgb[dst] = rgba[src]; rgb[dst + 1] = rgba[src + 1]; rgb[dst + 2] = rgba[src + 2];
    }
    return rgb;
  }

  status() {
    const how = this.uniformWeights ? "" : ", weights in a texture";
    return `in-page WebGL: ${this.basis.kind}, ${this.basis.terms} planes${how}, ${this.slot.width} x ${this.slot.height}`;
  }
}

// ---------------------------------------------------------------------------------------
// the server path: progressive renders

class ServerView {
  constructor(index, slot, canvas) {
    this.index = index; this.slot = slot; this.canvas = canvas;
    canvas.width = slot.width; canvas.height = slot.height;
    this.ctx = canvas.getContext("2d");
    this.busy = false; this.wanted = null; this.shown = ""; this.stage = "";
  }
  async init() {}

  query() {
    if (S.lighting === "env") return `env=${S.env}&rotation=${S.rotation}&exposure=${S.exposure}`;
    return `light=${unit(S.light).map((v) => v.toPrecision(17)).join(",")}`;
  }

  update() {
    this.wanted = this.query();
    if (!this.busy) this.pump();
  }

  async pump() {
    this.busy = true;
    while (this.wanted !== null) {
      const q = this.wanted;
      this.wanted = null;
      for (const scale of [4, 1]) {
        if (this.wanted !== null && scale === 1) break;  // a newer light: skip this one's full frame
        const t0 = performance.now();
        const resp = await fetch(`/api/render/${this.index}?${q}&scale=${scale}`);
        const bmp = await createImageBitmap(await resp.blob());
        this.ctx.imageSmoothingEnabled = false;
        this.ctx.drawImage(bmp, 0, 0, this.slot.width, this.slot.height);
        this.stage = scale === 1 ? `full frame in ${Math.round(performance.now() - t0)} ms` : "quarter-resolution frame";
        if (scale === 1) this.shown = q;
        countFrame();
        this.onStatus && this.onStatus();
      }
    }
    this.busy = false;
  }

  readFrame() {
    const { width: w, height: h } = this.slot, data = this.ctx.getImageData(0, 0, w, h).data;
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) { rgb[3 * i] = data[4 * i]; rgb[3 * i + 1] = data[4 * i + 1]; rgb[3 * i + 2] = data[4 * i + 2]; }
    return rgb;
  }

  status() { return `server: ${this.stage || "waiting"} (${this.slot.width} x ${this.slot.height})`; }
}

// ---------------------------------------------------------------------------------------
// the page

const $ = (id) => document.getElementById(id);

function drawPad() {
  const c = $("pad"), g = c.getContext("2d"), r = c.width / 2 - 4, cx = c.width / 2, cy = c.height / 2;
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = "#444"; g.lineWidth = 1;
  for (const p of [30, 60, 90]) { g.beginPath(); g.arc(cx, cy, r * Math.sin(p * Math.PI / 180), 0, 2 * Math.PI); g.stroke(); }
  g.beginPath(); g.moveTo(cx - r, cy); g.lineTo(cx + r, cy); g.moveTo(cx, cy - r); g.lineTo(cx, cy + r); g.stroke();
  if (S.info.captured) {
    g.fillStyle = "#5b7fa6";
    for (const d of S.info.captured.lights) g.fillRect(cx + d[0] * r - 1, cy - d[1] * r - 1, 2, 2);
  }
  for (const [d, name] of [[S.a, "A"], [S.b, "B"]]) {
    if (!d) continue;
    g.fillStyle = "#c9a227"; g.fillText(name, cx + d[0] * r + 4, cy - d[1] * r - 4);
    g.beginPath(); g.arc(cx + d[0] * r, cy - d[1] * r, 3, 0, 2 * Math.PI); g.fill();
  }
  if (S.lighting === "light") {
    g.fillStyle = "#ffe08a"; g.beginPath(); g.arc(cx + S.light[0] * r, cy - S.light[1] * r, 6, 0, 2 * Math.PI); g.fill();
  }
}

let updating = null, again = false;
async function update() {
  // one update at a time; a change during one runs another after it (the newest state wins)
  if (updating) { again = true; return updating; }
  updating = (async () => {
    do {
      again = false;
      drawPad();
      const [p, a] = polarAzimuth(S.light);
      if (document.activeElement !== $("polar")) $("polar").value = p.toFixed(1);
      if (document.activeElement !== $("azimuth")) $("azimuth").value = a.toFixed(1);
      await Promise.all(S.views.map((v) => v.update()));
      showStatus();
      scheduleCaptured();
    } while (again);
  })();
  try { await updating; } finally { updating = null; }
}

function showStatus() {
  S.views.forEach((v, i) => { $(`status-${i}`).textContent = v.status(); });
  const paths = S.views.map((v) => (v instanceof WebGLView ? "in-page WebGL" : "server")).join(" | ");
  $("fps").textContent = `${fps()} fps (${paths})`;
}

function setLight(d) { S.light = unit(d); if (S.light[2] < 0) S.light = unit([S.light[0], S.light[1], 0]); return update(); }

function padDirection(ev) {
  const c = $("pad"), rect = c.getBoundingClientRect(), r = c.width / 2 - 4;
  let x = (ev.clientX - rect.left - c.width / 2) / r, y = -(ev.clientY - rect.top - c.height / 2) / r;
  const n = Math.hypot(x, y);
  if (n > 1) { x /= n; y /= n; }
  return [x, y, Math.sqrt(Math.max(0, 1 - x * x - y * y))];
}

let capturedTimer = null;
function scheduleCaptured() {
  if (!S.info.captured || S.lighting !== "light") return;
  clearTimeout(capturedTimer);
  capturedTimer = setTimeout(showCaptured, 150);
}

async function showCaptured() {
  const lights = S.info.captured.lights;
  let best = 0, bestDot = -2;
  lights.forEach((d, i) => { const dot = d[0] * S.light[0] + d[1] * S.light[1] + d[2] * S.light[2]; if (dot > bestDot) { bestDot = dot; best = i; } });
  if (best === S.nearest) return;
  S.nearest = best;
  const d = lights[best], [p, a] = polarAzimuth(d);
  $("captured-note").textContent = `capture #${best} at polar ${p.toFixed(1)}°, azimuth ${a.toFixed(1)}° ` +
    `(${(Math.acos(Math.min(bestDot, 1)) * 180 / Math.PI).toFixed(1)}° from the light)`;
  $("captured-img").src = `/api/captured/${best}`;
  const q = d.map((v) => v.toPrecision(17)).join(",");
  await Promise.all(S.info.slots.map(async (slot, i) => {
    $(`cmp-img-${i}`).src = `/api/render/${i}?light=${q}`;
    const res = await (await fetch(`/api/compare/${i}?index=${best}`)).json();
    if (S.nearest !== best) return;  // the light moved on while this was fetched
    $(`cmp-cap-${i}`).textContent = `${slot.label} at that light: PSNR ${res.psnr.toFixed(2)} dB`;
    $(`cmp-cap-${i}`).dataset.psnr = res.psnr;
    $(`cmp-cap-${i}`).dataset.index = best;
  }));
}

function playStep(t0, from) {
  if (!S.playing) return;
  const t = (performance.now() - t0) / 1000;
  if (S.playMode === "orbit") {
    const [p, a] = polarAzimuth(from);
    S.light = fromAngles(Math.max(p, 1), a + 90 * t);
  } else {
    const a = S.a || from, b = S.b || [0, 0, 1];
    const u = 0.5 - 0.5 * Math.cos(Math.PI * t / 2);  // ping-pong, 4 s a cycle
    const dot = Math.min(Math.max(a[0] * b[0] + a[1] * b[1] + a[2] * b[2], -1), 1), om = Math.acos(dot);
    const wa = om < 1e-6 ? 1 - u : Math.sin((1 - u) * om) / Math.sin(om), wb = om < 1e-6 ? u : Math.sin(u * om) / Math.sin(om);
    S.light = unit([wa * a[0] + wb * b[0], wa * a[1] + wb * b[1], wa * a[2] + wb * b[2]]);
  }
  update().then(() => requestAnimationFrame(() => playStep(t0, from)));
}

function buildViews() {
  const box = $("views");
  S.info.slots.forEach((slot, i) => {
    const fig = document.createElement("figure");
    const path = slot.path === "webgl" ? "in-page WebGL" : "server render";
    fig.innerHTML = `<canvas class="frame" id="frame-${i}"></canvas>
      <figcaption><b>${slot.label}</b><span class="badge ${slot.path}">${path}</span><br>
      <span id="status-${i}" class="status"></span><br><span class="note">${slot.notes.join("; ")}</span></figcaption>`;
    box.appendChild(fig);
    const canvas = $(`frame-${i}`);
    S.views.push(slot.path === "webgl" ? new WebGLView(i, slot, canvas) : new ServerView(i, slot, canvas));
    S.views[i].onStatus = showStatus;
  });
  if (S.info.captured) {
    $("captured-panel").hidden = false;
    const row = $("captured-row");
    row.innerHTML = `<figure><img class="frame small" id="captured-img" alt="captured image">
      <figcaption>captured (${S.info.captured.source})</figcaption></figure>` +
      S.info.slots.map((s, i) => `<figure><img class="frame small" id="cmp-img-${i}" alt="">
      <figcaption id="cmp-cap-${i}">${s.label}</figcaption></figure>`).join("");
  }
}

function bindControls() {
  const pad = $("pad");
  let dragging = false;
  pad.addEventListener("pointerdown", (ev) => { dragging = true; pad.setPointerCapture(ev.pointerId); setLight(padDirection(ev)); });
  pad.addEventListener("pointermove", (ev) => { if (dragging) setLight(padDirection(ev)); });
  pad.addEventListener("pointerup", () => { dragging = false; });
  const typed = () => setLight(fromAngles(Math.min(Math.max(+$("polar").value, 0), 90), +$("azimuth").value));
  $("polar").addEventListener("change", typed);
  $("azimuth").addEventListener("change", typed);
  for (const r of document.querySelectorAll("input[name=lighting]")) {
    r.addEventListener("change", () => { S.lighting = r.value; $("envbox").disabled = r.value !== "env"; update(); });
  }
  const sel = $("envmap");
  S.info.envmaps.forEach((e, i) => { const o = document.createElement("option"); o.value = i; o.textContent = e.name; sel.appendChild(o); });
  const pickEnv = () => {
    S.env = +sel.value; $("envthumb").src = `/api/envmap/${S.env}`;
    S.exposure = S.info.envmaps[S.env].auto_exposure;
    $("exposure").value = Math.log2(S.exposure); $("exposure-out").textContent = S.exposure.toPrecision(3);
    update();
  };
  sel.addEventListener("change", pickEnv);
  $("rotation").addEventListener("input", () => { S.rotation = +$("rotation").value; $("rotation-out").textContent = S.rotation; update(); });
  $("exposure").addEventListener("input", () => { S.exposure = 2 ** +$("exposure").value; $("exposure-out").textContent = S.exposure.toPrecision(3); update(); });
  $("play-mode").addEventListener("change", () => { S.playMode = $("play-mode").value; });
  $("play").addEventListener("click", () => {
    S.playing = !S.playing;
    $("play").textContent = S.playing ? "❚❚ pause" : "▶ play";
    if (S.playing) playStep(performance.now(), S.light.slice());
  });
  const ab = () => { $("ab").textContent = [["A", S.a], ["B", S.b]].filter(([, d]) => d).map(([n, d]) => `${n}: polar ${polarAzimuth(d)[0].toFixed(0)}°, azimuth ${polarAzimuth(d)[1].toFixed(0)}°`).join("; "); drawPad(); };
  $("set-a").addEventListener("click", () => { S.a = S.light.slice(); ab(); });
  $("set-b").addEventListener("click", () => { S.b = S.light.slice(); ab(); });
  $("envthumb").src = "/api/envmap/0";
  S.exposure = S.info.envmaps.length ? S.info.envmaps[0].auto_exposure : 1;
  $("exposure").value = Math.log2(S.exposure); $("exposure-out").textContent = S.exposure.toPrecision(3);
  setInterval(showStatus, 500);
}

function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function start() {
  S.info = await (await fetch("/api/info")).json();
  $("title").textContent = S.info.title;
  document.title = S.info.title;
  buildViews();
  await Promise.all(S.views.map((v) => v.init()));
  bindControls();
  await setLight([0, 0, 1]);
}

// Hooks for tests and benchmarks.
window.relightzoo = {
  state: S,
  lightBasis,
  setLight: (x, y, z) => setLight([x, y, z]),
  // the environment-map controls, set as a user would (the radio, the picker, the sliders)
  setEnvmap: (index, rotation, exposure) => {
    S.lighting = "env"; S.env = index; S.rotation = rotation; S.exposure = exposure;
    document.querySelector("input[name=lighting][value=env]").checked = true;
    $("envbox").disabled = false; $("envmap").value = index; $("envthumb").src = `/api/envmap/${index}`;
    $("rotation").value = rotation; $("rotation-out").textContent = rotation;
    $("exposure").value = Math.log2(exposure); $("exposure-out").textContent = exposure.toPrecision(3);
    return update();
  },
  // resolves once every server view shows the full frame of the current lighting
  settled: async () => {
    for (;;) {
      if (!updating && S.views.every((v) => !(v instanceof ServerView) || (!v.busy && v.wanted === null))) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  },
  readFrame: (i) => ({ width: S.views[i].slot.width, height: S.views[i].slot.height, rgb: toBase64(S.views[i].readFrame()) }),
  fps,
  // Draw `frames` frames of an orbit on view i, waiting for each to finish; frames a second.
  benchmark: async (i, frames) => {
    const v = S.views[i], t0 = performance.now();
    for (let n = 0; n < frames; n++) {
      S.light = fromAngles(45, (360 * n) / frames);
      await v.update();
      if (v.gl) v.gl.readPixels(0, 0, 1, 1, v.gl.RGBA, v.gl.UNSIGNED_BYTE, new Uint8Array(4));  // wait for the GPU
      else await window.relightzoo.settled();
    }
    return (frames * 1000) / (performance.now() - t0);
  },
  ready: null,
};
window.relightzoo.ready = start().catch((err) => {
  document.body.insertAdjacentHTML("afterbegin", `<p class="error" id="error">viewer failed: ${err.message}</p>`);
  throw err;
});
