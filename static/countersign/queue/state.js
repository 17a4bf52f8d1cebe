// The queue page's state and the reducers that change it. Pure: no DOM, no fetch, no timers.
//
// The server is the one place that filters and sorts the queue. This module never decides
// whether a card matches the filters or where it sorts: an arrival on the socket only
// records that the page must ask again (see beginFetch / applyWindow), and the cards are
// placed in the order the server's answer puts them.

export const FACETS = ["action_type", "agent", "risk", "group"];
export const DEFAULT_FILTERS = Object.freeze({
  action_type: "",
  agent: "",
  risk: "",
  group: "",
  mine: false,
  q: "",
  sort: "deadline",
});

export function createState({ me = "", filters = {} } = {}) {
  return {
    me,
    filters: { ...DEFAULT_FILTERS, ...(filters || {}) },
    cards: new Map(), // id -> card data, as the server sent it (updated by "updated" events)
    order: [], // ids in the server's order
    claims: new Map(), // id -> {by, expires_at}
    selected: new Set(),
    reminded: new Set(),
    currentId: null,
    nextCursor: null,
    total: 0,
    counts: {},
    // Every answer from the server is matched to the question that asked for it (a ticket):
    // - generation: bumped by every full replace (filters changed, reconnected); an answer
    //   to an older question would put back cards of the old filters, so it is dropped;
    // - arrivalSeq / syncedArrivalSeq: arrivals heard on the socket, and how many of them
    //   the last applied answer already covers;
    // - removalSeq / gone: a card that left while a question was on its way must not come
    //   back with the answer (the answer was read before it left).
    generation: 0,
    arrivalSeq: 0,
    syncedArrivalSeq: 0,
    removalSeq: 0,
    gone: new Map(), // id -> removalSeq at which it left
    leftPage: new Set(), // ids taken off the page whose "removed" event is still to come
  };
}

// --- asking the server ---------------------------------------------------------------------

/** The ticket for one question to the server; hand it back with the answer. */
export function beginFetch(state) {
  return { generation: state.generation, arrivalSeq: state.arrivalSeq, removalSeq: state.removalSeq };
}

/**
 * The ticket for a full reload (the filters changed, or the socket came back). Every
 * answer to an earlier question, a reload or a refresh, is void from now on.
 */
export function beginReload(state) {
  state.generation += 1;
  return beginFetch(state);
}

/** How many cards a refresh of what is on the page must ask for: those shown, plus room for the arrivals. */
export function windowSize(state) {
  return Math.max(1, state.order.length + (state.arrivalSeq - state.syncedArrivalSeq));
}

/** True when arrivals were heard after this ticket was issued: the page must ask again. */
export function arrivedSince(state, ticket) {
  return state.arrivalSeq > ticket.arrivalSeq;
}

function leftSince(state, id, ticket) {
  const at = state.gone.get(id);
  return at !== undefined && at > ticket.removalSeq;
}

function pruneGone(state, ticket) {
  for (const [id, at] of state.gone) if (at <= ticket.removalSeq) state.gone.delete(id);
}

/**
 * Everything on the page replaced by the server's answer (first load, filters changed,
 * reconnected after missing events). Returns the card to keep open, if it is still there;
 * {stale: true} (and nothing changed) when a newer reload was started since `ticket`.
 */
export function replaceAll(state, fresh, ticket = beginFetch(state)) {
  if (ticket.generation !== state.generation) return { stale: true, keepOpen: null };
  const keepOpen = state.currentId;
  state.generation += 1;
  state.cards = new Map();
  state.order = [];
  state.currentId = null;
  for (const card of fresh.cards || []) {
    if (state.cards.has(card.id) || leftSince(state, card.id, ticket)) continue;
    state.cards.set(card.id, card);
    state.order.push(card.id);
  }
  state.claims = new Map(Object.entries(fresh.claims || {}));
  state.nextCursor = fresh.next_cursor || null;
  state.total = fresh.total;
  state.counts = fresh.counts || {};
  for (const id of Array.from(state.selected)) if (!state.cards.has(id)) state.selected.delete(id);
  state.syncedArrivalSeq = ticket.arrivalSeq;
  pruneGone(state, ticket);
  return { stale: false, keepOpen: keepOpen && state.cards.has(keepOpen) ? keepOpen : null };
}

/**
 * Where new ids go among those already on the page, following the server's order.
 * Returns the new order and the insertions, each before an id that is already in
 * place when the insertions are applied in the order returned (null: at the end).
 */
export function mergeOrder(order, serverIds) {
  const result = order.slice();
  const present = new Set(order);
  const inserts = [];
  let following = null;
  for (let i = serverIds.length - 1; i >= 0; i -= 1) {
    const id = serverIds[i];
    if (!present.has(id)) {
      result.splice(following === null ? result.length : result.indexOf(following), 0, id);
      present.add(id);
      inserts.push({ id, before: following });
    }
    following = id;
  }
  return { order: result, inserts };
}

