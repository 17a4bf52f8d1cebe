// Keyboard shortcuts: which key means what (pure), and the one listener that dispatches them.

export const SHORTCUTS = {
  j: "next",
  k: "previous",
  a: "approve",
  r: "reject",
  e: "edit",
  x: "select",
  "/": "search",
  "?": "help",
};

const FIELDS = ["INPUT", "TEXTAREA", "SELECT"];

/** True when the key goes to a field the reviewer is typing in, not to the page. */
export function typingIn(target) {
  return !!(target && typeof target.tagName === "string" && (target.isContentEditable || FIELDS.includes(target.tagName)));
}

/**
 * The command a keydown means, or null: "escape" anywhere outside an open dialog, the
 * letters only when not typing in a field, nothing with a modifier (the browser's own).
 */
export function keyCommand(event, { dialogOpen = false } = {}) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  if (dialogOpen) return null; // the dialog handles its own keys (Escape closes it)
  if (event.key === "Escape") return "escape";
  if (typingIn(event.target)) return null;
  return Object.hasOwn(SHORTCUTS, event.key) ? SHORTCUTS[event.key] : null;
}

/** Listen on `doc`; `commands[name](event)` runs each command. Letter keys lose their default (no typed "j"). */
export function installKeys(doc, commands) {
  doc.addEventListener("keydown", (event) => {
    const command = keyCommand(event, { dialogOpen: !!doc.querySelector("dialog[open]") });
    if (!command || !commands[command]) return;
    if (command !== "escape") event.preventDefault();
    commands[command](event);
  });
}
