// spur's only script: copy buttons, confirmations and the live job log. Every page works
// without it (values are revealed by a CSS checkbox; tokens can be selected and copied by hand).
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
  var log = document.getElementById("job-log");
  if (log && log.getAttribute("data-live") === "true") {
    var url = log.getAttribute("data-poll");
    var size = log.getAttribute("data-size");
    var status = document.getElementById("job-status");
    // Follow the end from the start; the user's scrolling up stops it.
    log.scrollTop = log.scrollHeight;
    var poll = function () {
      fetch(url + "?size=" + encodeURIComponent(size), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
          if (data.html !== null) {
            // Keep the sections the user folded or unfolded (sections only ever get appended).
            var before = Array.prototype.map.call(log.querySelectorAll("details.section"), function (d) { return d.open; });
            log.innerHTML = data.html;
            var after = log.querySelectorAll("details.section");
            for (var k = 0; k < before.length && k < after.length; k++) { after[k].open = before[k]; }
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
