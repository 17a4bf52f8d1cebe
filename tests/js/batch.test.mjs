import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { batchBarView, batchDialogView, batchPayload } from "../../static/countersign/queue/batch.js";
import { createState, replaceAll, toggleSelected } from "../../static/countersign/queue/state.js";

function stateWith(cards) {
  const state = createState({ me: "alice" });
  replaceAll(state, { cards, claims: {}, total: cards.length, counts: {}, next_cursor: null });
  return state;
}

const email = (id, extra = {}) => ({
  id,
  revision: 3,
  action_type: "send_external_email",
  agent: "support-bot",
  summary: "Email " + id,
  params: { to: id + "@example.org", body: "x" },
  key_params: ["to"],
  ...extra,
});

describe("batchBarView", () => {
  test("hidden with nothing selected", () => {
    assert.deepEqual(batchBarView(stateWith([email("a")])), { hidden: true, text: "", mixed: false });
  });

  test("counts the selection", () => {
    const state = stateWith([email("a"), email("b")]);
    toggleSelected(state, "a", true);
    toggleSelected(state, "b", true);
    assert.deepEqual(batchBarView(state), { hidden: false, mixed: false, text: "2 requests selected" });
  });

  test("a selection of two action types cannot be batched, and says so", () => {
    const state = stateWith([email("a"), email("t", { action_type: "close_ticket" })]);
    toggleSelected(state, "a", true);
    toggleSelected(state, "t", true);
    const view = batchBarView(state);
    assert.equal(view.mixed, true);
    assert.equal(view.text, "2 requests selected: batch decisions need one action type, and this selection has 2");
  });
});

describe("batchDialogView", () => {
  test("lists the selected requests in page order with their key parameters", () => {
    const state = stateWith([email("a"), email("b"), email("c")]);
    toggleSelected(state, "c", true);
    toggleSelected(state, "a", true);
    const view = batchDialogView(state, "approve");
    assert.deepEqual(view.ids, ["a", "c"]);
    assert.equal(view.title, "Approve 2 requests of send_external_email?");
    assert.deepEqual(view.items[0], { summary: "Email a", detail: " — support-bot · to: a@example.org" });
    assert.equal(view.confirmText, "Approve all 2");
    assert.equal(view.confirmClass, "primary");
  });

  test("a rejection is a danger button", () => {
    const state = stateWith([email("a")]);
    toggleSelected(state, "a", true);
    const view = batchDialogView(state, "reject");
    assert.equal(view.title, "Reject 1 request of send_external_email?");
    assert.equal(view.confirmClass, "danger");
  });

  test("nothing to show for an empty or mixed selection", () => {
    const state = stateWith([email("a"), email("t", { action_type: "close_ticket" })]);
    assert.equal(batchDialogView(state, "approve"), null);
    toggleSelected(state, "a", true);
    toggleSelected(state, "t", true);
    assert.equal(batchDialogView(state, "approve"), null);
  });
});

describe("batchPayload", () => {
  test("each request with the revision the reviewer saw; ones that left meanwhile are dropped", () => {
    const state = stateWith([email("a"), email("b", { revision: 7 })]);
    assert.deepEqual(batchPayload(state, ["a", "gone", "b"], "approve"), {
      payload: { decision: "approve", items: [{ id: "a", revision: 3 }, { id: "b", revision: 7 }] },
    });
  });

  test("a rejection carries its category and reason, and needs both", () => {
    const state = stateWith([email("a")]);
    assert.deepEqual(batchPayload(state, ["a"], "reject", { reason_category: "wrong_recipient", reason: "" }), {
      problem: "A rejection needs a reason category and a reason.",
    });
    assert.deepEqual(batchPayload(state, ["a"], "reject", { reason_category: "", reason: "because" }), {
      problem: "A rejection needs a reason category and a reason.",
    });
    assert.deepEqual(batchPayload(state, ["a"], "reject", { reason_category: "wrong_recipient", reason: "because" }).payload, {
      decision: "reject",
      items: [{ id: "a", revision: 3 }],
      reason_category: "wrong_recipient",
      reason: "because",
    });
  });
});
