import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  DEFAULT_FILTERS,
  applyNextPage,
  applySocketMessage,
  applyWindow,
  arrivedSince,
  beginFetch,
  beginReload,
  cardArrived,
  cardRemoved,
  cardUpdated,
  countsAfterRemoval,
  claimView,
  claimedByOther,
  createState,
  expireClaims,
  firstUnclaimed,
  mergeOrder,
  moveTarget,
  quorumView,
  replaceAll,
  selectedIds,
  selectionTypes,
  setFilter,
  successor,
  takeReminders,
  toggleSelected,
  voteRecorded,
  windowSize,
} from "../../static/countersign/queue/state.js";

const NOW = Date.parse("2030-01-01T12:00:00Z");
const iso = (offsetMs) => new Date(NOW + offsetMs).toISOString();
const MINUTE = 60 * 1000;

function card(id, overrides = {}) {
  return {
    id,
    revision: 1,
    action_type: "send_external_email",
    agent: "support-bot",
    summary: "Summary " + id,
    params: { to: id + "@example.org" },
    key_params: ["to"],
    risk: "medium",
    required_approvals: 1,
    approved_by: [],
    reviewer_group: null,
    created_at: iso(-MINUTE),
    expires_at: iso(60 * MINUTE),
    ...overrides,
  };
}

function page(ids, extra = {}) {
  return { cards: ids.map((id) => (typeof id === "string" ? card(id) : id)), claims: {}, total: ids.length, counts: {}, next_cursor: null, ...extra };
}

function loaded(ids, extra = {}) {
  const state = createState({ me: "alice" });
  replaceAll(state, page(ids, extra));
  return state;
}

describe("createState", () => {
  test("fills in the default filters around the ones the server echoed", () => {
    const state = createState({ me: "alice", filters: { risk: "high", mine: true } });
    assert.deepEqual(state.filters, { ...DEFAULT_FILTERS, risk: "high", mine: true });
    assert.equal(state.me, "alice");
  });
});

describe("replaceAll: the first load, a filter change, a resync after reconnecting", () => {
  test("takes the cards in the server's order, with its claims, total and cursor", () => {
    const state = loaded(["b", "a", "c"], { total: 7, next_cursor: "CUR", claims: { a: { by: "bob", expires_at: iso(MINUTE) } } });
    assert.deepEqual(state.order, ["b", "a", "c"]);
    assert.equal(state.cards.get("a").summary, "Summary a");
    assert.equal(state.total, 7);
    assert.equal(state.nextCursor, "CUR");
    assert.equal(state.claims.get("a").by, "bob");
  });

  test("a resync after a reconnect drops cards that left and adds those that arrived while down", () => {
    const state = loaded(["staying", "leaving"]);
    const ticket = beginReload(state);
    const result = replaceAll(state, page(["staying", "arrived"]), ticket);
    assert.equal(result.stale, false);
    assert.deepEqual(state.order, ["staying", "arrived"]);
    assert.equal(state.cards.has("leaving"), false);
  });

  test("keeps the open card open when it is still in the answer", () => {
    const state = loaded(["a", "b"]);
    state.currentId = "b";
    assert.equal(replaceAll(state, page(["b", "c"]), beginReload(state)).keepOpen, "b");
  });

  test("says nothing is to be kept open when the open card is gone", () => {
    const state = loaded(["a", "b"]);
    state.currentId = "b";
    assert.equal(replaceAll(state, page(["a"]), beginReload(state)).keepOpen, null);
    assert.equal(state.currentId, null);
  });

  test("forgets selected cards that are no longer on the page", () => {
    const state = loaded(["a", "b"]);
    toggleSelected(state, "a", true);
    toggleSelected(state, "b", true);
    replaceAll(state, page(["b"]), beginReload(state));
    assert.deepEqual([...state.selected], ["b"]);
  });

  test("an answer to an older reload is dropped: a newer filter change is on its way", () => {
    const state = loaded(["a"]);
    const older = beginReload(state);
    const newer = beginReload(state);
    assert.equal(replaceAll(state, page(["old-filters"]), older).stale, true);
    assert.deepEqual(state.order, ["a"]);
    replaceAll(state, page(["new-filters"]), newer);
    assert.deepEqual(state.order, ["new-filters"]);
  });

  test("a card removed while the reload was on its way does not come back with the answer", () => {
    const state = loaded(["a", "b"]);
    const ticket = beginReload(state);
    applySocketMessage(state, { type: "removed", id: "b", status: "approved", by: "bob" });
    replaceAll(state, page(["a", "b"]), ticket);
    assert.deepEqual(state.order, ["a"]);
  });
});

