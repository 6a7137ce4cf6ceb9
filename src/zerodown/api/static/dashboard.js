/* zerodown dashboard: sign-out, the buttons of the incidents, alerts and backups pages, and
 * the live page that follows a service's SSE stream. Plain JavaScript, no dependencies. Every value from the server is put into the page with
 * textContent or setAttribute, never as HTML. */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var ACTION_HEADER = "X-Zerodown-Action";
  var CHART_SPAN_S = 300; // charts keep the last five minutes
  var CHART_MIN_SPAN_S = 60; // and show at least one
  var MAX_EVENTS = 80;
  var QUIET_EVENTS = { "rollout.sample": true };

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function num(value, digits) {
    if (value === null || value === undefined) return "—";
    return Number(value).toFixed(digits === undefined ? 1 : digits);
  }

  function pct(value) {
    if (value === null || value === undefined) return "—";
    return (100 * value).toFixed(2) + " %";
  }

  function when(value) {
    if (value === null || value === undefined) return "—";
    var d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (isNaN(d.getTime())) return String(value);
    var p = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
      p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function statusClass(status) {
    var s = String(status || "");
    if (["succeeded", "running", "pass", "healthy", "ok"].indexOf(s) >= 0) return "good";
    if (["failed", "rolled_back", "crashed", "fail", "unhealthy", "error", "firing"].indexOf(s) >= 0) return "bad";
    if (["progressing", "pending", "paused", "starting", "draining", "inconclusive"].indexOf(s) >= 0) return "busy";
    return "quiet";
  }

  function badge(text, status) {
    return el("span", "badge " + statusClass(status === undefined ? text : status), text);
  }

  function series(revision) { return "series-" + (Number(revision) % 6); }

  function stepText(step) {
    if ("setWeight" in step) return "weight " + step.setWeight + " %";
    if ("pause" in step) {
      var d = step.pause && step.pause.duration;
      return d === undefined || d === null ? "pause until promote" : "pause " + num(d) + " s";
    }
    if ("analysis" in step) return "analysis";
    return Object.keys(step).join(", ");
  }

  // --- sign-out (every page) ------------------------------------------------------------------
  var signOut = $("sign-out");
  if (signOut) {
    signOut.addEventListener("click", function () {
      var headers = {};
      headers[ACTION_HEADER] = "logout";
      fetch("/logout", { method: "POST", headers: headers, credentials: "same-origin" })
        .then(function () { window.location.assign("/"); });
    });
  }

  // --- buttons of the incidents, alerts and backups pages ---------------------------------------
  // A button names its API call: data-post (a path under /v1/), data-body (JSON), data-label,
  // data-confirm (a question first). On success the page reloads to show the new state, and
  // the outcome is shown once more after the reload.
  var FLASH_KEY = "zerodown.flash";

  function showResult(text, ok) {
    var node = $("action-result");
    if (!node) return;
    node.className = "action-result " + (ok ? "ok" : "bad");
    node.textContent = text;
  }

  function outcome(label, data) {
    if (data.verification) {
      var problems = (data.verification.problems || []).join("; ");
      return "backup #" + data.backup.id + " verified: " + data.verification.status +
        (problems ? " (" + problems + ")" : "");
    }
    if (data.silence) {
      return "silence " + data.silence.id.slice(0, 8) + " " + data.silence.status.state +
        " until " + when(data.silence.endsAt);
    }
    if (data.path) return "postmortem draft written to " + data.path;
    if (data.stage) return "INC-" + data.id + " is " + data.stage;
    return label + ": " + (data.message || "done");
  }

  function post(button) {
    var path = button.getAttribute("data-post");
    var label = button.getAttribute("data-label") || "action";
    if (path.indexOf("/v1/") !== 0) return;
    var question = button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    var headers = { "Content-Type": "application/json" };
    headers[ACTION_HEADER] = label;
    button.disabled = true;
    showResult(label + "…", true);
    fetch(path, {
      method: "POST",
      headers: headers,
      body: button.getAttribute("data-body") || "{}",
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (r) {
        if (r.ok) {
          // A verification that found corruption answers 200: it worked, the backup did not.
          var flash = {
            text: outcome(label, r.data),
            ok: !(r.data.verification && r.data.verification.status !== "ok"),
          };
          try {
            window.sessionStorage.setItem(FLASH_KEY, JSON.stringify(flash));
          } catch (e) { /* no session storage: the reload shows the state only */ }
          showResult(flash.text, flash.ok);
          window.location.reload();
          return;
        }
        var e = r.data.error || {};
        button.disabled = false;
        showResult(label + " refused (" + (e.code || "error") + "): " + (e.message || ""), false);
      })
      .catch(function (err) {
        button.disabled = false;
        showResult(label + " failed: " + err, false);
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll("button[data-post]"), function (b) {
    b.addEventListener("click", function () { post(b); });
  });
  try {
    var saved = window.sessionStorage.getItem(FLASH_KEY);
    if (saved) {
      window.sessionStorage.removeItem(FLASH_KEY);
      var shown = JSON.parse(saved);
      showResult(shown.text, shown.ok);
    }
  } catch (e) { /* no session storage, or not ours: nothing to show */ }

  // --- the live page ---------------------------------------------------------------------------
  var dataNode = $("page-data");
  if (!dataNode) return;
  var page = JSON.parse(dataNode.textContent);
  var service = page.service;
  var history = {}; // revision -> [{t, rate, error_rate, p95_ms}]
  var lastSnapshot = null;

  function renderHead(snap) {
    var rel = snap.release;
    var status = $("release-status");
    status.textContent = rel ? rel.status : "no release";
    status.className = "badge " + statusClass(rel ? rel.status : "none");
    var line = $("release-line");
    clear(line);
    if (rel) {
      line.appendChild(document.createTextNode("revision " + rel.revision + " · "));
      line.appendChild(el("span", "version", rel.version));
      var rest = " · " + rel.strategy;
      if (rel.stable && rel.active) rest += " · replacing revision " + rel.stable;
      line.appendChild(document.createTextNode(rest));
    }
    $("release-reason").textContent = rel ? rel.reason : "";
    var latest = $("latest-release");
    clear(latest);
    latest.hidden = !snap.latest;
    if (snap.latest) {
      latest.appendChild(document.createTextNode("Latest rollout: revision " + snap.latest.revision + " "));
      latest.appendChild(el("span", "version", snap.latest.version));
      latest.appendChild(document.createTextNode(" "));
      latest.appendChild(badge(snap.latest.status));
      latest.appendChild(document.createTextNode(" " + snap.latest.reason));
    }
    var active = !!(rel && rel.active);
    var paused = !!(rel && rel.status === "paused");
    var enabled = {
      promote: active,
      pause: active && !paused,
      resume: paused,
      abort: active,
      rollback: !!rel,
    };
    Array.prototype.forEach.call(document.querySelectorAll("button[data-action]"), function (b) {
      b.disabled = !enabled[b.getAttribute("data-action")];
    });
  }

  function renderWeights(snap) {
    var bar = $("weights-bar");
    clear(bar);
    var x = 0;
    snap.versions.forEach(function (v) {
      if (v.share <= 0) return;
      var rect = svgEl("rect", { x: x * 10, y: 0, width: v.share * 10, height: 28 });
      rect.setAttribute("class", series(v.revision));
      bar.appendChild(rect);
      x += v.share;
    });
    var legend = $("weights-legend");
    clear(legend);
    snap.versions.forEach(function (v) {
      var li = el("li");
      li.setAttribute("data-revision", v.revision);
      li.appendChild(el("span", "swatch " + series(v.revision)));
      li.appendChild(document.createTextNode("r" + v.revision + " "));
      li.appendChild(el("span", "version", v.version));
      if (v.role) {
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "muted", "(" + v.role + ")"));
      }
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("strong", "weight", Math.round(v.share) + " %"));
      legend.appendChild(li);
    });
    var rel = snap.release;
    var steps = $("steps");
    clear(steps);
    var stepLine = "";
    if (rel && rel.steps && rel.steps.length) {
      var inSteps = rel.phase === "steps";
      var index = rel.step || 0;
      rel.steps.forEach(function (step, i) {
        var cls = inSteps && index > i ? "done" : inSteps && index === i ? "current" : "";
        steps.appendChild(el("li", cls, stepText(step)));
      });
      stepLine = inSteps
        ? "step " + (Math.min(index, rel.steps.length - 1) + 1) + " of " + rel.steps.length
        : rel.phase || "starting";
      if (rel.analysis) stepLine += " · " + rel.analysis;
      if (rel.paused) stepLine += " · paused";
    }
    $("step-line").textContent = stepLine;
  }

  function renderVersions(snap) {
    var body = $("versions").tBodies[0];
    clear(body);
    snap.versions.forEach(function (v) {
      var tr = el("tr");
      tr.setAttribute("data-revision", v.revision);
      var name = el("td");
      name.appendChild(el("span", "swatch " + series(v.revision)));
      name.appendChild(document.createTextNode("r" + v.revision + " "));
      name.appendChild(el("span", "version", v.version));
      tr.appendChild(name);
      tr.appendChild(el("td", "", v.role || "—"));
      tr.appendChild(el("td", "num", Math.round(v.share) + " %"));
      tr.appendChild(el("td", "num", v.ready + " / " + v.instances));
      var t = v.traffic;
      tr.appendChild(el("td", "num", t ? num(t.rate) : "—"));
      tr.appendChild(el("td", "num", t ? pct(t.error_rate) : "—"));
      tr.appendChild(el("td", "num", t && t.p95_ms !== null ? num(t.p95_ms) + " ms" : "—"));
      body.appendChild(tr);
    });
    $("window-line").textContent = snap.traffic_measured
      ? "rates over the last " + Math.round(snap.window_s || 0) + " s"
      : "no traffic figures: the controller runs without the data plane";
  }

  function renderInstances(snap) {
    var body = $("instances").tBodies[0];
    clear(body);
    if (!snap.instances.length) {
      var tr = el("tr", "empty-row");
      var td = el("td", "", "No instances.");
      td.setAttribute("colspan", "6");
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    snap.instances.forEach(function (i) {
      var tr = el("tr");
      var id = el("td");
      id.appendChild(el("code", "", i.id));
      tr.appendChild(id);
      var version = el("td");
      version.appendChild(document.createTextNode("r" + i.revision + " "));
      version.appendChild(el("span", "version", i.version));
      tr.appendChild(version);
      var state = el("td");
      state.appendChild(badge(i.state));
      tr.appendChild(state);
      tr.appendChild(el("td", "", i.health));
      tr.appendChild(el("td", "num", i.restarts));
      var address = el("td");
      address.appendChild(el("code", "", i.address));
      tr.appendChild(address);
      body.appendChild(tr);
    });
  }

  function renderVerdicts(snap) {
    var body = $("verdicts").tBodies[0];
    clear(body);
    var verdicts = snap.release && snap.release.verdicts ? snap.release.verdicts.slice().reverse() : [];
    if (!verdicts.length) {
      var tr = el("tr", "empty-row");
      var td = el("td", "", "No verdicts for this release.");
      td.setAttribute("colspan", "4");
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    verdicts.forEach(function (v) {
      var tr = el("tr");
      tr.appendChild(el("td", "nowrap", when(v.t)));
      var label = el("td", "", v.label);
      label.appendChild(el("div", "muted small", v.judge + " · " + v.canary_requests +
        " canary / " + v.baseline_requests + " baseline requests"));
      tr.appendChild(label);
      var outcome = el("td");
      outcome.appendChild(badge(v.outcome));
      outcome.appendChild(el("div", "small", v.reason));
      tr.appendChild(outcome);
      var m = el("td");
      var list = el("ul", "measurements");
      (v.measurements || []).forEach(function (x) {
        var li = el("li");
        li.appendChild(badge(x.name, x.outcome));
        var text = " " + num(x.value, 4);
        if (x.limit !== null && x.limit !== undefined) text += " (limit " + num(x.limit, 4) + ")";
        if (x.baseline !== null && x.baseline !== undefined) text += ", baseline " + num(x.baseline, 4);
        li.appendChild(document.createTextNode(text));
        list.appendChild(li);
      });
      m.appendChild(list);
      tr.appendChild(m);
      body.appendChild(tr);
    });
  }

  // --- charts: one polyline per version over the last five minutes ----------------------------
  function niceMax(value) {
    if (!(value > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= value) return steps[i] * power;
    }
    return 10 * power;
  }

  function drawChart(svg, key, floor, format, now) {
    clear(svg);
    var W = 360, H = 150, L = 46, R = 8, T = 10, B = 20;
    var top = floor;
    var any = false;
    var oldest = now;
    Object.keys(history).forEach(function (rev) {
      history[rev].forEach(function (p) {
        if (p[key] !== null && p[key] !== undefined) {
          any = true;
          top = Math.max(top, p[key]);
          oldest = Math.min(oldest, p.t);
        }
      });
    });
    var span = Math.min(CHART_SPAN_S, Math.max(CHART_MIN_SPAN_S, now - oldest));
    var yMax = niceMax(top);
    for (var g = 0; g <= 4; g++) {
      var y = T + (H - T - B) * (1 - g / 4);
      svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y, y2: y, "class": "grid-line" }));
      var label = svgEl("text", { x: L - 5, y: y + 3, "text-anchor": "end", "class": "axis-label" });
      label.textContent = format(yMax * g / 4);
      svg.appendChild(label);
    }
    var spanText = span >= 120 ? "−" + Math.round(span / 60) + " min" : "−" + Math.round(span) + " s";
    [[spanText, L, "start"], ["now", W - R, "end"]].forEach(function (a) {
      var t = svgEl("text", { x: a[1], y: H - 5, "text-anchor": a[2], "class": "axis-label" });
      t.textContent = a[0];
      svg.appendChild(t);
    });
    if (!any) {
      var empty = svgEl("text", { x: (L + W - R) / 2, y: H / 2, "text-anchor": "middle", "class": "no-data" });
      empty.textContent = "waiting for traffic";
      svg.appendChild(empty);
      return;
    }
    Object.keys(history).forEach(function (rev) {
      var points = history[rev]
        .filter(function (p) { return p[key] !== null && p[key] !== undefined; })
        .map(function (p) {
          var x = L + (W - R - L) * (1 - (now - p.t) / span);
          var y = T + (H - T - B) * (1 - p[key] / yMax);
          return x.toFixed(1) + "," + y.toFixed(1);
        });
      if (!points.length) return;
      var line = svgEl("polyline", { points: points.join(" ") });
      line.setAttribute("class", "line " + series(rev));
      svg.appendChild(line);
      var last = points[points.length - 1].split(",");
      var dot = svgEl("circle", { cx: last[0], cy: last[1], r: 2.5 });
      dot.setAttribute("class", series(rev));
      svg.appendChild(dot);
    });
  }

  function recordFigures(snap) {
    var now = snap.ts;
    snap.versions.forEach(function (v) {
      if (!v.traffic) return;
      var list = history[v.revision] || (history[v.revision] = []);
      list.push({ t: now, rate: v.traffic.rate, error_rate: v.traffic.error_rate, p95_ms: v.traffic.p95_ms });
    });
    Object.keys(history).forEach(function (rev) {
      history[rev] = history[rev].filter(function (p) { return now - p.t <= CHART_SPAN_S; });
      if (!history[rev].length) delete history[rev];
    });
    drawChart($("chart-rate"), "rate", 1, function (v) { return Number.isInteger(v) ? String(v) : v.toFixed(1); }, now);
    drawChart($("chart-errors"), "error_rate", 0.05, function (v) { return (100 * v).toFixed(1) + " %"; }, now);
    drawChart($("chart-p95"), "p95_ms", 1, function (v) { return (Number.isInteger(v) ? String(v) : v.toFixed(1)) + " ms"; }, now);
  }

  function render(snap) {
    lastSnapshot = snap;
    renderHead(snap);
    renderWeights(snap);
    renderVersions(snap);
    renderInstances(snap);
    renderVerdicts(snap);
    recordFigures(snap);
  }

  function addEvent(event) {
    if (QUIET_EVENTS[event.kind]) return;
    var list = $("events");
    var placeholder = list.querySelector(".empty-row");
    if (placeholder) list.removeChild(placeholder);
    var li = el("li", "fresh");
    li.appendChild(el("time", "", when(event.ts)));
    li.appendChild(el("span", "kind", event.kind));
    li.appendChild(el("span", "message", event.message));
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
  }

  // --- buttons ------------------------------------------------------------------------------
  var CONFIRM = {
    abort: "Abort the rollout and send all traffic back to the stable release?",
    rollback: "Roll back to the previous release?",
  };

  function act(action) {
    if (CONFIRM[action] && !window.confirm(CONFIRM[action])) return;
    var result = $("action-result");
    result.className = "action-result";
    result.textContent = action + "…";
    var headers = { "Content-Type": "application/json" };
    headers[ACTION_HEADER] = action;
    var body = { who: "dashboard" };
    if (action === "abort") body.reason = "aborted from the dashboard";
    fetch("/v1/services/" + encodeURIComponent(service) + "/" + action, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(body),
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (r) {
        if (r.ok) {
          result.className = "action-result ok";
          result.textContent = action + ": " + r.data.message;
        } else {
          var e = r.data.error || {};
          result.className = "action-result bad";
          result.textContent = action + " refused (" + (e.code || "error") + "): " + (e.message || "");
        }
      })
      .catch(function (err) {
        result.className = "action-result bad";
        result.textContent = action + " failed: " + err;
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll("button[data-action]"), function (b) {
    b.addEventListener("click", function () { act(b.getAttribute("data-action")); });
  });

  // --- the stream ---------------------------------------------------------------------------
  function setLive(text, on) {
    var node = $("live-state");
    node.textContent = text;
    node.className = "live-state " + (on ? "on" : "off");
  }

  render(page.snapshot);
  if (!window.EventSource) {
    setLive("no live updates in this browser", false);
    return;
  }
  var url = "/v1/services/" + encodeURIComponent(service) + "/stream?after=" + page.cursor;
  var source = new EventSource(url);
  source.addEventListener("open", function () { setLive("live", true); });
  source.addEventListener("snapshot", function (m) { render(JSON.parse(m.data)); });
  source.addEventListener("event", function (m) { addEvent(JSON.parse(m.data)); });
  source.addEventListener("shutdown", function () { setLive("controller stopped; reconnecting…", false); });
  source.addEventListener("error", function () {
    setLive(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…", false);
  });
  window.zerodownLive = { snapshot: function () { return lastSnapshot; }, source: source };
})();
