// The Shortcuts panel (gr.HTML's js_on_load): every action with its key. Click a key, then press
// the new one (Escape cancels); a key another action has is refused here with a message, the
// server checks again and saves the project's keys, and answers with the new table.
const list = element.querySelector(".fl-keys-list"), msg = element.querySelector(".fl-keys-msg");
const RESERVED = { " ": "Space plays and pans", enter: "Enter closes a polygon", escape: "Escape cancels" };
let rows = [];
const actions = () => rows.filter((r) => !r.alias);
const say = (text) => { msg.textContent = text; msg.style.display = text ? "block" : "none"; };
function render() {
  const v = props.value;
  rows = (typeof v === "string" ? JSON.parse(v || "[]") : v) || [];
  list.replaceChildren(...actions().map((r) => {
    const row = document.createElement("div"), label = document.createElement("span"), b = document.createElement("button");
    row.className = "fl-key-row"; row.dataset.action = r.action;
    label.textContent = r.label;
    b.className = "fl-key" + (r.key !== r.default ? " fl-changed" : ""); b.textContent = r.key;
    b.title = `${r.label}: click, then press the new key (default ${r.default}; Escape cancels)`;
    b.addEventListener("click", () => listen(r, b));
    row.append(label, b);
    return row;
  }));
}
function listen(r, b) {
  b.textContent = "press a key…"; say("");
  const onKey = (e) => {
    if (["Shift", "Control", "Alt", "Meta"].includes(e.key)) return;
    e.preventDefault(); e.stopImmediatePropagation();
    document.removeEventListener("keydown", onKey, true);
    b.textContent = r.key;
    if (e.key === "Escape") return;
    const key = window.flKeyName(e);
    const other = actions().find((o) => o.action !== r.action && o.key.toLowerCase() === key);
    if (RESERVED[key]) say(`${RESERVED[key]}: choose another key for ${r.label}.`);
    else if (other) say(`"${key}" is already the key of ${other.label}: give that action another key first.`);
    else save({ [r.action]: key });
  };
  document.addEventListener("keydown", onKey, true);
}
function save(changed) {
  trigger("submit", { keys: Object.fromEntries(actions().map((o) => [o.action, changed[o.action] ?? o.key])) });
}
element.querySelector(".fl-keys-reset").addEventListener("click", () => {
  say(""); save(Object.fromEntries(actions().map((o) => [o.action, o.default])));
});
watch("value", render);
render();
