"""OpenAPI generation for our plain APIViews.

Our API views build JSON bodies by hand (documented in DESIGN.md's contract) instead of
going through serializers on the way out, so the schema says "JSON object" unless a
view declares more, and operation ids come from the view class so they never collide.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes


class ApiSchema(AutoSchema):
    def get_operation_id(self) -> str:
        name = self.view.__class__.__name__.removesuffix("Api")
        return f"{name}_{self.method.lower()}"

    def _get_serializer(self):
        view = self.view
        if hasattr(view, "get_serializer") or getattr(view, "serializer_class", None):
            return super()._get_serializer()
        return None

    def get_response_serializers(self):
        return super().get_response_serializers() or OpenApiTypes.OBJECT


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
                "properties": {
                    "model": {"type": "string"}, "version": {"type": "integer"}, "environment": {"type": "string"},
                    "deployment": {"type": "integer"},
                    "predictions": {"type": "array", "items": {}},
                    "probabilities": {"type": "array", "items": {"type": "object"}},
                    "request_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                },
            }}}},
            "400": {"description": "Invalid body or instances (fields name instance and feature)"},
            "401": {"description": "No or invalid credentials"},
            "403": {"description": "The role may not predict"},
            "404": {"description": "No active deployment of that model in that environment"},
            "503": {"description": "The artifact failed verification and is not served"},
        },
        "security": [{"tokenAuth": []}, {"cookieAuth": []}],
    }
}


def add_predict_endpoint(result, generator, request, public):
    """The hot-path predict view is not a DRF view; document it in the same OpenAPI file."""
    result.setdefault("paths", {})["/api/v1/predict/{model}/{environment}/"] = PREDICT_PATH
    return result
