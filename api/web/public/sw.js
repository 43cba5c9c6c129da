// The page's service worker: registered only once the user opts in to notifications. It shows
// the Web Push messages the server sends while the user has no live connection (docs/notifications.md).
self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : '' };
  }
  const options = { body: data.body || '', data: { roomId: data.roomId } };
  // one notification per room: a newer one replaces the one still shown
  if (data.roomId) options.tag = `room-${data.roomId}`;
  event.waitUntil(self.registration.showNotification(data.title || 'New message', options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
    const open = windows.find((w) => 'focus' in w);
    return open ? open.focus() : self.clients.openWindow('/');
  }));
});
