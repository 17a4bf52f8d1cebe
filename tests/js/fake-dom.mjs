// A small stand-in for the DOM, enough for the queue's rendering code: elements with
// attributes, children, text, listeners and a few selectors. Setting HTML throws, so a
// test passes only if untrusted text went in through textContent / attributes.

class FakeText {
  constructor(text) {
    this.nodeType = 3;
    this.textContent = String(text);
    this.parentNode = null;
  }
}

function matchesSimple(node, selector) {
  const [tag, ...classes] = selector.trim().split(".");
  if (tag && node.tagName !== tag.toUpperCase()) return false;
  return classes.every((c) => node.classList.contains(c));
}

export class FakeElement {
  constructor(tagName, doc) {
    this.nodeType = 1;
    this.tagName = tagName.toUpperCase();
    this.ownerDocument = doc;
    this.attributes = new Map();
    this.children = [];
    this.parentNode = null;
    this.dataset = {};
    this.listeners = {};
    this.hidden = false;
    this.disabled = false;
    this.checked = false;
    this.value = "";
    this.className = "";
  }

  setAttribute(name, value) {
    this.attributes.set(name, String(value));
    if (name === "hidden") this.hidden = true;
    if (name === "id") this.id = String(value);
  }

  getAttribute(name) {
    return this.attributes.has(name) ? this.attributes.get(name) : null;
  }

  removeAttribute(name) {
    this.attributes.delete(name);
  }

  appendChild(child) {
    if (child.parentNode) child.parentNode.children.splice(child.parentNode.children.indexOf(child), 1);
    child.parentNode = this;
    this.children.push(child);
    return child;
  }

  append(...children) {
    for (const child of children) this.appendChild(typeof child === "string" ? new FakeText(child) : child);
  }

  replaceChildren(...children) {
    for (const child of this.children) child.parentNode = null;
    this.children = [];
    this.append(...children);
  }

  insertBefore(child, before) {
    if (!before) return this.appendChild(child);
    if (child.parentNode) child.parentNode.children.splice(child.parentNode.children.indexOf(child), 1);
    child.parentNode = this;
    this.children.splice(this.children.indexOf(before), 0, child);
    return child;
  }

  remove() {
    if (this.parentNode) this.parentNode.children.splice(this.parentNode.children.indexOf(this), 1);
    this.parentNode = null;
  }

  get textContent() {
    return this.children.map((c) => c.textContent).join("");
  }

  set textContent(value) {
    // As in the DOM: the children are replaced by one text node (none for "").
    this.children = [];
    if (String(value) !== "") this.appendChild(new FakeText(value));
  }

  get innerHTML() {
    throw new Error("innerHTML read: the queue must not use it");
  }

  set innerHTML(value) {
    throw new Error("innerHTML set: the queue must not use it");
  }

  set outerHTML(value) {
    throw new Error("outerHTML set: the queue must not use it");
  }

  insertAdjacentHTML() {
    throw new Error("insertAdjacentHTML: the queue must not use it");
  }

  get options() {
    return this.children.filter((c) => c.tagName === "OPTION");
  }

  get classList() {
    const node = this;
    const list = () => node.className.split(/\s+/).filter(Boolean);
    const classes = {
      contains: (c) => list().includes(c),
      add: (c) => {
        if (!list().includes(c)) node.className = [...list(), c].join(" ");
      },
      remove: (c) => {
        node.className = list().filter((x) => x !== c).join(" ");
      },
      toggle: (c, on) => {
        const want = on === undefined ? !list().includes(c) : !!on;
        if (want) classes.add(c);
        else classes.remove(c);
        return want;
      },
    };
    return classes;
  }

  addEventListener(type, listener) {
    (this.listeners[type] ||= []).push(listener);
  }

  /** Run the listeners for `type` with a minimal event; returns the event. */
  dispatch(type, extra = {}) {
    const event = { type, target: this, defaultPrevented: false, preventDefault() { this.defaultPrevented = true; }, ...extra };
    for (const listener of this.listeners[type] || []) listener(event);
    return event;
  }

  /** Every element below this one, depth first. */
  descendants() {
    const found = [];
    for (const child of this.children) {
      if (child.nodeType !== 1) continue;
      found.push(child, ...child.descendants());
    }
    return found;
  }

  querySelectorAll(selectors) {
    const alternatives = selectors.split(",");
    return this.descendants().filter((node) => alternatives.some((s) => matchesSimple(node, s)));
  }

  querySelector(selectors) {
    return this.querySelectorAll(selectors)[0] || null;
  }

  focus() {
    this.ownerDocument.activeElement = this;
  }

  blur() {
    if (this.ownerDocument.activeElement === this) this.ownerDocument.activeElement = null;
  }

  select() {}
}

export class FakeDocument {
  constructor() {
    this.activeElement = null;
    this.listeners = {};
    this.body = new FakeElement("body", this);
    this.created = [];
    this.hidden = false;
    this.title = "";
    this.cookie = "";
  }

  createElement(tag) {
    const node = new FakeElement(tag, this);
    this.created.push(node);
    return node;
  }

  createTextNode(text) {
    return new FakeText(text);
  }

  getElementById(id) {
    return [this.body, ...this.body.descendants()].find((node) => node.id === id) || null;
  }

  querySelector(selectors) {
    return this.body.querySelector(selectors);
  }

  addEventListener(type, listener) {
    (this.listeners[type] ||= []).push(listener);
  }

  dispatch(type, extra = {}) {
    const event = { type, defaultPrevented: false, preventDefault() { this.defaultPrevented = true; }, ...extra };
    for (const listener of this.listeners[type] || []) listener(event);
    return event;
  }
}

/** Install a fresh fake document as globalThis.document for the duration of a test. */
export function withFakeDocument(t) {
  const previous = globalThis.document;
  const doc = new FakeDocument();
  globalThis.document = doc;
  t.after(() => {
    globalThis.document = previous;
  });
  return doc;
}
