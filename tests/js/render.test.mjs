import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { el } from "../../static/countersign/queue/dom.js";
import {
  rejectProblem,
  renderCard,
  renderClaim,
  renderFacets,
  renderQuorum,
  renderRow,
} from "../../static/countersign/queue/render.js";
import { withFakeDocument } from "./fake-dom.mjs";

const XSS = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1">';
const noop = () => {};
const on = { approve: noop, edit: noop, reject: noop, review: noop, cancelEdit: noop, rejectSubmit: noop };

function hostileCard(overrides = {}) {
  return {
    id: "r1",
    revision: 1,
    action_type: "send " + XSS,
    agent: "bot " + XSS,
    summary: "Refund " + XSS,
    params: { ["key " + XSS]: "value " + XSS, nested: { deep: XSS } },
    key_params: [],
    params_schema: null,
    history: { approved: 0, edited: 0, rejected: 0 },
    evidence: [
      { title: "title " + XSS, url: "javascript:alert(1)", href: null, excerpt: "excerpt " + XSS },
      { title: "", url: "https://docs.example.org/p", href: "https://docs.example.org/p", excerpt: "" },
    ],
    evidence_total: 5,
    confidence: 0.5,
    risk: "high",
    policy: "send_* " + XSS,
    policy_version: 3,
    reason: "reason " + XSS,
    required_approvals: 1,
    approved_by: [],
    reviewer_group: null,
    trace_id: "",
    created_at: "2030-01-01T00:00:00Z",
    expires_at: "2030-01-01T01:00:00Z",
    ...overrides,
  };
}

describe("el", () => {
  test("text goes in as text, attributes as attributes; false and null attributes are left out", (t) => {
    const doc = withFakeDocument(t);
    const node = el("a", { href: "https://x.org", text: XSS, className: "c", hidden: true, disabled: false, title: null }, ["tail", null]);
    assert.equal(node.textContent, XSS + "tail");
    assert.equal(node.getAttribute("href"), "https://x.org");
    assert.equal(node.getAttribute("hidden"), "");
    assert.equal(node.getAttribute("disabled"), null);
    assert.equal(node.getAttribute("title"), null);
    assert.equal(node.className, "c");
    assert.deepEqual(doc.created.map((n) => n.tagName), ["A"]);
  });
});

describe("a card of hostile agent text (fake DOM whose HTML setters throw)", () => {
  test("renders every field as text and makes no element from it", (t) => {
    const doc = withFakeDocument(t);
    const card = hostileCard();
    const row = renderRow(card, { onSelect: noop, onOpen: noop });
    const view = renderCard(card, { reasonCategories: [{ slug: "wrong", label: "Wrong " + XSS }], on });
    const text = row.row.textContent + view.article.textContent;
    for (const fragment of ["Refund " + XSS, "bot " + XSS, "key " + XSS, "value " + XSS, "title " + XSS, "excerpt " + XSS, "reason " + XSS]) {
      assert.ok(text.includes(fragment), "missing as text: " + fragment);
    }
    const tags = new Set(doc.created.map((n) => n.tagName));
    assert.equal(tags.has("SCRIPT"), false);
    assert.equal(tags.has("IMG"), false);
    for (const node of doc.created) {
      for (const name of node.attributes.keys()) assert.ok(!name.startsWith("on"), "event handler attribute " + name);
    }
  });

  test("only the server's http(s) href becomes an evidence link; a javascript: URL stays text", (t) => {
    withFakeDocument(t);
    const view = renderCard(hostileCard(), { on });
    const links = view.article.querySelectorAll("a").map((a) => a.getAttribute("href"));
    assert.deepEqual(links, ["https://docs.example.org/p", "/queue/requests/r1/"]);
    assert.match(view.article.textContent, /javascript:alert\(1\) \(not a web link\)/);
    assert.match(view.article.textContent, /\(docs\.example\.org\)/);
    assert.match(view.article.textContent, /\+3 more not shown/);
  });

  test("the card starts closed, with its editor and reject form hidden", (t) => {
    withFakeDocument(t);
    const view = renderCard(hostileCard(), { on });
    assert.equal(view.article.hidden, true);
    assert.equal(view.edit.panel.hidden, true);
    assert.equal(view.reject.form.hidden, true);
    assert.equal(view.quorum.hidden, true);
  });
});

