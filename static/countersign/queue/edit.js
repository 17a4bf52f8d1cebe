// The edit-parameters panel: a form built from the action type's JSON Schema (or a JSON
// textarea when there is none), checks the page can make itself, and the diff to approve.
// The server validates again against the same schema and has the last word.

import { display, plural, pretty } from "./format.js";
import { el } from "./dom.js";

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** A schema the form can be built from (an object with properties), or null for the JSON editor. */
export function formSchema(schema) {
  return schema && schema.type === "object" && schema.properties ? schema : null;
}

/** The input a property gets: {kind, type}; kind is enum, boolean, integer, number, string or json. */
export function fieldKind(prop) {
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== "null") : prop.type;
  if (Array.isArray(prop.enum)) return { kind: "enum", type };
  if (type === "boolean") return { kind: "boolean", type };
  if (type === "integer" || type === "number") return { kind: type, type };
  if (type === "string") return { kind: "string", type };
  return { kind: "json", type };
}

/** The problem with one value under its schema property, or "" (what the page can check cheaply). */
export function checkValue(prop, value) {
  const type = Array.isArray(prop.type) ? prop.type : [prop.type];
  if (typeof value === "string") {
    if (prop.minLength !== undefined && value.length < prop.minLength) return "At least " + prop.minLength + " characters.";
    if (prop.maxLength !== undefined && value.length > prop.maxLength) return "At most " + prop.maxLength + " characters.";
    if (prop.format === "email" && !EMAIL.test(value)) return "Not an email address.";
    if (prop.format === "uri" && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(value)) return "Not a URI.";
    // "pattern" is left to the server (RE2): an agent's regex must not be able to hang this tab.
  }
  if (typeof value === "number") {
    if (type.includes("integer") && !Number.isInteger(value)) return "Must be a whole number.";
    if (prop.minimum !== undefined && value < prop.minimum) return "Must be at least " + prop.minimum + ".";
    if (prop.maximum !== undefined && value > prop.maximum) return "Must be at most " + prop.maximum + ".";
  }
  return "";
}

/**
 * One form field's value: {value, problem}. `value` undefined means "leave the key out".
 * `input` is what the field holds: the string for text-like inputs, the boolean for a checkbox.
 */
export function readField({ kind, prop, required }, input, hadKey) {
  let value;
  let problem = "";
  if (kind === "enum") value = input === "" ? undefined : prop.enum[Number(input)];
  else if (kind === "boolean") value = input === true;
  else if (kind === "integer" || kind === "number") {
    value = input.trim() === "" ? undefined : Number(input);
    if (value !== undefined && !Number.isFinite(value)) problem = "Must be a number.";
  } else if (kind === "string") value = input === "" && !hadKey ? undefined : input;
  else if (input.trim() === "") value = undefined;
  else {
    try {
      value = JSON.parse(input);
    } catch (err) {
      problem = "Not valid JSON: " + err.message;
    }
  }
  if (!problem && value === undefined && required) problem = "Required.";
  if (!problem && value !== undefined) problem = checkValue(prop, value);
  return { value, problem };
}

/** The JSON editor's text as a parameters object: {value} or {problem}. */
export function readJsonParams(text) {
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return { problem: "The parameters must be a JSON object." };
    return { value };
  } catch (err) {
    return { problem: "Not valid JSON: " + err.message };
  }
}

/** What changed between the proposed and the edited parameters, key by key. */
export function diffParams(before, after) {
  const keys = Array.from(new Set([...Object.keys(before), ...Object.keys(after)]));
  const changes = [];
  for (const key of keys) {
    const had = key in before;
    const has = key in after;
    if (had && has && JSON.stringify(before[key]) === JSON.stringify(after[key])) continue;
    changes.push({ key, kind: !had ? "added" : !has ? "removed" : "changed", before: before[key], after: after[key] });
  }
  return changes;
}

