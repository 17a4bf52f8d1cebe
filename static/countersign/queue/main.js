// The live reviewer queue: the entry point that wires state, server, socket and DOM together.
// Agent-supplied text is untrusted: it only ever reaches the page through textContent /
// attribute setters (see dom.js), never innerHTML, and the CSP forbids inline script.
//
// The server filters and sorts. When a card arrives on the socket, the page asks the server
// for the cards it shows (plus room for the newcomers) with the current filters and puts
// each new one where the answer puts it; it never decides by itself whether a card matches.

import { createApi, queryString } from "./api.js";
import { createBatch } from "./batch.js";
import { createDecisions } from "./decide.js";
import { el } from "./dom.js";
import { REMIND_BEFORE_MS, batchFlash, formatRemaining, reminderText, removalFlash } from "./format.js";
import { installKeys, typingIn } from "./keys.js";
import { createNotifier } from "./notify.js";
import { applyPauseMessage, createPauses, renderPauses, replacePauses } from "./pauses.js";
import { renderCard, renderClaim, renderFacets, renderQuorum, renderRow, setStatus } from "./render.js";
import { createSocket, queueSocketUrl } from "./socket.js";
import {
  FACETS,
  applyNextPage,
  applySocketMessage,
  applyWindow,
  arrivedSince,
  beginFetch,
  beginReload,
  cardRemoved,
  countsAfterRemoval,
  claimView,
  createState,
  expireClaims,
  firstUnclaimed,
  moveTarget,
  quorumView,
  replaceAll,
  setFilter,
  successor,
  takeReminders,
  toggleSelected,
  windowSize,
} from "./state.js";

const $ = (id) => document.getElementById(id);
const queueEl = $("queue");
const liveEl = $("live-status");
const bannerEl = $("live-banner");
const pausesEl = $("pause-banners");
const flashEl = $("flash");
const loadMoreEl = $("load-more");
const boot = JSON.parse($("queue-data").textContent);
const reasonCategories = boot.reason_categories || [];
const claimTimeoutMs = (boot.claim_timeout_seconds || 90) * 1000;

const state = createState({ me: boot.me, filters: boot.filters });
const pauses = createPauses(); // the kill switch's banners (pauses.js)
const api = createApi();
const entries = new Map(); // id -> {li, row, view}: the DOM of each card in state.order

function flash(message, kind) {
  flashEl.textContent = message;
  flashEl.className = "flash " + (kind || "info");
  flashEl.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => {
    flashEl.hidden = true;
  }, 8000);
}

const notifier = createNotifier({ win: window, doc: document, toggle: $("notify-toggle"), flash });
const batch = createBatch({
  doc: document,
  state,
  api,
  reasonCategories,
  onDecided(decision, results) {
    for (const result of results) {
      if (result.ok) removeCard(result.id);
      else setSelected(result.id, false);
    }
    const { text, kind } = batchFlash(decision, results);
    flash(text, kind);
    if (!state.currentId) openFirstUnclaimed();
  },
});
const socket = createSocket({ url: queueSocketUrl(location), onOpen: socketOpened, onMessage: socketMessage, onClose: socketClosed });

// --- the list in the DOM ----------------------------------------------------------------------

function mount(id, before) {
  const card = state.cards.get(id);
  const row = renderRow(card, {
    onSelect: (on) => setSelected(id, on),
    onOpen: () => (state.currentId === id ? closeCurrent() : openCard(id)),
  });
  const view = renderCard(card, {
    reasonCategories,
    on: {
      approve: () => approve(id),
      edit: () => toggleEdit(id),
      reject: () => openReject(id),
      review: () => reviewEdits(id),
      cancelEdit: () => toggleEdit(id, false),
      rejectSubmit: (fields) => sendDecision(id, { decision: "reject", ...fields }),
    },
  });
  const li = el("li", { className: "item", "data-id": id }, [row.row, view.article]);
  queueEl.insertBefore(li, before && entries.has(before) ? entries.get(before).li : null);
  entries.set(id, { li, row, view });
  row.checkbox.checked = state.selected.has(id);
  showClaim(id);
  renderQuorum(view, quorumView(card, state.me));
}

