// The kill switch's banners: one per paused agent or action type, kept in step with the server.
// The reducers are pure; renderPauses builds the banners with textContent only (dom.js): the
// agent's name, the action type and the staff member's reason are text, never markup.

/** The pauses in force, by id. */
export function createPauses(list = []) {
  return replacePauses(new Map(), list);
}

/** Everything replaced by the server's list (first load, reload after a reconnect). */
export function replacePauses(pauses, list) {
  pauses.clear();
  for (const pause of list || []) if (pause && pause.resumed_at == null) pauses.set(pause.id, pause);
  return pauses;
}

/** A socket message applied; true when it was a pause event (the banners must be drawn again). */
export function applyPauseMessage(pauses, message) {
  if (!message || !message.pause) return false;
  if (message.type === "paused") {
    pauses.set(message.pause.id, message.pause);
    return true;
  }
  if (message.type === "resumed") {
    pauses.delete(message.pause.id);
    return true;
  }
  return false;
}

/** One line per pause, oldest first: "agent support-bot paused by alice: reason". */
export function pauseLines(pauses) {
  return Array.from(pauses.values())
    .sort((a, b) => (a.paused_at < b.paused_at ? -1 : a.paused_at > b.paused_at ? 1 : a.id - b.id))
    .map((pause) => ({
      id: pause.id,
      text:
        (pause.kind === "agent" ? "agent " : "action type ") +
        pause.target +
        " paused by " +
        pause.paused_by +
        ": " +
        pause.reason,
    }));
}

/** Draw the banners into `container` (hidden when nothing is paused). */
export function renderPauses(container, pauses, el) {
  const lines = pauseLines(pauses);
  container.replaceChildren(
    ...lines.map((line) => el("p", { className: "banner paused", "data-pause-id": line.id, text: line.text })),
  );
  container.hidden = lines.length === 0;
}
