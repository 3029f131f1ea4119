// relaygate dashboard: live fragments from Server-Sent Events, pairing countdown, copy buttons,
// CSV import with a progress bar. Plain JavaScript, no library, nothing from other sites.
"use strict";
(function () {
  var liveBadge = document.getElementById("live");
  var pending = new Map(); // element -> timer of a scheduled refresh

  function setLive(on) {
    if (!liveBadge) return;
    liveBadge.textContent = liveBadge.dataset[on ? "liveText" : "offlineText"];
    liveBadge.classList.toggle("on", on);
  }

  // Re-render one live region from the server (the same page with ?fragment=<name>).
  function refresh(el) {
    if (pending.has(el)) return;
    pending.set(el, setTimeout(function () {
      pending.delete(el);
      var url = new URL(el.dataset.url || window.location.href, window.location.href);
      url.searchParams.set("fragment", el.dataset.fragment);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
        if (r.status === 401) { window.location.assign("/signin"); return null; }
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html !== null && html !== undefined) { el.innerHTML = html; bind(el); }
      }).catch(function () {});
    }, Number(el.dataset.delay || 150))); // events coalesce: at most one re-render per delay
  }

  function onEvent(event) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var types = el.dataset.live.split(" ");
      if (types.indexOf(event.type) < 0) return;
      var match = el.dataset.match;
      if (match && (!event.data || event.data.request_id !== match)) return;
      refresh(el);
    });
  }

  var source = null, retryDelay = 1000, hadError = false;
  function connect() {
    if (!document.querySelector("[data-live]") && !liveBadge) return;
    source = new EventSource("/events?since=" + encodeURIComponent(document.body.dataset.eventsSince || ""));
    source.onopen = function () {
      setLive(true);
      retryDelay = 1000;
      if (hadError) { // missed events while away: re-render every live region once
        hadError = false;
        document.querySelectorAll("[data-live]").forEach(refresh);
      }
    };
    source.onmessage = function (m) {
      try { onEvent(JSON.parse(m.data)); } catch (e) { /* not ours */ }
    };
    source.addEventListener("signout", function () { window.location.assign("/signin"); });
    source.onerror = function () {
      setLive(false);
      hadError = true;
      if (source.readyState === EventSource.CLOSED) { // refused (not a network error): try again later
        source = null;
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }
    };
  }

  function countdowns(root) {
    root.querySelectorAll("[data-expires-at]").forEach(function (el) {
      var end = Date.parse(el.dataset.expiresAt);
      function tick() {
        var left = Math.max(0, Math.round((end - Date.now()) / 1000));
        if (left === 0) { el.textContent = el.dataset.expiredText; return; }
        el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
        setTimeout(tick, 1000);
      }
      tick();
    });
  }

  function bind(root) {
    countdowns(root);
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = document.getElementById(button.dataset.copy).textContent;
        if (navigator.clipboard) navigator.clipboard.writeText(text);
      });
    });
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
  }

  function importForm() {
    var form = document.getElementById("import-form");
    if (!form) return;
    var bar = document.getElementById("import-progress");
    var result = document.getElementById("import-result");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = form.elements.file.files[0];
      if (!file) return;
      var mode = form.elements.all_or_nothing.checked ? "all_or_nothing" : "partial";
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/recipients/import?mode=" + mode);
      xhr.setRequestHeader("Content-Type", "text/csv");
      xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
      bar.value = 0;
      result.textContent = "";
      xhr.upload.onprogress = function (p) { if (p.lengthComputable) bar.value = Math.round(p.loaded * 95 / p.total); };
      xhr.onload = function () {
        var data = {};
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = { error: xhr.statusText }; }
        if (xhr.status === 200) {
          bar.value = 100;
          result.className = "ok";
          result.textContent = form.dataset.doneText.replace("{imported}", data.imported).replace("{updated}", data.updated)
            .replace("{unchanged}", data.unchanged).replace("{errors}", data.errors_total);
          (data.errors || []).forEach(function (row) { // the first rows the import refused, and why
            var line = document.createElement("span");
            line.className = "error row-error";
            line.textContent = "\n" + row.line + ": " + row.reason;
            result.appendChild(line);
          });
        } else {
          result.className = "error";
          result.textContent = form.dataset.errorText + ": " + (data.error || xhr.status);
        }
      };
      xhr.onerror = function () { result.className = "error"; result.textContent = form.dataset.errorText; };
      xhr.send(file);
    });
  }

  bind(document);
  importForm();
  connect();
})();
