// Review afterwards: the live queue's keyboard habits (j/k to move) plus one key per label.
// f saves "fine" at once; h and b choose a flag and move to "why", which a flag needs.

import { keyCommand } from "./queue/keys.js";

const LABEL_KEYS = { f: "fine", h: "should_have_asked", b: "should_have_blocked" };

function cards() {
  return Array.from(document.querySelectorAll("article.after-review"));
}

function focused() {
  const all = cards();
  return all.find((card) => card.contains(document.activeElement)) || all[0] || null;
}

function move(step) {
  const all = cards();
  if (!all.length) return;
  const index = all.indexOf(focused());
  const next = all[Math.min(all.length - 1, Math.max(0, index + step))];
  next.focus();
  next.scrollIntoView({ block: "nearest" });
}

function label(key) {
  const card = focused();
  if (!card) return;
  const radio = card.querySelector(`input[name=label][value=${LABEL_KEYS[key]}]`);
  radio.checked = true;
  if (LABEL_KEYS[key] === "fine") {
    card.querySelector("form").requestSubmit();
  } else {
    card.querySelector("select[name=reason_category]").focus();
  }
}

document.addEventListener("keydown", (event) => {
  const command = keyCommand(event);
  if (command === "next" || command === "previous") {
    event.preventDefault();
    move(command === "next" ? 1 : -1);
    return;
  }
  if (command === null && !event.ctrlKey && !event.metaKey && !event.altKey && Object.hasOwn(LABEL_KEYS, event.key)) {
    const target = event.target;
    if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
    event.preventDefault();
    label(event.key);
  }
});

const first = cards()[0];
if (first) first.focus();
