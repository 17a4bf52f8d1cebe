// Countersign's service worker: shows a reviewer's push notifications and runs their actions.
// Served from /sw.js (scope /). A push carries, encrypted to this device, the request, the
// revision it showed and a token that lets this device's Approve act as its reviewer.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    return;
  }
  event.waitUntil(
    self.registration.showNotification(String(data.title || "Countersign"), {
      body: String(data.body || ""),
      tag: `countersign-${data.request_id}`,
      data,
      requireInteraction: true,
      actions: [
        { action: "open", title: "Open" },
        { action: "approve", title: "Approve" },
      ],
    }),
  );
});

// Approve from the notification: decide with the revision the notification was sent with, then say how it went.
async function approveFromNotification(data) {
  let message;
  try {
    const response = await fetch(data.decide_url || "/queue/push/decide", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: data.token }),
    });
    const body = await response.json().catch(() => ({}));
    message = response.ok ? String(body.message || "Approved") : String((body.error && body.error.message) || `Not approved (HTTP ${response.status})`);
  } catch (_) {
    message = "Not approved: Countersign could not be reached. Open the request to try again.";
  }
  try {
    await self.registration.showNotification("Countersign", { body: message, tag: `countersign-${data.request_id}`, data: { url: data.url } });
  } catch (_) {
    // Notifications were turned off since: the decision stands either way.
  }
  return message;
}
self.approveFromNotification = approveFromNotification;

async function openFromNotification(data) {
  const url = String(data.url || "/queue/");
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (client.url === url && "focus" in client) return client.focus();
  }
  return self.clients.openWindow(url);
}

self.addEventListener("notificationclick", (event) => {
  const data = event.notification.data || {};
  event.notification.close();
  event.waitUntil(event.action === "approve" && data.token ? approveFromNotification(data) : openFromNotification(data));
});
