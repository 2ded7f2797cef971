// spur's only script: reveal toggles, copy buttons, confirmations and the live job log. Every
// page works without it except for these.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var reveal = event.target.closest("[data-reveal]");
    if (reveal) {
      var scope = document.getElementById(reveal.getAttribute("data-reveal"));
      if (scope) {
        var on = scope.classList.toggle("reveal-on");
        reveal.textContent = on ? "Hide values" : "Reveal values";
      }
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var text = copy.getAttribute("data-copy");
      var done = function () { copy.textContent = "Copied"; copy.setAttribute("data-copied", "true"); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, done);
      } else {
        done();
      }
    }
  });
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  var log = document.getElementById("job-log");
  if (log && log.getAttribute("data-live") === "true") {
    var url = log.getAttribute("data-poll");
    var size = log.getAttribute("data-size");
    var status = document.getElementById("job-status");
    var poll = function () {
      fetch(url + "?size=" + encodeURIComponent(size), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
          if (data.html !== null) {
            log.innerHTML = data.html;
            size = String(data.size);
            if (atBottom) { log.scrollTop = log.scrollHeight; }
          }
          if (status && data.status) {
            status.className = "status status-" + data.status;
            status.textContent = data.status;
          }
          if (!data.complete) { setTimeout(poll, 1000); }
          else {
            log.setAttribute("data-live", "false");
            var cancel = document.getElementById("cancel-job");
            if (cancel) { cancel.remove(); }
          }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 500);
  }
})();
