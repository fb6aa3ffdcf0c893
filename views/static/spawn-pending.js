// Follows a server start over server-sent events and moves on when it is ready.
(function () {
  'use strict';
  var box = document.getElementById('spawn');
  var bar = document.getElementById('progress-bar');
  var meter = bar.parentElement;
  var message = document.getElementById('spawn-message');
  var log = document.getElementById('spawn-log');
  var failed = document.getElementById('spawn-failed');
  var next = box.getAttribute('data-next') || '';
  var source = new EventSource(box.getAttribute('data-progress-url'));
  source.onmessage = function (msg) {
    var e = JSON.parse(msg.data);
    bar.style.width = e.progress + '%';
    meter.setAttribute('aria-valuenow', String(e.progress));
    message.textContent = e.message;
    var li = document.createElement('li');
    li.textContent = e.message;
    log.appendChild(li);
    if (e.ready) {
      source.close();
      window.location.assign(next || '/hub/home');
    } else if (e.failed) {
      source.close();
      meter.classList.add('failed');
      failed.hidden = false;
    }
  };
  source.onerror = function () {
    message.textContent = 'Lost contact with the hub; retrying…';
  };
})();