describe("arrivals: the page asks the server, it does not decide", () => {
  test("an arrival of a new card asks for a refresh one card larger", () => {
    const state = loaded(["a", "b"]);
    assert.equal(windowSize(state), 2);
    const effect = applySocketMessage(state, { type: "added", card: card("c") });
    assert.equal(effect.kind, "arrival");
    assert.equal(windowSize(state), 3);
    assert.deepEqual(state.order, ["a", "b"], "nothing is added before the server answers");
  });

  test("an arrival of a card already on the page is ignored", () => {
    const state = loaded(["a"]);
    assert.equal(cardArrived(state, card("a")), false);
    assert.equal(windowSize(state), 1);
  });

  test("the server's answer places the new card where the server sorted it", () => {
    const state = loaded(["a", "c"]);
    const ticket = beginFetch(state);
    cardArrived(state, card("b"));
    const { inserts } = applyWindow(state, ticket, page(["a", "b", "c"], { total: 3 }));
    assert.deepEqual(state.order, ["a", "b", "c"]);
    assert.deepEqual(inserts, [{ id: "b", before: "c" }]);
    assert.equal(state.total, 3);
  });

  test("a card the server leaves out is not shown, even if it looks like it matches", () => {
    const state = createState({ me: "alice", filters: { risk: "high" } });
    replaceAll(state, page([card("a", { risk: "high" })]));
    const ticket = beginFetch(state);
    cardArrived(state, card("b", { risk: "high" }));
    applyWindow(state, ticket, page([card("a", { risk: "high" })], { total: 1 }));
    assert.deepEqual(state.order, ["a"]);
  });

  test("a card the server includes is shown, even if it looks like it does not match", () => {
    // "mine" includes cards claimed by me, search covers fields the card does not show: only the server knows.
    const state = createState({ me: "alice", filters: { mine: true, risk: "high" } });
    replaceAll(state, page([]));
    const ticket = beginFetch(state);
    cardArrived(state, card("x", { risk: "low", reviewer_group: "someone-else" }));
    applyWindow(state, ticket, page([card("x", { risk: "low", reviewer_group: "someone-else" })]));
    assert.deepEqual(state.order, ["x"]);
  });

  test("cards already on the page stay when the answer leaves them out (an expired card waits for the sweep)", () => {
    const state = loaded(["expired", "b"]);
    applyWindow(state, beginFetch(state), page(["b", "new"]));
    assert.deepEqual(state.order, ["expired", "b", "new"]);
  });

  test("once answered, the arrivals no longer widen the next refresh", () => {
    const state = loaded(["a"]);
    cardArrived(state, card("b"));
    cardArrived(state, card("c"));
    const ticket = beginFetch(state);
    applyWindow(state, ticket, page(["a", "b"]));
    assert.equal(windowSize(state), 2);
    assert.equal(arrivedSince(state, ticket), false);
  });

  test("an arrival after the question was asked is noticed, so the page asks again", () => {
    const state = loaded(["a"]);
    const ticket = beginFetch(state);
    cardArrived(state, card("late"));
    applyWindow(state, ticket, page(["a"]));
    assert.equal(arrivedSince(state, ticket), true);
    assert.equal(windowSize(state), 2);
  });

  test("a card removed while the refresh was on its way is not put back", () => {
    const state = loaded(["a", "b"]);
    const ticket = beginFetch(state);
    cardArrived(state, card("c"));
    cardRemoved(state, "b");
    applyWindow(state, ticket, page(["a", "b", "c"]));
    assert.deepEqual(state.order, ["a", "c"]);
  });

  test("a card removed before the question was asked may come back (still pending, the server says so)", () => {
    const state = loaded(["a", "b"]);
    cardRemoved(state, "b"); // e.g. taken off after a 409 "changed since you opened it"
    applyWindow(state, beginFetch(state), page(["a", "b"]));
    assert.deepEqual(state.order, ["a", "b"]);
  });

  test("a refresh answered after a filter change is dropped", () => {
    const state = loaded(["a"]);
    const ticket = beginFetch(state);
    cardArrived(state, card("b"));
    beginReload(state);
    const result = applyWindow(state, ticket, page(["a", "b"]));
    assert.equal(result.stale, true);
    assert.deepEqual(state.order, ["a"]);
  });

  test("the answer brings the claims of the new cards, the counts and the cursor", () => {
    const state = loaded(["a"], { next_cursor: "OLD" });
    state.claims.set("a", { by: "alice", expires_at: iso(MINUTE) });
    applyWindow(state, beginFetch(state), page(["a", "b"], {
      claims: { a: { by: "bob", expires_at: iso(MINUTE) }, b: { by: "bob", expires_at: iso(MINUTE) } },
      counts: { risk: { medium: 9 } },
      total: 9,
      next_cursor: "NEW",
    }));
    assert.equal(state.claims.get("b").by, "bob");
    assert.equal(state.claims.get("a").by, "alice", "the socket keeps the claims of cards already shown");
    assert.deepEqual(state.counts, { risk: { medium: 9 } });
    assert.equal(state.total, 9);
    assert.equal(state.nextCursor, "NEW");
  });
});

