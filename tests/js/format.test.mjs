import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  batchFlash,
  confidenceText,
  decisionVerb,
  display,
  errorMessage,
  facetOptionLabel,
  formatRemaining,
  historyLine,
  hostOf,
  keyParamsLine,
  paramOrder,
  plural,
  pretty,
  reminderText,
  removalFlash,
  unreadTitle,
} from "../../static/countersign/queue/format.js";

const S = 1000;

describe("formatRemaining", () => {
  test("nothing left reads as expired", () => {
    assert.equal(formatRemaining(0), "expired");
    assert.equal(formatRemaining(-5 * S), "expired");
  });

  test("seconds, minutes, hours and days each use the two largest units", () => {
    assert.equal(formatRemaining(999), "0s left");
    assert.equal(formatRemaining(59 * S), "59s left");
    assert.equal(formatRemaining(60 * S), "1m 00s left");
    assert.equal(formatRemaining((4 * 60 + 7) * S), "4m 07s left");
    assert.equal(formatRemaining((3600 + 5 * 60 + 59) * S), "1h 05m left");
    assert.equal(formatRemaining((2 * 86400 + 3 * 3600 + 59 * 60) * S), "2d 3h left");
  });
});

describe("small text helpers", () => {
  test("plural", () => {
    assert.equal(plural(1, "request"), "1 request");
    assert.equal(plural(0, "request"), "0 requests");
    assert.equal(plural(3, "change"), "3 changes");
  });

  test("display leaves strings alone and shows anything else as JSON; pretty indents", () => {
    assert.equal(display("a \"quoted\" <b>"), "a \"quoted\" <b>");
    assert.equal(display(42), "42");
    assert.equal(display({ a: [1] }), '{"a":[1]}');
    assert.equal(display(null), "null");
    assert.equal(pretty({ a: 1 }), '{\n  "a": 1\n}');
  });

  test("errorMessage prefers the server's message, else names the status", () => {
    assert.equal(errorMessage({ error: { message: "Too late to approve" } }, 409), "Too late to approve");
    assert.equal(errorMessage({}, 502), "Request failed (502)");
    assert.equal(errorMessage(null, 500), "Request failed (500)");
  });

  test("hostOf names the host of a link, and nothing for a string that is not a URL", () => {
    assert.equal(hostOf("https://docs.example.org/a?b"), "(docs.example.org)");
    assert.equal(hostOf("not a url"), "");
  });

  test("confidence as a percentage, or says it was not given", () => {
    assert.equal(confidenceText(0.876), " · confidence 88%");
    assert.equal(confidenceText(0), " · confidence 0%");
    assert.equal(confidenceText(null), " · confidence not given");
  });

  test("unreadTitle counts only when there is something unread", () => {
    assert.equal(unreadTitle("Queue · Countersign", 0), "Queue · Countersign");
    assert.equal(unreadTitle("Queue · Countersign", 2), "(2) Queue · Countersign");
  });
});

describe("card text", () => {
  test("historyLine says when the agent has no record for this action", () => {
    assert.equal(
      historyLine({ action_type: "refund", history: { approved: 0, edited: 0, rejected: 0 } }),
      "No decisions on refund from this agent in the last 30 days.",
    );
  });

  test("historyLine sums the outcomes", () => {
    assert.equal(
      historyLine({ action_type: "refund", history: { approved: 3, edited: 1, rejected: 2 } }),
      "This agent's refund, last 30 days: approved 3, edited 1, rejected 2.",
    );
  });

  test("paramOrder puts the key parameters first, each once, and ignores key names not in the params", () => {
    const card = { params: { body: "x", to: "a@b", amount: 3 }, key_params: ["amount", "to", "missing"] };
    assert.deepEqual(paramOrder(card), { key: ["amount", "to"], names: ["amount", "to", "body"] });
    assert.deepEqual(paramOrder({ params: {}, key_params: [] }).names, []);
  });

  test("keyParamsLine shows each key parameter with its value", () => {
    assert.equal(keyParamsLine({ params: { to: "a@b", n: 2 }, key_params: ["to", "n"] }), "to: a@b · n: 2");
    assert.equal(keyParamsLine({ params: {}, key_params: [] }), "");
  });

  test("facet options carry their count; unrouted requests cannot be picked as a group", () => {
    assert.equal(facetOptionLabel("risk", "high", 4), "high (4)");
    assert.equal(facetOptionLabel("group", "finance", 1), "finance (1)");
    assert.equal(facetOptionLabel("group", "", 7), null);
    assert.equal(facetOptionLabel("agent", "", 7), " (7)");
  });
});

describe("what the page says after a decision", () => {
  test("decisionVerb", () => {
    assert.equal(decisionVerb({ status: "approved", edited: false }), "Approved");
    assert.equal(decisionVerb({ status: "approved", edited: true }), "Approved with edits");
    assert.equal(decisionVerb({ status: "rejected" }), "Rejected");
    assert.equal(decisionVerb({ status: "pending" }), "Vote recorded");
  });

  test("removalFlash names the action, the agent, the outcome and who", () => {
    assert.equal(
      removalFlash({ action_type: "refund", agent: "bot" }, { status: "approved", by: "bob" }),
      "refund from bot is approved (bob)",
    );
  });

  test("batchFlash counts what was decided and lists what was refused", () => {
    assert.deepEqual(batchFlash("approve", [{ ok: true }, { ok: true }, { ok: true }]), { text: "Approved 3 requests.", kind: "ok" });
    assert.deepEqual(batchFlash("reject", [{ ok: true }, { ok: false, message: "Already decided." }]), {
      text: "Rejected 1 request; 1 refused: Already decided.",
      kind: "error",
    });
  });

  test("reminderText says how long is left, without the word left", () => {
    assert.deepEqual(reminderText({ action_type: "refund", summary: "Refund Dana", agent: "bot" }, 4 * 60 * S + 30 * S), {
      title: "Deadline near: refund",
      body: "Refund Dana (bot) expires in 4m 30s",
    });
  });
});