/**
 * The server's answer to "the first windowSize() cards with these filters", after arrivals.
 * New cards are added where the server placed them; cards already on the page stay (a
 * card leaves only when the server says so, on the socket, so an open card being edited
 * is never pulled away by a refresh). Counts and the cursor come from the answer.
 */
export function applyWindow(state, ticket, fresh) {
  if (ticket.generation !== state.generation) return { stale: true, inserts: [] };
  const byId = new Map();
  for (const card of fresh.cards || []) if (!leftSince(state, card.id, ticket)) byId.set(card.id, card);
  const { order, inserts } = mergeOrder(state.order, Array.from(byId.keys()));
  state.order = order;
  const claims = fresh.claims || {};
  for (const { id } of inserts) {
    state.cards.set(id, byId.get(id));
    if (claims[id]) state.claims.set(id, claims[id]);
  }
  state.total = fresh.total;
  state.counts = fresh.counts || {};
  state.nextCursor = fresh.next_cursor || null;
  state.syncedArrivalSeq = Math.max(state.syncedArrivalSeq, ticket.arrivalSeq);
  return { stale: false, inserts };
}

/** The next page ("Load more"): it follows the last card on the page, so its cards go at the end. */
export function applyNextPage(state, ticket, page) {
  if (ticket.generation !== state.generation) return { stale: true, inserts: [] };
  const inserts = [];
  for (const card of page.cards || []) {
    if (state.cards.has(card.id) || leftSince(state, card.id, ticket)) continue;
    state.cards.set(card.id, card);
    state.order.push(card.id);
    inserts.push({ id: card.id, before: null });
  }
  for (const [id, claim] of Object.entries(page.claims || {})) state.claims.set(id, claim);
  state.nextCursor = page.next_cursor || null;
  return { stale: false, inserts };
}

// --- socket events -------------------------------------------------------------------------

/** A card arrived on the socket. True when the page must ask the server where (and whether) it goes. */
export function cardArrived(state, card) {
  if (state.cards.has(card.id)) return false;
  state.arrivalSeq += 1;
  return true;
}

/**
 * A card left the page (decided, expired, cancelled; here or elsewhere). Returns what it
 * was and where, or null when it was not on the page.
 */
export function cardRemoved(state, id) {
  state.removalSeq += 1;
  state.gone.set(id, state.removalSeq);
  const card = state.cards.get(id);
  if (!card) return null;
  const index = state.order.indexOf(id);
  const wasCurrent = state.currentId === id;
  if (wasCurrent) state.currentId = null;
  state.cards.delete(id);
  state.order.splice(index, 1);
  state.selected.delete(id);
  state.claims.delete(id);
  state.total = Math.max(0, state.total - 1);
  state.leftPage.add(id);
  return { card, index, wasCurrent };
}

/**
 * A "removed" event's facet values taken off the page's counts, as the server counts them
 * (each facet counted with the other facets' filters applied). Returns true when the counts
 * and the total are right without asking the server, false when only the server can tell
 * (a search or "mine" is on and the card was not on the page: did it match?).
 */
export function countsAfterRemoval(state, id, facets) {
  const wasShown = state.leftPage.delete(id); // it matched every filter; the total already went down
  if (!facets) return false;
  const f = state.filters;
  if ((f.q || f.mine) && !wasShown) return false;
  const matches = (facet) => !f[facet] || f[facet] === facets[facet];
  for (const facet of FACETS) {
    if (!FACETS.every((other) => other === facet || matches(other))) continue;
    const counts = state.counts[facet];
    const value = facets[facet];
    if (!counts || !(value in counts)) continue;
    if (counts[value] > 1) counts[value] -= 1;
    else delete counts[value];
  }
  if (!wasShown && FACETS.every(matches)) state.total = Math.max(0, state.total - 1);
  return true;
}

/** The card to open after the open one left: the one that took its place, or the new last one. */
export function successor(state, index) {
  if (!state.order.length) return null;
  return state.order[Math.min(index, state.order.length - 1)];
}

/** A card on the page changed (a quorum vote so far): only the votes and the revision are taken. */
export function cardUpdated(state, card) {
  const current = state.cards.get(card.id);
  if (!current) return false;
  state.cards.set(card.id, { ...current, approved_by: card.approved_by, revision: card.revision });
  return true;
}

/** My own vote on a quorum request was recorded (the "updated" event may come later). */
export function voteRecorded(state, id) {
  const current = state.cards.get(id);
  if (!current) return false;
  const approvedBy = Array.from(new Set([...(current.approved_by || []), state.me]));
  state.cards.set(id, { ...current, approved_by: approvedBy });
  return true;
}

export function claimSet(state, id, claim) {
  if (claim) state.claims.set(id, claim);
  else state.claims.delete(id);
}