describe("mergeOrder", () => {
  function applyInserts(order, inserts) {
    const list = order.slice();
    for (const { id, before } of inserts) {
      assert.ok(before === null || list.includes(before), "insert " + id + " refers to " + before + ", not yet placed");
      list.splice(before === null ? list.length : list.indexOf(before), 0, id);
    }
    return list;
  }

  test("new ids at the start, in the middle and at the end follow the server's order", () => {
    const { order, inserts } = mergeOrder(["b", "d"], ["a", "b", "c", "d", "e", "f"]);
    assert.deepEqual(order, ["a", "b", "c", "d", "e", "f"]);
    assert.deepEqual(applyInserts(["b", "d"], inserts), order);
  });

  test("ids on the page but not in the answer keep their place; a new id goes right before its successor in the answer", () => {
    const { order } = mergeOrder(["x", "b", "y"], ["a", "b", "c"]);
    assert.deepEqual(order, ["x", "a", "b", "y", "c"]);
  });

  test("nothing new: nothing inserted", () => {
    assert.deepEqual(mergeOrder(["a", "b"], ["a", "b"]).inserts, []);
  });
});

describe("load more", () => {
  test("the next page goes after the cards on the page, skipping any already there", () => {
    const state = loaded(["a", "b"], { next_cursor: "P2" });
    const { inserts } = applyNextPage(state, beginFetch(state), page(["b", "c", "d"], { next_cursor: null, claims: { d: { by: "bob", expires_at: iso(MINUTE) } } }));
    assert.deepEqual(state.order, ["a", "b", "c", "d"]);
    assert.deepEqual(inserts.map((i) => i.id), ["c", "d"]);
    assert.equal(state.nextCursor, null);
    assert.equal(state.claims.get("d").by, "bob");
  });
});

