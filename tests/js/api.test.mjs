import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MAX_WINDOW_PAGES, createApi, csrfToken, decideUrl, queryString } from "../../static/countersign/queue/api.js";
import { DEFAULT_FILTERS } from "../../static/countersign/queue/state.js";

/** A fetch stand-in: answers each call with the next of `answers`, and records what it was asked. */
function fakeFetch(answers) {
  const calls = [];
  const fetchImpl = async (url, options) => {
    calls.push({ url, options });
    const answer = typeof answers === "function" ? answers(url, calls.length) : answers[calls.length - 1];
    return { ok: answer.status < 400, status: answer.status, json: async () => answer.body };
  };
  return { fetchImpl, calls };
}

const params = (url) => Object.fromEntries(new URL(url, "http://x").searchParams);

describe("csrfToken", () => {
  test("reads the csrftoken cookie among others, decoded", () => {
    assert.equal(csrfToken("a=1; csrftoken=abc%3D; b=2"), "abc=");
    assert.equal(csrfToken("csrftoken=first"), "first");
  });

  test("is empty without the cookie, and does not match a cookie that only ends in csrftoken", () => {
    assert.equal(csrfToken(""), "");
    assert.equal(csrfToken("xcsrftoken=nope"), "");
  });
});

describe("queryString", () => {
  test("leaves out the defaults", () => {
    assert.equal(queryString(DEFAULT_FILTERS), "");
  });

  test("sends the chosen filters, mine as 1, a non-default sort, and extras", () => {
    const filters = { ...DEFAULT_FILTERS, risk: "high", q: "refund & co", mine: true, sort: "risk" };
    assert.deepEqual(params("/?" + queryString(filters, { cursor: "C", counts: "0" })), {
      risk: "high",
      q: "refund & co",
      mine: "1",
      sort: "risk",
      cursor: "C",
      counts: "0",
    });
  });
});

describe("getState", () => {
  test("asks cards.json with the filters and returns the body", async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 200, body: { cards: [], total: 0 } }]);
    const body = await createApi({ fetchImpl }).getState({ ...DEFAULT_FILTERS, agent: "bot" });
    assert.deepEqual(body, { cards: [], total: 0 });
    assert.ok(calls[0].url.startsWith("/queue/cards.json?"));
    assert.deepEqual(params(calls[0].url), { agent: "bot" });
  });

  test("throws the server's message on an error answer", async () => {
    const { fetchImpl } = fakeFetch([{ status: 422, body: { error: { message: "sort must be one of deadline, risk." } } }]);
    await assert.rejects(createApi({ fetchImpl }).getState(DEFAULT_FILTERS), /sort must be one of/);
  });
});

describe("getWindow: the cards on the page, re-read from the server", () => {
  const pageOf = (ids, next) => ({ status: 200, body: { cards: ids.map((id) => ({ id })), claims: {}, total: 99, counts: { risk: {} }, next_cursor: next } });

  test("one page when it holds as many cards as wanted", async () => {
    const { fetchImpl, calls } = fakeFetch([pageOf(["a", "b", "c"], "C1")]);
    const window = await createApi({ fetchImpl }).getWindow(DEFAULT_FILTERS, 3);
    assert.equal(calls.length, 1);
    assert.deepEqual(window.cards.map((c) => c.id), ["a", "b", "c"]);
    assert.equal(window.next_cursor, "C1");
    assert.equal(window.total, 99);
  });

  test("follows the cursor, without counts, until it has as many as wanted", async () => {
    const { fetchImpl, calls } = fakeFetch([
      { ...pageOf(["a", "b"], "C1"), body: { ...pageOf(["a", "b"], "C1").body, claims: { a: { by: "bob" } } } },
      { ...pageOf(["c", "d"], "C2"), body: { ...pageOf(["c", "d"], "C2").body, claims: { d: { by: "carol" } }, total: -1 } },
      pageOf(["e", "f"], "C3"),
    ]);
    const window = await createApi({ fetchImpl }).getWindow({ ...DEFAULT_FILTERS, risk: "high" }, 5);
    assert.equal(calls.length, 3);
    assert.deepEqual(params(calls[1].url), { risk: "high", cursor: "C1", counts: "0" });
    assert.deepEqual(params(calls[2].url), { risk: "high", cursor: "C2", counts: "0" });
    assert.deepEqual(window.cards.map((c) => c.id), ["a", "b", "c", "d", "e", "f"]);
    assert.deepEqual(window.claims, { a: { by: "bob" }, d: { by: "carol" } });
    assert.equal(window.total, 99, "the total comes from the first page, which counted");
    assert.equal(window.next_cursor, "C3");
  });

  test("stops when the queue runs out", async () => {
    const { fetchImpl, calls } = fakeFetch([pageOf(["a"], "C1"), pageOf(["b"], null)]);
    const window = await createApi({ fetchImpl }).getWindow(DEFAULT_FILTERS, 50);
    assert.equal(calls.length, 2);
    assert.equal(window.next_cursor, null);
  });

  test("reads at most MAX_WINDOW_PAGES pages", async () => {
    const { fetchImpl, calls } = fakeFetch((url, n) => pageOf(["p" + n], "C" + n));
    await createApi({ fetchImpl }).getWindow(DEFAULT_FILTERS, 1000);
    assert.equal(calls.length, MAX_WINDOW_PAGES);
  });
});

describe("posting decisions", () => {
  test("a decision is a JSON POST with the CSRF token, and the answer is returned as is", async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 409, body: { error: { message: "Already decided by alice" } } }]);
    const api = createApi({ fetchImpl, cookie: () => "csrftoken=tok" });
    const answer = await api.decide("id/1", { decision: "approve", revision: 2 });
    assert.deepEqual(answer, { ok: false, status: 409, body: { error: { message: "Already decided by alice" } } });
    assert.equal(calls[0].url, decideUrl("id/1"));
    assert.equal(calls[0].url, "/queue/requests/id%2F1/decide");
    assert.equal(calls[0].options.method, "POST");
    assert.equal(calls[0].options.headers["X-CSRFToken"], "tok");
    assert.deepEqual(JSON.parse(calls[0].options.body), { decision: "approve", revision: 2 });
  });

  test("a batch goes to batch-decide", async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 200, body: { results: [] } }]);
    const answer = await createApi({ fetchImpl, cookie: () => "" }).decideBatch({ decision: "reject", items: [] });
    assert.equal(answer.ok, true);
    assert.equal(calls[0].url, "/queue/batch-decide");
  });
});
