import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { el } from "../../static/countersign/queue/dom.js";
import {
  applyPauseMessage,
  createPauses,
  pauseLines,
  renderPauses,
  replacePauses,
} from "../../static/countersign/queue/pauses.js";
import { withFakeDocument } from "./fake-dom.mjs";

const XSS = '<img src=x onerror="window.__pwned=1">';

function pause(id, overrides = {}) {
  return {
    id,
    kind: "agent",
    target: "support-bot",
    reason: "Runaway loop",
    paused_by: "alice",
    paused_at: `2026-01-01T00:00:0${id}Z`,
    resumed_by: null,
    resumed_at: null,
    ...overrides,
  };
}

describe("pause reducers", () => {
  test("the first load keeps only the pauses in force", () => {
    const pauses = createPauses([pause(1), pause(2, { resumed_at: "2026-01-02T00:00:00Z" })]);

    assert.deepEqual(Array.from(pauses.keys()), [1]);
  });

  test("a paused event adds a banner and a resumed event takes it away", () => {
    const pauses = createPauses();

    assert.equal(applyPauseMessage(pauses, { type: "paused", pause: pause(1) }), true);
    assert.equal(pauses.size, 1);
    assert.equal(applyPauseMessage(pauses, { type: "resumed", pause: pause(1, { resumed_at: "x" }) }), true);
    assert.equal(pauses.size, 0);
  });

  test("other socket messages are not pause events", () => {
    const pauses = createPauses([pause(1)]);

    assert.equal(applyPauseMessage(pauses, { type: "removed", id: "r1" }), false);
    assert.equal(applyPauseMessage(pauses, { type: "added", card: {} }), false);
    assert.equal(pauses.size, 1);
  });

  test("a reload replaces the pauses with the server's list", () => {
    const pauses = createPauses([pause(1)]);

    replacePauses(pauses, [pause(2, { kind: "action_type", target: "send_email" })]);

    assert.deepEqual(Array.from(pauses.keys()), [2]);
  });

  test("each line names the agent or action type, who paused it and why, oldest first", () => {
    const pauses = createPauses([pause(2, { kind: "action_type", target: "send_email", paused_by: "bob", reason: "Mail down" }), pause(1)]);

    assert.deepEqual(
      pauseLines(pauses).map((line) => line.text),
      ["agent support-bot paused by alice: Runaway loop", "action type send_email paused by bob: Mail down"],
    );
  });
});

describe("pause banners", () => {
  test("one banner per pause, and the container hidden when nothing is paused", (t) => {
    const doc = withFakeDocument(t);
    const container = doc.createElement("div");
    const pauses = createPauses([pause(1), pause(2, { target: "other-bot" })]);

    renderPauses(container, pauses, el);
    assert.equal(container.hidden, false);
    assert.equal(container.children.length, 2);
    assert.equal(container.children[0].getAttribute("data-pause-id"), "1");

    applyPauseMessage(pauses, { type: "resumed", pause: pause(1) });
    applyPauseMessage(pauses, { type: "resumed", pause: pause(2) });
    renderPauses(container, pauses, el);
    assert.equal(container.hidden, true);
    assert.equal(container.children.length, 0);
  });

  test("the agent's name and the reason are shown as text, never as markup", (t) => {
    const doc = withFakeDocument(t);
    const container = doc.createElement("div");

    // The fake DOM throws on any HTML setter: this passes only through textContent.
    renderPauses(container, createPauses([pause(1, { target: "bot " + XSS, reason: "why " + XSS })]), el);

    assert.equal(container.children[0].textContent, `agent bot ${XSS} paused by alice: why ${XSS}`);
    assert.equal(container.children[0].children[0].nodeType, 3);
  });
});