/** The form field a server validation error belongs to: the first segment of its JSON pointer. */
export function fieldNameForPath(path) {
  return String(path || "").replace(/^\//, "").split("/")[0];
}

// --- the form ------------------------------------------------------------------------------

function buildField(card, name, prop, required) {
  const value = card.params[name];
  const id = "f-" + card.id + "-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  const { kind, type } = fieldKind(prop);
  let input;
  if (kind === "enum") {
    input = el("select", { id });
    if (!required) input.appendChild(el("option", { value: "", text: "(none)" }));
    prop.enum.forEach((option, i) => input.appendChild(el("option", { value: String(i), text: display(option) })));
    const index = prop.enum.findIndex((option) => JSON.stringify(option) === JSON.stringify(value));
    input.value = index >= 0 ? String(index) : "";
  } else if (kind === "boolean") {
    input = el("input", { id, type: "checkbox" });
    input.checked = value === true;
  } else if (kind === "integer" || kind === "number") {
    input = el("input", { id, type: "number", step: kind === "integer" ? "1" : "any" });
    if (prop.minimum !== undefined) input.min = prop.minimum;
    if (prop.maximum !== undefined) input.max = prop.maximum;
    input.value = value === undefined || value === null ? "" : String(value);
  } else if (kind === "string") {
    const long = (prop.maxLength || 0) > 200 || (typeof value === "string" && (value.length > 80 || value.includes("\n")));
    const inputType = { email: "email", uri: "url", date: "date" }[prop.format] || "text";
    input = long ? el("textarea", { id, rows: "4" }) : el("input", { id, type: inputType });
    input.value = value === undefined || value === null ? "" : String(value);
  } else {
    input = el("textarea", { id, rows: "4", spellcheck: "false" });
    input.value = value === undefined ? "" : pretty(value);
  }
  if (required) input.setAttribute("aria-required", "true");
  const error = el("span", { className: "field-error", id: id + "-error", role: "alert" });
  input.setAttribute("aria-describedby", id + "-error");
  input.dataset.field = name;
  const hint = [type || (kind === "enum" ? "choice" : "JSON"), prop.format, required ? "required" : ""].filter(Boolean).join(", ");
  const wrap = el("div", { className: "field" }, [
    el("label", { for: id }, [el("span", { className: "name", text: name + (required ? " *" : "") }), el("span", { className: "muted hint", text: " " + hint })]),
    prop.description ? el("span", { className: "muted desc", text: prop.description }) : null,
    input,
    error,
  ]);
  return { input, kind, prop, required, error, wrap };
}

/** The closed edit panel of one card; `onReview` runs when the reviewer asks to see the diff. */
export function buildEditor(card, { onReview, onCancel }) {
  const schema = formSchema(card.params_schema);
  const panel = el("div", { className: "edit-panel", hidden: true });
  const form = el("form", { className: "edit-form", novalidate: true });
  const fields = {}; // name -> {input, kind, prop, required, error}
  if (schema) {
    const required = new Set(schema.required || []);
    for (const [name, prop] of Object.entries(schema.properties)) {
      fields[name] = buildField(card, name, prop || {}, required.has(name));
      form.appendChild(fields[name].wrap);
    }
  } else {
    const jsonEditor = el("textarea", { className: "params-editor", rows: "10", spellcheck: "false", "aria-label": "Edited parameters (JSON)" });
    jsonEditor.value = pretty(card.params);
    form.appendChild(el("label", { className: "field" }, [el("span", { text: "Parameters (JSON object)" }), jsonEditor]));
    fields.__json = { input: jsonEditor, error: el("span", { className: "field-error", role: "alert" }) };
    form.appendChild(fields.__json.error);
  }
  const review = el("button", { type: "submit", className: "primary", text: "Review changes" });
  const cancel = el("button", { type: "button", className: "quiet", text: "Cancel edit" });
  form.appendChild(el("div", { className: "actions" }, [review, cancel]));
  const diff = el("div", { className: "diff-panel", hidden: true, role: "region", "aria-label": "Changes to approve" });
  panel.appendChild(el("h3", { text: schema ? "Edit parameters (form from the agent's schema)" : "Edit parameters" }));
  panel.appendChild(form);
  panel.appendChild(diff);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onReview();
  });
  cancel.addEventListener("click", () => onCancel());
  return { panel, form, fields, schema, diff };
}

function markField(field, problem) {
  field.error.textContent = problem;
  if (problem) field.input.setAttribute("aria-invalid", "true");
  else field.input.removeAttribute("aria-invalid");
}

/** The edited parameters, or null after marking the fields that are wrong (the first takes focus). */
export function collectEdits(card, edit) {
  if (!edit.schema) {
    const field = edit.fields.__json;
    const { value, problem } = readJsonParams(field.input.value);
    markField(field, problem || "");
    if (problem) {
      field.input.focus();
      return null;
    }
    return value;
  }
  // Keys the schema does not describe are kept as the agent sent them.
  const result = { ...card.params };
  let firstBad = null;
  for (const [name, field] of Object.entries(edit.fields)) {
    const { value, problem } = readField(field, field.kind === "boolean" ? field.input.checked : field.input.value, name in card.params);
    markField(field, problem);
    if (problem) firstBad = firstBad || field.input;
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  if (firstBad) {
    firstBad.focus();
    return null;
  }
  return result;
}

/** Replace the form with the diff and its confirm button (focused); `onConfirm` sends the approval. */
export function showDiff(edit, changes, { onConfirm }) {
  const table = el("table", { className: "diff" }, [
    el("thead", {}, [el("tr", {}, [el("th", { text: "Parameter" }), el("th", { text: "Agent proposed" }), el("th", { text: "You approve" })])]),
  ]);
  const body = el("tbody");
  for (const change of changes) {
    body.appendChild(
      el("tr", { className: change.kind }, [
        el("th", { scope: "row" }, [el("code", { text: change.key }), el("span", { className: "muted", text: " " + change.kind })]),
        el("td", { className: "before" }, [el("del", { text: change.kind === "added" ? "—" : display(change.before) })]),
        el("td", { className: "after" }, [el("ins", { text: change.kind === "removed" ? "—" : display(change.after) })]),
      ]),
    );
  }
  table.appendChild(body);
  const confirm = el("button", { type: "button", className: "primary confirm-edit", text: changes.length ? "Approve with these edits" : "Approve unchanged" });
  const back = el("button", { type: "button", className: "quiet", text: "Back to editing" });
  edit.diff.replaceChildren(
    el("h3", { text: changes.length ? plural(changes.length, "change") + " to approve" : "No changes: this approves the parameters as proposed" }),
    changes.length ? table : el("span"),
    el("div", { className: "actions" }, [confirm, back]),
  );
  edit.form.hidden = true;
  edit.diff.hidden = false;
  confirm.addEventListener("click", () => onConfirm());
  back.addEventListener("click", () => {
    edit.diff.hidden = true;
    edit.form.hidden = false;
  });
  confirm.focus();
}

/** The server refused the edited parameters: put each message on its field and show the form again. */
export function showServerFieldErrors(edit, body) {
  const errors = (body.error && body.error.details && body.error.details.errors) || [];
  if (!errors.length || edit.panel.hidden) return;
  edit.diff.hidden = true;
  edit.form.hidden = false;
  for (const problem of errors) {
    const field = edit.fields[fieldNameForPath(problem.path)] || edit.fields.__json;
    if (field) {
      field.error.textContent = (field.error.textContent ? field.error.textContent + " " : "") + problem.message;
      field.input.setAttribute("aria-invalid", "true");
    }
  }
}
