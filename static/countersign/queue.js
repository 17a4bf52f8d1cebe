// The live reviewer queue. Agent-supplied text is untrusted: it only ever reaches the
// page through textContent / attribute setters, never innerHTML (and the CSP forbids inline script).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const queueEl = $("queue");
  const emptyEl = $("queue-empty");
  const countEl = $("queue-count");
  const liveEl = $("live-status");
  const bannerEl = $("live-banner");
  const flashEl = $("flash");
  const filtersEl = $("filters");
  const loadMoreEl = $("load-more");
  const batchBar = $("batch-bar");
  const state = JSON.parse($("queue-data").textContent);
  const me = state.me;
  const myGroups = new Set(state.my_groups || []);
  const reasonCategories = state.reason_categories || [];
  const claimTimeoutMs = (state.claim_timeout_seconds || 90) * 1000;
  const REMIND_BEFORE_MS = 5 * 60 * 1000;
  const RISK_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
  const FACETS = ["action_type", "agent", "risk", "group"];

  const cards = new Map(); // id -> {data, li, row, article, ...}
  const claims = new Map(); // id -> {by, expires_at}
  const selected = new Set();
  const reminded = new Set();
  let order = []; // ids in display order
  let currentId = null;
  let nextCursor = state.next_cursor;
  let total = state.total;
  let unread = 0;
  const baseTitle = document.title;

  // --- small helpers ------------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    return node;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function flash(message, kind) {
    flashEl.textContent = message;
    flashEl.className = "flash " + (kind || "info");
    flashEl.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { flashEl.hidden = true; }, 8000);
  }

  function formatRemaining(ms) {
    if (ms <= 0) return "expired";
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (d > 0) return d + "d " + h + "h left";
    if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m left";
    if (m > 0) return m + "m " + String(sec).padStart(2, "0") + "s left";
    return sec + "s left";
  }

  const pretty = (value) => JSON.stringify(value, null, 2);
  const display = (value) => (typeof value === "string" ? value : JSON.stringify(value));
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  async function postJSON(url, payload) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(payload),
    });
    const body = await response.json().catch(() => ({}));
    return { response, body };
  }

  const errorMessage = (body, response) => (body.error && body.error.message) || ("Request failed (" + response.status + ")");

  // --- filters --------------------------------------------------------------------------------

  let filters = Object.assign({ action_type: "", agent: "", risk: "", group: "", mine: false, q: "", sort: "deadline" }, state.filters || {});

  function syncFilterInputs() {
    $("q").value = filters.q;
    $("f-mine").checked = !!filters.mine;
    $("sort").value = filters.sort;
  }

  function renderFacets(counts) {
    for (const facet of FACETS) {
      const select = $("f-" + facet);
      const current = filters[facet] || "";
      const values = Object.entries((counts || {})[facet] || {});
      if (current && !values.some(([v]) => v === current)) values.push([current, 0]);
      const allLabel = select.options[0].textContent;
      select.replaceChildren(el("option", { value: "", text: allLabel }));
      for (const [value, n] of values) {
        const label = (facet === "group" && value === "" ? "(everyone)" : value) + " (" + n + ")";
        if (facet === "group" && value === "") continue; // unrouted requests cannot be filtered by group
        select.appendChild(el("option", { value, text: label }));
      }
      select.value = current;
    }
  }

  function queryString(extra) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(filters)) {
      if (key === "mine") { if (value) params.set("mine", "1"); }
      else if (value && !(key === "sort" && value === "deadline")) params.set(key, value);
    }
    for (const [key, value] of Object.entries(extra || {})) params.set(key, value);
    return params.toString();
  }

  function matchesFilters(card) {
    if (filters.action_type && card.action_type !== filters.action_type) return false;
    if (filters.agent && card.agent !== filters.agent) return false;
    if (filters.risk && card.risk !== filters.risk) return false;
    if (filters.group && card.reviewer_group !== filters.group) return false;
    if (filters.mine && !(myGroups.has(card.reviewer_group) || (claims.get(card.id) || {}).by === me)) return false;
    if (filters.q) {
      const needle = filters.q.toLowerCase();
      if (![card.summary, card.action_type, card.agent].some((text) => String(text).toLowerCase().includes(needle))) return false;
    }
    return true;
  }

  function sortKey(card) {
    const deadline = card.expires_at + "|" + card.id;
    return filters.sort === "risk" ? (RISK_RANK[card.risk] ?? 9) + "|" + deadline : deadline;
  }

  async function fetchState(extra) {
    const response = await fetch("/queue/cards.json?" + queryString(extra), { credentials: "same-origin" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(errorMessage(body, response));
    return body;
  }

  let reloadSeq = 0;
  async function reload() {
    history.replaceState(null, "", "?" + queryString());
    const seq = ++reloadSeq;
    try {
      const fresh = await fetchState();
      if (seq !== reloadSeq) return; // a newer filter change is already on its way
      replaceAll(fresh);
    } catch (err) {
      flash(err.message, "error");
    }
  }

  let refreshTimer = null;
  function refreshCountsSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        const fresh = await fetchState();
        total = fresh.total;
        renderFacets(fresh.counts);
        refreshCount();
      } catch (err) { /* counts catch up on the next event */ }
    }, 1500);
  }

  // --- rendering ------------------------------------------------------------------------------

  function renderParams(card) {
    const params = card.params || {};
    const keys = Object.keys(params);
    if (!keys.length) return el("p", { className: "muted", text: "(no parameters)" });
    // The parameters that say what this does to whom come first, set apart from the rest.
    const key = card.key_params.filter((k) => k in params);
    const dl = el("dl", { className: "params" });
    for (const name of [...key, ...keys.filter((k) => !key.includes(k))]) {
      const value = params[name];
      const cls = key.includes(name) ? "key" : null;
      dl.appendChild(el("dt", { className: cls, text: name }));
      dl.appendChild(el("dd", { className: cls }, [
        typeof value === "object" && value !== null ? el("pre", { text: pretty(value) }) : el("span", { text: String(value) }),
      ]));
    }
    return dl;
  }

  function renderEvidence(card) {
    if (!card.evidence.length) return el("p", { className: "muted", text: "No evidence supplied." });
    const list = el("ol", { className: "evidence" });
    for (const item of card.evidence) {
      const title = item.href
        ? el("a", { href: item.href, target: "_blank", rel: "noopener noreferrer nofollow", text: item.title || item.href })
        : el("span", { className: "evidence-title", text: item.title || item.url || "(untitled)" });
      const children = [title];
      if (item.href) children.push(el("span", { className: "muted source", text: " " + hostOf(item.href) }));
      else if (item.url) children.push(el("span", { className: "muted url", text: " " + item.url + " (not a web link)" }));
      if (item.excerpt) children.push(el("blockquote", { text: item.excerpt }));
      list.appendChild(el("li", {}, children));
    }
    const wrap = el("div", {}, [list]);
    if (card.evidence_total > card.evidence.length) {
      wrap.appendChild(el("p", { className: "muted", text: "+" + (card.evidence_total - card.evidence.length) + " more not shown" }));
    }
    return wrap;
  }

  function hostOf(url) {
    try { return "(" + new URL(url).host + ")"; } catch (err) { return ""; }
  }

  function historyLine(card) {
    const h = card.history || {};
    const decided = (h.approved || 0) + (h.edited || 0) + (h.rejected || 0);
    if (!decided) return "No decisions on " + card.action_type + " from this agent in the last 30 days.";
    return "This agent's " + card.action_type + ", last 30 days: approved " + (h.approved || 0) + ", edited " + (h.edited || 0) +
      ", rejected " + (h.rejected || 0) + ".";
  }

  function renderRow(card) {
    const checkbox = el("input", { type: "checkbox", className: "select", "aria-label": "Select " + card.action_type + ": " + card.summary });
    const open = el("button", { type: "button", className: "open", "aria-expanded": "false", "aria-controls": "card-" + card.id }, [
      el("code", { className: "type", text: card.action_type }),
      el("span", { className: "line", text: card.summary }),
      el("span", { className: "agent muted", text: card.agent }),
    ]);
    const claimBadge = el("span", { className: "claim-badge", hidden: true });
    const row = el("div", { className: "row risk-" + card.risk }, [
      checkbox, open,
      el("span", { className: "badge risk", text: card.risk }),
      claimBadge,
      el("span", { className: "countdown", "aria-label": "time left" }),
    ]);
    checkbox.addEventListener("change", () => toggleSelected(card.id, checkbox.checked));
    open.addEventListener("click", () => (currentId === card.id ? closeCurrent() : openCard(card.id)));
    return { row, checkbox, open, claimBadge };
  }

  function renderCard(card) {
    const article = el("article", {
      className: "card risk-" + card.risk, id: "card-" + card.id, "data-id": card.id, tabindex: "-1",
      "aria-labelledby": "t-" + card.id, hidden: true,
    });
    const claimNote = el("p", { className: "claim-note", role: "status", hidden: true });
    article.appendChild(el("header", {}, [
      el("h2", { id: "t-" + card.id }, [el("code", { text: card.action_type })]),
      el("span", { className: "badge risk", text: card.risk + " risk" }),
      el("span", { className: "countdown", "aria-label": "time left" }),
    ]));
    article.appendChild(claimNote);
    article.appendChild(el("p", { className: "summary", text: card.summary }));
    article.appendChild(el("p", { className: "meta" }, [
      el("span", { text: "Agent " }), el("strong", { className: "agent", text: card.agent }),
      el("span", { className: "confidence", text: card.confidence === null ? " · confidence not given" : " · confidence " + Math.round(card.confidence * 100) + "%" }),
      card.trace_id ? el("span", { className: "muted", text: " · trace " + card.trace_id }) : null,
    ]));
    article.appendChild(el("p", { className: "history muted", text: historyLine(card) }));
    article.appendChild(el("section", { className: "block" }, [el("h3", { text: "Proposed parameters" }), renderParams(card)]));
    article.appendChild(el("section", { className: "block" }, [el("h3", { text: "Evidence" }), renderEvidence(card)]));
    article.appendChild(el("p", { className: "policy" }, [
      el("span", { text: "Policy " }), el("code", { text: card.policy }),
      el("span", { className: "muted", text: " (v" + card.policy_version + "): " + card.reason }),
      card.required_approvals > 1 ? el("span", { className: "muted", text: " · needs " + card.required_approvals + " approvals" }) : null,
      card.reviewer_group ? el("span", { className: "muted", text: " · group " + card.reviewer_group }) : null,
    ]));
    article.appendChild(el("p", { className: "quorum", role: "status", hidden: true }));
    article.appendChild(el("p", { className: "record-link" }, [
      el("a", { href: "/queue/requests/" + encodeURIComponent(card.id) + "/", target: "_blank", rel: "noopener", text: "Full record and audit trail" }),
    ]));

    const edit = buildEditor(card);
    const reject = buildRejectForm(card);
    const note = el("input", { type: "text", className: "note", placeholder: "Note for the record (optional)", "aria-label": "Note" });
    const approveBtn = el("button", { type: "button", className: "primary approve", "aria-keyshortcuts": "a", text: "Approve" });
    const editBtn = el("button", { type: "button", className: "edit", "aria-keyshortcuts": "e", text: "Edit" });
    const rejectBtn = el("button", { type: "button", className: "danger reject", "aria-keyshortcuts": "r", text: "Reject" });
    const status = el("p", { className: "card-status", role: "status" });
    article.appendChild(edit.panel);
    article.appendChild(reject.form);
    article.appendChild(el("div", { className: "decide" }, [note]));
    const actions = el("div", { className: "actions" }, [approveBtn, editBtn, rejectBtn]);
    article.appendChild(actions);
    article.appendChild(status);

    const view = { article, claimNote, edit, reject, note, actions, approveBtn, editBtn, rejectBtn, status };
    approveBtn.addEventListener("click", () => approve(card.id));
    editBtn.addEventListener("click", () => toggleEdit(card.id));
    rejectBtn.addEventListener("click", () => openReject(card.id));
    return view;
  }

  function setStatus(view, message, kind) {
    view.status.textContent = message;
    view.status.className = "card-status" + (kind ? " " + kind : "");
  }

  // --- typed edits ----------------------------------------------------------------------------

  function buildEditor(card) {
    const schema = card.params_schema && card.params_schema.type === "object" && card.params_schema.properties ? card.params_schema : null;
    const panel = el("div", { className: "edit-panel", hidden: true });
    const form = el("form", { className: "edit-form", novalidate: true });
    const fields = {}; // name -> {input, kind, error}
    let jsonEditor = null;
    if (schema) {
      const required = new Set(schema.required || []);
      for (const [name, prop] of Object.entries(schema.properties)) {
        fields[name] = buildField(card, name, prop || {}, required.has(name));
        form.appendChild(fields[name].wrap);
      }
    } else {
      jsonEditor = el("textarea", { className: "params-editor", rows: "10", spellcheck: "false", "aria-label": "Edited parameters (JSON)" });
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
    form.addEventListener("submit", (event) => { event.preventDefault(); reviewEdits(card.id); });
    cancel.addEventListener("click", () => toggleEdit(card.id, false));
    return { panel, form, fields, schema, diff, jsonEditor, edited: null };
  }

  function buildField(card, name, prop, required) {
    const value = card.params[name];
    const id = "f-" + card.id + "-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
    const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== "null") : prop.type;
    let input, kind;
    if (Array.isArray(prop.enum)) {
      kind = "enum";
      input = el("select", { id });
      if (!required) input.appendChild(el("option", { value: "", text: "(none)" }));
      prop.enum.forEach((option, i) => input.appendChild(el("option", { value: String(i), text: display(option) })));
      const index = prop.enum.findIndex((option) => JSON.stringify(option) === JSON.stringify(value));
      input.value = index >= 0 ? String(index) : "";
    } else if (type === "boolean") {
      kind = "boolean";
      input = el("input", { id, type: "checkbox" });
      input.checked = value === true;
    } else if (type === "integer" || type === "number") {
      kind = type;
      input = el("input", { id, type: "number", step: type === "integer" ? "1" : "any" });
      if (prop.minimum !== undefined) input.min = prop.minimum;
      if (prop.maximum !== undefined) input.max = prop.maximum;
      input.value = value === undefined || value === null ? "" : String(value);
    } else if (type === "string") {
      kind = "string";
      const long = (prop.maxLength || 0) > 200 || (typeof value === "string" && (value.length > 80 || value.includes("\n")));
      const inputType = { email: "email", uri: "url", date: "date" }[prop.format] || "text";
      input = long ? el("textarea", { id, rows: "4" }) : el("input", { id, type: inputType });
      input.value = value === undefined || value === null ? "" : String(value);
    } else {
      kind = "json";
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
      input, error,
    ]);
    return { input, kind, prop, required, error, wrap };
  }

  const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

  function checkValue(name, prop, value) {
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

  function collectEdits(card, edit) {
    let ok = true;
    if (!edit.schema) {
      const field = edit.fields.__json;
      field.error.textContent = "";
      field.input.removeAttribute("aria-invalid");
      try {
        const value = JSON.parse(field.input.value);
        if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("The parameters must be a JSON object.");
        return value;
      } catch (err) {
        field.error.textContent = err instanceof SyntaxError ? "Not valid JSON: " + err.message : err.message;
        field.input.setAttribute("aria-invalid", "true");
        field.input.focus();
        return null;
      }
    }
    // Keys the schema does not describe are kept as the agent sent them.
    const result = Object.assign({}, card.params);
    let firstBad = null;
    for (const [name, field] of Object.entries(edit.fields)) {
      let value, problem = "";
      const raw = field.kind === "boolean" ? null : field.input.value;
      if (field.kind === "enum") value = raw === "" ? undefined : field.prop.enum[Number(raw)];
      else if (field.kind === "boolean") value = field.input.checked;
      else if (field.kind === "integer" || field.kind === "number") {
        value = raw.trim() === "" ? undefined : Number(raw);
        if (value !== undefined && !Number.isFinite(value)) problem = "Must be a number.";
      } else if (field.kind === "string") value = raw === "" && !(name in card.params) ? undefined : raw;
      else if (raw.trim() === "") value = undefined;
      else { try { value = JSON.parse(raw); } catch (err) { problem = "Not valid JSON: " + err.message; } }
      if (!problem && value === undefined && field.required) problem = "Required.";
      if (!problem && value !== undefined) problem = checkValue(name, field.prop, value);
      field.error.textContent = problem;
      if (problem) { field.input.setAttribute("aria-invalid", "true"); ok = false; firstBad = firstBad || field.input; }
      else field.input.removeAttribute("aria-invalid");
      if (value === undefined) delete result[name]; else result[name] = value;
    }
    if (!ok) { firstBad.focus(); return null; }
    return result;
  }

  function diffParams(before, after) {
    const keys = Array.from(new Set([...Object.keys(before), ...Object.keys(after)]));
    const changes = [];
    for (const key of keys) {
      const had = key in before, has = key in after;
      if (had && has && JSON.stringify(before[key]) === JSON.stringify(after[key])) continue;
      changes.push({ key, kind: !had ? "added" : !has ? "removed" : "changed", before: before[key], after: after[key] });
    }
    return changes;
  }

  function reviewEdits(id) {
    const entry = cards.get(id);
    if (!entry) return;
    const { data: card, view } = entry;
    const edit = view.edit;
    const edited = collectEdits(card, edit);
    if (!edited) { setStatus(view, "Fix the highlighted fields first.", "error"); return; }
    const changes = diffParams(card.params, edited);
    edit.edited = edited;
    const table = el("table", { className: "diff" }, [
      el("thead", {}, [el("tr", {}, [el("th", { text: "Parameter" }), el("th", { text: "Agent proposed" }), el("th", { text: "You approve" })])]),
    ]);
    const body = el("tbody");
    for (const change of changes) {
      body.appendChild(el("tr", { className: change.kind }, [
        el("th", { scope: "row" }, [el("code", { text: change.key }), el("span", { className: "muted", text: " " + change.kind })]),
        el("td", { className: "before" }, [el("del", { text: change.kind === "added" ? "—" : display(change.before) })]),
        el("td", { className: "after" }, [el("ins", { text: change.kind === "removed" ? "—" : display(change.after) })]),
      ]));
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
    setStatus(view, "Check the changes, then confirm.");
    confirm.addEventListener("click", () => sendDecision(id, { decision: "approve", params: changes.length ? edited : undefined }));
    back.addEventListener("click", () => { edit.diff.hidden = true; edit.form.hidden = false; });
    confirm.focus();
  }

  function showServerFieldErrors(view, body) {
    const errors = (body.error && body.error.details && body.error.details.errors) || [];
    const edit = view.edit;
    if (!errors.length || edit.panel.hidden) return;
    edit.diff.hidden = true;
    edit.form.hidden = false;
    for (const problem of errors) {
      const name = String(problem.path || "").replace(/^\//, "").split("/")[0];
      const field = edit.fields[name] || edit.fields.__json;
      if (field) {
        field.error.textContent = (field.error.textContent ? field.error.textContent + " " : "") + problem.message;
        field.input.setAttribute("aria-invalid", "true");
      }
    }
  }

  // --- reject ---------------------------------------------------------------------------------

  function buildRejectForm(card) {
    const form = el("form", { className: "reject-form", hidden: true, "aria-label": "Reject with a reason" });
    const select = el("select", { className: "reason-category", required: true, "aria-label": "Reason category" },
      [el("option", { value: "", text: "Reason category…" })]);
    for (const category of reasonCategories) select.appendChild(el("option", { value: category.slug, text: category.label }));
    const reason = el("input", { type: "text", className: "reason", required: true, placeholder: "What should the agent do differently?", "aria-label": "Reason for rejection" });
    const confirm = el("button", { type: "submit", className: "danger confirm-reject", text: "Confirm reject" });
    const cancel = el("button", { type: "button", className: "quiet", text: "Cancel" });
    form.append(select, reason, el("div", { className: "actions" }, [confirm, cancel]));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const view = cards.get(card.id).view;
      if (!select.value) { setStatus(view, "Pick a reason category: it tells the agent what went wrong.", "error"); select.focus(); return; }
      if (!reason.value.trim()) { setStatus(view, "Give a reason: the agent uses it to do better.", "error"); reason.focus(); return; }
      sendDecision(card.id, { decision: "reject", reason_category: select.value, reason: reason.value });
    });
    cancel.addEventListener("click", () => { form.hidden = true; cards.get(card.id).view.rejectBtn.focus(); });
    return { form, select, reason };
  }

  // --- decisions ------------------------------------------------------------------------------

  async function sendDecision(id, payload) {
    const entry = cards.get(id);
    if (!entry) return;
    const { data: card, view } = entry;
    const buttons = view.article.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    setStatus(view, "Sending…");
    try {
      const { response, body } = await postJSON("/queue/requests/" + encodeURIComponent(id) + "/decide",
        Object.assign({ revision: card.revision, note: view.note.value }, payload));
      if (response.ok) {
        const verb = body.status === "rejected" ? "Rejected" : body.status === "pending" ? "Vote recorded" : body.edited ? "Approved with edits" : "Approved";
        flash(verb + ": " + card.action_type + " from " + card.agent, "ok");
        if (body.status !== "pending") removeCard(id, { advance: true });
        else {
          buttons.forEach((b) => { b.disabled = false; });
          const current = cards.get(id).data;
          updateCard(Object.assign({}, current, { approved_by: Array.from(new Set([...(current.approved_by || []), me])) }));
        }
        return;
      }
      const message = errorMessage(body, response);
      setStatus(view, message, "error");
      flash(message, "error");
      if (response.status === 409) {
        // Expired, cancelled, decided or changed since it was opened: this card is no longer what the reviewer saw.
        view.article.classList.add("stale");
        setTimeout(() => removeCard(id, { advance: currentId === id }), 6000);
      } else {
        buttons.forEach((b) => { b.disabled = false; });
        showServerFieldErrors(view, body);
      }
    } catch (err) {
      setStatus(view, "Network error: the decision was not sent. Try again.", "error");
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function approve(id) {
    const entry = cards.get(id);
    if (!entry) return;
    if (!entry.view.edit.panel.hidden) { reviewEdits(id); return; }
    sendDecision(id, { decision: "approve" });
  }

  function toggleEdit(id, force) {
    const entry = cards.get(id);
    if (!entry) return;
    const { view } = entry;
    const show = force === undefined ? view.edit.panel.hidden : force;
    view.edit.panel.hidden = !show;
    view.edit.form.hidden = false;
    view.edit.diff.hidden = true;
    view.reject.form.hidden = true;
    view.actions.hidden = show;
    if (show) {
      const first = view.edit.form.querySelector("input, select, textarea");
      if (first) first.focus();
    } else view.editBtn.focus();
  }

  function openReject(id) {
    const entry = cards.get(id);
    if (!entry) return;
    const { view } = entry;
    view.edit.panel.hidden = true;
    view.actions.hidden = false;
    view.reject.form.hidden = false;
    view.reject.select.focus();
  }

  // --- the list -------------------------------------------------------------------------------

  function addCard(card, options) {
    if (cards.has(card.id)) return false;
    const row = renderRow(card);
    const view = renderCard(card);
    const li = el("li", { className: "item", "data-id": card.id }, [row.row, view.article]);
    const key = sortKey(card);
    let index = order.findIndex((other) => sortKey(cards.get(other).data) > key);
    if (index < 0) index = order.length;
    // A live arrival that sorts after the last loaded card belongs to a later page: count it, don't show it.
    if (options && options.live && index === order.length && nextCursor) return false;
    queueEl.insertBefore(li, index < order.length ? cards.get(order[index]).li : null);
    order.splice(index, 0, card.id);
    cards.set(card.id, { data: card, li, row, view });
    if (selected.has(card.id)) row.checkbox.checked = true;
    renderClaim(card.id);
    renderQuorum(card.id);
    return true;
  }

  // Requests that need several approvals: who approved so far; one vote per reviewer.
  function renderQuorum(id) {
    const entry = cards.get(id);
    if (!entry || entry.data.required_approvals <= 1) return;
    const { data, view } = entry;
    const by = data.approved_by || [];
    const node = view.article.querySelector(".quorum");
    node.hidden = false;
    node.textContent = "Approvals " + by.length + " of " + data.required_approvals + (by.length ? ": " + by.join(", ") : "") + ".";
    const voted = by.includes(me);
    view.approveBtn.disabled = voted;
    view.editBtn.disabled = true; // every approver must see the same parameters
    view.approveBtn.textContent = voted ? "You approved: waiting for another reviewer" : "Approve";
  }

  function updateCard(card) {
    const entry = cards.get(card.id);
    if (!entry) return;
    entry.data = Object.assign(entry.data, { approved_by: card.approved_by, revision: card.revision });
    renderQuorum(card.id);
  }

  function removeCard(id, options) {
    const entry = cards.get(id);
    if (!entry) return;
    const index = order.indexOf(id);
    const wasCurrent = currentId === id;
    if (wasCurrent) { sendSocket({ type: "release", id }); currentId = null; }
    entry.li.remove();
    cards.delete(id);
    order.splice(index, 1);
    selected.delete(id);
    refreshBatchBar();
    refreshCount();
    if (wasCurrent && options && options.advance && order.length) openCard(order[Math.min(index, order.length - 1)]);
  }

  function replaceAll(fresh) {
    const keepOpen = currentId;
    for (const id of Array.from(cards.keys())) {
      const entry = cards.get(id);
      entry.li.remove();
      cards.delete(id);
    }
    order = [];
    currentId = null;
    claims.clear();
    for (const [id, claim] of Object.entries(fresh.claims || {})) claims.set(id, claim);
    nextCursor = fresh.next_cursor;
    total = fresh.total;
    for (const card of fresh.cards) addCard(card);
    for (const id of Array.from(selected)) if (!cards.has(id)) selected.delete(id);
    renderFacets(fresh.counts);
    refreshCount();
    refreshBatchBar();
    tick();
    if (keepOpen && cards.has(keepOpen)) openCard(keepOpen, { focus: false });
    else openFirstUnclaimed();
  }

  function refreshCount() {
    countEl.textContent = String(Math.max(total, cards.size));
    emptyEl.hidden = cards.size !== 0;
    loadMoreEl.hidden = !nextCursor;
  }

  async function loadMore() {
    if (!nextCursor) return;
    loadMoreEl.disabled = true;
    try {
      const page = await fetchState({ cursor: nextCursor, counts: "0" });
      for (const [id, claim] of Object.entries(page.claims || {})) claims.set(id, claim);
      nextCursor = page.next_cursor;
      for (const card of page.cards) addCard(card);
      refreshCount();
      tick();
    } catch (err) {
      flash(err.message, "error");
    } finally {
      loadMoreEl.disabled = false;
    }
  }

  // --- open card, claims ----------------------------------------------------------------------

  function openCard(id, options) {
    const entry = cards.get(id);
    if (!entry) return;
    if (currentId && currentId !== id) closeCurrent({ keepFocus: true });
    currentId = id;
    entry.li.classList.add("current");
    entry.view.article.hidden = false;
    entry.row.open.setAttribute("aria-expanded", "true");
    if (!options || options.focus !== false) {
      entry.view.article.focus({ preventScroll: true });
      entry.li.scrollIntoView({ block: "nearest" });
    }
    claimSoon(id);
  }

  function closeCurrent(options) {
    const entry = currentId && cards.get(currentId);
    if (entry) {
      entry.li.classList.remove("current");
      entry.view.article.hidden = true;
      entry.row.open.setAttribute("aria-expanded", "false");
      if (!options || !options.keepFocus) entry.row.open.focus();
      sendSocket({ type: "release", id: currentId });
    }
    currentId = null;
  }

  function openFirstUnclaimed() {
    const id = order.find((candidate) => !claimedByOther(candidate)) || order[0];
    if (id) openCard(id, { focus: false });
  }

  function move(step) {
    if (!order.length) return;
    const index = currentId ? order.indexOf(currentId) : -1;
    const next = Math.max(0, Math.min(order.length - 1, index + step));
    openCard(order[next]);
  }

  let claimTimer = null;
  function claimSoon(id) {
    clearTimeout(claimTimer);
    // Racing through cards with j/k should not claim every one on the way.
    claimTimer = setTimeout(() => { if (currentId === id) sendSocket({ type: "claim", id }); }, 250);
  }

  function claimedByOther(id) {
    const claim = claims.get(id);
    return !!(claim && claim.by !== me && Date.parse(claim.expires_at) > Date.now());
  }

  function renderClaim(id) {
    const entry = cards.get(id);
    if (!entry) return;
    const claim = claims.get(id);
    const live = claim && Date.parse(claim.expires_at) > Date.now();
    const other = live && claim.by !== me;
    entry.row.claimBadge.hidden = !live;
    entry.row.claimBadge.textContent = live ? (other ? claim.by + " is reviewing" : "you are reviewing") : "";
    entry.row.claimBadge.classList.toggle("other", !!other);
    entry.view.claimNote.hidden = !other;
    entry.view.claimNote.textContent = other ? "Being reviewed by " + claim.by + ". You can still decide, but they may be about to." : "";
  }

  // --- batch ----------------------------------------------------------------------------------

  function toggleSelected(id, on) {
    if (on) selected.add(id); else selected.delete(id);
    const entry = cards.get(id);
    if (entry) entry.row.checkbox.checked = on;
    refreshBatchBar();
  }

  function selectionTypes() {
    return new Set(Array.from(selected).map((id) => cards.get(id).data.action_type));
  }

  function refreshBatchBar() {
    batchBar.hidden = selected.size === 0;
    if (!selected.size) return;
    const types = selectionTypes();
    const mixed = types.size > 1;
    $("batch-count").textContent = plural(selected.size, "request") + " selected" +
      (mixed ? ": batch decisions need one action type, and this selection has " + types.size : "");
    $("batch-approve").disabled = mixed;
    $("batch-reject").disabled = mixed;
  }

  function openBatch(decision) {
    const dialog = $("batch-dialog");
    const ids = order.filter((id) => selected.has(id));
    if (!ids.length || selectionTypes().size > 1) return;
    const type = cards.get(ids[0]).data.action_type;
    $("batch-title").textContent = (decision === "approve" ? "Approve " : "Reject ") + plural(ids.length, "request") + " of " + type + "?";
    $("batch-list").replaceChildren(...ids.map((id) => {
      const card = cards.get(id).data;
      const key = card.key_params.map((k) => k + ": " + display(card.params[k])).join(" · ");
      return el("li", {}, [el("strong", { text: card.summary }), el("span", { className: "muted", text: " — " + card.agent + (key ? " · " + key : "") })]);
    }));
    $("batch-reject-fields").hidden = decision !== "reject";
    const category = $("batch-category");
    category.replaceChildren(el("option", { value: "", text: "Reason category…" }), ...reasonCategories.map((c) => el("option", { value: c.slug, text: c.label })));
    $("batch-reason").value = "";
    $("batch-error").textContent = "";
    $("batch-confirm").textContent = decision === "approve" ? "Approve all " + ids.length : "Reject all " + ids.length;
    $("batch-confirm").className = decision === "approve" ? "primary" : "danger";
    dialog.dataset.decision = decision;
    dialog.dataset.ids = JSON.stringify(ids);
    dialog.showModal();
  }

  async function confirmBatch() {
    const dialog = $("batch-dialog");
    const decision = dialog.dataset.decision;
    const ids = JSON.parse(dialog.dataset.ids || "[]");
    const payload = { decision, items: ids.filter((id) => cards.has(id)).map((id) => ({ id, revision: cards.get(id).data.revision })) };
    if (decision === "reject") {
      payload.reason_category = $("batch-category").value;
      payload.reason = $("batch-reason").value;
      if (!payload.reason_category || !payload.reason.trim()) { $("batch-error").textContent = "A rejection needs a reason category and a reason."; return; }
    }
    const { response, body } = await postJSON("/queue/batch-decide", payload);
    if (!response.ok) { $("batch-error").textContent = errorMessage(body, response); return; }
    dialog.close();
    const failed = body.results.filter((r) => !r.ok);
    for (const result of body.results) if (result.ok) removeCard(result.id);
    for (const result of failed) toggleSelected(result.id, false);
    const done = body.results.length - failed.length;
    flash((decision === "approve" ? "Approved " : "Rejected ") + plural(done, "request") +
      (failed.length ? "; " + failed.length + " refused: " + failed.map((r) => r.message).join(" ") : "."), failed.length ? "error" : "ok");
    if (!currentId) openFirstUnclaimed();
  }

  // --- time -----------------------------------------------------------------------------------

  function tick() {
    const now = Date.now();
    for (const [id, { data, li, view }] of cards) {
      const left = Date.parse(data.expires_at) - now;
      const text = formatRemaining(left);
      for (const node of li.querySelectorAll(".countdown")) {
        node.textContent = text;
        node.classList.toggle("urgent", left < REMIND_BEFORE_MS);
      }
      if (left <= 0 && !view.article.classList.contains("expired")) {
        view.article.classList.add("expired");
        setStatus(view, "The deadline has passed: a decision now will be refused.", "error");
      }
      if (left > 0 && left < REMIND_BEFORE_MS && !reminded.has(id) && Date.parse(data.created_at) + REMIND_BEFORE_MS < Date.parse(data.expires_at)) {
        reminded.add(id);
        notify("Deadline near: " + data.action_type, data.summary + " (" + data.agent + ") expires in " + formatRemaining(left).replace(" left", ""), id + ":reminder");
      }
      const claim = claims.get(id);
      if (claim && Date.parse(claim.expires_at) <= now) { claims.delete(id); renderClaim(id); }
    }
  }

  // --- notifications --------------------------------------------------------------------------

  const notifyToggle = $("notify-toggle");
  const notificationsWanted = () => localStorage.getItem("countersign.notify") === "on" && "Notification" in window && Notification.permission === "granted";

  function renderNotifyToggle() {
    const on = notificationsWanted();
    notifyToggle.textContent = on ? "Notifications on" : "Enable notifications";
    notifyToggle.setAttribute("aria-pressed", on ? "true" : "false");
    if (!("Notification" in window)) notifyToggle.hidden = true;
  }

  notifyToggle.addEventListener("click", async () => {
    if (notificationsWanted()) { localStorage.setItem("countersign.notify", "off"); renderNotifyToggle(); return; }
    const permission = await Notification.requestPermission();
    if (permission === "granted") localStorage.setItem("countersign.notify", "on");
    else flash("The browser refused notifications; allow them in the site settings to turn them on.", "error");
    renderNotifyToggle();
  });

  function notify(title, body, tag) {
    if (!notificationsWanted()) return;
    try { new Notification(title, { body, tag }); } catch (err) { /* some browsers only allow it from a service worker */ }
  }

  function renderTitle() {
    document.title = unread > 0 ? "(" + unread + ") " + baseTitle : baseTitle;
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { unread = 0; renderTitle(); }
  });

  // --- live updates ---------------------------------------------------------------------------

  let socket = null;
  let attempts = 0;
  let heartbeat = null;

  function sendSocket(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function onArrival(card) {
    if (cards.has(card.id)) return;
    total += matchesFilters(card) ? 1 : 0;
    if (matchesFilters(card)) addCard(card, { live: true });
    refreshCount();
    refreshCountsSoon();
    tick();
    if (document.hidden) { unread += 1; renderTitle(); }
    notify("New: " + card.action_type, card.summary + " (" + card.agent + ")", card.id);
    if (!currentId) openFirstUnclaimed();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/queue/");
    socket.addEventListener("open", () => {
      const wasReconnect = attempts > 0;
      attempts = 0;
      liveEl.textContent = "Live: new requests appear by themselves.";
      liveEl.className = "live ok";
      bannerEl.hidden = true;
      document.body.dataset.live = "on";
      if (wasReconnect) reload(); // events may have been missed while down: resynchronise
      else if (currentId) sendSocket({ type: "claim", id: currentId });
      clearInterval(heartbeat);
      heartbeat = setInterval(() => { if (currentId) sendSocket({ type: "claim", id: currentId }); }, claimTimeoutMs / 3);
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "added") onArrival(message.card);
      else if (message.type === "updated") updateCard(message.card);
      else if (message.type === "removed") {
        if (cards.has(message.id)) {
          const card = cards.get(message.id).data;
          if (message.by && message.by !== me) flash(card.action_type + " from " + card.agent + " is " + message.status + " (" + message.by + ")", "info");
          total = Math.max(0, total - 1);
        }
        removeCard(message.id, { advance: true });
        refreshCountsSoon();
      } else if (message.type === "claimed" || message.type === "claim") {
        const claim = message.type === "claim" ? message.claim : { by: message.by, expires_at: message.expires_at };
        if (claim) claims.set(message.id, claim); else claims.delete(message.id);
        renderClaim(message.id);
      } else if (message.type === "released") {
        const claim = claims.get(message.id);
        if (claim && claim.by === message.by) { claims.delete(message.id); renderClaim(message.id); }
        // The card I have open is free again: it is mine now.
        if (message.id === currentId && message.by !== me) sendSocket({ type: "claim", id: currentId });
      }
    });
    socket.addEventListener("close", (event) => {
      document.body.dataset.live = "off";
      clearInterval(heartbeat);
      if (event.code === 4403) { liveEl.textContent = "You are not a reviewer: live updates are off."; return; }
      attempts += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.5 + Math.random() / 2);
      liveEl.textContent = "Live updates are down; reconnecting in " + Math.max(1, Math.round(delay / 1000)) + "s…";
      liveEl.className = "live down";
      bannerEl.hidden = false;
      setTimeout(connect, delay);
    });
  }

  // --- keyboard -------------------------------------------------------------------------------

  function typingIn(target) {
    return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    if (event.key === "Escape") {
      const entry = currentId && cards.get(currentId);
      if (typingIn(event.target)) { event.target.blur(); if (entry) entry.view.article.focus(); return; }
      if (entry && (!entry.view.edit.panel.hidden || !entry.view.reject.form.hidden)) {
        entry.view.edit.panel.hidden = true;
        entry.view.reject.form.hidden = true;
        entry.view.actions.hidden = false;
        entry.view.article.focus();
      } else if (entry) closeCurrent();
      return;
    }
    if (typingIn(event.target)) return;
    const handlers = {
      j: () => move(1), k: () => move(-1),
      a: () => currentId && approve(currentId),
      r: () => currentId && openReject(currentId),
      e: () => currentId && toggleEdit(currentId, true),
      x: () => currentId && toggleSelected(currentId, !selected.has(currentId)),
      "/": () => { $("q").focus(); $("q").select(); },
      "?": () => $("help-dialog").showModal(),
    };
    const handler = handlers[event.key];
    if (handler) { event.preventDefault(); handler(); }
  });

  // --- wiring ---------------------------------------------------------------------------------

  let searchTimer = null;
  filtersEl.addEventListener("submit", (event) => { event.preventDefault(); });
  $("q").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { filters.q = $("q").value.trim(); reload(); }, 250);
  });
  $("q").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(searchTimer); filters.q = $("q").value.trim(); reload(); }
  });
  for (const facet of FACETS) $("f-" + facet).addEventListener("change", (event) => { filters[facet] = event.target.value; reload(); });
  $("f-mine").addEventListener("change", (event) => { filters.mine = event.target.checked; reload(); });
  $("sort").addEventListener("change", (event) => { filters.sort = event.target.value; reload(); });
  loadMoreEl.addEventListener("click", loadMore);
  $("help-open").addEventListener("click", () => $("help-dialog").showModal());
  $("batch-approve").addEventListener("click", () => openBatch("approve"));
  $("batch-reject").addEventListener("click", () => openBatch("reject"));
  $("batch-clear").addEventListener("click", () => { for (const id of Array.from(selected)) toggleSelected(id, false); });
  $("batch-form").addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value === "confirm") { event.preventDefault(); confirmBatch(); }
  });
  window.addEventListener("pagehide", () => { if (currentId) sendSocket({ type: "release", id: currentId }); });

  syncFilterInputs();
  renderNotifyToggle();
  replaceAll(state);
  setInterval(tick, 1000);
  connect();
})();
