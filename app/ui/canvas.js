// The annotation canvas (runs as gr.HTML's js_on_load: element, trigger, props, watch).
// The server sends the frame (JPEG, only when it changes) and every mask as exact row-major
// run lengths; everything visual (fill, boundary, other objects, proposal, opacity, outline,
// zoom, pan) happens here. Edits go back as small events in image pixels: 'stroke'
// {points, radius, erase}, 'tool' {kind, points}, 'seek' {frame}, 'pick_object' {id}.
// Strokes, tools, frame steps and the buttons in QUEUED (undo, redo, corrections) go to the
// server function canvas_edit (outside Gradio's queue: one round trip) one after another, in
// order, and each answer is drawn at once; then the 'edited' event lets the page refresh what
// surrounds the canvas. Play fetches frames ahead through canvas_frames.
const $ = (sel) => element.querySelector(sel);
const stage = $(".fl-stage"), base = $(".fl-base"), ui = $(".fl-ui"), tl = $(".fl-timeline");
const bctx = base.getContext("2d"), uctx = ui.getContext("2d"), tctx = tl.getContext("2d");
const st = {
  tool: "brush", radius: 6, opacity: 0.5, overlay: true, outline: false, compare: false,
  view: { scale: 1, ox: 0, oy: 0, fit: true }, img: null, W: 0, H: 0, key: null,
  objects: [], active: null, proposal: null, frames: 1, frame: 0, timeline: "", flagged: [],
  stroke: null, box: null, poly: [], pan: null, space: false, clicks: [], clickKey: null,
  tlv: { start: 0, span: 1 }, hover: null, seeking: null, target: null, drawn: 0,
};
const dpr = () => window.devicePixelRatio || 1;
const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

// -- masks ------------------------------------------------------------------------------
// A layer: the mask (for hover), its fill and its boundary as bitmaps. When the same object
// comes back changed (a stroke), only the rows between the first and last changed pixel are
// redrawn; unchanged runs (other objects, the proposal) reuse their layer as it is.
const sameRuns = (a, b) => a && b && a.length === b.length && a.every((v, i) => v === b[i]);
function changedRows(a, b) {
  let i = 0, start = 0, total = 0, tail = 0;
  for (const c of b) total += c;
  while (i < a.length && i < b.length && a[i] === b[i]) start += a[i++];
  if ((a.length - b.length) % 2 === 0) {
    for (let j = a.length - 1, k = b.length - 1; j >= i && k >= i && a[j] === b[k]; j--, k--) tail += a[j];
  }
  const end = Math.max(start + 1, total - tail);
  return [Math.max(0, Math.floor(start / st.W) - 1), Math.min(st.H - 1, Math.floor((end - 1) / st.W) + 1)];
}
function layer(runs, color, old) {
  const W = st.W, H = st.H;
  const reuse = old && old.color === color && old.W === W && old.H === H;
  if (reuse && sameRuns(old.runs, runs)) return old;
  const m = new Uint8Array(W * H);
  let p = 0, on = false, area = 0, first = -1, last = -1;
  for (const c of runs) {
    if (on && c) { m.fill(1, p, p + c); area += c; if (first < 0) first = p; last = p + c - 1; }
    p += c; on = !on;
  }
  let L, rows;
  if (reuse) { L = old; rows = changedRows(old.runs, runs); }
  else {
    const fill = document.createElement("canvas"), edge = document.createElement("canvas");
    fill.width = edge.width = W; fill.height = edge.height = H;
    L = { fill, edge, box: { x0: W, y0: H, x1: -1, y1: -1 } };
    rows = area ? [Math.floor(first / W), Math.floor(last / W)] : null;
  }
  Object.assign(L, { m, area, runs, color, W, H });
  if (rows) paintRows(L, rows[0], rows[1]);
  return L;
}
function paintRows(L, y0, y1) {
  const W = L.W, H = L.H, m = L.m, fd = new ImageData(W, y1 - y0 + 1), ed = new ImageData(W, y1 - y0 + 1);
  const f32 = new Uint32Array(fd.data.buffer), e32 = new Uint32Array(ed.data.buffer);
  const [r, g, b] = rgb(L.color), px = (255 << 24 | b << 16 | g << 8 | r) >>> 0;  // RGBA, little-endian
  const box = L.box;
  for (let y = y0, o = 0; y <= y1; y++) {
    for (let x = 0, i = y * W; x < W; x++, i++, o++) {
      if (!m[i]) continue;
      f32[o] = px;
      if (x < box.x0) box.x0 = x;
      if (x > box.x1) box.x1 = x;
      if (y < box.y0) box.y0 = y;
      if (y > box.y1) box.y1 = y;
      // The boundary: object pixels next to background (the frame's edge is not background).
      if ((x > 0 && !m[i - 1]) || (x < W - 1 && !m[i + 1]) || (y > 0 && !m[i - W]) || (y < H - 1 && !m[i + W]))
        e32[o] = px;
    }
  }
  L.fill.getContext("2d").putImageData(fd, 0, y0);
  L.edge.getContext("2d").putImageData(ed, 0, y0);
}

