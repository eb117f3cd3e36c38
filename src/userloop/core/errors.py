"""The error types a user can see, and the one registry of their codes.

Each error carries a stable ``code`` so the CLI, the API and scripts can react to a kind of failure without parsing
prose, and a message that says what to do about it. Every code the product raises is registered here with its
HTTP status and a one-line description (:data:`CODES`); raising with a code that is not registered fails at once,
so a typo is caught by the first test that reaches it instead of reaching a client. Over HTTP and on the CLI with
``--json``, every error is one body (:func:`error_body`)::

    {"error": {"code": "not_found", "message": "no project named 'shop'", "field": "project", "hint": "…"}}

``field`` (the input at fault) and ``hint`` (what to do) appear only when known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """A registered error code: the HTTP status it answers with, what it means, and what to do (optional)."""

    code: str
    status: int
    description: str
    hint: str | None = None


def _codes(*entries: ErrorCode) -> dict[str, ErrorCode]:
    codes = {e.code: e for e in entries}
    if len(codes) != len(entries):
        raise ValueError("an error code is registered twice")
    return codes


#: Every error code the product raises: code → status, description, hint.
CODES: dict[str, ErrorCode] = _codes(
    # the HTTP face: answers that come before or around any operation
    ErrorCode("invalid_request", 422, "The request does not match the route's schema: a field is missing, "
              "mistyped or unknown (`field` names it)."),
    ErrorCode("invalid_value", 400, "A value of the request cannot be used: a number out of range, or bytes that "
              "are not the format they claim."),
    ErrorCode("unauthorized", 401, "No API token, or not a valid one.",
              "send `Authorization: Bearer ula_…`; `userloop keys create --kind admin` makes a token"),
    ErrorCode("forbidden", 403, "The token may not do this: it lacks the right, or its project scope excludes it."),
    # operators' accounts and sessions
    ErrorCode("csrf", 403, "A signed-in request that changes something lacks the session's CSRF token, or the "
              "sign-in came from another site.",
              "send the value of the `userloop_csrf` cookie in the `X-CSRF-Token` header"),
    ErrorCode("account_locked", 423, "Too many failed sign-ins in a row: the account is locked for a while.",
              "retry after the `Retry-After` seconds, or ask an admin to reset the password"),
    ErrorCode("account_exists", 409, "An account with that login exists already."),
    ErrorCode("unsupported_media_type", 415, "The body is not of the content type the route takes.",
              "send `Content-Type: application/json`"),
    ErrorCode("method_not_allowed", 405, "The path exists, but not for this HTTP method (`Allow` lists them)."),
    ErrorCode("conflict", 409, "The change would take away what the workspace needs (its last admin token, the "
              "service's own token)."),
    ErrorCode("rate_limited", 429, "Too many requests or failed authentications from this address or token.",
              "retry after the `Retry-After` seconds"),
    ErrorCode("uri_too_long", 414, "The URL (its path and query string) is longer than the server accepts.",
              "send long inputs in the request's body"),
    ErrorCode("internal", 500, "The server failed; the error is in its log."),
    # the base kinds of core/errors
    ErrorCode("workspace", 400, "The workspace is missing, malformed or owned by another process.",
              "`userloop init` makes a workspace; `userloop serve` owns one"),
    ErrorCode("port_in_use", 409, "The port the service would listen on is taken: another process listens there.",
              "pass another --port, or stop the other process"),
    ErrorCode("address_unavailable", 400, "The service cannot listen on the address: the host name does not resolve,"
              " the address is not one of this machine's, or binding it is not allowed.",
              "pass an address of this machine with --host (127.0.0.1 by default)"),
    ErrorCode("not_found", 404, "A named thing does not exist: a project, key, tag, segment, model or path."),
    ErrorCode("invalid", 400, "Input breaks a rule: a bad name, mapping, definition or option."),
    ErrorCode("read_only", 400, "An analyst query tried to write, change the schema or reach outside the project."),
    ErrorCode("query", 400, "An analyst query failed in the engine (syntax, an unknown column, a type)."),
    # analyses and analyst SQL
    ErrorCode("query_timeout", 400, "A query ran longer than its time limit and was stopped.",
              "narrow the date range or raise the timeout"),
    ErrorCode("query_cancelled", 400, "A query was cancelled while it ran."),
    ErrorCode("query_conflict", 409, "A query with the same id is already running."),
    ErrorCode("capability_missing", 501, "The store's engine cannot do this (ClickHouse has no multi-statement "
              "transactions and no row updates)."),
    ErrorCode("mirror_mismatch", 500, "A copy into another store does not hold the rows the source holds "
              "(`userloop migrate` counts every table and each month of events).",
              "run the migration again; if the counts still differ, keep using the source store"),
    ErrorCode("query_too_large", 400, "A query reads more data than one answer may hold.",
              "name only the columns it needs, or ask in smaller pieces"),
    ErrorCode("partial_period", 400, "A comparison would set a period still running (today, or a week or month "
              "not over) against a complete one.",
              'leave out "include_current" so relative ranges end yesterday, or end the range ("to") before today'),
    ErrorCode("pii_required", 400, "The request reads personal data (phone numbers, e-mail addresses) and the "
              "token lacks the 'pii' right.", "break down by masked values, or ask for a token with the grant"),
    # the event registry
    ErrorCode("unknown_event", 404, "The project has no event of that name (it has never been seen).",
              "`userloop events list` shows the project's events"),
    # imports
    ErrorCode("too_large", 413, "A body or a file (once decompressed) is larger than the server accepts."),
    ErrorCode("unreadable_file", 400, "An imported file cannot be read as the format it claims."),
    ErrorCode("upload_rejected", 400, "No row of an uploaded file could be used; the rejects say why."),
    # tags, segments, look-alikes
    ErrorCode("tag_exists", 400, "A tag with that name exists already.", "change it with update"),
    ErrorCode("tag_not_computed", 400, "A tag has not been computed yet.", "run `userloop tags materialise` first"),
    ErrorCode("segment_not_computed", 400, "A segment has no members yet.", "refresh it first"),
    ErrorCode("segment_in_use", 400, "Other segments refer to this segment.", "change those first"),
    # saved analyses and dashboards
    ErrorCode("insight_in_use", 409, "Dashboards show this saved analysis; the message names them.",
              "take it off those dashboards first (dashboards update)"),
    ErrorCode("dashboard_exists", 409, "A dashboard with that name exists already in this project.",
              "choose another name, or change the existing one with update"),
    ErrorCode("segment_cycle", 400, "A segment's rule would refer to the segment itself."),
    ErrorCode("segment_empty", 400, "A static segment would have no members: none of the ids is a known person."),
    ErrorCode("history_backwards", 400, "A daily history is written forward; an earlier day cannot be computed now.",
              "reset the history to rebuild it"),
    ErrorCode("history_duplicate", 400, "A daily history got two values for one person."),
    ErrorCode("seed_empty", 400, "A look-alike's seed holds no one."),
    ErrorCode("seed_small", 400, "A look-alike's seed is too small to learn from."),
    ErrorCode("seed_everyone", 400, "A look-alike's seed holds everyone, so no one is left to score."),
    # user models
    ErrorCode("model", 400, "A user model cannot run on the data or configuration given."),
    ErrorCode("model_invalid_input", 400, "A model's configuration is not valid."),
    ErrorCode("model_unknown_event", 400, "A model's configuration names an event the project does not have."),
    ErrorCode("model_unknown_property", 400, "A model's configuration names a property the project does not have."),
    ErrorCode("model_property_type", 400, "A property a model reads has the wrong type."),
    ErrorCode("model_invalid_dates", 400, "A model's date range ends before it starts."),
    ErrorCode("model_no_data", 400, "There is nothing to model: no events in the model's window."),
    ErrorCode("model_no_users", 400, "No users have events before the model's day."),
    ErrorCode("model_no_purchases", 400, "No purchases before the model's day."),
    ErrorCode("model_no_money", 400, "No purchase has a finite amount.", "check the money property"),
    ErrorCode("money_property_invalid", 400, "A project's money property must be a NUMBER event property it has.",
              "`userloop properties list` shows the project's properties and their types"),
    ErrorCode("model_no_report", 404, "A model has no stored report for that day.", "run the model first"),
    ErrorCode("model_no_outputs", 404, "A model has no stored outputs.", "run the model first"),
    ErrorCode("churn_not_enough_history", 400, "The churn model needs both outcomes in its training snapshots.",
              "use more history or a shorter horizon"),
    ErrorCode("value_jump_small_group", 400, "The value-jump model needs more users in each group."),
    # customer lifetime value
    ErrorCode("clv_fit", 400, "A CLV model cannot be fitted or used on the data given."),
    ErrorCode("clv_invalid_input", 400, "A CLV model's input arrays are malformed."),
    ErrorCode("clv_invalid_params", 400, "A CLV model's parameters are not finite positive numbers."),
    ErrorCode("clv_too_few_customers", 400, "Too few customers (or repeat customers) to fit a CLV model."),
    ErrorCode("clv_no_repeat_purchases", 400, "No customer made a repeat purchase, so a CLV model cannot be fitted.",
              "use a longer observation window"),
    ErrorCode("clv_no_variation", 400, "Customers do not differ, so a CLV model's heterogeneity cannot be estimated."),
    ErrorCode("clv_not_identified", 400, "The data do not identify a CLV model's parameters."),
    ErrorCode("clv_undefined_mean", 400, "A Gamma-Gamma fit gives some customers an infinite expected spend."),
    ErrorCode("clv_not_fitted", 400, "A CLV model was used before it was fitted."),
    ErrorCode("clv_no_valid_candidate", 400, "No CLV model could be fitted on the calibration period."),
    # engage: journeys, channels, templates, benefits
    ErrorCode("journey_invalid", 400, "The journey definition has errors; `errors` lists each with its node.",
              "`userloop journeys validate FILE` explains every error by node"),
    ErrorCode("journey_state", 409, "The journey is not in a state that allows this (e.g. editing an archived "
              "journey, starting one that runs)."),
    ErrorCode("unknown_journey", 404, "No journey of that id or name in this project."),
    ErrorCode("unknown_channel", 404, "No channel of that name in this project.",
              "`userloop channels list` shows the configured channels"),
    ErrorCode("channel_invalid", 400, "The channel's settings cannot be used (missing field, bad address)."),
    ErrorCode("channel_unavailable", 503, "The channel cannot send now: its server refused the connection or "
              "the credentials; sends wait and are retried."),
    ErrorCode("template_invalid", 400, "The template does not parse, or names something it may not use."),
    ErrorCode("template_unsafe", 400, "The template tried something the sandbox forbids (reading attributes of "
              "internals, running code) or ran past its time or size limit."),
    ErrorCode("token_invalid", 403, "The signed link is forged, altered or expired."),
    ErrorCode("unknown_benefit", 404, "No benefit of that id or name in this project."),
    ErrorCode("benefit_exhausted", 409, "The benefit's stock is used up."),
    # membership: the points ledger
    ErrorCode("points_invalid", 400, "A points operation breaks a rule: an amount that is not a whole number of "
              "points from 1 to 10^12, a bad request id, wallet or date (`field` names it)."),
    ErrorCode("points_insufficient", 409, "A spending or debit is larger than the member's spendable points "
              "(pending points cannot be spent yet); nothing was booked."),
    ErrorCode("points_request_conflict", 409, "The request id was used before for another operation; a retry "
              "must send the same content.", "use a new request id for a new operation"),
    ErrorCode("points_unknown_transfer", 404, "No ledger entry of that id for this member in this programme."),
    ErrorCode("points_already_reversed", 409, "The entry was reversed already."),
    ErrorCode("points_not_reversible", 400, "Only earnings, spendings and adjustments can be reversed, not a "
              "reversal or an expiry."),
    # membership: programmes, members, growth value, levels
    ErrorCode("programme_invalid", 400, "The programme definition has errors; the message lists each with its path.",
              "`userloop programmes validate FILE` explains every error by path"),
    ErrorCode("programme_exists", 409, "A programme of that name exists already in this project."),
    ErrorCode("programme_state", 409, "The programme is not in a state that allows this (nobody joins an archived "
              "programme)."),
    ErrorCode("unknown_programme", 404, "No programme of that id or name in this project.",
              "`userloop programmes list` shows the programmes"),
    ErrorCode("unknown_member", 404, "That person is not a member of the programme.",
              "`userloop members join` makes them one"),
    ErrorCode("unknown_exchange_item", 404, "No item of that name in the programme's points exchange."),
    ErrorCode("exchange_refused", 409, "The member may not redeem this item: below its level, at its limit, or "
              "no longer a member."),
    # membership: check-ins and tasks
    ErrorCode("check_in_disabled", 409, "The programme has no daily check-in.",
              "add a `check_in` part to the programme's definition"),
    ErrorCode("check_in_late", 409, "The member has checked in on a later local day already; an earlier day is "
              "over (a server clock behind another's)."),
)  # fmt: skip

#: The code of an HTTP status raised without one (a framework's 404 or 405, a route's HTTPException).
STATUS_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    414: "uri_too_long",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
}


class UnregisteredCodeError(LookupError):
    """An error was raised with a code that :data:`CODES` does not hold: a programming error, never a user's."""


