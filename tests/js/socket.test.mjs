import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CLOSE_FORBIDDEN, createSocket, queueSocketUrl, reconnectDelay } from "../../static/countersign/queue/socket.js";

/** A WebSocket stand-in the test drives: open(), receive(), close(code). */
function fakeWebSocketClass() {
  const made = [];
  class FakeWebSocket {
    static OPEN = 1;
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.listeners = {};
      made.push(this);
    }
    addEventListener(type, listener) {
      (this.listeners[type] ||= []).push(listener);
    }
    emit(type, event = {}) {
      for (const listener of this.listeners[type] || []) listener(event);
    }
    send(data) {
      this.sent.push(JSON.parse(data));
    }
    open() {
      this.readyState = 1;
      this.emit("open");
    }
    receive(data) {
      this.emit("message", { data: typeof data === "string" ? data : JSON.stringify(data) });
    }
    close(code = 1006) {
      this.readyState = 3;
      this.emit("close", { code });
    }
  }
  return { FakeWebSocket, made };
}

function harness() {
  const { FakeWebSocket, made } = fakeWebSocketClass();
  const events = [];
  const timers = [];
  const socket = createSocket({
    url: "ws://example/ws/queue/",
    WebSocketImpl: FakeWebSocket,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    random: () => 1,
    onOpen: (info) => events.push(["open", info]),
    onMessage: (message) => events.push(["message", message]),
    onClose: (info) => events.push(["close", info]),
  });
  return { socket, made, events, timers };
}

describe("reconnectDelay", () => {
  test("doubles from one second and stops growing at thirty", () => {
    assert.equal(reconnectDelay(1, () => 1), 1000);
    assert.equal(reconnectDelay(2, () => 1), 2000);
    assert.equal(reconnectDelay(5, () => 1), 16000);
    assert.equal(reconnectDelay(6, () => 1), 30000);
    assert.equal(reconnectDelay(40, () => 1), 30000);
  });

  test("jitter takes it down to as little as half", () => {
    assert.equal(reconnectDelay(2, () => 0), 1000);
    assert.equal(reconnectDelay(2, () => 0.5), 1500);
  });
});

test("queueSocketUrl follows the page's scheme and host", () => {
  assert.equal(queueSocketUrl({ protocol: "https:", host: "cs.example.org" }), "wss://cs.example.org/ws/queue/");
  assert.equal(queueSocketUrl({ protocol: "http:", host: "localhost:8000" }), "ws://localhost:8000/ws/queue/");
});

describe("createSocket", () => {
  test("the first open is not a reconnect; messages arrive parsed", () => {
    const { socket, made, events } = harness();
    socket.connect();
    made[0].open();
    made[0].receive({ type: "added", card: { id: "a" } });
    assert.deepEqual(events, [["open", { reconnected: false }], ["message", { type: "added", card: { id: "a" } }]]);
  });

  test("a message that is not JSON is dropped, and the next one still arrives", () => {
    const { socket, made, events } = harness();
    socket.connect();
    made[0].receive("not json{");
    made[0].receive({ type: "hello" });
    assert.deepEqual(events, [["message", { type: "hello" }]]);
  });

  test("after a drop it reconnects later, and that open is a reconnect (the page must resynchronise)", () => {
    const { socket, made, events, timers } = harness();
    socket.connect();
    made[0].open();
    made[0].close(1006);
    assert.deepEqual(events.at(-1), ["close", { forbidden: false, delay: 1000 }]);
    assert.equal(timers.length, 1);
    assert.equal(timers[0].ms, 1000);
    timers[0].fn();
    assert.equal(made.length, 2);
    made[1].open();
    assert.deepEqual(events.at(-1), ["open", { reconnected: true }]);
  });

  test("repeated failures back off, and a successful open resets the count", () => {
    const { socket, made, timers } = harness();
    socket.connect();
    made[0].close();
    timers[0].fn();
    made[1].close();
    assert.deepEqual(timers.map((t) => t.ms), [1000, 2000]);
    timers[1].fn();
    made[2].open();
    made[2].close();
    assert.equal(timers[2].ms, 1000);
  });

  test("a refusal (not a reviewer) is final: no reconnect", () => {
    const { socket, made, events, timers } = harness();
    socket.connect();
    made[0].close(CLOSE_FORBIDDEN);
    assert.deepEqual(events, [["close", { forbidden: true, delay: null }]]);
    assert.equal(timers.length, 0);
  });

  test("send only writes to an open socket", () => {
    const { socket, made } = harness();
    socket.send({ type: "claim", id: "early" });
    socket.connect();
    socket.send({ type: "claim", id: "connecting" });
    made[0].open();
    socket.send({ type: "claim", id: "a" });
    made[0].close();
    socket.send({ type: "release", id: "a" });
    assert.deepEqual(made[0].sent, [{ type: "claim", id: "a" }]);
  });
});
