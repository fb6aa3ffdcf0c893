"""Jupyter Server glue for oerhub.

The hub's proxy adds ``Authorization: token <secret>`` to every request it forwards to a
student's server, and checks the student's session and XSRF header itself. The browser never
holds the secret, so the server must never put it in a page, header or config. Stock Jupyter
Server does exactly that with its token (JupyterLab's page config, the runtime file, the
"copy this URL" log lines), so this identity provider keeps Jupyter's own token empty and
checks the proxy's secret itself.

Use with::

    jupyter lab --ServerApp.identity_provider_class=oerhub_singleuser.OerhubIdentityProvider

and the environment ``OERHUB_SERVER_SECRET`` (the secret), ``OERHUB_USER`` (the name shown
in JupyterLab) and ``OERHUB_HUB_URL`` (the hub's address as the browser sees it, ending in
``/hub/``; JupyterLab's File > Log Out goes to its sign-out page).
"""

from __future__ import annotations

import html
import hmac
import json
import os
import re
import typing as t

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import Bool, Unicode, default, validate

__all__ = ["OerhubIdentityProvider"]

__version__ = "0.1.0"

SECRET_ENV = "OERHUB_SERVER_SECRET"
USER_ENV = "OERHUB_USER"
HUB_URL_ENV = "OERHUB_HUB_URL"
# The spawners always set OERHUB_HUB_URL; this fallback suits a server on the hub's own origin.
DEFAULT_HUB_URL = "/hub/"

# Only the header form the proxy sends; `?token=` URL parameters and cookies are ignored so a
# secret can never be bookmarked, logged by a browser or replayed from a cookie jar.
_AUTH_HEADER = re.compile(r"token\s+(\S+)\s*", re.IGNORECASE)


class _NoLoginHandler(JupyterHandler):
    """Answers Jupyter's login redirect: there is no login here, only the hub's proxy."""

    @allow_unauthenticated
    def get(self) -> None:
        raise web.HTTPError(403, "Open this notebook server through the hub.")


class _HubLogoutHandler(JupyterHandler):
    """JupyterLab's File > Log Out: signing out happens at the hub, so go to its sign-out page.

    A page rather than a redirect: JupyterLab may run in a frame (the "Try it" workspace), and
    the hub's pages refuse to be framed, so the whole window (``top``) has to go there.
    """

    @allow_unauthenticated
    def get(self) -> None:
        hub_url = getattr(self.identity_provider, "hub_url", "") or DEFAULT_HUB_URL
        target = hub_url.rstrip("/") + "/logout"
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        # json.dumps for the script (with "</" broken up), html.escape for the link.
        as_js = json.dumps(target).replace("</", "<\\/")
        self.finish(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sign out of oerhub</title>"
            f"<script>window.top.location.assign({as_js});</script></head>"
            f'<body><p><a href="{html.escape(target)}" target="_top">Sign out of oerhub</a></p></body></html>'
        )


class OerhubIdentityProvider(IdentityProvider):
    """Accepts exactly the requests that carry the hub proxy's secret; nobody else gets in."""

    secret = Unicode(
        help="Secret the hub's proxy sends as `Authorization: token <secret>`. Default: $OERHUB_SERVER_SECRET.",
    ).tag(config=True)

    user_name = Unicode(
        help="Name of the person this server belongs to. Default: $OERHUB_USER.",
    ).tag(config=True)

    # No token and no password: Jupyter must have nothing secret to copy into pages.
    need_token = Bool(False)

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        # Read now, then drop it from the environment that kernels and terminals inherit, so
        # `printenv` in a shared notebook can't expose it. Hygiene, not a boundary: code running
        # as the same user can still read /proc/<server pid>/environ. The secret only has to
        # stay out of the browser.
        self.secret  # noqa: B018
        os.environ.pop(SECRET_ENV, None)

    @default("secret")
    def _secret_default(self) -> str:
        return os.environ.get(SECRET_ENV, "")

    @default("user_name")
    def _user_name_default(self) -> str:
        return os.environ.get(USER_ENV, "") or "student"

    @default("token")
    def _token_default(self) -> str:
        return ""

    @validate("token")
    def _validate_token(self, proposal: dict[str, t.Any]) -> str:
        # JUPYTER_TOKEN or --IdentityProvider.token would put a secret into JupyterLab's page
        # config; refuse it rather than leak it.
        if proposal["value"]:
            self.log.warning("oerhub: ignoring a configured Jupyter token; the hub's proxy authenticates")
        return ""

    @property
    def auth_enabled(self) -> bool:
        # Authentication is on (nobody is anonymous), it just isn't Jupyter's token.
        return True

    @property
    def login_available(self) -> bool:
        return False

    hub_url = Unicode(
        help="The hub's address as the browser sees it, ending in /hub/ (File > Log Out goes to its /logout). Default: $OERHUB_HUB_URL, else /hub/.",
    ).tag(config=True)

    @default("hub_url")
    def _hub_url_default(self) -> str:
        return os.environ.get(HUB_URL_ENV, "") or DEFAULT_HUB_URL

    @property
    def logout_available(self) -> bool:
        # Jupyter's own logout page would only confuse: /logout is the hop to the hub's sign-out.
        return False

    def get_handlers(self) -> list[tuple[str, object]]:
        # Page handlers redirect unauthenticated users to /login; answer that with a 403
        # instead of a 404 so the cause is plain. /logout (File > Log Out) goes to the hub.
        return [(r"/login", _NoLoginHandler), (r"/logout", _HubLogoutHandler)]

    def get_user(self, handler: web.RequestHandler) -> User | None:
        if not self.secret:
            # A misconfigured server must fail closed, never fall back to "no auth".
            self.log.error("oerhub: %s is not set; refusing every request", SECRET_ENV)
            return None
        match = _AUTH_HEADER.fullmatch(handler.request.headers.get("Authorization", ""))
        if not match or not hmac.compare_digest(match.group(1).encode(), self.secret.encode()):
            return None
        # Token-authenticated in Jupyter's sense: its XSRF check is skipped because the hub's
        # proxy enforces XSRF (cookie `_xsrf` == header `X-XSRFToken`) before forwarding.
        handler._token_authenticated = True  # type: ignore[attr-defined]
        name = self.user_name
        return User(username=name, name=name, display_name=name)

    def should_check_origin(self, handler: web.RequestHandler) -> bool:
        # Jupyter skips its Origin check for token-authenticated requests, meant for scripts.
        # Every browser request arrives here token-authenticated (the proxy adds the header),
        # so keep the check: the proxy passes the browser's Host through, so Origin == Host
        # still holds for the hub's own pages and cross-site WebSockets are refused.
        return True

    def validate_security(self, app: t.Any, ssl_options: dict[str, t.Any] | None = None) -> None:
        # The stock checks warn about a missing token, which is intended here.
        if not self.secret:
            app.log.error("oerhub: %s is not set; every request will be refused", SECRET_ENV)
