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
