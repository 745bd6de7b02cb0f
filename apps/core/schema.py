"""OpenAPI generation for our plain APIViews.

Our API views build JSON bodies by hand (documented in DESIGN.md's contract) instead of
going through serializers on the way out; each view declares what it answers with
``extend_schema(responses={status: serializer})``, the serializers in each app's
``openapi.py`` describing those bodies. The errors every operation can answer (no or bad
credentials, a role that may not, token guessing, a missing object) are added here, so a
client (and the schema-driven fuzz pass) can rely on every status and body being documented.
Operation ids come from the view class so they never collide.
"""

from __future__ import annotations

from drf_spectacular.drainage import warn
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from .openapi import ApiError

# What any DRF operation under /api/v1/ may answer besides its own statuses.
COMMON_ERRORS = {
    "401": "No credentials, or an unknown, revoked or malformed API token.",
    "403": "The account's role does not allow this (a service account may only predict and send feedback).",
    "429": "This address sent too many invalid API tokens lately; retry after `Retry-After` seconds.",
}
NOT_FOUND = "No such object, or a path id that is not a whole number."
INVALID = ("The body, a query parameter or a path segment is invalid (a NUL character anywhere in the URL "
           "included); `fields` names each field and what is wrong with it.")
RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, required=True, response=[429],
    description="Seconds until this address may try tokens again.",
)


def error(description: str) -> OpenApiResponse:
    """An error status of one operation, with the error body."""
    return OpenApiResponse(ApiError, description=description)


class ApiSchema(AutoSchema):
    def get_operation_id(self) -> str:
        name = self.view.__class__.__name__.removesuffix("Api")
        return f"{name}_{self.method.lower()}"

    def _get_serializer(self):
        view = self.view
        if hasattr(view, "get_serializer") or getattr(view, "serializer_class", None):
            return super()._get_serializer()
        return None

    def get_override_parameters(self):
        return [*super().get_override_parameters(), RETRY_AFTER]

    def get_response_serializers(self):
        declared = super().get_response_serializers()
        if declared is None:
            warn(f"{self.view.__class__.__name__}.{self.method.lower()} declares no response body "
                 f"(extend_schema(responses=...))")
            return OpenApiTypes.OBJECT
        return declared

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in self._implied_errors().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(error(description), code, direction=direction)
        return responses

    def _implied_errors(self) -> dict[str, str]:
        implied = dict(COMMON_ERRORS)
        if "{" in self.path:
            implied["404"] = NOT_FOUND
        if self.method in ("POST", "PUT", "PATCH") or "{" in self.path or self._takes_query_parameters():
            implied["400"] = INVALID
        return dict(sorted(implied.items()))

    def _takes_query_parameters(self) -> bool:
        return any(isinstance(p, OpenApiParameter) and p.location == OpenApiParameter.QUERY
                   for p in self.get_override_parameters())


def _error_response(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}


PREDICT_PATH = {
    "post": {
        "operationId": "Predict_post",
        "summary": "Predict with the model's active deployment in an environment; every instance is logged",
        "description": (
            "Plain Django view kept off DRF for latency. Authenticate with `Authorization: Token <key>` "
            "(any role with the predict right, service accounts included) or a session with the X-CSRFToken "
            "header. Bad instances are a 400 naming each `instances[i].field`; a tampered artifact is a 503."
        ),
        "tags": ["v1"],
        "parameters": [
            {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "environment", "in": "path", "required": True, "schema": {"type": "string"}},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["instances"],
            "properties": {"instances": {"type": "array", "items": {"type": "object"}}},
        }}}},
        "responses": {
            "200": {"description": "Predictions", "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["model", "version", "environment", "deployment", "predictions", "request_ids"],
                "properties": {
                    "model": {"type": "string"}, "version": {"type": "integer"}, "environment": {"type": "string"},
                    "deployment": {"type": "integer"},
                    "predictions": {"type": "array", "items": {}},
                    "probabilities": {"type": "array", "items": {"type": "object"}},
                    "request_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                },
            }}}},
            "400": _error_response("Invalid JSON, no `instances`, or bad instances (`fields` names instance and "
                                   "feature; `details` lists the first problems, `total_problems` counts them)"),
            "401": _error_response("No or invalid credentials"),
            "403": _error_response("The role may not predict, or a session request without the CSRF header"),
            "404": _error_response("No active deployment of that model in that environment"),
            "405": _error_response("Only POST predicts"),
            "503": _error_response("The artifact failed verification and is not served"),
        },
        "security": [{"tokenAuth": []}, {"cookieAuth": []}],
    }
}


def add_predict_endpoint(result, generator, request, public):
    """The hot-path predict view is not a DRF view; document it in the same OpenAPI file."""
    result.setdefault("paths", {})["/api/v1/predict/{model}/{environment}/"] = PREDICT_PATH
    return result
