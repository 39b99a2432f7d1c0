// The console's few behaviours, all progressive: every form works without this file.
"use strict";

(function () {
  function csrf() {
    const field = document.querySelector('input[name="csrf"]');
    return field ? field.value : "";
  }

  function post(form) {
    return fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf() },
      credentials: "same-origin",
    }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  // --- the simulator: send without reloading, keep the keyboard in the message box --------
  function initSimulator() {
    const log = document.getElementById("chat");
    if (!log) { return; }
    const input = document.getElementById("sim-text");
    const status = document.getElementById("sim-status");
    const scroll = function () { log.scrollTop = log.scrollHeight; };
    scroll();
    document.addEventListener("submit", function (event) {
      const form = event.target;
      if (!form.matches("form[data-sim]")) { return; }
      event.preventDefault();
      const buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      if (status) { status.textContent = "Sending…"; }
      post(form).then(function (data) {
        log.insertAdjacentHTML("beforeend", data.html);
        if (form.id === "composer" && input) { input.value = ""; }
        if (status) { status.textContent = data.status || ""; }
        scroll();
      }).catch(function (err) {
        if (status) { status.textContent = "Could not send (" + err.message + "). Reload the page."; }
      }).finally(function () {
        buttons.forEach(function (b) { b.disabled = false; });
        if (input) { input.focus(); }
      });
    });
  }

  // --- the broadcast composer: segments and cost as you type -------------------------------
  function initCost() {
    const boxes = document.querySelectorAll("textarea[data-cost]");
    boxes.forEach(function (box) {
      const out = document.getElementById(box.getAttribute("data-cost"));
      const final = document.getElementById(box.getAttribute("data-final"));
      let timer = null;
      let seq = 0;
      const update = function () {
        const mine = ++seq;
        const url = "/console/broadcasts/cost?lang=" + encodeURIComponent(box.getAttribute("data-lang")) +
          "&text=" + encodeURIComponent(box.value);
        fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            if (mine !== seq) { return; }
            if (out) { out.innerHTML = data.summary_html; }
            if (final) { final.textContent = data.final; }
          })
          .catch(function () { /* the count shows again on the next keystroke */ });
      };
      box.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(update, 200);
      });
    });
  }

  // --- a broadcast's progress: poll its counts ---------------------------------------------
  function initProgress() {
    const box = document.querySelector("[data-poll]");
    if (!box) { return; }
    const url = box.getAttribute("data-poll");
    const bar = box.querySelector("progress");
    const tick = function () {
      if (document.hidden) { return; }
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          Object.keys(data.text).forEach(function (key) {
            box.querySelectorAll('[data-k="' + key + '"]').forEach(function (el) {
              el.textContent = data.text[key];
            });
          });
          Object.keys(data.html || {}).forEach(function (key) {
            box.querySelectorAll('[data-h="' + key + '"]').forEach(function (el) {
              if (el.innerHTML !== data.html[key]) { el.innerHTML = data.html[key]; }
            });
          });
          if (bar) { bar.max = Math.max(data.total, 1); bar.value = data.done; }
        })
        .catch(function () { /* try again at the next tick */ });
    };
    setInterval(tick, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSimulator();
    initCost();
    initProgress();
  });
})();