// -- view -------------------------------------------------------------------------------
function size() {
  const r = stage.getBoundingClientRect();
  for (const c of [base, ui]) {
    c.width = Math.max(1, Math.round(r.width * dpr())); c.height = Math.max(1, Math.round(r.height * dpr()));
  }
  if (st.view.fit) fit(); else publish();
  draw(); drawUI(); drawTimeline();
}
function fit() {
  const r = stage.getBoundingClientRect();
  if (!st.W || !r.width) return;
  const s = Math.min(r.width / st.W, r.height / st.H);
  st.view = { scale: s, ox: (r.width - st.W * s) / 2, oy: (r.height - st.H * s) / 2, fit: true };
  publish();
}
function zoomAt(scale, sx, sy) {
  const v = st.view, s = Math.min(64, Math.max(0.05, scale));
  if (sx === undefined) { const r = stage.getBoundingClientRect(); sx = r.width / 2; sy = r.height / 2; }
  st.view = { scale: s, ox: sx - (sx - v.ox) * s / v.scale, oy: sy - (sy - v.oy) * s / v.scale, fit: false };
  publish(); draw(); drawUI();
}
function publish() {  // tests and the zoom label read the view
  const v = st.view;
  stage.dataset.view = JSON.stringify({ scale: v.scale, ox: v.ox, oy: v.oy });
  $(".fl-zoom-label").textContent = `${Math.round(v.scale * 100)}%`;
}
const toImage = (e) => {
  const r = ui.getBoundingClientRect();
  return [(e.clientX - r.left - st.view.ox) / st.view.scale, (e.clientY - r.top - st.view.oy) / st.view.scale];
};
const pixel = (e) => toImage(e).map(Math.floor);
const inside = ([x, y]) => x >= 0 && y >= 0 && x < st.W && y < st.H;

