/* Background jobs: size each progress bar from its data attributes (the CSP forbids inline styles),
   and while a job on the page is queued or running, poll the status endpoint; when one finishes,
   reload the page so its result (report, download link, error) shows. */
(function () {
  "use strict";
  var POLL_MS = 1500;

  function size(bar) {
    var done = Number(bar.dataset.done || 0), total = Number(bar.dataset.total || 0);
    var inner = bar.querySelector(".ff-progress-bar");
    var status = bar.dataset.jobStatus;
    var share = total > 0 ? Math.min(1, done / total) : (status === "succeeded" ? 1 : 0);
    inner.style.width = (share * 100).toFixed(1) + "%";
    bar.classList.toggle("ff-progress-indeterminate", status === "running" && !(total > 0));
    bar.classList.toggle("ff-progress-failed", status === "failed");
  }

  function bars() { return Array.prototype.slice.call(document.querySelectorAll(".ff-progress[data-job-id]")); }

  function unfinished() {
    return bars().filter(function (bar) { return bar.dataset.jobStatus === "queued" || bar.dataset.jobStatus === "running"; });
  }

  function statusUrl() {
    var here = window.location.pathname.replace(/\/$/, "");
    // The changelist is .../storage/job/, a job's page .../storage/job/<id>/change/.
    var base = here.replace(/\/job(\/.*)?$/, "/job");
    return base + "/status/";
  }

  function poll() {
    var waiting = unfinished();
    if (!waiting.length) { return; }
    var ids = waiting.map(function (bar) { return bar.dataset.jobId; }).join(",");
    fetch(statusUrl() + "?ids=" + encodeURIComponent(ids), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var reload = false;
        data.jobs.forEach(function (job) {
          document.querySelectorAll('.ff-progress[data-job-id="' + job.id + '"]').forEach(function (bar) {
            if (job.finished || job.status !== bar.dataset.jobStatus) { reload = reload || job.finished; }
            bar.dataset.jobStatus = job.status;
            bar.dataset.done = job.done || 0;
            bar.dataset.total = job.total || 0;
            size(bar);
            var text = bar.parentNode.querySelector(".ff-progress-text");
            if (text) { text.textContent = job.total ? (job.done.toLocaleString() + " / " + job.total.toLocaleString()) : (job.message || job.status); }
          });
        });
        if (reload) { window.location.reload(); } else { window.setTimeout(poll, POLL_MS); }
      })
      .catch(function () { window.setTimeout(poll, POLL_MS * 4); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    bars().forEach(size);
    if (unfinished().length) { window.setTimeout(poll, POLL_MS); }
  });
})();
