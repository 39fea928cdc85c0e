"""Admin REST API of the gateway: routes and their status (`/api/v1/gateway/`).

Views parse with serializers, call one use case from wiring.py and map errors through
GATEWAY_ERRORS; they import neither models nor repositories. The proxy itself is in
entrypoint.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.apiviews import PlatformAPIView
from apps.common.openapi import ADMIN_ONLY, problems
from apps.common.pagination import PagePagination, page_parameters
from apps.common.permissions import IsAdmin
from apps.gateway import wiring
from apps.gateway.errors import GATEWAY_ERRORS
from apps.gateway.serializers import (
    RouteChangesSerializer,
    RouteInputSerializer,
    RouteOutputSerializer,
    changes_from,
    route_from,
    route_out,
)
from core.domain.shared.result import Err, Ok
from core.usecases.gateway.manage_routes import RouteRejected


def _refuse(rejected: RouteRejected) -> None:
    GATEWAY_ERRORS.raise_for(
        rejected.error, extra={"errors": rejected.errors} if rejected.errors else None
    )


class RouteListView(PlatformAPIView):
    """List every route, or create one."""

    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="gateway_routes_list",
        parameters=page_parameters("Routes"),
        responses={
            200: inline_serializer(
                name="RoutePage",
                fields={
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": RouteOutputSerializer(many=True),
                },
            ),
            **problems({400: ["validation_error"], **ADMIN_ONLY, 404: ["not_found"]}),
        },
    )
    def get(self, request: Request) -> Response:
        """List every route (paginated), by name."""
        routes = wiring.list_routes().execute()
        paginator = PagePagination()
        page = paginator.paginate_queryset(routes, request, view=self)  # type: ignore[arg-type]
        return paginator.get_paginated_response([route_out(route) for route in page or []])

    @extend_schema(
        operation_id="gateway_routes_create",
        request=RouteInputSerializer,
        responses={
            201: RouteOutputSerializer,
            **problems(
                {
                    400: ["validation_error", "malformed_request"],
                    409: ["route_name_taken", "route_prefix_taken"],
                    415: ["unsupported_media_type"],
                    **ADMIN_ONLY,
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Create a route; every worker serves it within a second."""
        serializer = RouteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        match wiring.create_route().execute(route_from(serializer.validated_data)):
            case Ok(route):
                return Response(route_out(route), status=status.HTTP_201_CREATED)
            case Err(rejected):
                _refuse(rejected)
        raise AssertionError("unreachable")  # pragma: no cover


class RouteDetailView(PlatformAPIView):
    """Read, change or remove one route."""

    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="gateway_routes_read",
        responses={
            200: RouteOutputSerializer,
            **problems({404: ["route_not_found"], **ADMIN_ONLY}),
        },
    )
    def get(self, request: Request, name: str) -> Response:
        match wiring.get_route().execute(name):
            case Ok(route):
                return Response(route_out(route))
            case Err(rejected):
                _refuse(rejected)
        raise AssertionError("unreachable")  # pragma: no cover

    @extend_schema(
        operation_id="gateway_routes_update",
        request=RouteChangesSerializer,
        responses={
            200: RouteOutputSerializer,
            **problems(
                {
                    400: ["validation_error", "malformed_request"],
                    404: ["route_not_found"],
                    409: ["route_prefix_taken"],
                    415: ["unsupported_media_type"],
                    **ADMIN_ONLY,
                }
            ),
        },
    )
    def patch(self, request: Request, name: str) -> Response:
        serializer = RouteChangesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = changes_from(serializer.validated_data)
        match wiring.update_route().execute(name, changes):
            case Ok(route):
                return Response(route_out(route))
            case Err(rejected):
                _refuse(rejected)
        raise AssertionError("unreachable")  # pragma: no cover

    @extend_schema(
        operation_id="gateway_routes_delete",
        responses={204: None, **problems({404: ["route_not_found"], **ADMIN_ONLY})},
    )
    def delete(self, request: Request, name: str) -> Response:
        match wiring.delete_route().execute(name):
            case Ok(_):
                return Response(status=status.HTTP_204_NO_CONTENT)
            case Err(rejected):
                _refuse(rejected)
        raise AssertionError("unreachable")  # pragma: no cover


StatusSerializer = inline_serializer(
    name="RouteStatus",
    fields={
        "name": serializers.CharField(),
        "enabled": serializers.BooleanField(),
        "circuit": inline_serializer(
            name="Circuit",
            fields={
                "state": serializers.ChoiceField(
                    choices=["closed", "open", "half_open"],
                    help_text="as a call arriving now finds it: half_open once an open "
                    "circuit's recovery_seconds are over (the next call goes upstream as the "
                    "probe) and while a probe is out",
                ),
                "consecutive_failures": serializers.IntegerField(),
                "opened_at": serializers.DateTimeField(allow_null=True),
                "retry_after_seconds": serializers.IntegerField(
                    allow_null=True,
                    help_text="seconds until a probe may go upstream (while a probe is out: "
                    "until its slot frees); 0: the next call probes; null when closed",
                ),
            },
        ),
        "window_seconds": serializers.IntegerField(
            help_text="requests and latency cover the last window_seconds (every worker)"
        ),
        "requests": inline_serializer(
            name="RouteRequests",
            fields={
                "total": serializers.IntegerField(),
                "by_status": serializers.DictField(child=serializers.IntegerField()),
            },
        ),
        "latency_ms": inline_serializer(
            name="RouteLatency",
            fields={
                "avg": serializers.FloatField(allow_null=True),
                "p50": serializers.FloatField(allow_null=True),
                "p95": serializers.FloatField(allow_null=True),
                "upstream_avg": serializers.FloatField(allow_null=True),
            },
        ),
    },
)


def _moment(epoch: float) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z") if epoch else None


class RouteStatusView(PlatformAPIView):
    """Circuit state, consecutive failures, and the recent request counts and latency of one
    route (a rolling window, `GATEWAY_STATUS_WINDOW_SECONDS`)."""

    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="gateway_routes_status",
        responses={200: StatusSerializer, **problems({404: ["route_not_found"], **ADMIN_ONLY})},
    )
    def get(self, request: Request, name: str) -> Response:
        match wiring.route_status().execute(name):
            case Ok(found):
                traffic = found.traffic
                body: dict[str, Any] = {
                    "name": found.route.name,
                    "enabled": found.route.enabled,
                    "circuit": {
                        "state": found.circuit.state.value,
                        "consecutive_failures": found.circuit.failures,
                        "opened_at": _moment(found.circuit.opened_at),
                        "retry_after_seconds": found.circuit.retry_after_seconds,
                    },
                    "window_seconds": traffic.window_seconds,
                    "requests": {
                        "total": sum(traffic.requests_by_status.values()),
                        "by_status": traffic.requests_by_status,
                    },
                    "latency_ms": {
                        "avg": traffic.latency_ms_avg,
                        "p50": traffic.latency_ms_p50,
                        "p95": traffic.latency_ms_p95,
                        "upstream_avg": traffic.upstream_ms_avg,
                    },
                }
                return Response(body)
            case Err(rejected):
                _refuse(rejected)
        raise AssertionError("unreachable")  # pragma: no cover
