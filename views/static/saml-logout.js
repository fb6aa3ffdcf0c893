// Go on to the IdP's single logout at once. A navigation, not a form submission: the hub's CSP
// (form-action 'self') rightly stops a form POST from being redirected to another origin.
'use strict';
(function () {
  var link = document.getElementById('idp-logout');
  if (link) window.location.replace(link.href);
})();