function transform(ctx) {
  const s = st.view.scale * dpr();
  ctx.setTransform(s, 0, 0, s, st.view.ox * dpr(), st.view.oy * dpr());
}
function drawEdge(o) {
  // Below 100% a one-pixel boundary would fall between screen pixels: thicken it on screen.
  const t = st.view.scale < 1 ? Math.min(4, Math.ceil(1 / st.view.scale)) : 1, b = o.box;
  if (!o.area || b.x1 < 0) return;
  const w = b.x1 - b.x0 + 1, h = b.y1 - b.y0 + 1;
  for (let dx = 0; dx < t; dx++) for (let dy = 0; dy < t; dy++)
    bctx.drawImage(o.edge, b.x0, b.y0, w, h, b.x0 + dx - (t >> 1), b.y0 + dy - (t >> 1), w, h);
}
function draw() {
  bctx.setTransform(1, 0, 0, 1, 0, 0);
  bctx.fillStyle = "#1b1b1f"; bctx.fillRect(0, 0, base.width, base.height);
  if (!st.W) return;
  transform(bctx);
  bctx.imageSmoothingEnabled = st.view.scale < 1;
  if (st.img) bctx.drawImage(st.img, 0, 0, st.W, st.H);
  bctx.imageSmoothingEnabled = false;
  if (st.overlay) {
    for (const o of st.objects) {
      if (!st.outline) { bctx.globalAlpha = st.opacity * (o.id === st.active ? 1 : 0.6); bctx.drawImage(o.fill, 0, 0); }
      bctx.globalAlpha = 1; drawEdge(o);
    }
    if (st.compare && st.proposalRuns) {
      st.proposal = layer(st.proposalRuns.runs, st.proposalRuns.color, st.proposal);
      drawEdge(st.proposal);
    }
  }
  bctx.globalAlpha = 1;
  st.drawn += 1; element.dataset.drawn = st.drawn;
}
function activeColor() {
  const o = st.objects.find((o) => o.id === st.active);
  return o ? o.color : "#ff00ff";
}
function drawUI() {
  uctx.setTransform(1, 0, 0, 1, 0, 0); uctx.clearRect(0, 0, ui.width, ui.height);
  if (!st.W) return;
  transform(uctx);
  const px = 1 / st.view.scale;  // one screen pixel, in image units
  uctx.lineWidth = 1.5 * px;
  if (st.stroke && st.stroke.points.length) {  // the stroke in flight, until the server's mask arrives
    uctx.strokeStyle = uctx.fillStyle = st.stroke.erase ? "rgba(40,40,40,0.7)" : activeColor();
    uctx.globalAlpha = 0.6; uctx.lineCap = uctx.lineJoin = "round";
    uctx.lineWidth = 2 * st.stroke.radius;
    uctx.beginPath();
    st.stroke.points.forEach(([x, y], i) => (i ? uctx.lineTo(x + 0.5, y + 0.5) : uctx.moveTo(x + 0.5, y + 0.5)));
    if (st.stroke.points.length === 1) uctx.lineTo(st.stroke.points[0][0] + 0.5, st.stroke.points[0][1] + 0.5);
    uctx.stroke(); uctx.globalAlpha = 1; uctx.lineWidth = 1.5 * px;
  }
  if (st.box) {
    const [x0, y0] = st.box.a, [x1, y1] = st.box.b;
    uctx.strokeStyle = "#ffff00"; uctx.setLineDash([4 * px, 3 * px]);
    uctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0) + 1, Math.abs(y1 - y0) + 1);
    uctx.setLineDash([]);
  }
  if (st.poly.length) {
    uctx.strokeStyle = uctx.fillStyle = "#ffff00"; uctx.beginPath();
    st.poly.forEach(([x, y], i) => (i ? uctx.lineTo(x + 0.5, y + 0.5) : uctx.moveTo(x + 0.5, y + 0.5)));
    if (st.hover) uctx.lineTo(st.hover[0] + 0.5, st.hover[1] + 0.5);
    uctx.stroke();
    for (const [x, y] of st.poly) uctx.fillRect(x + 0.5 - 2.5 * px, y + 0.5 - 2.5 * px, 5 * px, 5 * px);
  }
  for (const c of st.clicks) {  // the Points tool's clicks: + green, - red, until the object changes
    if (c.frame !== st.frame) continue;
    uctx.fillStyle = c.sign > 0 ? "#22c55e" : "#ef4444"; uctx.strokeStyle = "#ffffff";
    uctx.beginPath(); uctx.arc(c.x + 0.5, c.y + 0.5, 5 * px, 0, 2 * Math.PI); uctx.fill(); uctx.stroke();
  }
  if (st.hover && (st.tool === "brush" || st.tool === "eraser") && !st.pan) {  // the size ring
    uctx.strokeStyle = st.tool === "eraser" ? "#ffffff" : activeColor();
    uctx.beginPath(); uctx.arc(st.hover[0] + 0.5, st.hover[1] + 0.5, st.radius, 0, 2 * Math.PI); uctx.stroke();
  }
}

