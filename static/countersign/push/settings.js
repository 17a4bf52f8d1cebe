// The push settings page: enable or disable push notifications on this device.
"use strict";

const root = document.getElementById("push-settings");
const status = document.getElementById("push-status");

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function keyBytes(base64url) {
  const padded = (base64url + "=".repeat((4 - (base64url.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function say(text) {
  status.textContent = text;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new Error((answer.error && answer.error.message) || `HTTP ${response.status}`);
  }
}

async function enable() {
  const registration = await navigator.serviceWorker.ready;
  if ((await Notification.requestPermission()) !== "granted") {
    say("Notifications are blocked for this site in this browser.");
    return;
  }
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: keyBytes(root.dataset.vapidKey),
  });
  await post(root.dataset.subscribeUrl, { subscription: subscription.toJSON(), device: navigator.userAgent });
  say("Push is on for this device.");
}

async function disable() {
  const registration = await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.getSubscription();
  if (subscription) {
    await post(root.dataset.unsubscribeUrl, { endpoint: subscription.endpoint });
    await subscription.unsubscribe();
  }
  say("Push is off for this device.");
}

if (root && "serviceWorker" in navigator && "PushManager" in window) {
  navigator.serviceWorker.register(root.dataset.workerUrl, { scope: "/" }).then(
    () => {
      root.dataset.worker = "registered";
      say("This browser can receive push notifications.");
    },
    (error) => say(`The service worker did not register: ${error.message}`),
  );
  document.getElementById("push-enable").addEventListener("click", () => enable().catch((e) => say(`Not enabled: ${e.message}`)));
  document.getElementById("push-disable").addEventListener("click", () => disable().catch((e) => say(`Not disabled: ${e.message}`)));
} else if (root) {
  say("This browser does not support push notifications.");
}
