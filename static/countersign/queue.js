// The live reviewer queue. Agent-supplied text is untrusted: it only ever reaches the
// page through textContent / attribute setters, never innerHTML (and the CSP forbids inline script).
(function () {
  "use strict";

  const queueEl = document.getElementById("queue");
  const emptyEl = document.getElementById("queue-empty");
  const countEl = document.getElementById("queue-count");
  const liveEl = document.getElementById("live-status");
  const flashEl = document.getElementById("flash");
  const cards = new Map(); // id -> {data, el}

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function flash(message, kind) {
    flashEl.textContent = message;
    flashEl.className = "flash " + (kind || "info");
    flashEl.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { flashEl.hidden = true; }, 8000);
  }

  function formatRemaining(ms) {
    if (ms <= 0) return "expired";
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m left";
    if (m > 0) return m + "m " + String(sec).padStart(2, "0") + "s left";
    return sec + "s left";
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function renderParams(params) {
    const dl = el("dl", { className: "params" });
    const keys = Object.keys(params || {});
    if (keys.length === 0) dl.appendChild(el("dd", { text: "(no parameters)" }));
    for (const key of keys) {
      const value = params[key];
      dl.appendChild(el("dt", { text: key }));
      dl.appendChild(el("dd", {}, [
        typeof value === "object" && value !== null
          ? el("pre", { text: pretty(value) })
          : el("span", { text: String(value) }),
      ]));
    }
    return dl;
  }

  function renderEvidence(card) {
    if (!card.evidence.length) return el("p", { className: "muted", text: "No evidence supplied." });
    const list = el("ul", { className: "evidence" });
    for (const item of card.evidence) {
      const title = item.href
        ? el("a", { href: item.href, target: "_blank", rel: "noopener noreferrer nofollow", text: item.title || item.href })
        : el("span", { className: "evidence-title", text: item.title || item.url || "(untitled)" });
      const children = [title];
      if (!item.href && item.url) children.push(el("span", { className: "muted url", text: " " + item.url }));
      if (item.excerpt) children.push(el("blockquote", { text: item.excerpt }));
      list.appendChild(el("li", {}, children));
    }
    if (card.evidence_total > card.evidence.length) {
      list.appendChild(el("li", { className: "muted", text: "+" + (card.evidence_total - card.evidence.length) + " more" }));
    }
    return list;
  }

  async function postDecision(card, payload, articleEl) {
    const status = articleEl.querySelector(".card-status");
    const buttons = articleEl.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = "Sending…";
    try {
      const response = await fetch("/queue/requests/" + encodeURIComponent(card.id) + "/decide", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(Object.assign({ revision: card.revision }, payload)),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        const verb = body.status === "approved" ? (body.edited ? "Approved with edits" : "Approved") : "Rejected";
        flash(verb + ": " + card.action_type + " from " + card.agent, "ok");
        removeCard(card.id);
        return;
      }
      const message = (body.error && body.error.message) || ("Request failed (" + response.status + ")");
      status.textContent = message;
      status.className = "card-status error";
      flash(message, "error");
      if (response.status === 409) {
        articleEl.classList.add("stale");
        setTimeout(() => removeCard(card.id), 4000);
      } else {
        buttons.forEach((b) => { b.disabled = false; });
      }
    } catch (err) {
      status.textContent = "Network error: the decision was not sent. Try again.";
      status.className = "card-status error";
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function renderCard(card) {
    const article = el("article", { className: "card risk-" + card.risk, "data-id": card.id, tabindex: "-1", "aria-labelledby": "t-" + card.id });
    const countdown = el("span", { className: "countdown", "data-expires": card.expires_at, "aria-label": "time left" });
    article.appendChild(el("header", {}, [
      el("h2", { id: "t-" + card.id }, [el("code", { text: card.action_type })]),
      el("span", { className: "badge risk", text: card.risk + " risk" }),
      countdown,
    ]));
    article.appendChild(el("p", { className: "summary", text: card.summary }));
    const meta = el("p", { className: "meta" }, [
      el("span", { text: "Agent " }), el("strong", { className: "agent", text: card.agent }),
      el("span", { text: card.confidence === null ? " · confidence not given" : " · confidence " + Math.round(card.confidence * 100) + "%" }),
      card.trace_id ? el("span", { className: "muted", text: " · trace " + card.trace_id }) : null,
    ]);
    article.appendChild(meta);
    article.appendChild(el("section", { className: "block" }, [el("h3", { text: "Proposed parameters" }), renderParams(card.params)]));
    article.appendChild(el("section", { className: "block" }, [el("h3", { text: "Evidence" }), renderEvidence(card)]));
    article.appendChild(el("p", { className: "policy" }, [
      el("span", { text: "Policy: " }), el("code", { text: card.policy }), el("span", { className: "muted", text: " (v" + card.policy_version + ") " + card.reason }),
    ]));

    const reason = el("input", { type: "text", name: "reason", className: "reason", placeholder: "Why? The agent reads this.", "aria-label": "Reason for rejection" });
    const note = el("input", { type: "text", name: "note", className: "note", placeholder: "Note (optional)", "aria-label": "Note" });
    const editor = el("textarea", { className: "params-editor", rows: "8", spellcheck: "false", "aria-label": "Edited parameters (JSON)" });
    editor.value = pretty(card.params);
    const original = el("pre", { className: "params-original", text: pretty(card.params) });
    const editPanel = el("div", { className: "edit-panel", hidden: true }, [
      el("div", { className: "side" }, [el("h4", { text: "Original" }), original]),
      el("div", { className: "side" }, [el("h4", { text: "Edited" }), editor]),
    ]);
    const approveBtn = el("button", { type: "button", className: "primary approve", text: "Approve" });
    const editBtn = el("button", { type: "button", className: "edit", text: "Edit" });
    const rejectBtn = el("button", { type: "button", className: "danger reject", text: "Reject" });
    const status = el("p", { className: "card-status", role: "status" });
    article.appendChild(editPanel);
    article.appendChild(el("div", { className: "decide" }, [note, reason]));
    article.appendChild(el("div", { className: "actions" }, [approveBtn, editBtn, rejectBtn]));
    article.appendChild(status);

    editBtn.addEventListener("click", () => {
      editPanel.hidden = !editPanel.hidden;
      approveBtn.textContent = editPanel.hidden ? "Approve" : "Approve with edits";
      if (!editPanel.hidden) editor.focus();
    });
    approveBtn.addEventListener("click", () => {
      const payload = { decision: "approve", note: note.value };
      if (!editPanel.hidden) {
        let edited;
        try { edited = JSON.parse(editor.value); } catch (err) {
          status.textContent = "The edited parameters are not valid JSON: " + err.message;
          status.className = "card-status error";
          editor.setAttribute("aria-invalid", "true");
          return;
        }
        if (typeof edited !== "object" || edited === null || Array.isArray(edited)) {
          status.textContent = "The edited parameters must be a JSON object.";
          status.className = "card-status error";
          return;
        }
        payload.params = edited;
      }
      postDecision(card, payload, article);
    });
    rejectBtn.addEventListener("click", () => {
      if (!reason.value.trim()) {
        status.textContent = "Give a reason: the agent uses it to do better.";
        status.className = "card-status error";
        reason.focus();
        return;
      }
      postDecision(card, { decision: "reject", reason: reason.value, note: note.value }, article);
    });
    return el("li", {}, [article]);
  }

  function refreshCount() {
    countEl.textContent = String(cards.size);
    emptyEl.hidden = cards.size !== 0;
  }

  function insertSorted(card) {
    const item = renderCard(card);
    let before = null;
    for (const other of cards.values()) {
      if (other.data.expires_at > card.expires_at && (!before || other.data.expires_at < before.data.expires_at)) before = other;
    }
    queueEl.insertBefore(item, before ? before.el : null);
    cards.set(card.id, { data: card, el: item });
  }

  function addCard(card) {
    if (cards.has(card.id)) return;
    insertSorted(card);
    refreshCount();
    tick();
  }

  function removeCard(id) {
    const entry = cards.get(id);
    if (!entry) return;
    entry.el.remove();
    cards.delete(id);
    refreshCount();
  }

  function replaceAll(list) {
    const incoming = new Set(list.map((c) => c.id));
    for (const id of Array.from(cards.keys())) if (!incoming.has(id)) removeCard(id);
    for (const card of list) addCard(card);
  }

  function tick() {
    const now = Date.now();
    for (const { data, el: item } of cards.values()) {
      const left = Date.parse(data.expires_at) - now;
      const node = item.querySelector(".countdown");
      node.textContent = formatRemaining(left);
      node.classList.toggle("urgent", left < 5 * 60 * 1000);
      if (left <= 0) item.querySelector("article").classList.add("stale");
    }
  }

  async function resync() {
    try {
      const response = await fetch("/queue/cards.json", { credentials: "same-origin" });
      if (response.ok) replaceAll((await response.json()).cards);
    } catch (err) { /* the next reconnect resyncs again */ }
  }

  let socket = null;
  let attempts = 0;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/queue/");
    socket.addEventListener("open", () => {
      const wasReconnect = attempts > 0;
      attempts = 0;
      liveEl.textContent = "Live: new requests appear by themselves.";
      liveEl.className = "live ok";
      document.body.dataset.live = "on";
      if (wasReconnect) resync();
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "added") addCard(message.card);
      else if (message.type === "removed") {
        if (cards.has(message.id) && message.by) {
          const card = cards.get(message.id).data;
          flash(card.action_type + " from " + card.agent + " is " + message.status + " (" + message.by + ")", "info");
        }
        removeCard(message.id);
      }
    });
    socket.addEventListener("close", (event) => {
      document.body.dataset.live = "off";
      if (event.code === 4403) { liveEl.textContent = "You are not a reviewer: live updates are off."; return; }
      attempts += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.5 + Math.random() / 2);
      liveEl.textContent = "Live updates are down; reconnecting in " + Math.round(delay / 1000) + "s…";
      liveEl.className = "live down";
      setTimeout(connect, delay);
    });
  }

  const initial = JSON.parse(document.getElementById("queue-data").textContent);
  for (const card of initial) addCard(card);
  refreshCount();
  setInterval(tick, 1000);
  connect();
})();
