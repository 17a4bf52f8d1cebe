import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { installKeys, keyCommand, typingIn } from "../../static/countersign/queue/keys.js";
import { FakeDocument } from "./fake-dom.mjs";

const onPage = { tagName: "BODY" };
const key = (k, extra = {}) => ({ key: k, target: onPage, ...extra });

describe("keyCommand", () => {
  test("each shortcut on the help list maps to its command", () => {
    const mapped = Object.fromEntries(["j", "k", "a", "r", "e", "x", "/", "?", "Escape"].map((k) => [k, keyCommand(key(k))]));
    assert.deepEqual(mapped, {
      j: "next",
      k: "previous",
      a: "approve",
      r: "reject",
      e: "edit",
      x: "select",
      "/": "search",
      "?": "help",
      Escape: "escape",
    });
  });

  test("other keys, and inherited property names, mean nothing", () => {
    assert.equal(keyCommand(key("q")), null);
    assert.equal(keyCommand(key("J")), null);
    assert.equal(keyCommand(key("constructor")), null);
  });

  test("with a modifier the key belongs to the browser", () => {
    assert.equal(keyCommand(key("a", { ctrlKey: true })), null);
    assert.equal(keyCommand(key("r", { metaKey: true })), null);
    assert.equal(keyCommand(key("j", { altKey: true })), null);
  });

  test("letters typed into a field stay in the field; Escape still leaves it", () => {
    for (const tagName of ["INPUT", "TEXTAREA", "SELECT"]) {
      assert.equal(keyCommand(key("a", { target: { tagName } })), null, tagName);
      assert.equal(keyCommand(key("Escape", { target: { tagName } })), "escape", tagName);
    }
    assert.equal(keyCommand(key("j", { target: { tagName: "DIV", isContentEditable: true } })), null);
  });

  test("an open dialog takes every key", () => {
    assert.equal(keyCommand(key("a"), { dialogOpen: true }), null);
    assert.equal(keyCommand(key("Escape"), { dialogOpen: true }), null);
  });
});

test("typingIn knows fields from other elements", () => {
  assert.equal(typingIn({ tagName: "INPUT" }), true);
  assert.equal(typingIn({ tagName: "BUTTON" }), false);
  assert.equal(typingIn(null), false);
  assert.equal(typingIn({ nodeType: 9 }), false, "the document itself has no tagName");
});

describe("installKeys", () => {
  function setup() {
    const doc = new FakeDocument();
    const ran = [];
    installKeys(doc, {
      approve: () => ran.push("approve"),
      escape: () => ran.push("escape"),
    });
    return { doc, ran };
  }

  test("a shortcut runs its command and loses its default action", () => {
    const { doc, ran } = setup();
    const event = doc.dispatch("keydown", key("a"));
    assert.deepEqual(ran, ["approve"]);
    assert.equal(event.defaultPrevented, true);
  });

  test("Escape runs its command but keeps its default (it also closes native things)", () => {
    const { doc, ran } = setup();
    const event = doc.dispatch("keydown", key("Escape"));
    assert.deepEqual(ran, ["escape"]);
    assert.equal(event.defaultPrevented, false);
  });

  test("a key with no command is left alone", () => {
    const { doc, ran } = setup();
    const event = doc.dispatch("keydown", key("j"));
    assert.deepEqual(ran, []);
    assert.equal(event.defaultPrevented, false);
  });

  test("nothing runs while a dialog is open", () => {
    const { doc, ran } = setup();
    doc.querySelector = (selector) => (selector === "dialog[open]" ? {} : null);
    doc.dispatch("keydown", key("a"));
    assert.deepEqual(ran, []);
  });
});
