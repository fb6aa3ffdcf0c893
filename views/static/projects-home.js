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
        list.appendChild(li);
      });
      card.hidden = false;
    })
    .catch(function () { /* the rest of the page works without it */ });
})();
