"""The web console: where the central team and site managers see, own and close the loop (docs/CONSOLE.md).

Served from central's store by ``smileloop console``: FastAPI for routes and the OpenAPI of the JSON API,
Jinja2 pages made lively with htmx, server-sent events for live alerts, Chart.js for the dashboards. The
front-end libraries are vendored under ``static/vendor`` (stores' networks are closed: no CDN).
"""

from central.console.app import create_app

__all__ = ["create_app"]
