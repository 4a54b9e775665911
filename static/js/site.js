/* Progressive enhancement only: every form here also works without this file. */
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("live-status");
    if (!region) {
      region = document.createElement("p");
      region.id = "live-status";
      region.className = "visually-hidden";
      region.setAttribute("role", "status");
      document.body.appendChild(region);
    }
    region.textContent = text;
  }

  // Install / uninstall without a page reload; the server answers JSON when asked for it.
  function toggleInstall(form, event) {
    if (!window.fetch || !window.FormData) return;
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.json();
    }).then(function (data) {
      var installed = data.installed;
      form.action = installed
        ? form.action.replace(/\/install\/$/, "/uninstall/")
        : form.action.replace(/\/uninstall\/$/, "/install/");
      button.textContent = installed ? "Uninstall" : "Install";
      button.className = installed ? "button button-secondary" : "button button-large";
      var count = document.querySelector("[data-install-count]");
      if (count && typeof data.install_count === "number") {
        count.textContent = data.install_count.toLocaleString("en-US");
        var unit = count.nextSibling;
        if (unit && unit.nodeType === 3) {
          unit.textContent = data.install_count === 1 ? " install" : " installs";
        }
      }
      var note = document.querySelector(".installed-note");
      if (note) note.hidden = !installed;
      announce(data.message);
    }).catch(function () {
      form.submit(); // fall back to the plain POST and its redirect
    }).then(function () {
      button.disabled = false;
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      return;
    }
    if (form.hasAttribute("data-install")) toggleInstall(form, event);
  });
})();
