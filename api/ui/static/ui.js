// Behaviour every page shares: the CSRF header on htmx requests, confirmation of actions, a log that follows.
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  document.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // A form with data-confirm asks before it is sent (cancel, hold, release, rerun, priority, drain).
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // The log box stays scrolled to its end while "Follow" is on.
  const follow = () => {
    const box = document.getElementById("log-box");
    const on = document.getElementById("follow");
    if (box && (!on || on.checked)) box.scrollTop = box.scrollHeight;
  };
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "log-lines") follow();
  });
  document.addEventListener("DOMContentLoaded", follow);
})();