/** Someone let go of a card. Returns whether to claim it: it is the one I have open. */
export function claimReleased(state, id, by) {
  const claim = state.claims.get(id);
  if (claim && claim.by === by) state.claims.delete(id);
  return id === state.currentId && by !== state.me;
}

/**
 * One socket message applied to the state. Returns what the page must do about it:
 * {kind: "arrival", card} (ask the server), {kind: "removed", ...}, {kind: "updated", id},
 * {kind: "claim", id, reclaim}, or {kind: "ignored"}.
 */
export function applySocketMessage(state, message) {
  switch (message && message.type) {
    case "added":
      return cardArrived(state, message.card) ? { kind: "arrival", card: message.card } : { kind: "ignored" };
    case "updated":
      return cardUpdated(state, message.card) ? { kind: "updated", id: message.card.id } : { kind: "ignored" };
    case "removed": {
      const removed = cardRemoved(state, message.id);
      const byOther = !!(removed && message.by && message.by !== state.me);
      return { kind: "removed", id: message.id, removed, byOther, status: message.status, by: message.by };
    }
    case "claimed":
      claimSet(state, message.id, { by: message.by, expires_at: message.expires_at });
      return { kind: "claim", id: message.id, reclaim: false };
    case "claim":
      claimSet(state, message.id, message.claim);
      return { kind: "claim", id: message.id, reclaim: false };
    case "released":
      return { kind: "claim", id: message.id, reclaim: claimReleased(state, message.id, message.by) };
    default:
      return { kind: "ignored" };
  }
}

// --- claims, navigation --------------------------------------------------------------------

function liveClaim(state, id, now) {
  const claim = state.claims.get(id);
  return claim && Date.parse(claim.expires_at) > now ? claim : null;
}

/** What the row badge and the card note say about who is reviewing a card. */
export function claimView(state, id, now) {
  const claim = liveClaim(state, id, now);
  const other = !!(claim && claim.by !== state.me);
  return {
    live: !!claim,
    other,
    badge: claim ? (other ? claim.by + " is reviewing" : "you are reviewing") : "",
    note: other ? "Being reviewed by " + claim.by + ". You can still decide, but they may be about to." : "",
  };
}

export function claimedByOther(state, id, now) {
  const claim = liveClaim(state, id, now);
  return !!(claim && claim.by !== state.me);
}

/** Claims whose time ran out; they are forgotten. */
export function expireClaims(state, now) {
  const lapsed = [];
  for (const [id, claim] of state.claims) {
    if (Date.parse(claim.expires_at) <= now) {
      state.claims.delete(id);
      lapsed.push(id);
    }
  }
  return lapsed;
}

/** The card to open when none is: the first nobody else is reviewing, else the first. */
export function firstUnclaimed(state, now) {
  return state.order.find((id) => !claimedByOther(state, id, now)) || state.order[0] || null;
}

/** j / k: the card `step` away from the open one, stopping at either end. */
export function moveTarget(state, step) {
  if (!state.order.length) return null;
  const index = state.currentId ? state.order.indexOf(state.currentId) : -1;
  return state.order[Math.max(0, Math.min(state.order.length - 1, index + step))];
}

// --- deadlines -----------------------------------------------------------------------------

/**
 * Cards that are now within `remindBeforeMs` of their deadline and not reminded yet; each
 * is reminded once. Cards created that close to their deadline never remind (they were new).
 */
export function takeReminders(state, now, remindBeforeMs) {
  const due = [];
  for (const id of state.order) {
    if (state.reminded.has(id)) continue;
    const card = state.cards.get(id);
    const expires = Date.parse(card.expires_at);
    const left = expires - now;
    if (left > 0 && left < remindBeforeMs && Date.parse(card.created_at) + remindBeforeMs < expires) {
      state.reminded.add(id);
      due.push({ id, left });
    }
  }
  return due;
}

// --- quorum --------------------------------------------------------------------------------

/** What a card that needs several approvals shows; null for a single-approval card. */
export function quorumView(card, me) {
  if (!(card.required_approvals > 1)) return null;
  const by = card.approved_by || [];
  const voted = by.includes(me);
  return {
    text: "Approvals " + by.length + " of " + card.required_approvals + (by.length ? ": " + by.join(", ") : "") + ".",
    voted,
    approveText: voted ? "You approved: waiting for another reviewer" : "Approve",
  };
}

// --- selection -----------------------------------------------------------------------------

export function toggleSelected(state, id, on) {
  if (on && state.cards.has(id)) state.selected.add(id);
  else state.selected.delete(id);
  return state.selected.has(id);
}

/** The selected ids in page order. */
export function selectedIds(state) {
  return state.order.filter((id) => state.selected.has(id));
}

export function selectionTypes(state) {
  return new Set(selectedIds(state).map((id) => state.cards.get(id).action_type));
}

// --- filters -------------------------------------------------------------------------------

export function setFilter(state, key, value) {
  state.filters = { ...state.filters, [key]: key === "mine" ? !!value : value };
}
