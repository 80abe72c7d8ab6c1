// Keyboard shortcuts. The keymap (action -> key) is the project's, kept in the hidden
// #shortcut-map textbox; each action clicks a button (or toggles a checkbox) by id.
(() => {
  const targets = {
    prev_frame: "#prev-frame", next_frame: "#next-frame", next_expression: "#next-expression",
    save: "#save", undo: "#undo", redo: "#redo", toggle_overlay: "#canvas-overlay",
    outline_only: "#canvas-outline", fill_holes: "#fill-holes", smooth: "#smooth",
    propagate_forward: "#propagate-forward", propagate_backward: "#propagate-backward",
    next_to_check: "#next-to-check", status_done: "#status-done", compare: "#canvas-compare",
    candidate_1: "#candidate-1", candidate_2: "#candidate-2", candidate_3: "#candidate-3",
    candidate_4: "#candidate-4", candidate_5: "#candidate-5",
    tool_brush: "#tool-brush", tool_eraser: "#tool-eraser", tool_box: "#tool-box", tool_points: "#tool-points",
    tool_polygon: "#tool-polygon", tool_pan: "#tool-pan", brush_smaller: "#brush-smaller",
    brush_larger: "#brush-larger", zoom_in: "#zoom-in", zoom_out: "#zoom-out", zoom_fit: "#zoom-fit",
    zoom_actual: "#zoom-actual", segment: "#segment",
  };
  const fallback = { "ctrl+y": "redo", "ctrl+s": "save", "+": "zoom_in" };
  const name = (e) => {
    const parts = [];
    if (e.ctrlKey || e.metaKey) parts.push("ctrl");
    if (e.shiftKey && e.key.length > 1 || e.shiftKey && /[a-z]/i.test(e.key)) parts.push("shift");
    if (e.altKey) parts.push("alt");
    parts.push(e.key.toLowerCase());
    return parts.join("+");
  };
  const keymap = () => {
    const box = document.querySelector("#shortcut-map textarea, #shortcut-map input");
    try {
      const map = JSON.parse(box ? box.value : "{}");
      return Object.fromEntries(Object.entries(map).map(([action, key]) => [key.toLowerCase(), action]));
    } catch (_) { return {}; }
  };
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) &&
      !["checkbox", "range", "button"].includes(t.type);
    if (typing) return;
    const key = name(e);
    const action = keymap()[key] || fallback[key];
    const el = action && document.querySelector(targets[action]);
    if (!el) return;
    e.preventDefault();
    el.click();
  });
})();