// -- timeline ---------------------------------------------------------------------------
// The timeline shows the frames st.tlv.start .. start + span (wheel zooms around the pointer,
// Shift+wheel or a sideways wheel pans); a click near a mark (see isMark) lands on it.
const TL_COLORS = { m: "#3cb44b", a: "#0082c8", p: "#f58230", e: "#d7d7d7" };
const TL_KINDS = { m: "manual", a: "model", p: "propagated", e: "empty" };
const SNAP_PX = 4;
function tlView(start, span) {
  span = Math.min(st.frames, Math.max(Math.min(8, st.frames), span));
  st.tlv = { start: Math.min(st.frames - span, Math.max(0, start)), span };
  tl.dataset.view = JSON.stringify(st.tlv);
}
function tlFollow(f) {  // keep the playhead in view
  const v = st.tlv;
  if (f < v.start || f + 1 > v.start + v.span) tlView(f - v.span / 2, v.span);
}
function drawTimeline() {
  const row = $(".fl-timeline-row");
  row.style.display = st.frames > 1 ? "flex" : "none";
  const tr = tl.getBoundingClientRect(), tw = Math.max(1, Math.round(tr.width * dpr()));
  if (tr.width && tl.width !== tw) { tl.width = tw; tl.height = Math.max(1, Math.round(tr.height * dpr())); }
  tctx.setTransform(1, 0, 0, 1, 0, 0); tctx.clearRect(0, 0, tl.width, tl.height);
  if (st.frames <= 1) return;
  const { start, span } = st.tlv, w = tl.width / span, h = tl.height, x = (f) => (f - start) * w;
  for (let f = Math.floor(start); f < Math.min(st.frames, start + span + 1); f++) {
    tctx.fillStyle = TL_COLORS[st.timeline[f]] || TL_COLORS.e;
    tctx.fillRect(Math.floor(x(f)), h * 0.3, Math.ceil(w), h * 0.7);
  }
  tctx.fillStyle = "#e6194b";  // frames that still need a check
  for (const f of st.flagged) tctx.fillRect(Math.floor(x(f)), 0, Math.max(2, Math.ceil(w)), h * 0.28);
  const f = st.seeking ?? wanted();
  tctx.fillStyle = "#111"; tctx.fillRect(Math.floor(x(f + 0.5)) - dpr(), 0, 2 * dpr(), h);
  $(".fl-frame-label").textContent = `frame ${f} / ${st.frames - 1}` +
    (span < st.frames ? ` ×${Math.round(st.frames / span)}` : "");  // the timeline's zoom
}
const frameAt = (e) => {
  const r = tl.getBoundingClientRect();
  return Math.min(st.frames - 1, Math.max(0, Math.floor(st.tlv.start + (e.clientX - r.left) / r.width * st.tlv.span)));
};
// Marks hard to hit at 1 px a frame: manual frames, flagged ticks and single frames of any kind.
const isMark = (g) => st.timeline[g] === "m" || st.flagged.includes(g) ||
  (st.timeline[g] !== st.timeline[g - 1] && st.timeline[g] !== st.timeline[g + 1]);
function markAt(e) {  // the mark within SNAP_PX of the pointer, else the frame under it
  const f = frameAt(e), r = tl.getBoundingClientRect(), px = r.width / st.tlv.span;
  if (isMark(f)) return f;
  const reach = Math.floor(SNAP_PX / px);
  let best = f, dist = Infinity;
  for (let g = Math.max(0, f - reach); g <= Math.min(st.frames - 1, f + reach); g++) {
    if (isMark(g) && Math.abs(g - f) < dist) { best = g; dist = Math.abs(g - f); }
  }
  return best;
}
tl.addEventListener("pointerdown", (e) => { tl.setPointerCapture(e.pointerId); st.seeking = markAt(e); drawTimeline(); });
tl.addEventListener("pointermove", (e) => {
  if (st.seeking !== null) { st.seeking = frameAt(e); drawTimeline(); return; }
  const f = frameAt(e);
  tl.title = `frame ${f} · ${TL_KINDS[st.timeline[f]] || "empty"}${st.flagged.includes(f) ? " · to check" : ""}`;
});
tl.addEventListener("pointerup", () => {
  if (st.seeking === null) return;
  const f = st.seeking; st.seeking = null;
  if (f !== st.frame || playing()) seek(f); else drawTimeline();
});
tl.addEventListener("wheel", (e) => {
  if (st.frames <= 1) return;
  e.preventDefault();
  const r = tl.getBoundingClientRect(), at = (e.clientX - r.left) / r.width, v = st.tlv;
  if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
    tlView(v.start + (e.deltaX || e.deltaY) / r.width * v.span, v.span);
  } else {
    const span = v.span * Math.exp(e.deltaY * 0.002), pivot = v.start + at * v.span;
    tlView(pivot - at * Math.min(st.frames, Math.max(8, span)), span);
  }
  drawTimeline();
}, { passive: false });
let chain = Promise.resolve();
function send(data) {
  chain = chain.then(async () => {
    let v;
    try { v = await server.canvas_edit({ ...data, tab: st.tab }); } catch (err) { v = { error: `The server did not answer (${err}).` }; }
    st.answered = (st.answered || 0) + 1; element.dataset.answered = st.answered;  // edits that change nothing too
    if (v && v.error) {
      notice(v.error);
      st.seekSent = 0; st.target = null;
      if (st.stroke && st.stroke.sent) st.stroke = null;
      drawUI(); drawTimeline();
      return;
    }
    await load(v);
    trigger("edited", { revision: v.revision, frame: v.frame, kind: data.kind });
  });
}
// Buttons whose edits queue with the strokes (Gradio ignores a click while the last one runs,
// so a burst of Ctrl+Z would lose undos): their clicks never reach Gradio.
const QUEUED = JSON.parse($(".fl-root").dataset.queued || "{}");
document.removeEventListener("click", document.flQueued, true);
document.flQueued = (e) => {
  const b = e.target.closest && e.target.closest("button[id]");
  if (!b || !Object.hasOwn(QUEUED, b.id) || b.disabled) return;
  e.preventDefault(); e.stopImmediatePropagation();
  const area = document.querySelector("#min-area input");
  pause();  // the edit lands on the frame on screen
  send({ ...QUEUED[b.id], min_area: area ? +area.value : 0 });
};
document.addEventListener("click", document.flQueued, true);
function notice(text) {
  const box = $(".fl-notice");
  box.textContent = text; box.style.display = "block";
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { box.style.display = "none"; }, 6000);
}
function seek(f) {
  // One seek in flight at a time; key repeats step from the frame asked for last, and only the
  // latest is sent when the answer comes (a stuck request frees the way after 3 s).
  stopPlay();
  st.poly = []; st.box = null; st.target = f; tlFollow(f); drawTimeline();
  if (st.seekSent && performance.now() - st.seekSent < 3000) return;
  st.seekSent = performance.now();
  send({ kind: "seek", frame: f });
}
const wanted = () => st.target ?? st.frame;
$("#prev-frame").addEventListener("click", () => wanted() > 0 && seek(wanted() - 1));
$("#next-frame").addEventListener("click", () => wanted() < st.frames - 1 && seek(wanted() + 1));

