// The queue's websocket, reconnecting with capped, jittered backoff.
// The socket only carries events; what they mean for the page is state.js's business.

export const CLOSE_FORBIDDEN = 4403; // the consumer's "you are not a reviewer": do not retry
const OPEN = 1;

export function reconnectDelay(attempts, random = Math.random) {
  return Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.5 + random() / 2);
}

export function queueSocketUrl(location) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/queue/";
}

/**
 * connect() opens the socket; each time it opens, onOpen({reconnected}) runs (reconnected:
 * events may have been missed while it was down); each message is parsed and handed to
 * onMessage; when it closes, onClose({forbidden, delay}) runs and, unless forbidden, it
 * reconnects after `delay` ms.
 */
export function createSocket({
  url,
  onOpen = () => {},
  onMessage = () => {},
  onClose = () => {},
  WebSocketImpl = globalThis.WebSocket,
  setTimer = (fn, ms) => setTimeout(fn, ms),
  random = Math.random,
}) {
  let socket = null;
  let attempts = 0;

  function connect() {
    socket = new WebSocketImpl(url);
    socket.addEventListener("open", () => {
      const reconnected = attempts > 0;
      attempts = 0;
      onOpen({ reconnected });
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return; // not ours to act on
      }
      onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (event.code === CLOSE_FORBIDDEN) {
        onClose({ forbidden: true, delay: null });
        return;
      }
      attempts += 1;
      const delay = reconnectDelay(attempts, random);
      onClose({ forbidden: false, delay });
      setTimer(connect, delay);
    });
  }

  function send(message) {
    if (socket && socket.readyState === OPEN) socket.send(JSON.stringify(message));
  }

  return { connect, send };
}
