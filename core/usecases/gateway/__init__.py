"""The gateway's use cases: forward a request, manage routes, report a route's status."""