function publishClicks() { element.dataset.clicks = JSON.stringify(st.clicks); }

// -- playback ---------------------------------------------------------------------------
// Play asks canvas_frames for runs of frames ahead (at most PLAY_AHEAD frames, two requests in
// flight), decodes each picture as it arrives and shows frame after frame at fps x speed; it
// waits for a frame that is not ready rather than skip it. The server's session stays on the
// frame where play started: pause (or any edit, step or click) seeks to the frame on screen.
const PLAY_RUN = +$(".fl-root").dataset.playRun, PLAY_AHEAD = 2 * PLAY_RUN;  // the server's run: playback.MAX_RUN
const pl = { on: false, speed: 1, fps: 25, buf: new Map(), next: 0, asked: 0, inflight: 0, last: null, times: [],
  drawMs: [], fetchMs: [], decodeMs: [] };  // where the time goes (bench/playback.py prints it)
const playing = () => pl.on;
function play() {
  if (st.frames <= 1 || !st.W || pl.on) return;
  Object.assign(pl, { on: true, buf: new Map(), inflight: 0, last: null, times: [], drawMs: [], fetchMs: [], decodeMs: [],
    gen: (pl.gen || 0) + 1 });
  pl.next = pl.asked = wanted() + 1 >= st.frames ? 0 : wanted() + 1;
  $("#play").textContent = "Pause"; $("#play").classList.add("fl-on");
  fetchAhead(); requestAnimationFrame(tick); publishPlay();
}
function stopPlay() {
  if (!pl.on) return false;
  pl.on = false; pl.buf = new Map();
  $("#play").textContent = "Play"; $("#play").classList.remove("fl-on");
  publishPlay();
  return true;
}
function pause() { if (stopPlay()) seek(st.frame); }
function fetchAhead() {
  const gen = pl.gen;
  while (pl.on && pl.inflight < 2 && pl.asked < st.frames && pl.asked - pl.next < PLAY_AHEAD) {
    const start = pl.asked, count = Math.min(PLAY_RUN, st.frames - start);
    pl.asked += count; pl.inflight += 1;
    const t0 = performance.now();
    const width = Math.ceil(st.W * st.view.scale * dpr());  // as shown: a 1080p frame fitted needs ~1150 px
    server.canvas_frames({ tab: st.tab, start, count, width }).then((r) => {
      if (gen !== pl.gen) return;
      pl.inflight -= 1; pl.fetchMs.push(performance.now() - t0);
      if (r && r.error) { notice(r.error); pause(); return; }
      pl.fps = r.fps;
      for (const f of r.frames) {
        const img = new Image(), t1 = performance.now(); img.src = f.image;
        const ready = () => { f.img = img; pl.decodeMs.push(performance.now() - t1); };
        img.decode().then(ready, ready);
        pl.buf.set(f.frame, f);
      }
      fetchAhead();
    }, (err) => { if (gen === pl.gen) { notice(`The server did not answer (${err}).`); pause(); } });
  }
}
function tick(now) {
  if (!pl.on) return;
  const f = pl.buf.get(pl.next), period = 1000 / (pl.fps * pl.speed);
  if (f && f.img && (pl.last === null || now >= pl.last + period - 4)) {
    // On time, the next frame is due one period after the last; after a stall, from now.
    pl.last = pl.last === null || now - pl.last > 2 * period ? now : pl.last + period;
    showPlayed(f); pl.times.push(now); pl.drawMs.push(performance.now() - now); publishPlay();
    pl.buf.delete(pl.next); pl.next += 1;
    if (pl.next >= st.frames) { pause(); return; }
    fetchAhead();
  }
  requestAnimationFrame(tick);
}
function showPlayed(f) {
  const colors = new Map(st.objects.map((o) => [o.id, o]));
  st.img = f.img; st.frame = f.frame; st.key = null;
  st.objects = f.objects.filter((o) => colors.has(o.id)).map((o) => {
    const old = colors.get(o.id);
    return Object.assign(layer(o.runs, old.color, old), { id: o.id, label: old.label });
  });
  tlFollow(f.frame); draw(); drawUI(); drawTimeline();
  element.dataset.frame = f.frame;
}
function publishPlay() {  // tests and bench/playback.py read it
  const { on, speed, fps, times, drawMs, fetchMs, decodeMs } = pl;
  element.dataset.play = JSON.stringify({ on, speed, fps, times, drawMs, fetchMs, decodeMs });
}
$("#play").addEventListener("click", () => (pl.on ? pause() : play()));
$("#play-speed").addEventListener("change", (e) => { pl.speed = +e.target.value; pl.last = null; publishPlay(); });

