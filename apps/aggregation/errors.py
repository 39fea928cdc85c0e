"""The aggregation app's one error table: use-case error codes to HTTP statuses."""

from apps.common.errors import ErrorTable
from core.usecases.aggregation.errors import CompositeError, RunError

# Pairs, not a dict: members of the two enums share codes (`composite_not_found`).
ERRORS = ErrorTable(
    [
        (CompositeError.NOT_FOUND, (404, "No composite has this name.")),
        (CompositeError.NAME_TAKEN, (409, "A composite with this name already exists.")),
        (
            CompositeError.INVALID,
            (
                400,
                "The composite would not be valid: its stored definition breaks a rule "
                "(say, no sources); give the fields that fix it.",
            ),
        ),
        (RunError.NOT_FOUND, (404, "No composite has this name.")),
        (RunError.AUTHENTICATION_REQUIRED, (401, "This composite needs an access token.")),
        (
            RunError.INVALID_PARAMETERS,
            (400, "The query string does not fill this composite's placeholders; see `errors`."),
        ),
        (
            RunError.LOOP_DETECTED,
            (
                508,
                "This composite is already running further up the chain of composites that "
                "called it (one of its sources leads back to it), or that chain is too long.",
            ),
        ),
        (
            RunError.SOURCE_FAILED,
            (502, "A required source failed; `errors` says why, `data` holds what did answer."),
        ),
    ]
)
