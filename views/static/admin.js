// Admin pages: a "select all" box per table selects every checkbox of its group. The pages
// work without it (each box can be ticked by hand); the hub's CSP allows only files like this.
'use strict';
for (const all of document.querySelectorAll('input.select-all')) {
  const table = all.closest('table');
  all.addEventListener('change', () => {
    for (const box of table.querySelectorAll(`tbody input[type=checkbox][name="${all.dataset.group}"]`)) box.checked = all.checked;
  });
}
