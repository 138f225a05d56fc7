from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPermission
from apps.core.errors import InvalidInput
from apps.monitoring import selectors
from apps.monitoring.api.serializers import OverviewOutput, OverviewQuery, PredictionsOutput

VIEW_METRICS = "monitoring.view_metrics"
NO_FORECAST = {
    "bandwidth_bps": None,
    "delay_ms": None,
    "horizon_s": 0.0,
    "confidence": 0.0,
    "recommended_rung": None,
    "reason": "no report yet",
    "rung": "",
    "needed_bps": 0,
    "delay_slope_ms_per_s": 0.0,
    "overuse": False,
}
MAX_WINDOW = timedelta(days=31)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> timedelta:
    window = timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])
    if not timedelta(seconds=1) <= window <= MAX_WINDOW:
        raise InvalidInput("window must be between 1s and 31d", code="invalid_window")
    return window


class PredictionsView(APIView):
    permission_classes = [HasPermission(VIEW_METRICS)]

    @extend_schema(
        responses=PredictionsOutput,
        summary="Capacity forecast (15 and 60 minutes) and the forecast of every live stream "
        "(as its worker last reported it)",
    )
    def get(self, request: Request) -> Response:
        streams = []
        for stream in selectors.live_streams()[:200]:
            # The stream forecast runs on the worker; its latest report carries it.
            fc = {**NO_FORECAST, **(stream.get("forecast") or {})}
            streams.append(
                {
                    **fc,
                    "stream_id": stream["id"],
                    "session_id": stream["session_id"],
                    "rung": fc["rung"] or stream["rung"],
                }
            )
        body = {"capacity": selectors.capacity_forecast_now().as_dict(), "streams": streams}
        return Response(PredictionsOutput(body).data)


class OverviewView(APIView):
    permission_classes = [HasPermission(VIEW_METRICS)]

    @extend_schema(
        parameters=[OverviewQuery],
        responses=OverviewOutput,
        summary="The platform now and over a window: sessions, streams, workers, latency, fps",
    )
    def get(self, request: Request) -> Response:
        query = OverviewQuery(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput(detail=query.errors, code="invalid_window")
        window = parse_window(query.validated_data["window"])
        return Response(OverviewOutput(selectors.overview(window=window)).data)