function showClaim(id) {
  const entry = entries.get(id);
  if (entry) renderClaim(entry, claimView(state, id, Date.now()));
}

function refreshCount() {
  $("queue-count").textContent = String(Math.max(state.total, state.order.length));
  $("queue-empty").hidden = state.order.length !== 0;
  loadMoreEl.hidden = !state.nextCursor;
}

/** A card left (decided here or elsewhere, expired, refused as stale): take it off the page. */
function removeCard(id, options) {
  const removed = cardRemoved(state, id);
  if (removed) cardGone(id, removed, options);
  return removed;
}

function cardGone(id, removed, options) {
  if (removed.wasCurrent) socket.send({ type: "release", id });
  const entry = entries.get(id);
  if (entry) entry.li.remove();
  entries.delete(id);
  batch.refresh();
  refreshCount();
  if (removed.wasCurrent && options && options.advance && state.order.length) openCard(successor(state, removed.index));
}

/** The server's answer replaces the whole page (first load, filters changed, reconnected). */
function showAll(fresh, ticket) {
  const { stale, keepOpen } = replaceAll(state, fresh, ticket);
  if (stale) return;
  renderPauses(pausesEl, replacePauses(pauses, fresh.pauses), el);
  for (const entry of entries.values()) entry.li.remove();
  entries.clear();
  for (const id of state.order) mount(id, null);
  renderFacets(document, state.filters, state.counts);
  refreshCount();
  batch.refresh();
  tick();
  if (keepOpen) openCard(keepOpen, { focus: false });
  else openFirstUnclaimed();
  if (ticket && arrivedSince(state, ticket)) refresh(); // arrivals the answer may predate
}

async function reload() {
  history.replaceState(null, "", "?" + queryString(state.filters));
  const ticket = beginReload(state);
  try {
    showAll(await api.getState(state.filters), ticket);
  } catch (err) {
    if (ticket.generation === state.generation) flash(err.message, "error");
  }
}

// One refresh at a time; arrivals during one ask for another when it is done.
let refreshing = false;
let refreshAgain = false;
// Arrivals are announced (notification, unread count) once the answer that covers them is
// in, so the reviewer who switches back to the tab finds the card already on the page.
const unannounced = [];

function announce(card) {
  notifier.arrived();
  notifier.notify("New: " + card.action_type, card.summary + " (" + card.agent + ")", card.id);
}

/** Ask the server for the cards on the page plus the arrivals, with the current filters; add the new ones. */
async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      const ticket = beginFetch(state);
      const covered = unannounced.splice(0);
      let fresh = null;
      try {
        fresh = await api.getWindow(state.filters, windowSize(state));
      } catch (err) {
        // the next event, or the resync after a reconnect, catches up
      }
      const { stale, inserts } = fresh ? applyWindow(state, ticket, fresh) : { stale: true, inserts: [] };
      if (!stale) {
        for (const { id, before } of inserts) mount(id, before);
        renderFacets(document, state.filters, state.counts);
        refreshCount();
        tick();
        if (!state.currentId) openFirstUnclaimed();
      }
      covered.forEach(announce);
      if (!fresh) {
        unannounced.splice(0).forEach(announce); // no answer to wait for
        break;
      }
      if (stale) refreshAgain = refreshAgain || arrivedSince(state, ticket);
    } while (refreshAgain);
  } finally {
    refreshing = false;
  }
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 1500);
}

async function loadMore() {
  if (!state.nextCursor) return;
  loadMoreEl.disabled = true;
  const ticket = beginFetch(state);
  try {
    const { inserts } = applyNextPage(state, ticket, await api.getNextPage(state.filters, state.nextCursor));
    for (const { id, before } of inserts) mount(id, before);
    refreshCount();
    tick();
  } catch (err) {
    flash(err.message, "error");
  } finally {
    loadMoreEl.disabled = false;
  }
}

