// Reload the result page once the payment is settled. A file, not inline:
// the Content-Security-Policy allows scripts from this site only.
(function () {
  var marker = document.getElementById("payment-poll");
  if (!marker) { return; }
  var url = marker.getAttribute("data-status-url");
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (data) { if (data.done) { window.location.reload(); } else { setTimeout(poll, 2000); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
