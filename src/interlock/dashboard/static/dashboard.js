/* interlock dashboard: live updates without reload, and a few conveniences.
   Each [data-live] region is re-fetched every data-every seconds as a fragment
   (the server renders only the page's live part; everything in it is escaped
   there) unless the tab is hidden, focus is inside it, or rows are selected. */
(function () {
  "use strict";

  function held(region) {
    var active = document.activeElement;
    if (active && active !== document.body && region.contains(active)) return true;
    return region.hasAttribute("data-hold-when-selected") &&
      region.querySelector("input[type=checkbox]:checked") !== null;
  }

  function poll(region) {
    var every = Math.max(1, Number(region.getAttribute("data-every")) || 5) * 1000;
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden || held(region)) return;
      busy = true;
      fetch(region.getAttribute("data-live"), {
        headers: { "X-Dashboard-Fragment": "1" },
        credentials: "same-origin",
        cache: "no-store",
        redirect: "manual"
      }).then(function (response) {
        if (response.status === 401 || response.type === "opaqueredirect") {
          window.location.reload();
          return null;
        }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html !== null && !held(region)) {
          region.innerHTML = html;
          region.setAttribute("data-updated", String(Date.now()));
        }
      }).catch(function () { /* try again at the next tick */ })
        .then(function () { busy = false; });
    }, every);
  }

  function selectAll(event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-select-all]")) return;
    var table = box.closest("table");
    if (!table) return;
    table.querySelectorAll("tbody input[type=checkbox]").forEach(function (each) {
      each.checked = box.checked;
    });
  }

  document.addEventListener("change", selectAll);
  document.querySelectorAll("[data-live]").forEach(poll);
})();
