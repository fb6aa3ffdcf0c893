// Fills the home page's "Your research projects" card; hidden when the user has none.
(function () {
  var card = document.getElementById('projects-home');
  var list = document.getElementById('projects-home-list');
  if (!card || !list) return;
  fetch('/hub/projects?format=json', { credentials: 'same-origin', headers: { accept: 'application/json' } })
    .then(function (r) { return r.ok ? r.json() : { projects: [] }; })
    .then(function (data) {
      if (!data.projects.length) return;
      data.projects.forEach(function (p) {
        var li = document.createElement('li');
        var a = document.createElement('a');
        a.href = '/hub/projects/' + encodeURIComponent(p.number);
        a.textContent = p.number + ': ' + p.name;
        li.appendChild(a);
        li.appendChild(document.createTextNode(' (' + p.unit + ')'));
        if (p.restartNeeded) {
          // The home page's own XSRF field (its start/stop form) signs this form too.
          var csrf = document.querySelector('input[name="_csrf"]');
          var note = document.createElement('p');
          note.className = 'notice restart-needed';
          note.textContent = 'Restart your server to see the project folder. ';
          var form = document.createElement('form');
          form.method = 'post';
          form.action = '/hub/projects/' + encodeURIComponent(p.number) + '/restart-server';
          form.className = 'inline';
          var field = document.createElement('input');
          field.type = 'hidden';
          field.name = '_csrf';
          field.value = csrf ? csrf.value : '';
          var button = document.createElement('button');
          button.type = 'submit';
          button.textContent = 'Restart my server';
          form.appendChild(field);
          form.appendChild(button);
          note.appendChild(form);
          li.appendChild(note);
        }
        list.appendChild(li);
      });
      card.hidden = false;
    })
    .catch(function () { /* the rest of the page works without it */ });
})();
