// The "Try it" workspace bar: the time left (counted down every second, corrected from the hub
// every 15 s), a warning before the end, and the move to the "session ended" page at the end.
(function () {
  'use strict';
  var bar = document.getElementById('try-bar');
  var countdown = document.getElementById('try-countdown');
  var warning = document.getElementById('try-warning');
  var sessionUrl = bar.getAttribute('data-session-url');
  var endedUrl = bar.getAttribute('data-ended-url');
  var warningMs = (Number(bar.getAttribute('data-warning-s')) || 0) * 1000;
  var state = null;
  var skew = 0;

  function fmt(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = (h > 0 && m < 10 ? '0' : '') + m;
    return (h > 0 ? h + ':' : '') + mm + ':' + (sec < 10 ? '0' : '') + sec;
  }

  function ended() {
    window.location.assign(endedUrl);
  }

  function tick() {
    if (!state || state.state === 'ended') return;
    var now = Date.now() + skew;
    var left = state.expiresAt - now;
    var idleLeft = state.idleAt - now;
    countdown.textContent = fmt(left);
    var message = '';
    if (left <= warningMs) {
      message = 'Your workspace will be deleted in ' + fmt(left) + '. Download your work now.';
    } else if (idleLeft <= warningMs) {
      message = 'You have been inactive for a while: your workspace will be deleted in ' + fmt(idleLeft) + ' unless you keep working.';
    }
    bar.classList.toggle('warning', message !== '');
    warning.hidden = message === '';
    if (warning.textContent !== message) warning.textContent = message;
  }

  function refresh() {
    fetch(sessionUrl, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (s) {
        if (!s) return;
        if (s.state === 'ended') return ended();
        skew = s.now - Date.now();
        state = s;
        tick();
      })
      .catch(function () { /* the hub is restarting or the network blinked: try again next time */ });
  }

  refresh();
  window.setInterval(tick, 1000);
  window.setInterval(refresh, 15000);
})();