def registered(code: str) -> ErrorCode:
    """The registry entry of ``code``; :class:`UnregisteredCodeError` when there is none."""
    entry = CODES.get(code)
    if entry is None:
        raise UnregisteredCodeError(f"error code {code!r} is not registered in userloop.core.errors.CODES")
    return entry


def code_for_status(status: int) -> str:
    """The registered code for an HTTP ``status`` that came without one (any other 4xx: ``invalid``)."""
    return STATUS_CODES.get(status, "internal" if status >= 500 else "invalid")


def error_body(code: str, message: str, *, field: str | None = None, hint: str | None = None) -> dict[str, Any]:
    """The one error body of the API and of the CLI's ``--json``; ``hint`` defaults to the code's own."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    hint = hint if hint is not None else registered(code).hint
    if hint is not None:
        error["hint"] = hint
    return {"error": error}


class UserloopError(Exception):
    """Base of every error meant for the user (CLI exit code 2, HTTP with the code's status).

    ``field`` names the input at fault (``"definition.steps"``, ``"--clv-model"``); ``hint`` says what to do
    when the code's registered hint does not fit."""

    code = "invalid"

    def __init__(
        self, message: str, *, code: str | None = None, field: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            registered(code)
            self.code = code
        self.field = field
        self.hint = hint

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registered(cls.code)  # a subclass with a typo in its code fails on import

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code

    @property
    def status(self) -> int:
        """The HTTP status this error answers with."""
        return registered(self.code).status

    def body(self) -> dict[str, Any]:
        """The error as the API and the CLI's ``--json`` print it (:func:`error_body`)."""
        return error_body(self.code, self.message, field=self.field, hint=self.hint)


class WorkspaceError(UserloopError):
    """The workspace is missing, malformed or owned by another process."""

    code = "workspace"


class NotFoundError(UserloopError):
    """A named thing (project, key, file) does not exist."""

    code = "not_found"


class ValidationError(UserloopError):
    """Input that breaks a rule: a bad name, a bad mapping, a bad option."""

    code = "invalid"


class ReadOnlyViolation(UserloopError):  # noqa: N818 - a violation is what the user sees
    """An analyst query tried to write, change the schema or reach outside the project."""

    code = "read_only"


class QueryError(UserloopError):
    """An analyst query failed in the engine (syntax, unknown column, timeout)."""

    code = "query"