// --- the open card, claims --------------------------------------------------------------------

function openCard(id, options) {
  const entry = entries.get(id);
  if (!entry) return;
  if (state.currentId && state.currentId !== id) closeCurrent({ keepFocus: true });
  state.currentId = id;
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
  const entry = state.currentId && entries.get(state.currentId);
  if (entry) {
    entry.li.classList.remove("current");
    entry.view.article.hidden = true;
    entry.row.open.setAttribute("aria-expanded", "false");
    if (!options || !options.keepFocus) entry.row.open.focus();
    socket.send({ type: "release", id: state.currentId });
  }
  state.currentId = null;
}

function openFirstUnclaimed() {
  const id = firstUnclaimed(state, Date.now());
  if (id) openCard(id, { focus: false });
}

let claimTimer = null;
function claimSoon(id) {
  clearTimeout(claimTimer);
  // Racing through cards with j/k should not claim every one on the way.
  claimTimer = setTimeout(() => {
    if (state.currentId === id) socket.send({ type: "claim", id });
  }, 250);
}

function setSelected(id, on) {
  const selected = toggleSelected(state, id, on);
  const entry = entries.get(id);
  if (entry) entry.row.checkbox.checked = selected;
  batch.refresh();
}

// --- deciding (decide.js) ------------------------------------------------------------------

const { sendDecision, approve, reviewEdits, toggleEdit, openReject } = createDecisions({ state, api, entries, flash, removeCard });

// --- time -------------------------------------------------------------------------------------

function tick() {
  const now = Date.now();
  for (const id of state.order) {
    const card = state.cards.get(id);
    const entry = entries.get(id);
    if (!entry) continue;
    const left = Date.parse(card.expires_at) - now;
    const text = formatRemaining(left);
    for (const node of entry.li.querySelectorAll(".countdown")) {
      node.textContent = text;
      node.classList.toggle("urgent", left < REMIND_BEFORE_MS);
    }
    if (left <= 0 && !entry.view.article.classList.contains("expired")) {
      // The page never drops a card by itself: the server's sweep does, and says so on the socket.
      entry.view.article.classList.add("expired");
      setStatus(entry.view, "The deadline has passed: a decision now will be refused.", "error");
    }
  }
  for (const { id, left } of takeReminders(state, now, REMIND_BEFORE_MS)) {
    const { title, body } = reminderText(state.cards.get(id), left);
    notifier.notify(title, body, id + ":reminder");
  }
  for (const id of expireClaims(state, now)) showClaim(id);
}

// --- live updates -----------------------------------------------------------------------------

let heartbeat = null;

function socketOpened({ reconnected }) {
  liveEl.textContent = "Live: new requests appear by themselves.";
  liveEl.className = "live ok";
  bannerEl.hidden = true;
  document.body.dataset.live = "on";
  if (reconnected) reload(); // events may have been missed while down: resynchronise
  else if (state.currentId) socket.send({ type: "claim", id: state.currentId });
  clearInterval(heartbeat);
  heartbeat = setInterval(() => {
    if (state.currentId) socket.send({ type: "claim", id: state.currentId });
  }, claimTimeoutMs / 3);
}

function socketClosed({ forbidden, delay }) {
  document.body.dataset.live = "off";
  clearInterval(heartbeat);
  if (forbidden) {
    liveEl.textContent = "You are not a reviewer: live updates are off.";
    return;
  }
  liveEl.textContent = "Live updates are down; reconnecting in " + Math.max(1, Math.round(delay / 1000)) + "s…";
  liveEl.className = "live down";
  bannerEl.hidden = false;
}

