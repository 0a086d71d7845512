"""The status page: read-only HTML, CSS and JavaScript shipped in the package, and its data."""

from postflow_webhooks.adapters.http.ui.routes import PageViews, StatusPage, page_routes

__all__ = ["PageViews", "StatusPage", "page_routes"]
