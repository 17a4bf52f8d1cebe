// The one way the queue page makes elements. There is deliberately no way to set HTML here:
// agent-supplied text goes in as textContent or as an attribute value, never as markup.

/** An element with attributes (`text` sets textContent, `className` the class) and children. */
export function el(tag, attrs, children) {
  const node = globalThis.document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children || []) {
    if (child) node.appendChild(typeof child === "string" ? globalThis.document.createTextNode(child) : child);
  }
  return node;
}
