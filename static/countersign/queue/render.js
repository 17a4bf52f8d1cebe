// DOM rendering for the queue. Agent-supplied text is untrusted: it reaches the page only
// through textContent and attribute setters (el() has no way to set HTML), never innerHTML.

import { el } from "./dom.js";
import { buildEditor } from "./edit.js";
import { confidenceText, facetOptionLabel, historyLine, hostOf, paramOrder, pretty } from "./format.js";
import { FACETS } from "./state.js";

export function setStatus(view, message, kind) {
  view.status.textContent = message;
  view.status.className = "card-status" + (kind ? " " + kind : "");
}

export function renderParams(card) {
  const params = card.params || {};
  const { key, names } = paramOrder(card);
  if (!names.length) return el("p", { className: "muted", text: "(no parameters)" });
  // The parameters that say what this does to whom come first, set apart from the rest.
  const dl = el("dl", { className: "params" });
  for (const name of names) {
    const value = params[name];
    const cls = key.includes(name) ? "key" : null;
    dl.appendChild(el("dt", { className: cls, text: name }));
    dl.appendChild(
      el("dd", { className: cls }, [
        typeof value === "object" && value !== null ? el("pre", { text: pretty(value) }) : el("span", { text: String(value) }),
      ]),
    );
  }
  return dl;
}

export function renderEvidence(card) {
  const evidence = card.evidence || [];
  if (!evidence.length) return el("p", { className: "muted", text: "No evidence supplied." });
  const list = el("ol", { className: "evidence" });
  for (const item of evidence) {
    // Only the server's `href` (http/https, checked there) becomes a link; any other URL stays text.
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
  if (card.evidence_total > evidence.length) {
    wrap.appendChild(el("p", { className: "muted", text: "+" + (card.evidence_total - evidence.length) + " more not shown" }));
  }
  return wrap;
}

/** The one-line row of a card in the list. */
export function renderRow(card, { onSelect, onOpen }) {
  const checkbox = el("input", { type: "checkbox", className: "select", "aria-label": "Select " + card.action_type + ": " + card.summary });
  const open = el("button", { type: "button", className: "open", "aria-expanded": "false", "aria-controls": "card-" + card.id }, [
    el("code", { className: "type", text: card.action_type }),
    el("span", { className: "line", text: card.summary }),
    el("span", { className: "agent muted", text: card.agent }),
  ]);
  const claimBadge = el("span", { className: "claim-badge", hidden: true });
  const row = el("div", { className: "row risk-" + card.risk }, [
    checkbox,
    open,
    el("span", { className: "badge risk", text: card.risk }),
    claimBadge,
    el("span", { className: "countdown", "aria-label": "time left" }),
  ]);
  checkbox.addEventListener("change", () => onSelect(checkbox.checked));
  open.addEventListener("click", () => onOpen());
  return { row, checkbox, open, claimBadge };
}

/** What stops a card's rejection from being sent, or null. */
export function rejectProblem(category, reason) {
  if (!category) return { field: "category", message: "Pick a reason category: it tells the agent what went wrong." };
  if (!String(reason).trim()) return { field: "reason", message: "Give a reason: the agent uses it to do better." };
  return null;
}

export function buildRejectForm(reasonCategories, { onSubmit, onCancel, onProblem }) {
  const form = el("form", { className: "reject-form", hidden: true, "aria-label": "Reject with a reason" });
  const select = el("select", { className: "reason-category", required: true, "aria-label": "Reason category" }, [
    el("option", { value: "", text: "Reason category…" }),
  ]);
  for (const category of reasonCategories) select.appendChild(el("option", { value: category.slug, text: category.label }));
  const reason = el("input", {
    type: "text",
    className: "reason",
    required: true,
    placeholder: "What should the agent do differently?",
    "aria-label": "Reason for rejection",
  });
  const confirm = el("button", { type: "submit", className: "danger confirm-reject", text: "Confirm reject" });
  const cancel = el("button", { type: "button", className: "quiet", text: "Cancel" });
  form.append(select, reason, el("div", { className: "actions" }, [confirm, cancel]));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = rejectProblem(select.value, reason.value);
    if (problem) {
      onProblem(problem.message);
      (problem.field === "category" ? select : reason).focus();
      return;
    }
    onSubmit({ reason_category: select.value, reason: reason.value });
  });
  cancel.addEventListener("click", () => {
    form.hidden = true;
    onCancel();
  });
  return { form, select, reason };
}

/**
 * The open card: everything a reviewer reads before deciding, and the decision controls.
 * `on` holds the callbacks: approve, edit, reject, review (edits), cancelEdit, rejectSubmit(fields).
 */
