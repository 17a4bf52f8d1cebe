import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  buildEditor,
  checkValue,
  collectEdits,
  diffParams,
  fieldKind,
  fieldNameForPath,
  formSchema,
  readField,
  readJsonParams,
  showDiff,
  showServerFieldErrors,
} from "../../static/countersign/queue/edit.js";
import { withFakeDocument } from "./fake-dom.mjs";

const EMAIL_SCHEMA = {
  type: "object",
  required: ["to", "subject", "priority"],
  properties: {
    to: { type: "string", format: "email" },
    subject: { type: "string", minLength: 3, maxLength: 120 },
    body: { type: "string" },
    priority: { enum: ["low", "normal", "urgent"] },
    copies: { type: "integer", minimum: 1, maximum: 5 },
    urgent: { type: "boolean" },
    tags: { type: "array" },
  },
};

describe("checkValue", () => {
  test("string lengths and formats", () => {
    assert.equal(checkValue({ type: "string", minLength: 3 }, "Hi"), "At least 3 characters.");
    assert.equal(checkValue({ type: "string", maxLength: 2 }, "abc"), "At most 2 characters.");
    assert.equal(checkValue({ type: "string", format: "email" }, "not an email"), "Not an email address.");
    assert.equal(checkValue({ type: "string", format: "email" }, "a@b.org"), "");
    assert.equal(checkValue({ type: "string", format: "uri" }, "no scheme"), "Not a URI.");
    assert.equal(checkValue({ type: "string", format: "uri" }, "https://x.org/a"), "");
  });

  test("a pattern is not checked here: the server runs agents' regexes safely", () => {
    assert.equal(checkValue({ type: "string", pattern: "^(a+)+$" }, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"), "");
  });

  test("numbers: whole numbers and bounds", () => {
    assert.equal(checkValue({ type: "integer" }, 1.5), "Must be a whole number.");
    assert.equal(checkValue({ type: ["integer", "null"] }, 2.5), "Must be a whole number.");
    assert.equal(checkValue({ type: "number", minimum: 1 }, 0), "Must be at least 1.");
    assert.equal(checkValue({ type: "number", maximum: 5 }, 6), "Must be at most 5.");
    assert.equal(checkValue({ type: "integer", minimum: 1, maximum: 5 }, 3), "");
  });
});

describe("fieldKind and formSchema", () => {
  test("each schema property gets the input that fits it", () => {
    assert.deepEqual(fieldKind({ enum: ["a"] }), { kind: "enum", type: undefined });
    assert.deepEqual(fieldKind({ type: "boolean" }), { kind: "boolean", type: "boolean" });
    assert.deepEqual(fieldKind({ type: ["null", "integer"] }), { kind: "integer", type: "integer" });
    assert.deepEqual(fieldKind({ type: "string" }), { kind: "string", type: "string" });
    assert.deepEqual(fieldKind({ type: "object" }), { kind: "json", type: "object" });
    assert.deepEqual(fieldKind({}), { kind: "json", type: undefined });
  });

  test("only an object schema with properties becomes a form", () => {
    assert.equal(formSchema(EMAIL_SCHEMA), EMAIL_SCHEMA);
    assert.equal(formSchema({ type: "object" }), null);
    assert.equal(formSchema({ type: "array", properties: {} }), null);
    assert.equal(formSchema(null), null);
  });
});

describe("readField", () => {
  const field = (prop, required = false) => ({ ...fieldKind(prop), prop, required });

  test("an enum select holds the index of the option", () => {
    assert.deepEqual(readField(field({ enum: ["low", 2, { x: 1 }] }), "2", true), { value: { x: 1 }, problem: "" });
    assert.deepEqual(readField(field({ enum: ["low"] }), "", true), { value: undefined, problem: "" });
    assert.deepEqual(readField(field({ enum: ["low"] }, true), "", true), { value: undefined, problem: "Required." });
  });

  test("numbers: empty leaves the key out, garbage is refused, bounds are checked", () => {
    const copies = field({ type: "integer", minimum: 1 });
    assert.deepEqual(readField(copies, " ", true), { value: undefined, problem: "" });
    assert.equal(readField(copies, "1e999", true).problem, "Must be a number.");
    assert.equal(readField(copies, "0", true).problem, "Must be at least 1.");
    assert.deepEqual(readField(copies, "3", true), { value: 3, problem: "" });
  });

  test("a string emptied stays an empty string if the agent sent the key, and is left out if not", () => {
    const body = field({ type: "string" });
    assert.deepEqual(readField(body, "", true), { value: "", problem: "" });
    assert.deepEqual(readField(body, "", false), { value: undefined, problem: "" });
  });

  test("a checkbox is true or false", () => {
    assert.deepEqual(readField(field({ type: "boolean" }), true, true), { value: true, problem: "" });
    assert.deepEqual(readField(field({ type: "boolean" }), false, true), { value: false, problem: "" });
  });

  test("other types are edited as JSON", () => {
    assert.deepEqual(readField(field({ type: "array" }), "[1, 2]", true), { value: [1, 2], problem: "" });
    assert.match(readField(field({ type: "array" }), "[1,", true).problem, /^Not valid JSON: /);
  });
});

describe("readJsonParams", () => {
  test("takes a JSON object", () => {
    assert.deepEqual(readJsonParams('{"to": "a@b"}'), { value: { to: "a@b" } });
  });

  test("refuses anything else, saying why", () => {
    assert.deepEqual(readJsonParams("[1]"), { problem: "The parameters must be a JSON object." });
    assert.deepEqual(readJsonParams("null"), { problem: "The parameters must be a JSON object." });
    assert.match(readJsonParams("{to:").problem, /^Not valid JSON: /);
  });
});

describe("diffParams", () => {
  test("added, removed and changed keys; unchanged ones (deeply equal) are left out", () => {
    const before = { to: "a@b", n: 1, deep: { x: [1] }, gone: true };
    const after = { to: "c@d", n: 1, deep: { x: [1] }, extra: "new" };
    assert.deepEqual(diffParams(before, after), [
      { key: "to", kind: "changed", before: "a@b", after: "c@d" },
      { key: "gone", kind: "removed", before: true, after: undefined },
      { key: "extra", kind: "added", before: undefined, after: "new" },
    ]);
    assert.deepEqual(diffParams(before, structuredClone(before)), []);
  });
});

test("fieldNameForPath takes the first segment of the JSON pointer", () => {
  assert.equal(fieldNameForPath("/copies"), "copies");
  assert.equal(fieldNameForPath("/address/city"), "address");
  assert.equal(fieldNameForPath(""), "");
  assert.equal(fieldNameForPath(undefined), "");
});

describe("the editor with a schema (fake DOM)", () => {
  const card = {
    id: "r1",
    params: { to: "customer@example.org", subject: "Your refund", body: "On its way.", priority: "normal", unknown: 7 },
    params_schema: EMAIL_SCHEMA,
  };

  test("builds one field per property, filled from the proposed parameters", (t) => {
    withFakeDocument(t);
    const edit = buildEditor(card, { onReview() {}, onCancel() {} });
    assert.deepEqual(Object.keys(edit.fields), Object.keys(EMAIL_SCHEMA.properties));
    assert.equal(edit.fields.to.input.getAttribute("type"), "email");
    assert.equal(edit.fields.to.input.value, "customer@example.org");
    assert.equal(edit.fields.priority.input.tagName, "SELECT");
    assert.equal(edit.fields.priority.input.value, "1");
    assert.equal(edit.fields.copies.input.max, 5);
    assert.equal(edit.panel.hidden, true, "closed until the reviewer clicks Edit");
  });

  test("collects the edits, keeping keys the schema does not describe", (t) => {
    withFakeDocument(t);
    const edit = buildEditor(card, { onReview() {}, onCancel() {} });
    edit.fields.subject.input.value = "Corrected";
    edit.fields.priority.input.value = "2";
    edit.fields.copies.input.value = "2";
    edit.fields.urgent.input.checked = true;
    assert.deepEqual(collectEdits(card, edit), {
      to: "customer@example.org",
      subject: "Corrected",
      body: "On its way.",
      priority: "urgent",
      copies: 2,
      urgent: true,
      unknown: 7,
    });
  });

  test("marks every wrong field, focuses the first, and returns nothing", (t) => {
    const doc = withFakeDocument(t);
    const edit = buildEditor(card, { onReview() {}, onCancel() {} });
    edit.fields.to.input.value = "not an email";
    edit.fields.subject.input.value = "Hi";
    assert.equal(collectEdits(card, edit), null);
    assert.equal(edit.fields.to.error.textContent, "Not an email address.");
    assert.equal(edit.fields.subject.error.textContent, "At least 3 characters.");
    assert.equal(edit.fields.to.input.getAttribute("aria-invalid"), "true");
    assert.equal(edit.fields.body.input.getAttribute("aria-invalid"), null);
    assert.equal(doc.activeElement, edit.fields.to.input);
  });

  test("a server refusal lands on its field and brings the form back", (t) => {
    withFakeDocument(t);
    const edit = buildEditor(card, { onReview() {}, onCancel() {} });
    edit.panel.hidden = false;
    edit.form.hidden = true;
    edit.diff.hidden = false;
    showServerFieldErrors(edit, { error: { details: { errors: [{ path: "/copies", message: "3 is not a multiple of 2" }] } } });
    assert.equal(edit.fields.copies.error.textContent, "3 is not a multiple of 2");
    assert.equal(edit.form.hidden, false);
    assert.equal(edit.diff.hidden, true);
  });

  test("the review button asks for the diff; cancel cancels", (t) => {
    withFakeDocument(t);
    const calls = [];
    const edit = buildEditor(card, { onReview: () => calls.push("review"), onCancel: () => calls.push("cancel") });
    const submit = edit.form.dispatch("submit");
    assert.equal(submit.defaultPrevented, true);
    edit.form.querySelectorAll("button").find((b) => b.textContent === "Cancel edit").dispatch("click");
    assert.deepEqual(calls, ["review", "cancel"]);
  });
});

describe("the editor without a schema (fake DOM)", () => {
  const card = { id: "r2", params: { to: "a@b" }, params_schema: null };

  test("is a JSON textarea that must hold an object", (t) => {
    withFakeDocument(t);
    const edit = buildEditor(card, { onReview() {}, onCancel() {} });
    assert.equal(edit.fields.__json.input.value, '{\n  "to": "a@b"\n}');
    edit.fields.__json.input.value = "[]";
    assert.equal(collectEdits(card, edit), null);
    assert.equal(edit.fields.__json.error.textContent, "The parameters must be a JSON object.");
    edit.fields.__json.input.value = '{"to": "c@d"}';
    assert.deepEqual(collectEdits(card, edit), { to: "c@d" });
    assert.equal(edit.fields.__json.error.textContent, "");
  });

  test("the diff lists each change and its confirm button sends the approval", (t) => {
    const doc = withFakeDocument(t);
    const edit = buildEditor(card, { onReview() {}, onCancel() {} });
    let confirmed = 0;
    showDiff(edit, diffParams({ to: "a@b" }, { to: "<b>c@d</b>" }), { onConfirm: () => (confirmed += 1) });
    assert.equal(edit.form.hidden, true);
    assert.equal(edit.diff.hidden, false);
    const rows = edit.diff.querySelectorAll("tr.changed");
    assert.equal(rows.length, 1);
    assert.match(rows[0].textContent, /<b>c@d<\/b>/);
    assert.equal(doc.activeElement.textContent, "Approve with these edits");
    doc.activeElement.dispatch("click");
    assert.equal(confirmed, 1);
  });

  test("no changes: the button says it approves as proposed", (t) => {
    const doc = withFakeDocument(t);
    const edit = buildEditor(card, { onReview() {}, onCancel() {} });
    showDiff(edit, [], { onConfirm() {} });
    assert.equal(doc.activeElement.textContent, "Approve unchanged");
    assert.equal(edit.diff.querySelectorAll("table").length, 0);
  });
});
