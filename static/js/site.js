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

  // Install / uninstall without a page reload: the same POST a plain form makes, then the
  // agent page it redirects to lends its fresh stats and button to this one.
  function toggleInstall(form, event) {
    if (!window.fetch || !window.FormData || !window.DOMParser) return;
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok || !response.redirected) throw new Error(response.status);
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      [".agent-stats", ".agent-action"].forEach(function (selector) {
        var old = document.querySelector(selector);
        var next = fresh.querySelector(selector);
        if (!old || !next) throw new Error("no " + selector);
        old.replaceWith(document.importNode(next, true));
      });
      var again = document.querySelector(".agent-action button");
      if (again) again.focus();
      var message = fresh.querySelector(".messages .message");
      if (message) announce(message.textContent);
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