// -- the value from the server -----------------------------------------------------------
// Values are applied in the order they arrive (a frame's image decodes asynchronously; a later
// value must not be overtaken by an earlier one still decoding).
let loading = Promise.resolve();
function load(v) {
  loading = loading.then(() => apply(v)).catch((err) => notice(`Could not draw the frame (${err}).`));
  return loading;
}
async function apply(v) {
  if (!v) return;
  if (typeof v === "string") v = JSON.parse(v);
  stopPlay();  // a value from the server (another expression, a model's masks) says what to show
  if (v.tab) st.tab = v.tab;
  $(".fl-message").textContent = v.message || "";
  $(".fl-message").style.display = v.message ? "block" : "none";
  const line = () => { if (v.info !== undefined) $(".fl-info").innerHTML = v.info; };  // drawn with the canvas
  if (!v.width) { st.W = 0; st.img = null; draw(); drawUI(); line(); return; }
  const t0 = performance.now();
  let img = st.img;
  if (v.image) { img = new Image(); img.src = v.image; await img.decode(); }
  const t1 = performance.now();
  const resized = v.width !== st.W || v.height !== st.H;
  st.W = v.width; st.H = v.height; st.img = img; st.key = v.image_key;
  st.frame = v.frame; st.frames = v.frames; st.active = v.active;
  st.seekSent = 0;
  if (st.target === v.frame || st.target >= v.frames) st.target = null;
  else if (st.target !== null) setTimeout(() => seek(st.target));
  const media = String(v.image_key).split(":")[0];
  if (media !== st.media) { st.media = media; tlView(0, v.frames); }  // another video: the whole timeline
  st.timeline = v.timeline || ""; st.flagged = v.flagged || [];
  const clickKey = `${media}:${v.active}`;  // object ids are unique across expressions
  if (clickKey !== st.clickKey) { st.clickKey = clickKey; st.clicks = []; }
  publishClicks();
  const before = new Map(st.objects.map((o) => [o.id, o]));
  st.objects = v.objects.map((o) => Object.assign(layer(o.runs, o.color, before.get(o.id)), { id: o.id, label: o.label }));
  st.proposalRuns = v.proposal;  // its layer is built when compare needs it
  if (!v.proposal) st.proposal = null;
  else if (st.compare) st.proposal = layer(v.proposal.runs, v.proposal.color, st.proposal);
  if (st.stroke && st.stroke.sent) st.stroke = null;
  if (resized) fit();
  const t2 = performance.now();
  legend(); draw(); drawUI(); drawTimeline(); line();
  // Where the browser's time went (the bench reads it): image decode, masks, drawing.
  element.dataset.timing = JSON.stringify({ decode: t1 - t0, masks: t2 - t1, draw: performance.now() - t2 });
  element.dataset.frame = v.frame; element.dataset.revision = v.revision ?? "";
}
function legend() {
  const box = $(".fl-legend");
  box.replaceChildren(...st.objects.map((o) => {
    const b = document.createElement("button");
    b.className = "fl-object" + (o.id === st.active ? " fl-active" : "");
    b.dataset.object = o.id;
    b.innerHTML = `<span class="fl-swatch" style="background:${o.color}"></span>object ${o.label} · ${o.area} px`;
    b.addEventListener("click", () => o.id !== st.active && trigger("pick_object", { id: o.id }));
    return b;
  }));
  if (st.proposalRuns) {
    const s = document.createElement("span");
    s.className = "fl-proposal";
    s.innerHTML = `<span class="fl-swatch" style="border:2px solid ${st.proposalRuns.color}"></span>proposal (compare)`;
    box.append(s);
  }
}
watch("value", () => load(props.value));

