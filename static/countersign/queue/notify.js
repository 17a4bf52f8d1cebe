// Desktop notifications (opt-in, remembered per browser) and the unread count in the tab title.

import { unreadTitle } from "./format.js";

export const STORAGE_KEY = "countersign.notify";

export function createNotifier({ win, doc, toggle, flash }) {
  const supported = () => "Notification" in win;
  const wanted = () => win.localStorage.getItem(STORAGE_KEY) === "on" && supported() && win.Notification.permission === "granted";
  const baseTitle = doc.title;
  let unread = 0;

  function renderToggle() {
    const on = wanted();
    toggle.textContent = on ? "Notifications on" : "Enable notifications";
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    if (!supported()) toggle.hidden = true;
  }

  toggle.addEventListener("click", async () => {
    if (wanted()) {
      win.localStorage.setItem(STORAGE_KEY, "off");
      renderToggle();
      return;
    }
    const permission = await win.Notification.requestPermission();
    if (permission === "granted") win.localStorage.setItem(STORAGE_KEY, "on");
    else flash("The browser refused notifications; allow them in the site settings to turn them on.", "error");
    renderToggle();
  });

  doc.addEventListener("visibilitychange", () => {
    if (!doc.hidden) {
      unread = 0;
      doc.title = unreadTitle(baseTitle, unread);
    }
  });

  function notify(title, body, tag) {
    if (!wanted()) return;
    try {
      new win.Notification(title, { body, tag });
    } catch (err) {
      // some browsers only allow it from a service worker
    }
  }

  /** Something new arrived: count it in the title while the reviewer is in another tab. */
  function arrived() {
    if (!doc.hidden) return;
    unread += 1;
    doc.title = unreadTitle(baseTitle, unread);
  }

  renderToggle();
  return { notify, arrived };
}