function socketMessage(message) {
  if (applyPauseMessage(pauses, message)) {
    renderPauses(pausesEl, pauses, el);
    return;
  }
  const effect = applySocketMessage(state, message);
  if (effect.kind === "arrival") {
    unannounced.push(effect.card);
    refresh(); // the server says whether it matches the filters, and where it goes
  } else if (effect.kind === "updated") {
    const entry = entries.get(effect.id);
    if (entry) renderQuorum(entry.view, quorumView(state.cards.get(effect.id), state.me));
  } else if (effect.kind === "removed") {
    if (effect.removed) {
      if (effect.byOther) flash(removalFlash(effect.removed.card, message), "info");
      cardGone(effect.id, effect.removed, { advance: true });
    }
    if (!countsAfterRemoval(state, effect.id, message.facets)) refreshSoon(); // only the server can count it
    else {
      renderFacets(document, state.filters, state.counts);
      refreshCount();
      if (!state.order.length && state.nextCursor) refreshSoon(); // the page emptied: fetch what follows
    }
  } else if (effect.kind === "claim") {
    showClaim(effect.id);
    // The card I have open is free again: it is mine now.
    if (effect.reclaim) socket.send({ type: "claim", id: state.currentId });
  }
}

// --- keyboard and controls --------------------------------------------------------------------

function whenOpen(fn) {
  return () => {
    if (state.currentId) fn(state.currentId);
  };
}

installKeys(document, {
  escape(event) {
    const entry = state.currentId && entries.get(state.currentId);
    if (typingIn(event.target)) {
      event.target.blur();
      if (entry) entry.view.article.focus();
      return;
    }
    if (entry && (!entry.view.edit.panel.hidden || !entry.view.reject.form.hidden)) {
      entry.view.edit.panel.hidden = true;
      entry.view.reject.form.hidden = true;
      entry.view.actions.hidden = false;
      entry.view.article.focus();
    } else if (entry) closeCurrent();
  },
  next: () => {
    const id = moveTarget(state, 1);
    if (id) openCard(id);
  },
  previous: () => {
    const id = moveTarget(state, -1);
    if (id) openCard(id);
  },
  approve: whenOpen(approve),
  reject: whenOpen(openReject),
  edit: whenOpen((id) => toggleEdit(id, true)),
  select: whenOpen((id) => setSelected(id, !state.selected.has(id))),
  search: () => {
    $("q").focus();
    $("q").select();
  },
  help: () => $("help-dialog").showModal(),
});

let searchTimer = null;
function searchNow() {
  clearTimeout(searchTimer);
  setFilter(state, "q", $("q").value.trim());
  reload();
}
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("q").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchNow, 250);
});
$("q").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    searchNow();
  }
});
for (const facet of FACETS) {
  $("f-" + facet).addEventListener("change", (event) => {
    setFilter(state, facet, event.target.value);
    reload();
  });
}
$("f-mine").addEventListener("change", (event) => {
  setFilter(state, "mine", event.target.checked);
  reload();
});
$("sort").addEventListener("change", (event) => {
  setFilter(state, "sort", event.target.value);
  reload();
});
loadMoreEl.addEventListener("click", loadMore);
$("help-open").addEventListener("click", () => $("help-dialog").showModal());
$("batch-approve").addEventListener("click", () => batch.open("approve"));
$("batch-reject").addEventListener("click", () => batch.open("reject"));
$("batch-clear").addEventListener("click", () => {
  for (const id of Array.from(state.selected)) setSelected(id, false);
});
$("batch-form").addEventListener("submit", (event) => {
  if (event.submitter && event.submitter.value === "confirm") {
    event.preventDefault();
    batch.confirm();
  }
});
window.addEventListener("pagehide", () => {
  if (state.currentId) socket.send({ type: "release", id: state.currentId });
});

$("q").value = state.filters.q;
$("f-mine").checked = !!state.filters.mine;
$("sort").value = state.filters.sort;
showAll(boot);
setInterval(tick, 1000);
socket.connect();
