"""HTTP views of the aggregation context: thin adapters from requests to use cases.

Each view parses with a serializer, calls one use case from `wiring`, and maps the result;
errors go through the app's `ERRORS` table. Views import neither models nor repositories.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import APISettings

from apps.aggregation import ratelimits, wiring
from apps.aggregation.errors import ERRORS
from apps.aggregation.serializers import (
    CompositeInputSerializer,
    CompositeOutputSerializer,
    CompositePatchSerializer,
    RunAnswerSerializer,
    RunOutputSerializer,
    RunsQuerySerializer,
    SourceFailedProblemSerializer,
    answer_document,
    changes_from,
    composite_from,
)
from apps.common.apiviews import PlatformGenericAPIView
from apps.common.authentication import TokenUser
from apps.common.openapi import ADMIN_ONLY, BEARER_401, problem_description, problems
from apps.common.pagination import page_parameters
from apps.common.permissions import IsAdmin
from apps.common.problems import PROBLEM_CONTENT_TYPE
from core.domain.aggregation.composite import MAX_CHAIN, parse_chain
from core.domain.aggregation.runs import RunStatus
from core.domain.shared.result import Err, Ok
from core.usecases.aggregation.errors import ParameterErrors, RunError
from core.usecases.aggregation.run import CHAIN_HEADER, Caller, RunCommand

BODY_400 = ["validation_error", "malformed_request"]
# A PATCH is checked field by field, then merged into the stored composite; the merge breaks a
# rule only when the stored definition already did (kept from before a rule was added, or
# written past the API and the admin): `invalid_composite` then asks for the fields that fix it.
PATCH_400 = [*BODY_400, "invalid_composite"]
# A page or page size that is not a whole number from 1 (400), a page past the end (404).
PAGE_ERRORS = {400: ["validation_error"], 404: ["not_found"], **ADMIN_ONLY}


class CompositeListView(PlatformGenericAPIView):
    """Admin: list or create composites."""

    permission_classes = [IsAdmin]
    serializer_class = CompositeInputSerializer  # what DRF's OPTIONS answer describes for POST

    @extend_schema(
        operation_id="aggregation_composites_list",
        parameters=page_parameters("Composites"),
        responses={200: CompositeOutputSerializer(many=True), **problems(PAGE_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(wiring.list_composites().execute())
        return self.get_paginated_response(CompositeOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="aggregation_composites_create",
        request=CompositeInputSerializer,
        responses={
            201: CompositeOutputSerializer,
            **problems(
                {
                    400: BODY_400,
                    409: ["composite_exists"],
                    415: ["unsupported_media_type"],
                    **ADMIN_ONLY,
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = CompositeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        match wiring.create_composite().execute(composite_from(serializer.validated_data)):
            case Ok(composite):
                return Response(CompositeOutputSerializer(composite).data, status=201)
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class CompositeDetailView(PlatformGenericAPIView):
    """Admin: read, change or remove one composite."""

    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="aggregation_composites_read",
        responses={
            200: CompositeOutputSerializer,
            **problems({404: ["composite_not_found"], **ADMIN_ONLY}),
        },
    )
    def get(self, request: Request, name: str) -> Response:
        match wiring.get_composite().execute(name):
            case Ok(composite):
                return Response(CompositeOutputSerializer(composite).data)
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover

    @extend_schema(
        operation_id="aggregation_composites_update",
        request=CompositePatchSerializer,
        responses={
            200: CompositeOutputSerializer,
            **problems(
                {
                    400: PATCH_400,
                    404: ["composite_not_found"],
                    409: ["composite_exists"],
                    415: ["unsupported_media_type"],
                    **ADMIN_ONLY,
                }
            ),
        },
    )
    def patch(self, request: Request, name: str) -> Response:
        serializer = CompositePatchSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = changes_from(serializer.validated_data)
        match wiring.update_composite().execute(name, changes):
            case Ok(composite):
                return Response(CompositeOutputSerializer(composite).data)
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover

    @extend_schema(
        operation_id="aggregation_composites_delete",
        responses={204: None, **problems({404: ["composite_not_found"], **ADMIN_ONLY})},
    )
    def delete(self, request: Request, name: str) -> Response:
        match wiring.delete_composite().execute(name):
            case Ok(_):
                return Response(status=204)
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class AcceptHeaderNegotiation(DefaultContentNegotiation):
    """Negotiation on `Accept` alone: a run's query string belongs to its composite, so
    `?format=` fills a `{format}` placeholder instead of picking a renderer (404 otherwise)."""

    settings = APISettings({"URL_FORMAT_OVERRIDE": None})


class CompositeRunView(PlatformGenericAPIView):
    """Run a composite: every source concurrently, merged into `{data, errors, meta}`."""

    permission_classes = [AllowAny]
    content_negotiation_class = AcceptHeaderNegotiation

    @extend_schema(
        operation_id="aggregation_composites_run",
        parameters=[
            OpenApiParameter(
                CHAIN_HEADER,
                str,
                location=OpenApiParameter.HEADER,
                description=(
                    "Set by the platform on every source call: the composites it is made for, "
                    "comma-separated, outermost first. A run of a composite it names (or of "
                    f"more than {MAX_CHAIN} nested composites) is refused: 508 `composite_loop`."
                ),
            ),
            OpenApiParameter(
                "placeholders",
                type={"type": "object", "additionalProperties": {"type": "string"}},
                location=OpenApiParameter.QUERY,
                style="form",
                explode=True,
                description="Values of the composite's URL `{placeholders}`, by name.",
            ),
        ],
        responses={
            200: RunAnswerSerializer,
            **problems(
                {
                    400: ["validation_error"],
                    **BEARER_401,
                    404: ["composite_not_found"],
                    429: ["rate_limited"],
                    508: ["composite_loop"],
                }
            ),
            (502, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                SourceFailedProblemSerializer, description=problem_description(["source_failed"])
            ),
        },
    )
    def get(self, request: Request, name: str) -> Response:
        ratelimits.enforce_run(request)
        user = request.user
        caller = (
            Caller(user.principal.user_id, user.raw_token) if isinstance(user, TokenUser) else None
        )
        query = request.query_params
        command = RunCommand(
            name=name,
            query={key: query[key] for key in query},
            repeated=frozenset(key for key in query if len(query.getlist(key)) > 1),
            caller=caller,
            request_id=getattr(request._request, "request_id", None),
            chain=parse_chain(request.headers.get(CHAIN_HEADER, "")),
            traceparent=request.headers.get("traceparent"),
            tracestate=request.headers.get("tracestate"),
        )
        match wiring.run_composite(after_response=True).execute(command):
            case Ok(answer) if answer.status is RunStatus.FAILED:
                ERRORS.raise_for(RunError.SOURCE_FAILED, extra=answer_document(answer))
            case Ok(answer):
                return Response(answer_document(answer))
            case Err(ParameterErrors(errors=errors, code=code)):
                ERRORS.raise_for(code, extra={"errors": errors})
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover


class RunListView(PlatformGenericAPIView):
    """Admin: past runs, newest first, filtered by `composite` and `status`."""

    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="aggregation_runs_list",
        parameters=[RunsQuerySerializer, *page_parameters("Runs")],
        responses={
            200: RunOutputSerializer(many=True),
            **problems({400: ["validation_error"], **PAGE_ERRORS}),
        },
    )
    def get(self, request: Request) -> Response:
        query = RunsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        status = query.validated_data.get("status")
        runs = wiring.list_runs().execute(
            composite=query.validated_data.get("composite"),
            status=RunStatus(status) if status else None,
        )
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(RunOutputSerializer(page, many=True).data)
