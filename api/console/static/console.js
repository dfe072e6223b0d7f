// Live pages: an element with data-refresh="ms" is fetched again every so many milliseconds
// and swapped for the server's fresh copy, until the server sends it without data-refresh
// (the work has ended). A session that ended meanwhile reloads into the sign-in page.
"use strict";

function refreshLater(region) {
  const every = parseInt(region.dataset.refresh, 10);
  if (!every) {
    return;
  }
  window.setTimeout(async () => {
    let response;
    try {
      response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "X-Console-Refresh": "1" },
      });
    } catch (err) {
      refreshLater(region); // the server is restarting: try again
      return;
    }
    if (!response.ok || response.redirected) {
      window.location.reload();
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById(region.id);
    if (!fresh) {
      window.location.reload();
      return;
    }
    region.replaceWith(fresh);
    refreshLater(fresh);
  }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refreshLater);
});
