// The "Try it" waiting page: asks the hub for the visitor's place in line every Retry-After
// seconds and, once a workspace is free for them, sends the form (a real POST, with its token).
(function () {
  'use strict';
  var box = document.getElementById('try-waiting');
  var position = document.getElementById('try-position');
  var form = document.getElementById('try-retry');
  var url = box.getAttribute('data-queue-url');
  var seconds = Number(box.getAttribute('data-retry-after')) || 5;
  function check() {
    fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (place) {
        if (place && place.available) {
          form.submit();
          return;
        }
        if (place) {
          position.textContent = String(place.position);
          var inPreview = document.getElementById('try-preview-position');
          if (inPreview) inPreview.textContent = String(place.position);
          seconds = place.retryAfterS || seconds;
        }
        window.setTimeout(check, seconds * 1000);
      })
      .catch(function () { window.setTimeout(check, seconds * 1000); });
  }
  window.setTimeout(check, seconds * 1000);
})();