describe("removals", () => {
  test("a removed card leaves the order, the selection and the claims, and the total goes down", () => {
    const state = loaded(["a", "b", "c"], { total: 10 });
    toggleSelected(state, "b", true);
    state.claims.set("b", { by: "bob", expires_at: iso(MINUTE) });
    const removed = cardRemoved(state, "b");
    assert.equal(removed.index, 1);
    assert.equal(removed.card.id, "b");
    assert.deepEqual(state.order, ["a", "c"]);
    assert.equal(state.selected.has("b"), false);
    assert.equal(state.claims.has("b"), false);
    assert.equal(state.total, 9);
  });

  test("removing the open card closes it, and the next one takes its place", () => {
    const state = loaded(["a", "b", "c"]);
    state.currentId = "b";
    const removed = cardRemoved(state, "b");
    assert.equal(removed.wasCurrent, true);
    assert.equal(state.currentId, null);
    assert.equal(successor(state, removed.index), "c");
  });

  test("after the last card goes, the new last card takes its place; none after the only one", () => {
    const state = loaded(["a", "b"]);
    assert.equal(successor(state, cardRemoved(state, "b").index), "a");
    assert.equal(successor(state, cardRemoved(state, "a").index), null);
  });

  test("a removal of a card not on the page changes nothing (the total is the server's to fix)", () => {
    const state = loaded(["a"], { total: 5 });
    assert.equal(cardRemoved(state, "elsewhere"), null);
    assert.equal(state.total, 5);
    assert.deepEqual(state.order, ["a"]);
  });

  test("the socket says who decided: another reviewer's decision is reported, mine is not", () => {
    const state = loaded(["a", "b"]);
    assert.equal(applySocketMessage(state, { type: "removed", id: "a", status: "approved", by: "bob" }).byOther, true);
    assert.equal(applySocketMessage(state, { type: "removed", id: "b", status: "approved", by: "alice" }).byOther, false);
    assert.equal(applySocketMessage(state, { type: "removed", id: "gone", status: "expired", by: "" }).removed, null);
  });
});

describe("updates", () => {
  test("an update takes the votes and the revision, not the rest of the card", () => {
    const state = loaded([card("a", { required_approvals: 2 })]);
    const effect = applySocketMessage(state, { type: "updated", card: card("a", { approved_by: ["bob"], revision: 2, summary: "changed" }) });
    assert.equal(effect.kind, "updated");
    assert.deepEqual(state.cards.get("a").approved_by, ["bob"]);
    assert.equal(state.cards.get("a").revision, 2);
    assert.equal(state.cards.get("a").summary, "Summary a");
  });

  test("an update of a card not on the page is ignored", () => {
    const state = loaded(["a"]);
    assert.equal(cardUpdated(state, card("b")), false);
    assert.equal(state.cards.has("b"), false);
  });

  test("my recorded vote is counted once", () => {
    const state = loaded([card("a", { required_approvals: 2, approved_by: ["bob"] })]);
    voteRecorded(state, "a");
    voteRecorded(state, "a");
    assert.deepEqual(state.cards.get("a").approved_by, ["bob", "alice"]);
  });
});

