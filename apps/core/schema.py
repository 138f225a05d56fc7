"""OpenAPI: every operation documents the platform's error shape for its failure statuses."""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    detail = serializers.JSONField(allow_null=True, help_text="Field errors or extra context.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_RESPONSE = OpenApiResponse(ErrorSerializer, description="Error")


class PlatformAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        # 401: a bad bearer token is refused even on public endpoints (and a login can fail);
        # 404: objects named in the path or in the body (session_id, scene_version, invite);
        # 409: writes that conflict with the current state (state_version, not ready, full).
        statuses = ["400", "401", "404", "429", "503"]
        if not self._is_public():
            statuses.append("403")
        if self.method != "GET":
            statuses.append("409")
        for status in statuses:
            if status not in responses:
                responses[status] = self._get_response_for_code(ERROR_RESPONSE, status)
        # A view may document an error status by description only (its codes): give it the
        # platform's error body too, keeping that description.
        for status, response in responses.items():
            if status[:1] in ("4", "5") and "content" not in response:
                error = self._get_response_for_code(ERROR_RESPONSE, status)
                responses[status] = {**error, "description": response.get("description", "")}
        return responses

    def _is_public(self) -> bool:
        return any(isinstance(p, AllowAny) for p in self.view.get_permissions())
