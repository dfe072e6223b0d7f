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
      // A redirect (the session ended) is not followed here: the reload below follows it,
      // so the sign-in page it leads to says why.
      response = await fetch(window.location.href, {
        credentials: "same-origin",
        redirect: "manual",
      });
    } catch (err) {
      refreshLater(region); // the server is restarting: try again
      return;
    }
    if (response.type === "opaqueredirect" || !response.ok) {
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