describe("claims", () => {
  test("a claim event records who reviews a card; a claim answer of null clears it", () => {
    const state = loaded(["a"]);
    applySocketMessage(state, { type: "claimed", id: "a", by: "bob", expires_at: iso(MINUTE) });
    assert.deepEqual(state.claims.get("a"), { by: "bob", expires_at: iso(MINUTE) });
    applySocketMessage(state, { type: "claim", id: "a", claim: null });
    assert.equal(state.claims.has("a"), false);
  });

  test("a release only clears the claim of the reviewer who let go", () => {
    const state = loaded(["a"]);
    state.claims.set("a", { by: "bob", expires_at: iso(MINUTE) });
    applySocketMessage(state, { type: "released", id: "a", by: "carol" });
    assert.equal(state.claims.get("a").by, "bob");
    applySocketMessage(state, { type: "released", id: "a", by: "bob" });
    assert.equal(state.claims.has("a"), false);
  });

  test("when someone else lets go of the card I have open, I claim it", () => {
    const state = loaded(["a", "b"]);
    state.currentId = "a";
    assert.equal(applySocketMessage(state, { type: "released", id: "a", by: "bob" }).reclaim, true);
    assert.equal(applySocketMessage(state, { type: "released", id: "a", by: "alice" }).reclaim, false);
    assert.equal(applySocketMessage(state, { type: "released", id: "b", by: "bob" }).reclaim, false);
  });

  test("the badge names the other reviewer, or says it is me; an expired claim shows nothing", () => {
    const state = loaded(["a", "b", "c"]);
    state.claims.set("a", { by: "bob", expires_at: iso(MINUTE) });
    state.claims.set("b", { by: "alice", expires_at: iso(MINUTE) });
    state.claims.set("c", { by: "bob", expires_at: iso(-1) });
    assert.deepEqual(claimView(state, "a", NOW), {
      live: true,
      other: true,
      badge: "bob is reviewing",
      note: "Being reviewed by bob. You can still decide, but they may be about to.",
    });
    assert.deepEqual(claimView(state, "b", NOW), { live: true, other: false, badge: "you are reviewing", note: "" });
    assert.deepEqual(claimView(state, "c", NOW), { live: false, other: false, badge: "", note: "" });
    assert.equal(claimedByOther(state, "a", NOW), true);
    assert.equal(claimedByOther(state, "c", NOW), false);
  });

  test("claims whose time ran out are forgotten and reported", () => {
    const state = loaded(["a", "b"]);
    state.claims.set("a", { by: "bob", expires_at: iso(-1) });
    state.claims.set("b", { by: "bob", expires_at: iso(MINUTE) });
    assert.deepEqual(expireClaims(state, NOW), ["a"]);
    assert.deepEqual([...state.claims.keys()], ["b"]);
  });

  test("an unknown message changes nothing", () => {
    const state = loaded(["a"]);
    assert.deepEqual(applySocketMessage(state, { type: "hello", user: "alice" }), { kind: "ignored" });
    assert.deepEqual(applySocketMessage(state, null), { kind: "ignored" });
  });
});

describe("navigation", () => {
  test("the first card nobody else reviews is opened; the first when all are taken; none when empty", () => {
    const state = loaded(["a", "b", "c"]);
    state.claims.set("a", { by: "bob", expires_at: iso(MINUTE) });
    assert.equal(firstUnclaimed(state, NOW), "b");
    state.claims.set("b", { by: "carol", expires_at: iso(MINUTE) });
    state.claims.set("c", { by: "bob", expires_at: iso(MINUTE) });
    assert.equal(firstUnclaimed(state, NOW), "a");
    assert.equal(firstUnclaimed(loaded([]), NOW), null);
  });

  test("j / k move one card and stop at either end; j with none open opens the first", () => {
    const state = loaded(["a", "b", "c"]);
    assert.equal(moveTarget(state, 1), "a");
    state.currentId = "b";
    assert.equal(moveTarget(state, 1), "c");
    assert.equal(moveTarget(state, -1), "a");
    state.currentId = "c";
    assert.equal(moveTarget(state, 1), "c");
    assert.equal(moveTarget(loaded([]), 1), null);
  });
});

describe("deadline reminders", () => {
  const FIVE = 5 * MINUTE;

  test("a card within five minutes of its deadline reminds once", () => {
    const state = loaded([card("a", { expires_at: iso(4 * MINUTE), created_at: iso(-60 * MINUTE) }), card("b")]);
    assert.deepEqual(takeReminders(state, NOW, FIVE), [{ id: "a", left: 4 * MINUTE }]);
    assert.deepEqual(takeReminders(state, NOW + 1000, FIVE), []);
  });

  test("a card created already that close to its deadline, or past it, does not remind", () => {
    const state = loaded([
      card("short", { expires_at: iso(4 * MINUTE), created_at: iso(-30 * 1000) }),
      card("past", { expires_at: iso(-1000), created_at: iso(-60 * MINUTE) }),
    ]);
    assert.deepEqual(takeReminders(state, NOW, FIVE), []);
  });
});

