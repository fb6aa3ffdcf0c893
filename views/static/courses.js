// Course pages: copy buttons, the roster file loader, and publishing (a multipart upload sent
// with the page's XSRF token in a header, since the hub checks it before reading any body).
(function () {
  'use strict';
  document.querySelectorAll('button.copy').forEach(function (button) {
    button.addEventListener('click', function () {
      var input = document.getElementById(button.getAttribute('data-copy'));
      if (!input) return;
      input.select();
      var done = function () { button.textContent = 'Copied'; setTimeout(function () { button.textContent = 'Copy'; }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand('copy'); done(); });
      else { document.execCommand('copy'); done(); }
    });
  });

  var rosterFile = document.getElementById('roster-file');
  if (rosterFile) {
    rosterFile.addEventListener('change', function () {
      var file = rosterFile.files && rosterFile.files[0];
      if (!file) return;
      file.text().then(function (text) { document.getElementById('roster-csv').value = text; });
    });
  }

  var form = document.getElementById('publish-form');
  if (form) {
    var message = document.getElementById('upload-message');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = form.querySelector('button[type=submit]');
      button.disabled = true;
      button.textContent = 'Publishing…';
      message.hidden = true;
      fetch(form.action, {
        method: 'POST',
        body: new FormData(form),
        headers: { 'x-csrf-token': form.getAttribute('data-csrf'), accept: 'application/json' },
        credentials: 'same-origin',
      }).then(function (res) {
        return res.json().catch(function () { return { message: 'The hub answered ' + res.status + '.' }; }).then(function (body) {
          if (res.ok && body.redirect) { window.location.assign(body.redirect); return; }
          message.textContent = body.message || ('The upload was refused (' + res.status + ').');
          message.hidden = false;
          button.disabled = false;
          button.textContent = 'Publish a new version';
        });
      }, function () {
        message.textContent = 'The upload did not reach the hub. Nothing was published.';
        message.hidden = false;
        button.disabled = false;
        button.textContent = 'Publish a new version';
      });
    });
  }
})();