export function renderCard(card, { reasonCategories = [], on }) {
  const article = el("article", {
    className: "card risk-" + card.risk,
    id: "card-" + card.id,
    "data-id": card.id,
    tabindex: "-1",
    "aria-labelledby": "t-" + card.id,
    hidden: true,
  });
  const claimNote = el("p", { className: "claim-note", role: "status", hidden: true });
  article.appendChild(
    el("header", {}, [
      el("h2", { id: "t-" + card.id }, [el("code", { text: card.action_type })]),
      el("span", { className: "badge risk", text: card.risk + " risk" }),
      el("span", { className: "countdown", "aria-label": "time left" }),
    ]),
  );
  article.appendChild(claimNote);
  article.appendChild(el("p", { className: "summary", text: card.summary }));
  article.appendChild(
    el("p", { className: "meta" }, [
      el("span", { text: "Agent " }),
      el("strong", { className: "agent", text: card.agent }),
      el("span", { className: "confidence", text: confidenceText(card.confidence) }),
      card.trace_id ? el("span", { className: "muted", text: " · trace " + card.trace_id }) : null,
    ]),
  );
  article.appendChild(el("p", { className: "history muted", text: historyLine(card) }));
  article.appendChild(el("section", { className: "block" }, [el("h3", { text: "Proposed parameters" }), renderParams(card)]));
  article.appendChild(el("section", { className: "block" }, [el("h3", { text: "Evidence" }), renderEvidence(card)]));
  article.appendChild(
    el("p", { className: "policy" }, [
      el("span", { text: "Policy " }),
      el("code", { text: card.policy }),
      el("span", { className: "muted", text: " (v" + card.policy_version + "): " + card.reason }),
      card.required_approvals > 1 ? el("span", { className: "muted", text: " · needs " + card.required_approvals + " approvals" }) : null,
      card.reviewer_group ? el("span", { className: "muted", text: " · group " + card.reviewer_group }) : null,
    ]),
  );
  const quorum = el("p", { className: "quorum", role: "status", hidden: true });
  article.appendChild(quorum);
  article.appendChild(
    el("p", { className: "record-link" }, [
      el("a", { href: "/queue/requests/" + encodeURIComponent(card.id) + "/", target: "_blank", rel: "noopener", text: "Full record and audit trail" }),
    ]),
  );

  const status = el("p", { className: "card-status", role: "status" });
  const edit = buildEditor(card, { onReview: on.review, onCancel: on.cancelEdit });
  const approveBtn = el("button", { type: "button", className: "primary approve", "aria-keyshortcuts": "a", text: "Approve" });
  const editBtn = el("button", { type: "button", className: "edit", "aria-keyshortcuts": "e", text: "Edit" });
  const rejectBtn = el("button", { type: "button", className: "danger reject", "aria-keyshortcuts": "r", text: "Reject" });
  const view = { article, claimNote, quorum, edit, status, approveBtn, editBtn, rejectBtn };
  view.reject = buildRejectForm(reasonCategories, {
    onSubmit: on.rejectSubmit,
    onCancel: () => rejectBtn.focus(),
    onProblem: (message) => setStatus(view, message, "error"),
  });
  view.note = el("input", { type: "text", className: "note", placeholder: "Note for the record (optional)", "aria-label": "Note" });
  view.actions = el("div", { className: "actions" }, [approveBtn, editBtn, rejectBtn]);
  article.appendChild(edit.panel);
  article.appendChild(view.reject.form);
  article.appendChild(el("div", { className: "decide" }, [view.note]));
  article.appendChild(view.actions);
  article.appendChild(status);
  approveBtn.addEventListener("click", () => on.approve());
  editBtn.addEventListener("click", () => on.edit());
  rejectBtn.addEventListener("click", () => on.reject());
  return view;
}

/** The row badge and the card's note: who is reviewing it (see state.claimView). */
export function renderClaim(entry, claim) {
  entry.row.claimBadge.hidden = !claim.live;
  entry.row.claimBadge.textContent = claim.badge;
  entry.row.claimBadge.classList.toggle("other", claim.other);
  entry.view.claimNote.hidden = !claim.other;
  entry.view.claimNote.textContent = claim.note;
}

/** Requests that need several approvals: who approved so far; one vote per reviewer (see state.quorumView). */
export function renderQuorum(view, quorum) {
  if (!quorum) return;
  view.quorum.hidden = false;
  view.quorum.textContent = quorum.text;
  view.approveBtn.disabled = quorum.voted;
  view.editBtn.disabled = true; // every approver must see the same parameters
  view.approveBtn.textContent = quorum.approveText;
}

/** The facet selects: each value with its count; the chosen value stays even when nothing matches it now. */
export function renderFacets(doc, filters, counts) {
  for (const facet of FACETS) {
    const select = doc.getElementById("f-" + facet);
    const current = filters[facet] || "";
    const values = Object.entries((counts || {})[facet] || {});
    if (current && !values.some(([v]) => v === current)) values.push([current, 0]);
    const allLabel = select.options[0].textContent;
    select.replaceChildren(el("option", { value: "", text: allLabel }));
    for (const [value, n] of values) {
      const label = facetOptionLabel(facet, value, n);
      if (label !== null) select.appendChild(el("option", { value, text: label }));
    }
    select.value = current;
  }
}
