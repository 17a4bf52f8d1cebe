// Deciding one card: approve (after reviewing any edits), reject, and what the server answers.
// The decision carries the revision the reviewer saw; the server applies every rule.

import { collectEdits, diffParams, showDiff, showServerFieldErrors } from "./edit.js";
import { decisionVerb, errorMessage } from "./format.js";
import { renderQuorum, setStatus } from "./render.js";
import { quorumView, voteRecorded } from "./state.js";

export function createDecisions({ state, api, entries, flash, removeCard }) {
  async function sendDecision(id, payload) {
    const card = state.cards.get(id);
    const entry = entries.get(id);
    if (!card || !entry) return;
    const { view } = entry;
    const buttons = view.article.querySelectorAll("button");
    const enable = () => buttons.forEach((b) => { b.disabled = false; });
    buttons.forEach((b) => { b.disabled = true; });
    setStatus(view, "Sending…");
    let answer;
    try {
      answer = await api.decide(id, { revision: card.revision, note: view.note.value, ...payload });
    } catch (err) {
      setStatus(view, "Network error: the decision was not sent. Try again.", "error");
      enable();
      return;
    }
    const { ok, status, body } = answer;
    if (ok) {
      flash(decisionVerb(body) + ": " + card.action_type + " from " + card.agent, "ok");
      if (body.status !== "pending") removeCard(id, { advance: true });
      else {
        enable();
        voteRecorded(state, id);
        renderQuorum(view, quorumView(state.cards.get(id), state.me));
      }
      return;
    }
    const message = errorMessage(body, status);
    setStatus(view, message, "error");
    flash(message, "error");
    if (status === 409) {
      // Expired, cancelled, decided or changed since it was opened: this card is no longer what the reviewer saw.
      view.article.classList.add("stale");
      setTimeout(() => removeCard(id, { advance: state.currentId === id }), 6000);
    } else {
      enable();
      showServerFieldErrors(view.edit, body);
    }
  }

  function approve(id) {
    const entry = entries.get(id);
    if (!entry) return;
    if (!entry.view.edit.panel.hidden) {
      reviewEdits(id);
      return;
    }
    sendDecision(id, { decision: "approve" });
  }

  function reviewEdits(id) {
    const card = state.cards.get(id);
    const entry = entries.get(id);
    if (!card || !entry) return;
    const { view } = entry;
    const edited = collectEdits(card, view.edit);
    if (!edited) {
      setStatus(view, "Fix the highlighted fields first.", "error");
      return;
    }
    const changes = diffParams(card.params, edited);
    setStatus(view, "Check the changes, then confirm.");
    showDiff(view.edit, changes, {
      onConfirm: () => sendDecision(id, { decision: "approve", params: changes.length ? edited : undefined }),
    });
  }

  function toggleEdit(id, force) {
    const entry = entries.get(id);
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
    const entry = entries.get(id);
    if (!entry) return;
    const { view } = entry;
    view.edit.panel.hidden = true;
    view.actions.hidden = false;
    view.reject.form.hidden = false;
    view.reject.select.focus();
  }

  return { sendDecision, approve, reviewEdits, toggleEdit, openReject };
}