// -- pointer ----------------------------------------------------------------------------
function hoverText(p) {
  if (!inside(p)) return "";
  const i = p[1] * st.W + p[0];
  const here = st.objects.filter((o) => o.m[i]).map((o) => `object ${o.label}`);
  return `x ${p[0]}, y ${p[1]} · ${here.length ? here.join(", ") : "background"}`;
}
ui.addEventListener("contextmenu", (e) => e.preventDefault());
ui.addEventListener("pointerdown", (e) => {
  if (!st.W) return;
  if (playing() && !(e.button === 1 || st.space || st.tool === "pan")) pause();
  ui.setPointerCapture(e.pointerId);
  const p = pixel(e);
  if (e.button === 1 || st.space || st.tool === "pan") {
    if (st.space) st.spacePanned = true;
    st.pan = { x: e.clientX, y: e.clientY, ox: st.view.ox, oy: st.view.oy }; e.preventDefault(); return;
  }
  if (st.tool === "brush" || st.tool === "eraser") {
    if (e.button !== 0) return;
    st.stroke = { points: [p], radius: st.radius, erase: st.tool === "eraser" || e.altKey }; drawUI();
  } else if (st.tool === "box") {
    if (inside(p)) { st.box = { a: p, b: p }; drawUI(); }
  } else if (st.tool === "points") {
    if (!inside(p)) return;
    const negative = e.button === 2 || e.shiftKey || e.altKey;
    st.clicks.push({ x: p[0], y: p[1], sign: negative ? -1 : 1, frame: st.frame }); publishClicks(); drawUI();
    send({ kind: "click", points: [[p[0], p[1], negative ? -1 : 1]], frame: st.frame, object: st.active });
  } else if (st.tool === "polygon" && e.button === 0 && inside(p)) {
    const last = st.poly[st.poly.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) st.poly.push(p);
    drawUI();
  }
});
ui.addEventListener("pointermove", (e) => {
  if (!st.W) return;
  if (st.pan) {
    st.view = { ...st.view, ox: st.pan.ox + e.clientX - st.pan.x, oy: st.pan.oy + e.clientY - st.pan.y, fit: false };
    publish(); draw(); drawUI(); return;
  }
  const p = pixel(e);
  st.hover = p;
  $(".fl-hover").textContent = hoverText(p);
  if (st.stroke) {
    const last = st.stroke.points[st.stroke.points.length - 1];
    if (last[0] !== p[0] || last[1] !== p[1]) st.stroke.points.push(p);
  } else if (st.box) {
    st.box.b = [Math.min(st.W - 1, Math.max(0, p[0])), Math.min(st.H - 1, Math.max(0, p[1]))];
  }
  drawUI();
});
ui.addEventListener("pointerup", () => {
  if (st.pan) { st.pan = null; return; }
  if (st.stroke) {
    const s = st.stroke;
    send({ kind: "stroke", points: s.points, radius: s.radius, erase: s.erase, frame: st.frame, object: st.active });
    s.sent = true;  // drawn until the saved mask comes back
  } else if (st.box) {
    const [x0, y0] = st.box.a, [x1, y1] = st.box.b;
    st.box = null; drawUI();
    // Corners are pixels; the box covers both of them (its far edge is exclusive).
    if (x0 !== x1 && y0 !== y1)
      send({ kind: "box", points: [[Math.min(x0, x1), Math.min(y0, y1)], [Math.max(x0, x1) + 1, Math.max(y0, y1) + 1]],
             frame: st.frame, object: st.active });
  }
});
ui.addEventListener("pointerleave", () => { st.hover = null; $(".fl-hover").textContent = ""; drawUI(); });
ui.addEventListener("dblclick", () => closePolygon());
function closePolygon() {
  if (st.tool !== "polygon" || st.poly.length < 3) return;
  const pts = st.poly; st.poly = []; drawUI();
  send({ kind: "polygon", points: pts, frame: st.frame, object: st.active });
}
ui.addEventListener("wheel", (e) => {
  if (!st.W) return;
  e.preventDefault();
  const r = ui.getBoundingClientRect();
  zoomAt(st.view.scale * Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
}, { passive: false });

// -- toolbar and keys -------------------------------------------------------------------
function setTool(t) {
  st.tool = t; st.poly = []; st.box = null;
  element.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("fl-on", b.dataset.tool === t));
  ui.style.cursor = t === "pan" ? "grab" : "crosshair";
  drawUI();
}
element.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
const sizeInput = $("#brush-size");
function setRadius(r) {
  st.radius = Math.max(1, Math.min(200, Math.round(r))); sizeInput.value = st.radius;
  $(".fl-size-label").textContent = `${st.radius} px`; drawUI();
}
sizeInput.addEventListener("input", () => setRadius(+sizeInput.value));
$("#brush-smaller").addEventListener("click", () => setRadius(st.radius > 10 ? st.radius * 0.8 : st.radius - 1));
$("#brush-larger").addEventListener("click", () => setRadius(st.radius >= 10 ? st.radius * 1.25 : st.radius + 1));
const opacity = $("#canvas-opacity");
opacity.addEventListener("input", () => { st.opacity = +opacity.value; draw(); });
for (const [id, key] of [["#canvas-overlay", "overlay"], ["#canvas-outline", "outline"], ["#canvas-compare", "compare"]]) {
  $(id).addEventListener("change", (e) => { st[key] = e.target.checked; draw(); });
}
const pow2 = (s, up) => 2 ** (up ? Math.floor(Math.log2(s) + 1e-9) + 1 : Math.ceil(Math.log2(s) - 1e-9) - 1);
const cursor = () => st.hover && inside(st.hover) ? [st.hover[0] * st.view.scale + st.view.ox, st.hover[1] * st.view.scale + st.view.oy] : [];
$("#zoom-in").addEventListener("click", () => zoomAt(pow2(st.view.scale, true), ...cursor()));
$("#zoom-out").addEventListener("click", () => zoomAt(pow2(st.view.scale, false), ...cursor()));
$("#zoom-fit").addEventListener("click", () => { fit(); draw(); drawUI(); });
$("#zoom-actual").addEventListener("click", () => zoomAt(1 / dpr(), ...cursor()));
$("#close-polygon").addEventListener("click", () => closePolygon());

const typing = (t) => t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) &&
  !["checkbox", "range", "button"].includes(t.type);
document.addEventListener("keydown", (e) => {
  if (typing(e.target)) return;
  if (e.key === " ") {  // held: pan with a drag; tapped: play / pause
    if (!st.space) { st.space = true; st.spacePanned = false; ui.style.cursor = "grab"; }
    e.preventDefault();
  }
  else if (e.key === "Enter" && st.poly.length >= 3) { closePolygon(); e.preventDefault(); }
  else if (e.key === "Escape") { st.poly = []; st.box = null; st.stroke = null; drawUI(); }
});
document.addEventListener("keyup", (e) => {
  if (e.key === " " && st.space) {
    st.space = false; ui.style.cursor = st.tool === "pan" ? "grab" : "crosshair";
    if (!st.spacePanned && !typing(e.target)) { e.preventDefault(); pl.on ? pause() : play(); }
  }
});
new ResizeObserver(() => size()).observe(stage);
setTool("brush"); setRadius(6); size();
load(props.value);
