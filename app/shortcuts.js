// Keyboard shortcuts: each key clicks a button (or toggles a checkbox) of the page by id.
(() => {
  const keys = {
    "ArrowLeft": "#prev-frame", "ArrowRight": "#next-frame",
    "n": "#next-expression", "s": "#save", "f": "#fill-holes",
    "o": "#show-overlay input", "l": "#outline-only input",
  };
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) &&
      t.type !== "checkbox" && t.type !== "range";
    if (typing) return;
    let target = null;
    const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (e.ctrlKey || e.metaKey) {
      if (k === "z") target = e.shiftKey ? "#redo" : "#undo";
      else if (k === "y") target = "#redo";
      else if (k === "s") target = "#save";
    } else if (!e.altKey) {
      target = keys[k] || null;
    }
    const el = target && document.querySelector(target);
    if (!el) return;
    e.preventDefault();
    el.click();
  });
})();
