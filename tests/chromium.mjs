// Debian's Chromium for the browser tests (`make chromium`), driven by npm playwright-core:
// where it is and the flags that keep a headless run quiet and offline.

export const CHROMIUM = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
