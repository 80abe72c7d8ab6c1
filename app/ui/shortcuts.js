// Keyboard shortcuts. The project's table of actions (app/ui/shortcuts.py: page_table: action,
// key, the element it clicks) is kept in the hidden #shortcut-map textbox; a key clicks the
// button (or toggles the checkbox) of its action. Aliases count unless an action took the key.
(() => {
  const name = (e) => {
    const parts = [];
    if (e.ctrlKey || e.metaKey) parts.push("ctrl");
    if (e.shiftKey && e.key.length > 1 || e.shiftKey && /[a-z]/i.test(e.key)) parts.push("shift");
    if (e.altKey) parts.push("alt");
    parts.push(e.key.toLowerCase());
    return parts.join("+");
  };
  const targets = () => {  // key -> element selector
    const box = document.querySelector("#shortcut-map textarea, #shortcut-map input");
    try {
      const rows = JSON.parse(box ? box.value : "[]");
      const sorted = [...rows.filter((r) => r.alias), ...rows.filter((r) => !r.alias)];  // actions win
      return Object.fromEntries(sorted.map((r) => [r.key.toLowerCase(), r.target]));
    } catch (_) { return {}; }
  };
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) &&
      !["checkbox", "range", "button"].includes(t.type);
    if (typing) return;
    const target = targets()[name(e)];
    const el = target && document.querySelector(target);
    if (!el) return;
    e.preventDefault();
    el.click();
  });
  window.flKeyName = name;  // the Shortcuts panel names pressed keys the same way
})();
