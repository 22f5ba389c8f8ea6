"""Build each link the pages carry once for every place the app is mounted, not on every page.

Werkzeug builds a URL by walking its rule at each call, and the six ``url_for`` calls of /yup
were half the time spent rendering it. A template's ``url_for`` of an endpoint alone, or of a
static file, depends only on the script root the server mounts the app at (no URL defaults,
subdomains or host matching here), so those links are built once per script root and kept;
any other call, and every call outside the templates, is Flask's ``url_for`` as before.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

#: Most links kept, should a server let its clients choose the script root: past it, each
#: link is built at every call again.
MOST_KEPT = 256


def init_app(app: Flask) -> None:
    """Give the templates a ``url_for`` that keeps the links it built."""
    app.jinja_env.globals["url_for"] = Links(app).url_for


class Links:
    """Build links with the app's ``url_for``, keeping those that cannot change."""

    def __init__(self, app: Flask) -> None:
        self.build = app.url_for
        self.kept: dict[tuple[str, str, str | None], str] = {}

    def url_for(self, endpoint: str, /, **values: Any) -> str:
        """Return what Flask's ``url_for(endpoint, **values)`` returns, built once if it can be."""
        filename = values.get("filename")
        if values.keys() - {"filename"} or not isinstance(filename, str | None):
            return self.build(endpoint, **values)
        key = (request.script_root, endpoint, filename)
        found = self.kept.get(key)
        if found is None:
            found = self.build(endpoint, **values)
            if len(self.kept) < MOST_KEPT:
                self.kept[key] = found
        return found