describe("quorum", () => {
  test("a single-approval card shows no quorum", () => {
    assert.equal(quorumView(card("a"), "alice"), null);
  });

  test("who approved so far, and my vote stops me voting twice", () => {
    assert.deepEqual(quorumView(card("a", { required_approvals: 2 }), "alice"), {
      text: "Approvals 0 of 2.",
      voted: false,
      approveText: "Approve",
    });
    assert.deepEqual(quorumView(card("a", { required_approvals: 3, approved_by: ["alice", "bob"] }), "alice"), {
      text: "Approvals 2 of 3: alice, bob.",
      voted: true,
      approveText: "You approved: waiting for another reviewer",
    });
  });
});

describe("selection and filters", () => {
  test("only cards on the page can be selected, and they are listed in page order", () => {
    const state = loaded(["a", "b", "c"]);
    assert.equal(toggleSelected(state, "c", true), true);
    assert.equal(toggleSelected(state, "a", true), true);
    assert.equal(toggleSelected(state, "nope", true), false);
    assert.deepEqual(selectedIds(state), ["a", "c"]);
    assert.equal(toggleSelected(state, "a", false), false);
    assert.deepEqual(selectedIds(state), ["c"]);
  });

  test("the selection's action types", () => {
    const state = loaded(["a", card("b", { action_type: "close_ticket" })]);
    toggleSelected(state, "a", true);
    assert.deepEqual([...selectionTypes(state)], ["send_external_email"]);
    toggleSelected(state, "b", true);
    assert.equal(selectionTypes(state).size, 2);
  });

  test("setting a filter replaces the filters object and keeps \"mine\" a boolean", () => {
    const state = createState();
    const before = state.filters;
    setFilter(state, "mine", "on");
    setFilter(state, "risk", "high");
    assert.notEqual(state.filters, before);
    assert.equal(state.filters.mine, true);
    assert.equal(state.filters.risk, "high");
    assert.equal(before.mine, false);
  });
});

describe("a removal's facets keep the counts without asking the server", () => {
  const facets = { action_type: "send_email", agent: "bot", risk: "high", group: "" };
  const counted = () => ({
    action_type: { send_email: 2, refund: 1 },
    agent: { bot: 3 },
    risk: { high: 2, low: 1 },
    group: { "": 3 },
  });

  test("a card decided elsewhere, not on the page, comes off every facet and the total", () => {
    const state = createState();
    state.counts = counted();
    state.total = 3;

    assert.equal(countsAfterRemoval(state, "x", facets), true);

    assert.deepEqual(state.counts.action_type, { send_email: 1, refund: 1 });
    assert.deepEqual(state.counts.risk, { high: 1, low: 1 });
    assert.equal(state.total, 2);
  });

  test("a card that was on the page is not taken off the total twice", () => {
    const state = createState();
    state.counts = counted();
    state.total = 3;
    state.cards.set("x", { id: "x" });
    state.order.push("x");
    cardRemoved(state, "x");

    assert.equal(countsAfterRemoval(state, "x", facets), true);

    assert.equal(state.total, 2);
    assert.deepEqual(state.counts.agent, { bot: 2 });
  });

  test("a filtered-out card still comes off the count of the value that would show it", () => {
    const state = createState({ filters: { risk: "low" } });
    state.counts = counted();
    state.total = 1;

    assert.equal(countsAfterRemoval(state, "x", facets), true);

    assert.deepEqual(state.counts.risk, { high: 1, low: 1 });
    assert.deepEqual(state.counts.agent, { bot: 3 });
    assert.equal(state.total, 1);
  });

  test("the last card of a value takes the value off the facet", () => {
    const state = createState();
    state.counts = { action_type: { send_email: 1 }, agent: {}, risk: {}, group: {} };

    countsAfterRemoval(state, "x", facets);

    assert.deepEqual(state.counts.action_type, {});
  });

  test("with a search on, a card that was not on the page needs the server", () => {
    const state = createState({ filters: { q: "refund" } });
    state.counts = counted();

    assert.equal(countsAfterRemoval(state, "x", facets), false);
    assert.deepEqual(state.counts, counted());
  });

  test("an event without facets (an older server) needs the server", () => {
    const state = createState();
    assert.equal(countsAfterRemoval(state, "x", undefined), false);
  });
});