describe("card controls", () => {
  test("the buttons and the row call their handlers", (t) => {
    withFakeDocument(t);
    const calls = [];
    const handlers = { ...on, approve: () => calls.push("approve"), edit: () => calls.push("edit"), reject: () => calls.push("reject") };
    const view = renderCard(hostileCard(), { on: handlers });
    view.approveBtn.dispatch("click");
    view.editBtn.dispatch("click");
    view.rejectBtn.dispatch("click");
    const row = renderRow(hostileCard(), { onSelect: (on) => calls.push("select " + on), onOpen: () => calls.push("open") });
    row.checkbox.checked = true;
    row.checkbox.dispatch("change");
    row.open.dispatch("click");
    assert.deepEqual(calls, ["approve", "edit", "reject", "select true", "open"]);
  });

  test("a rejection needs a category and a reason before it is sent", (t) => {
    withFakeDocument(t);
    const sent = [];
    const view = renderCard(hostileCard(), { reasonCategories: [{ slug: "wrong_recipient", label: "Wrong recipient" }], on: { ...on, rejectSubmit: (f) => sent.push(f) } });
    view.reject.form.dispatch("submit");
    assert.match(view.status.textContent, /Pick a reason category/);
    view.reject.select.value = "wrong_recipient";
    view.reject.reason.value = "   ";
    view.reject.form.dispatch("submit");
    assert.match(view.status.textContent, /Give a reason/);
    assert.deepEqual(sent, []);
    view.reject.reason.value = "Wrong customer";
    view.reject.form.dispatch("submit");
    assert.deepEqual(sent, [{ reason_category: "wrong_recipient", reason: "Wrong customer" }]);
  });

  test("rejectProblem", () => {
    assert.equal(rejectProblem("", "x").field, "category");
    assert.equal(rejectProblem("c", " ").field, "reason");
    assert.equal(rejectProblem("c", "because"), null);
  });
});

describe("claims and quorum on the page", () => {
  test("another reviewer's claim shows on the row and the card", (t) => {
    withFakeDocument(t);
    const entry = { row: renderRow(hostileCard(), { onSelect: noop, onOpen: noop }), view: renderCard(hostileCard(), { on }) };
    renderClaim(entry, { live: true, other: true, badge: "bob is reviewing", note: "Being reviewed by bob." });
    assert.equal(entry.row.claimBadge.hidden, false);
    assert.equal(entry.row.claimBadge.textContent, "bob is reviewing");
    assert.equal(entry.row.claimBadge.classList.contains("other"), true);
    assert.equal(entry.view.claimNote.hidden, false);
    renderClaim(entry, { live: true, other: false, badge: "you are reviewing", note: "" });
    assert.equal(entry.row.claimBadge.classList.contains("other"), false);
    assert.equal(entry.view.claimNote.hidden, true);
    renderClaim(entry, { live: false, other: false, badge: "", note: "" });
    assert.equal(entry.row.claimBadge.hidden, true);
  });

  test("a quorum card shows the votes, and disables editing and a second vote", (t) => {
    withFakeDocument(t);
    const view = renderCard(hostileCard({ required_approvals: 2 }), { on });
    renderQuorum(view, { text: "Approvals 1 of 2: alice.", voted: true, approveText: "You approved: waiting for another reviewer" });
    assert.equal(view.quorum.hidden, false);
    assert.equal(view.quorum.textContent, "Approvals 1 of 2: alice.");
    assert.equal(view.approveBtn.disabled, true);
    assert.equal(view.editBtn.disabled, true);
    assert.equal(view.approveBtn.textContent, "You approved: waiting for another reviewer");
  });

  test("no quorum: the buttons stay as they are", (t) => {
    withFakeDocument(t);
    const view = renderCard(hostileCard(), { on });
    renderQuorum(view, null);
    assert.equal(view.quorum.hidden, true);
    assert.equal(view.editBtn.disabled, false);
  });
});

describe("renderFacets", () => {
  function page(t) {
    const doc = withFakeDocument(t);
    for (const facet of ["action_type", "agent", "risk", "group"]) {
      const select = el("select", { id: "f-" + facet }, [el("option", { value: "", text: "All " + facet })]);
      doc.body.appendChild(select);
    }
    return doc;
  }

  test("lists each value with its count after the 'all' option, skipping the unrouted group", (t) => {
    const doc = page(t);
    renderFacets(doc, { action_type: "", agent: "", risk: "", group: "" }, {
      action_type: { send_external_email: 2, close_ticket: 1 },
      group: { "": 3, finance: 1 },
    });
    assert.deepEqual(doc.getElementById("f-action_type").options.map((o) => o.textContent), ["All action_type", "send_external_email (2)", "close_ticket (1)"]);
    assert.deepEqual(doc.getElementById("f-group").options.map((o) => o.textContent), ["All group", "finance (1)"]);
  });

  test("keeps the chosen value, at zero, when nothing matches it now", (t) => {
    const doc = page(t);
    renderFacets(doc, { action_type: "", agent: "gone-bot", risk: "", group: "" }, { agent: { other: 1 } });
    const agent = doc.getElementById("f-agent");
    assert.deepEqual(agent.options.map((o) => o.textContent), ["All agent", "other (1)", "gone-bot (0)"]);
    assert.equal(agent.value, "gone-bot");
  });
});
