"""``/login`` and ``/logout``: a browser trades a token for a session cookie.

A form POST (``application/x-www-form-urlencoded``, field ``token``), never a token
in a URL (URLs end up in histories and logs). The pages are static apart from the
session's expiry, with a CSP that allows no script at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from starter.codec_server.credentials import SESSION_COOKIE, Credentials

router = APIRouter()

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}
_MAX_FORM_BYTES = 4096

_STYLE = (
    "<style>body{font-family:sans-serif;max-width:44rem;margin:3rem auto;line-height:1.5}"
    "code{background:#eee;padding:0 .2rem}input{font-size:1rem;width:24rem}</style>"
)

_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Codec server sign-in</title>
{style}</head><body>
<h1>Codec server sign-in</h1>
<p>{message}</p>
<form method="post" action="login">
<label>Codec token <input type="password" name="token" autocomplete="off" autofocus></label>
<button type="submit">Sign in</button>
</form>
<p>The token is printed by <code>make run</code> (or is one of
<code>CANCEL_CODEC_SERVER_TOKENS</code>). Signing in sets a session cookie for this
browser; the token itself is not stored.</p>
</body></html>"""

_SIGNED_IN = """<!doctype html><html><head><meta charset="utf-8"><title>Signed in</title>
{style}</head><body>
<h1>Signed in to the codec server</h1>
<p>This browser may decode payloads until {expires} (UTC).</p>
<p>Now, in the Temporal Web UI (opened at the same host name as this page, e.g.
<code>127.0.0.1</code>): open <b>Codec Server</b> (the data-encoder icon in the top
bar), choose <b>Use my browser setting and ignore Cluster-level setting</b>, enter
<code>{endpoint}</code> as the browser endpoint, switch on
<b>Include cross-origin credentials</b>
(leave <b>Pass the user access token</b> off) and <b>Apply</b>.
Workflow inputs, results and summaries then show in clear.</p>
<form method="post" action="logout"><button type="submit">Sign out</button></form>
</body></html>"""


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=_PAGE_HEADERS)


@router.get("/login", include_in_schema=False)
async def login_form() -> HTMLResponse:
    return _page(
        _FORM.format(style=_STYLE, message="Present a codec token once to decode in the Web UI.")
    )


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> HTMLResponse:
    credentials: Credentials = request.app.state.credentials
    body = await request.body()
    presented = ""
    if len(body) <= _MAX_FORM_BYTES:
        presented = parse_qs(body.decode("utf-8", errors="replace")).get("token", [""])[0]
    session = credentials.open_session(presented) if presented else None
    if session is None:
        return _page(
            _FORM.format(style=_STYLE, message="<b>That token is not valid.</b> Try again."),
            status_code=401,
        )
    cookie, max_age = session
    expires = datetime.fromtimestamp(int(cookie.split(".")[0]), UTC).strftime("%Y-%m-%d %H:%M")
    endpoint = str(request.base_url).rstrip("/")
    response = _page(_SIGNED_IN.format(style=_STYLE, expires=expires, endpoint=endpoint))
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.app.state.cookie_secure,
        path="/",
    )
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> HTMLResponse:
    response = _page(
        _FORM.format(style=_STYLE, message="Signed out: this browser no longer decodes.")
    )
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        secure=request.app.state.cookie_secure,
        path="/",
    )
    return response
