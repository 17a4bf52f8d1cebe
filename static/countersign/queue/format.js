// Pure text helpers for the queue page: no DOM, no globals, so node --test can check them.

export const REMIND_BEFORE_MS = 5 * 60 * 1000;

export function formatRemaining(ms) {
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return d + "d " + h + "h left";
  if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m left";
  if (m > 0) return m + "m " + String(sec).padStart(2, "0") + "s left";
  return sec + "s left";
}

export const pretty = (value) => JSON.stringify(value, null, 2);
export const display = (value) => (typeof value === "string" ? value : JSON.stringify(value));
export const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

export function errorMessage(body, status) {
  return (body && body.error && body.error.message) || "Request failed (" + status + ")";
}

/** "(host)" for an http(s) link, "" when the URL cannot be parsed. */
export function hostOf(url) {
  try {
    return "(" + new URL(url).host + ")";
  } catch (err) {
    return "";
  }
}

export function historyLine(card) {
  const h = card.history || {};
  const decided = (h.approved || 0) + (h.edited || 0) + (h.rejected || 0);
  if (!decided) return "No decisions on " + card.action_type + " from this agent in the last 30 days.";
  return (
    "This agent's " + card.action_type + ", last 30 days: approved " + (h.approved || 0) +
    ", edited " + (h.edited || 0) + ", rejected " + (h.rejected || 0) + "."
  );
}

export function confidenceText(confidence) {
  return confidence === null || confidence === undefined
    ? " · confidence not given"
    : " · confidence " + Math.round(confidence * 100) + "%";
}

/** The parameters the schema (or the server's guess) marks as key first, then the rest, each once. */
export function paramOrder(card) {
  const params = card.params || {};
  const keys = Object.keys(params);
  const key = (card.key_params || []).filter((k) => k in params);
  return { key, names: [...key, ...keys.filter((k) => !key.includes(k))] };
}

/** "to: a@b · amount: 3" for a batch list line. */
export function keyParamsLine(card) {
  return (card.key_params || []).map((k) => k + ": " + display((card.params || {})[k])).join(" · ");
}

/** The label of one facet option; null for values a reviewer cannot filter by. */
export function facetOptionLabel(facet, value, n) {
  if (facet === "group" && value === "") return null; // unrouted requests cannot be filtered by group
  return value + " (" + n + ")";
}

/** What the card's flash says after the server accepted a decision. */
export function decisionVerb(body) {
  if (body.status === "rejected") return "Rejected";
  if (body.status === "pending") return "Vote recorded";
  return body.edited ? "Approved with edits" : "Approved";
}

export function removalFlash(card, message) {
  return card.action_type + " from " + card.agent + " is " + message.status + " (" + message.by + ")";
}

export function batchFlash(decision, results) {
  const failed = results.filter((r) => !r.ok);
  const done = results.length - failed.length;
  return {
    text:
      (decision === "approve" ? "Approved " : "Rejected ") + plural(done, "request") +
      (failed.length ? "; " + failed.length + " refused: " + failed.map((r) => r.message).join(" ") : "."),
    kind: failed.length ? "error" : "ok",
  };
}

export function reminderText(card, left) {
  return {
    title: "Deadline near: " + card.action_type,
    body: card.summary + " (" + card.agent + ") expires in " + formatRemaining(left).replace(" left", ""),
  };
}

export function unreadTitle(baseTitle, unread) {
  return unread > 0 ? "(" + unread + ") " + baseTitle : baseTitle;
}
