// The page fits the window (app/ui/layout.css): the canvas's stage takes the height the centre
// column leaves, and Gradio's toasts are laid over the message box (#notice) so that they
// cover no control; a message repeated in the same toast is shown once.
(() => {
  const MIN_STAGE = 220;
  function fit() {
    const column = document.querySelector("#centre-column"), stage = document.querySelector("#canvas .fl-stage");
    if (!column || !stage) return;
    const top = column.getBoundingClientRect().top + window.scrollY;
    const rest = column.getBoundingClientRect().height - stage.getBoundingClientRect().height;
    const want = Math.max(MIN_STAGE, Math.floor(window.innerHeight - top - rest - 8));
    if (Math.abs(stage.getBoundingClientRect().height - want) > 1) stage.style.height = `${want}px`;
    for (const [id, prop] of [["#left-column", "maxHeight"], ["#right-column", "height"]]) {
      const side = document.querySelector(id);  // the side columns end at the window's bottom
      if (side) side.style[prop] = `${Math.floor(window.innerHeight - side.getBoundingClientRect().top - window.scrollY - 8)}px`;
    }
  }
  function placeToasts() {
    const box = document.querySelector("#notice");
    if (!box) return;
    const r = box.getBoundingClientRect(), root = document.documentElement.style;
    root.setProperty("--fl-notice-top", `${Math.max(0, r.top)}px`);
    root.setProperty("--fl-notice-left", `${r.left}px`);
    root.setProperty("--fl-notice-width", `${r.width}px`);
    root.setProperty("--fl-notice-height", `${r.height}px`);
  }
  function once() {  // Gradio lists every toast of a kind in one panel: show each text once
    const seen = new Set();
    document.querySelectorAll(".toast-wrap .toast-message-item, .toast-wrap .toast-text").forEach((item) => {
      const text = item.textContent.trim();
      item.style.display = seen.has(text) ? "none" : "";
      seen.add(text);
    });
  }
  let queued = false;
  function update() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fit(); placeToasts(); once(); });
  }
  window.addEventListener("resize", update);
  window.addEventListener("scroll", update, true);
  const watch = () => {
    const column = document.querySelector("#centre-column");
    if (!column || !document.querySelector("#canvas .fl-stage")) return setTimeout(watch, 100);
    const sizes = new ResizeObserver(update);
    for (const el of [column, ...column.children]) sizes.observe(el);
    update();
    const toasts = () => {
      const wrap = document.querySelector(".toast-wrap");
      if (!wrap) return setTimeout(toasts, 200);
      new MutationObserver(update).observe(wrap, { childList: true, subtree: true, characterData: true });
    };
    toasts();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch); else watch();
})();
