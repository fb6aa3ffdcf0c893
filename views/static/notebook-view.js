// A rendered notebook on the visitor's own origin (server/notebooks/sample-page.ts): draws the
// Bokeh documents the hub took out of the outputs with the hub's BokehJS, and, once the
// visitor's server has the notebook's kernel running (the pool starts it), lets each code cell
// run there: its result replaces the saved one. Nothing from the notebook itself runs here.
(function () {
  'use strict';
  var strip = document.getElementById('nb-strip');
  var state = document.getElementById('nb-state');

  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  // Bokeh: one embed per output, so a broken document spoils only its own plot.
  var items = readJson('nb-bokeh');
  if (items && window.Bokeh) {
    items.forEach(function (item) {
      try {
        window.Bokeh.embed.embed_items(item.docs, item.renderItems);
      } catch (e) {
        console.warn('oerhub: a Bokeh plot could not be drawn', e);
      }
    });
  }
  window.oerhubBokehDrawn = true;

  var code = readJson('nb-code') || [];
  var base = strip.getAttribute('data-server-base');
  var path = strip.getAttribute('data-notebook-path');
  var ws = null;
  var pending = {};
  var sessionId = 'oerhub-view-' + Math.random().toString(36).slice(2);

  function uuid() {
    return Date.now().toString(36) + '-' + Math.random().toString(36).slice(2);
  }

  function textOf(v) { return Array.isArray(v) ? v.join('') : String(v == null ? '' : v); }

  function append(area, cls, text) {
    var pre = document.createElement('pre');
    pre.className = cls;
    pre.textContent = text.replace(/\u001b\[[0-9;?]*[ -\/]*[@-~]/g, '');
    area.appendChild(pre);
  }

  function show(area, msg) {
    var t = msg.header.msg_type;
    var c = msg.content;
    if (t === 'stream') append(area, c.name === 'stderr' ? 'nb-stream nb-stderr' : 'nb-stream', textOf(c.text));
    else if (t === 'error') append(area, 'nb-error', (c.traceback || []).join('\n') || c.ename + ': ' + c.evalue);
    else if (t === 'execute_result' || t === 'display_data') {
      var d = c.data || {};
      var png = d['image/png'];
      if (png && /^[A-Za-z0-9+\/=\s]+$/.test(textOf(png))) {
        var img = document.createElement('img');
        img.className = 'nb-image';
        img.alt = '';
        img.src = 'data:image/png;base64,' + textOf(png).replace(/\s/g, '');
        area.appendChild(img);
      } else if ('text/plain' in d && !('application/vnd.bokehjs_exec.v0+json' in d)) {
        append(area, 'nb-text', textOf(d['text/plain']));
      } else if ('text/html' in d || 'application/javascript' in d) {
        var note = document.createElement('p');
        note.className = 'nb-note';
        note.textContent = 'This result is interactive: open the notebook with "Edit and run" to see it.';
        area.appendChild(note);
      }
    }
  }

  function run(index, button) {
    if (!ws || ws.readyState !== 1) return;
    var cell = document.querySelector('.nb-code[data-cell="' + index + '"]');
    var area = cell.querySelector('.nb-outputs');
    var prompt = cell.querySelector('.nb-prompt');
    area.textContent = '';
    prompt.textContent = '[*]:';
    button.disabled = true;
    var id = uuid();
    pending[id] = { area: area, prompt: prompt, button: button };
    ws.send(JSON.stringify({
      header: { msg_id: id, username: 'visitor', session: sessionId, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
      parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
      content: { code: code[index], silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    }));
  }

  function onMessage(event) {
    var msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    var p = msg.parent_header && pending[msg.parent_header.msg_id];
    if (!p) return;
    var t = msg.header.msg_type;
    if (t === 'execute_input' && msg.content.execution_count != null) p.prompt.textContent = '[' + msg.content.execution_count + ']:';
    else if (t === 'status' && msg.content.execution_state === 'idle') {
      p.button.disabled = false;
      if (p.prompt.textContent === '[*]:') p.prompt.textContent = '[ ]:';
      delete pending[msg.parent_header.msg_id];
      p.area.setAttribute('data-live', 'true');
    } else show(p.area, msg);
  }

  function attach(kernelId) {
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(proto + '//' + location.host + base + 'api/kernels/' + encodeURIComponent(kernelId) + '/channels?session_id=' + sessionId);
    ws.onmessage = onMessage;
    ws.onopen = function () {
      document.body.classList.add('nb-live');
      state.textContent = 'Your workspace is ready: run a cell here with ▶, or open the notebook with Edit and run.';
      Array.prototype.forEach.call(document.querySelectorAll('.nb-code'), function (cell) {
        var index = Number(cell.getAttribute('data-cell'));
        var button = document.createElement('button');
        button.type = 'button';
        button.className = 'nb-run';
        button.title = 'Run this cell';
        button.setAttribute('aria-label', 'Run this cell');
        button.textContent = '▶';
        button.addEventListener('click', function () { run(index, button); });
        cell.querySelector('.nb-input').insertBefore(button, cell.querySelector('.nb-input pre'));
      });
    };
    ws.onclose = function () { document.body.classList.remove('nb-live'); };
  }

  // The pool started this notebook's kernel when the server joined it: find and join it. A server
  // still starting (no warm one was free) has none yet: keep asking, less often after a while;
  // the workspace page calls oerhubJoinKernel the moment it learns the server is ready.
  var tries = 0;
  var retry = null;
  function again() {
    tries++;
    if (tries < 200) retry = window.setTimeout(findKernel, tries < 20 ? 1500 : 5000);
  }
  function findKernel() {
    retry = null;
    if (ws) return;
    fetch(base + 'api/sessions', { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) { return res.ok ? res.json() : []; })
      .then(function (sessions) {
        if (ws) return;
        var s = (Array.isArray(sessions) ? sessions : []).filter(function (x) { return x.path === path && x.kernel; })[0];
        if (s) attach(s.kernel.id);
        else again();
      })
      .catch(again);
  }
  window.oerhubJoinKernel = function () {
    if (ws || !code.length || !base) return;
    if (retry !== null) window.clearTimeout(retry);
    tries = 0;
    findKernel();
  };
  // A preview for a visitor waiting in line has no server (no base) to join.
  if (code.length && base) findKernel();
})();
