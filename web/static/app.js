// mirrord web UI: live sync progress and the write actions (promote,
// rollback, start a sync). Every page is complete without this script.
//
// The write token is kept in sessionStorage (this tab only) and sent as
// "Authorization: Bearer"; no cookie carries authority, so another site
// cannot make this browser act (CSRF-safe by construction).
"use strict";
(function () {
  document.documentElement.classList.add("js");
  var KEY = "mirrord-token";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function token() { try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; } }

  function say(text, ok) {
    var m = $("#action-msg");
    if (!m) return;
    m.className = "msg " + (ok ? "ok" : "err");
    m.textContent = text;
  }

  // api calls the JSON API; it rejects with the API's own error message.
  function api(method, path, body) {
    var h = { "Accept": "application/json" };
    var t = token();
    if (t) h["Authorization"] = "Bearer " + t;
    if (body !== undefined) h["Content-Type"] = "application/json";
    return fetch(path, { method: method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store" })
      .then(function (r) {
        return r.text().then(function (txt) {
          var data = null;
          try { data = txt ? JSON.parse(txt) : null; } catch (e) { /* not JSON */ }
          if (!r.ok) {
            var msg = data && data.error ? data.error : (txt || r.statusText);
            throw new Error(r.status + ": " + msg);
          }
          return data;
        });
      });
  }

  function setupToken() {
    var box = $("#token-box");
    if (!box) return;
    var input = $("#token", box), state = $("#token-state", box);
    function show() {
      var has = token() !== "";
      state.textContent = has ? "token set for this tab" : "no token";
      $("#token-forget", box).hidden = !has;
      input.value = "";
    }
    $("#token-form", box).addEventListener("submit", function (ev) {
      ev.preventDefault();
      var v = input.value.trim();
      if (v) sessionStorage.setItem(KEY, v);
      show();
    });
    $("#token-forget", box).addEventListener("click", function () { sessionStorage.removeItem(KEY); show(); });
    show();
  }

  function needToken() {
    if (token()) return true;
    say("Enter the write token (auth.token_file on the server) in the box at the top first.", false);
    var i = $("#token");
    if (i) i.focus();
    return false;
  }

  function act(btn, what, run) {
    btn.addEventListener("click", function () {
      if (!needToken()) return;
      btn.disabled = true;
      say("", true);
      run().catch(function (e) { say(what + " failed, nothing changed: " + e.message, false); btn.disabled = false; });
    });
  }

  function setupActions() {
    document.querySelectorAll("[data-action=promote]").forEach(function (b) {
      act(b, "Promote", function () {
        var ch = b.dataset.channel, id = b.dataset.snapshot;
        return api("POST", "/api/v1/channels/" + encodeURIComponent(ch) + "/promote", { snapshot: id })
          .then(function (r) {
            say("Promoted: " + ch + " now points at " + r.snapshot + ".", true);
            setTimeout(function () { location.href = "/ui/channels/" + encodeURIComponent(ch) + "?done=promote"; }, 600);
          });
      });
    });
    document.querySelectorAll("[data-action=rollback]").forEach(function (b) {
      act(b, "Rollback", function () {
        var ch = b.dataset.channel;
        return api("POST", "/api/v1/channels/" + encodeURIComponent(ch) + "/rollback")
          .then(function (r) {
            say("Rolled back: " + ch + " now points at " + r.snapshot + ".", true);
            setTimeout(function () { location.href = "/ui/channels/" + encodeURIComponent(ch) + "?done=rollback"; }, 600);
          });
      });
    });
    document.querySelectorAll("[data-action=sync]").forEach(function (b) {
      act(b, "Starting the sync", function () {
        return api("POST", "/api/v1/syncs", {}).then(function (r) { location.href = "/ui/syncs/" + r.id; });
      });
    });
  }

  // ---- live sync page ----
  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
  }
  function fmtDur(s) {
    if (!s || s < 0) return "";
    s = Math.round(s);
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m " + (s % 60) + "s";
    return Math.floor(m / 60) + "h " + (m % 60) + "m";
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  // A task's amounts in its unit: bytes as bytes, items as counts.
  function amount(t, n) { return t.unit === "bytes" ? fmtBytes(n) : String(n) + " " + t.unit; }

  function renderSync(st) {
    var state = $("#sync-state");
    state.textContent = st.state;
    state.className = "badge b-" + st.state;
    var body = $("#sync-tasks tbody");
    body.textContent = "";
    st.tasks.forEach(function (t) {
      var tr = document.createElement("tr");
      tr.dataset.task = t.name;
      cell(tr, t.name, "mono");
      cell(tr, amount(t, t.done), "num done");
      cell(tr, t.total ? amount(t, t.total) : "?", "num");
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = t.percent < 0 ? (t.state === "running" ? 0 : 100) : t.percent;
      bar.setAttribute("aria-label", t.name + " progress");
      cell(tr, bar);
      cell(tr, t.rate ? fmtBytes(t.rate) + "/s" : "", "num");
      cell(tr, t.state === "running" ? fmtDur(t.eta_seconds) : fmtDur(t.elapsed_seconds), "num");
      var b = document.createElement("span");
      b.className = "badge b-" + t.state;
      b.textContent = t.state;
      cell(tr, b).title = t.error || "";
      body.appendChild(tr);
    });
    $("#sync-notasks").hidden = st.tasks.length > 0;
    var log = $("#sync-log");
    log.textContent = "";
    st.log.forEach(function (l) {
      var line = document.createElement("div");
      line.className = "lvl-" + l.level;
      line.textContent = l.time.slice(11, 19) + " " + l.level + " " + l.msg + (l.attrs ? " " + l.attrs : "");
      log.appendChild(line);
    });
    log.scrollTop = log.scrollHeight;
    var res = $("#sync-result");
    if (st.state === "succeeded") {
      res.className = "msg ok";
      res.textContent = "";
      res.appendChild(document.createTextNode("Snapshot "));
      var a = document.createElement("a");
      a.href = "/ui/snapshots/" + st.snapshot;
      a.className = "mono";
      a.id = "sync-snapshot";
      a.textContent = st.snapshot;
      res.appendChild(a);
      res.appendChild(document.createTextNode(" written."));
    } else if (st.state === "failed") {
      res.className = "msg err";
      res.textContent = "Sync failed: " + st.error;
    }
  }

  function setupSync() {
    var main = $("main[data-sync]");
    if (!main || !window.EventSource) return;
    var es = new EventSource("/api/v1/syncs/" + main.dataset.sync + "/events");
    es.addEventListener("status", function (ev) { renderSync(JSON.parse(ev.data)); });
    es.addEventListener("end", function () { es.close(); });
    es.onerror = function () { if (es.readyState === EventSource.CLOSED) return; };
  }

  // The overview follows a running sync and reloads when it ends.
  function setupOverviewSync() {
    var el = $("#overview-sync[data-live]");
    if (!el || !window.EventSource) return;
    var es = new EventSource("/api/v1/syncs/" + el.dataset.live + "/events");
    es.addEventListener("status", function (ev) {
      var st = JSON.parse(ev.data);
      $("#overview-sync-progress").textContent = st.tasks.map(function (t) {
        return t.name + " " + amount(t, t.done) + (t.total ? "/" + amount(t, t.total) : "");
      }).join(" · ");
      if (st.state !== "running") { es.close(); location.reload(); }
    });
  }

  setupToken();
  setupOverviewSync();
  setupActions();
  setupSync();
})();
