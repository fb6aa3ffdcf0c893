// The "Try it" workspace bar: the time left (counted down every second, corrected from the hub
// every 15 s), a warning before the end, and the move to the "session ended" page at the end.
// "Download my work" first saves the notebooks open in JupyterLab, so the zip has what the
// visitor sees; "End session" says it is working and leaves the landing to the hub's answer.
(function () {
  'use strict';
  var bar = document.getElementById('try-bar');
  var countdown = document.getElementById('try-countdown');
  var warning = document.getElementById('try-warning');
  var status = document.getElementById('try-status');
  var frame = document.getElementById('try-frame');
  var download = document.getElementById('try-download');
  var endForm = document.getElementById('try-end');
  var endButton = document.getElementById('try-end-button');
  // Once "End session" is pressed the hub's answer to the form decides where the visitor lands
  // (the "session ended" page): the poll below must not navigate away while it is on its way.
  var ending = false;
  var saving = false;
  var SAVE_TIMEOUT_MS = 20000;
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
    if (!ending) window.location.assign(endedUrl);
  }

  function say(message) {
    status.hidden = message === '';
    status.textContent = message;
  }

  /**
   * JupyterLab in the frame (exposed by the server's LabApp.expose_app_in_browser), or null when
   * it is not loaded yet or on another origin, where the browser forbids looking inside.
   */
  function lab() {
    try {
      var app = frame.contentWindow && frame.contentWindow.jupyterapp;
      return app && app.commands && app.commands.hasCommand('docmanager:save-all') ? app : null;
    } catch (e) {
      return null;
    }
  }

  /** The paths of the open documents with unsaved changes. */
  function unsaved(app) {
    var out = [];
    try {
      var widgets = Array.from(app.shell.widgets('main'));
      widgets.forEach(function (w) {
        var ctx = w.context;
        if (ctx && ctx.model && ctx.model.dirty && out.indexOf(ctx.path) < 0) out.push(ctx.path);
      });
    } catch (e) { /* an older JupyterLab without these: save all the same */ }
    return out;
  }

  function withTimeout(promise, ms) {
    return new Promise(function (resolve, reject) {
      var t = window.setTimeout(function () { reject(new Error('timed out')); }, ms);
      promise.then(function (v) { window.clearTimeout(t); resolve(v); }, function (e) { window.clearTimeout(t); reject(e); });
    });
  }

  function startDownload(message) {
    say(message);
    window.location.assign(download.getAttribute('href'));
    window.setTimeout(function () { if (!saving && !ending) say(''); }, 8000);
  }

  download.addEventListener('click', function (event) {
    event.preventDefault();
    if (saving || ending) return;
    var app = lab();
    if (!app) {
      startDownload('Downloading the files as last saved: JupyterLab could not be asked to save. Save open notebooks (Ctrl+S) and download again to include newer changes.');
      return;
    }
    var names = unsaved(app);
    if (names.length === 0) {
      startDownload('Everything is saved. Downloading your workspace…');
      return;
    }
    saving = true;
    download.setAttribute('aria-disabled', 'true');
    say('Saving ' + names.join(', ') + ' before the download…');
    withTimeout(Promise.resolve(app.commands.execute('docmanager:save-all')), SAVE_TIMEOUT_MS).then(
      function () {
        saving = false;
        download.removeAttribute('aria-disabled');
        startDownload('Saved ' + names.join(', ') + '. Downloading your workspace…');
      },
      function () {
        saving = false;
        download.removeAttribute('aria-disabled');
        startDownload('Could not save ' + names.join(', ') + ': the download has the files as last saved.');
      },
    );
  });

  endForm.addEventListener('submit', function (event) {
    if (ending) {
      event.preventDefault();
      return;
    }
    ending = true;
    // Disabled after the submit event has fired: the form still goes, a second click doesn't.
    window.setTimeout(function () { endButton.disabled = true; }, 0);
    endButton.textContent = 'Ending your session…';
    download.setAttribute('aria-disabled', 'true');
    say('Ending your session: your workspace and its files are being deleted…');
  });

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

  // On a phone, JupyterLab's file browser would take most of the width and leave the notebook a
  // sliver: fold the left sidebar once JupyterLab has restored its layout (the visitor can open
  // it again from the icons on the left).
  var NARROW_PX = 700;
  var layoutTries = 0;
  function foldSidebarWhenNarrow() {
    var app = lab();
    if (!app) {
      if (++layoutTries < 600) window.setTimeout(foldSidebarWhenNarrow, 500);
      return;
    }
    Promise.resolve(app.restored).then(function () {
      var shell = app.shell;
      if (frame.getBoundingClientRect().width >= NARROW_PX || !shell) return;
      if (shell.collapseLeft) shell.collapseLeft();
      // The right-hand icon bar (property inspector, debugger) too; View > Appearance brings it back.
      if (shell.isSideTabBarVisible && shell.isSideTabBarVisible('right')) shell.toggleSideTabBarVisibility('right');
    });
  }
  frame.addEventListener('load', function () {
    layoutTries = 0;
    foldSidebarWhenNarrow();
  });
  foldSidebarWhenNarrow();

  // No warm server was free: the visitor's own one is starting while they read the rendered
  // samples. Ask often until it is ready, then take the banner down and let the rendered page
  // join its kernel (same origin), so the live notebook takes over without a reload.
  var startingBanner = document.getElementById('try-starting');
  var startingText = document.getElementById('try-starting-text');
  var STARTING_POLL_MS = 1500;
  function whenReady() {
    fetch(sessionUrl, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.json() : { state: 'starting' }; })
      .then(function (s) {
        if (s.state === 'ended') return ended();
        if (s.state === 'starting') return void window.setTimeout(whenReady, STARTING_POLL_MS);
        bar.removeAttribute('data-starting');
        startingText.textContent = 'Your server is ready.';
        window.setTimeout(function () { startingBanner.hidden = true; }, 3000);
        try {
          var view = frame.contentWindow;
          if (view && typeof view.oerhubJoinKernel === 'function') view.oerhubJoinKernel();
        } catch (e) { /* JupyterLab or another page in the frame: nothing to join */ }
        refresh();
      })
      .catch(function () { window.setTimeout(whenReady, STARTING_POLL_MS); });
  }
  if (bar.getAttribute('data-starting') === 'true') whenReady();

  refresh();
  window.setInterval(tick, 1000);
  window.setInterval(refresh, 15000);
})();
