// Calls to the server. `fetchImpl` and `cookie` are parameters so the tests can stand in for them.

import { errorMessage } from "./format.js";

export const CARDS_URL = "/queue/cards.json";
export const BATCH_URL = "/queue/batch-decide";
// A refresh of the cards on the page follows at most this many pages (a reviewer who
// pressed "Load more" twenty times has a page the next arrival need not fully re-read).
export const MAX_WINDOW_PAGES = 20;

export function decideUrl(id) {
  return "/queue/requests/" + encodeURIComponent(id) + "/decide";
}

export function csrfToken(cookie) {
  const match = String(cookie || "").match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** The query string for these filters (defaults left out, so the URL stays short) plus `extra`. */
export function queryString(filters, extra) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters || {})) {
    if (key === "mine") {
      if (value) params.set("mine", "1");
    } else if (value && !(key === "sort" && value === "deadline")) params.set(key, value);
  }
  for (const [key, value] of Object.entries(extra || {})) params.set(key, value);
  return params.toString();
}

export function createApi({ fetchImpl = (...args) => globalThis.fetch(...args), cookie = () => globalThis.document.cookie } = {}) {
  async function getState(filters, extra) {
    const response = await fetchImpl(CARDS_URL + "?" + queryString(filters, extra), { credentials: "same-origin" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(errorMessage(body, response.status));
    return body;
  }

  async function postJSON(url, payload) {
    const response = await fetchImpl(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(cookie()) },
      body: JSON.stringify(payload),
    });
    const body = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, body };
  }

  /**
   * The first `wanted` cards (or all, if fewer) with these filters, in the server's order,
   * following the server's cursor page by page; counts and total from the first page.
   */
  async function getWindow(filters, wanted) {
    const first = await getState(filters);
    const cards = [...(first.cards || [])];
    const claims = { ...(first.claims || {}) };
    let cursor = first.next_cursor || null;
    for (let pages = 1; cursor && cards.length < wanted && pages < MAX_WINDOW_PAGES; pages += 1) {
      const page = await getState(filters, { cursor, counts: "0" });
      cards.push(...(page.cards || []));
      Object.assign(claims, page.claims || {});
      cursor = page.next_cursor || null;
    }
    return { cards, claims, total: first.total, counts: first.counts || {}, next_cursor: cursor };
  }

  return {
    getState,
    getWindow,
    getNextPage: (filters, cursor) => getState(filters, { cursor, counts: "0" }),
    decide: (id, payload) => postJSON(decideUrl(id), payload),
    decideBatch: (payload) => postJSON(BATCH_URL, payload),
  };
}
