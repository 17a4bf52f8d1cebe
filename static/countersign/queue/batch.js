// Batch decisions: the selection bar, the confirm dialog, and the one request that decides them all.
// A batch is one action type: the reviewer confirms a list of like requests, not a mixed bag.

import { el } from "./dom.js";
import { errorMessage, keyParamsLine, plural } from "./format.js";
import { selectedIds, selectionTypes } from "./state.js";

export function batchBarView(state) {
  const count = state.selected.size;
  if (!count) return { hidden: true, text: "", mixed: false };
  const types = selectionTypes(state);
  const mixed = types.size > 1;
  return {
    hidden: false,
    mixed,
    text: plural(count, "request") + " selected" + (mixed ? ": batch decisions need one action type, and this selection has " + types.size : ""),
  };
}

/** What the confirm dialog shows for the selection, or null when it cannot be batched. */
export function batchDialogView(state, decision) {
  const ids = selectedIds(state);
  if (!ids.length || selectionTypes(state).size > 1) return null;
  const type = state.cards.get(ids[0]).action_type;
  return {
    ids,
    title: (decision === "approve" ? "Approve " : "Reject ") + plural(ids.length, "request") + " of " + type + "?",
    items: ids.map((id) => {
      const card = state.cards.get(id);
      const key = keyParamsLine(card);
      return { summary: card.summary, detail: " — " + card.agent + (key ? " · " + key : "") };
    }),
    confirmText: (decision === "approve" ? "Approve all " : "Reject all ") + ids.length,
    confirmClass: decision === "approve" ? "primary" : "danger",
  };
}

/** The batch request for the ids still on the page, each with the revision the reviewer saw; or {problem}. */
export function batchPayload(state, ids, decision, fields = {}) {
  const payload = {
    decision,
    items: ids.filter((id) => state.cards.has(id)).map((id) => ({ id, revision: state.cards.get(id).revision })),
  };
  if (decision === "reject") {
    payload.reason_category = fields.reason_category || "";
    payload.reason = fields.reason || "";
    if (!payload.reason_category || !payload.reason.trim()) return { problem: "A rejection needs a reason category and a reason." };
  }
  return { payload };
}

/** The batch bar and dialog wired to the page; `onDecided(decision, results)` applies the outcome. */
export function createBatch({ doc, state, api, reasonCategories, onDecided }) {
  const $ = (id) => doc.getElementById(id);
  const dialog = $("batch-dialog");

  function refresh() {
    const view = batchBarView(state);
    $("batch-bar").hidden = view.hidden;
    if (view.hidden) return;
    $("batch-count").textContent = view.text;
    $("batch-approve").disabled = view.mixed;
    $("batch-reject").disabled = view.mixed;
  }

  function open(decision) {
    const view = batchDialogView(state, decision);
    if (!view) return;
    $("batch-title").textContent = view.title;
    $("batch-list").replaceChildren(
      ...view.items.map((item) => el("li", {}, [el("strong", { text: item.summary }), el("span", { className: "muted", text: item.detail })])),
    );
    $("batch-reject-fields").hidden = decision !== "reject";
    $("batch-category").replaceChildren(
      el("option", { value: "", text: "Reason category…" }),
      ...reasonCategories.map((c) => el("option", { value: c.slug, text: c.label })),
    );
    $("batch-reason").value = "";
    $("batch-error").textContent = "";
    $("batch-confirm").textContent = view.confirmText;
    $("batch-confirm").className = view.confirmClass;
    dialog.dataset.decision = decision;
    dialog.dataset.ids = JSON.stringify(view.ids);
    dialog.showModal();
  }

  async function confirm() {
    const decision = dialog.dataset.decision;
    const ids = JSON.parse(dialog.dataset.ids || "[]");
    const { payload, problem } = batchPayload(state, ids, decision, {
      reason_category: $("batch-category").value,
      reason: $("batch-reason").value,
    });
    if (problem) {
      $("batch-error").textContent = problem;
      return;
    }
    let answer;
    try {
      answer = await api.decideBatch(payload);
    } catch (err) {
      $("batch-error").textContent = "Network error: nothing was decided. Try again.";
      return;
    }
    if (!answer.ok) {
      $("batch-error").textContent = errorMessage(answer.body, answer.status);
      return;
    }
    dialog.close();
    onDecided(decision, answer.body.results);
  }

  return { refresh, open, confirm };
}
