// spur's only script: copy buttons, confirmations, the live job log, live regions and the
// pipeline graph's needs links. Every page works without it (values are revealed by a CSS
// checkbox, tokens can be selected and copied by hand, unfinished pipelines reload themselves).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var text = copy.getAttribute("data-copy");
      var done = function () { copy.textContent = "Copied"; copy.setAttribute("data-copied", "true"); };
      // No clipboard (a plain-http host) or a refusal: say so and select the text to copy by hand.
      var failed = function () {
        copy.textContent = "Copy failed: copy the selected text";
        copy.setAttribute("data-copied", "false");
        var target = copy.parentNode && copy.parentNode.querySelector(".token, #new-token");
        if (target && window.getSelection) {
          var range = document.createRange();
          range.selectNodeContents(target);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
        }
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, failed);
      } else {
        failed();
      }
    }
  });
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  // The live job log: only the bytes past the cursor are fetched and appended, so the
  // sections the user folded stay folded; the box follows the end until the user scrolls up.
  var log = document.getElementById("job-log");
  if (log && log.getAttribute("data-live") === "true") {
    var url = log.getAttribute("data-poll");
    var cursor = log.getAttribute("data-cursor");
    var status = document.getElementById("job-status");
    var lastStatus = status ? status.textContent : "";
    var stack = [log].concat(Array.prototype.slice.call(log.querySelectorAll("details[data-running]")));
    var following = true;
    var atEnd = function () { return log.scrollTop + log.clientHeight >= log.scrollHeight - 24; };
    log.addEventListener("scroll", function () { following = atEnd(); });
    log.scrollTop = log.scrollHeight;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var apply = function (op) {
      var top = stack[stack.length - 1];
      if (op.lines !== undefined) {
        top.insertAdjacentHTML("beforeend", op.lines);
      } else if (op.open !== undefined) {
        var section = document.createElement("details");
        section.className = "section";
        section.open = !op.collapsed;
        section.setAttribute("data-running", "");
        if (op.start !== null) { section.setAttribute("data-start", op.start); }
        var summary = document.createElement("summary");
        summary.innerHTML = op.open; // escaped by the server
        section.appendChild(summary);
        top.appendChild(section);
        stack.push(section);
      } else if (op.close !== undefined && stack.length > 1) {
        var done = stack.pop();
        done.removeAttribute("data-running");
        var start = done.getAttribute("data-start");
        if (start !== null && op.close !== null) {
          var secs = Math.max(0, op.close - Number(start));
          var span = document.createElement("span");
          span.className = "section-duration";
          span.textContent = pad(Math.floor(secs / 60)) + ":" + pad(secs % 60);
          done.firstChild.appendChild(span);
        }
      }
    };
    // A finished job's sidebar (buttons, duration, artifacts) comes from its page, once.
    var refreshSidebar = function () {
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.text(); })
        .then(function (text) {
          var fresh = new DOMParser().parseFromString(text, "text/html").querySelector(".job-layout aside");
          var aside = document.querySelector(".job-layout aside");
          if (fresh && aside) { aside.replaceWith(fresh); }
        });
    };
    var poll = function () {
      fetch(url + "?cursor=" + encodeURIComponent(cursor), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.reset) { window.location.reload(); return; }
          var old = log.querySelector(".line.tail");
          if (old) { old.remove(); }
          data.ops.forEach(apply);
          if (data.tail) { stack[stack.length - 1].insertAdjacentHTML("beforeend", data.tail); }
          cursor = data.cursor;
          if (following) { log.scrollTop = log.scrollHeight; }
          if (status && data.status) {
            status.className = "status status-" + data.status;
            status.textContent = data.status;
            // Started (or otherwise moved on): the sidebar's runner, times and buttons too.
            if (data.status !== lastStatus && !data.complete) { refreshSidebar(); }
            lastStatus = data.status;
          }
          if (data.more) { setTimeout(poll, 0); }
          else if (!data.complete) { setTimeout(poll, 1000); }
          else {
            log.setAttribute("data-live", "false");
            refreshSidebar();
          }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 500);
  }
  // Running durations (a job's sidebar, a pipeline's header) tick, in the server's words; a
  // page answered 304 keeps its text otherwise.
  var ticking = function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-running-since]"), function (el) {
      var s = Math.max(0, Math.floor((Date.now() - Number(el.getAttribute("data-running-since"))) / 1000));
      var two = function (n) { return (n < 10 ? "0" : "") + n; };
      el.textContent = s < 60 ? s + "s" : s < 3600 ? Math.floor(s / 60) + "m " + two(s % 60) + "s"
        : Math.floor(s / 3600) + "h " + two(Math.floor(s / 60) % 60) + "m";
    });
  };
  setInterval(ticking, 1000);
  // Live regions (a pipeline, the pipelines list): the page is asked again with the ETag it
  // was sent with; only a changed page (200, not 304) replaces the regions, by id.
  var regions = document.querySelectorAll("[data-live-region]");
  var meta = document.querySelector("meta[name=spur-etag]");
  if (regions.length && meta) {
    var etag = meta.getAttribute("content");
    var every = Number(regions[0].getAttribute("data-live-region")) || 5000;
    var refresh = function () {
      if (document.hidden) { setTimeout(refresh, every); return; }
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store", headers: { "If-None-Match": etag } })
        .then(function (r) {
          if (r.status !== 200) { return null; }
          etag = r.headers.get("ETag") || etag;
          return r.text();
        })
        .then(function (text) {
          var live = true;
          if (text) {
            var fresh = new DOMParser().parseFromString(text, "text/html");
            // Read before the fresh regions move into the page.
            live = fresh.querySelector("[data-live-region]") !== null;
            Array.prototype.forEach.call(document.querySelectorAll("[data-live-region]"), function (old) {
              var next = fresh.getElementById(old.id);
              if (next) { old.replaceWith(next); }
            });
            document.dispatchEvent(new Event("spur:refreshed"));
          }
          if (live) { setTimeout(refresh, every); }
        })
        .catch(function () { setTimeout(refresh, every * 2); });
    };
    setTimeout(refresh, every);
  }
  // The pipeline graph's `needs` links, drawn over the stage columns (the same links are
  // listed as text under each job, for readers without scripts or sight).
  var drawNeeds = function () {
    var graph = document.getElementById("pipeline-graph");
    if (!graph) { return; }
    var old = graph.querySelector("svg.needs-links");
    if (old) { old.remove(); }
    var lists = graph.querySelectorAll(".needs[data-job]");
    if (!lists.length) { return; }
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "needs-links");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("width", graph.scrollWidth);
    svg.setAttribute("height", graph.scrollHeight);
    var box = graph.getBoundingClientRect();
    var at = function (el, right) {
      var r = el.getBoundingClientRect();
      return [(right ? r.right : r.left) - box.left + graph.scrollLeft, r.top + r.height / 2 - box.top + graph.scrollTop];
    };
    Array.prototype.forEach.call(lists, function (list) {
      var to = document.getElementById("job-cell-" + list.getAttribute("data-job"));
      Array.prototype.forEach.call(list.querySelectorAll("[data-need]"), function (link) {
        var from = document.getElementById("job-cell-" + link.getAttribute("data-need"));
        if (!from || !to) { return; }
        var a = at(from, true), b = at(to, false);
        var mid = (a[0] + b[0]) / 2;
        var path = document.createElementNS(ns, "path");
        path.setAttribute("d", "M" + a[0] + "," + a[1] + " C" + mid + "," + a[1] + " " + mid + "," + b[1] + " " + b[0] + "," + b[1]);
        svg.appendChild(path);
      });
    });
    graph.insertBefore(svg, graph.firstChild);
  };
  drawNeeds();
  window.addEventListener("resize", drawNeeds);
  document.addEventListener("spur:refreshed", drawNeeds);
})();
