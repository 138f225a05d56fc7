from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker


class WorkerAddForm(forms.ModelForm):
    class Meta:
        model = StreamingWorker
        fields = ["name"]


@admin.register(StreamingWorker)
class StreamingWorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "max_streams", "load", "last_heartbeat", "connected_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    readonly_fields = [
        "id",
        "status",
        "capabilities",
        "max_streams",
        "load",
        "channel_name",
        "last_heartbeat",
        "connected_at",
        "created_at",
    ]
    actions = ["drain", "rotate_token"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = WorkerAddForm
            kwargs["fields"] = ["name"]
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def save_model(
        self, request: HttpRequest, obj: StreamingWorker, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        worker, token = services.worker_create(name=obj.name)
        obj.pk, obj.token_hash = worker.pk, worker.token_hash
        obj._state.adding = False
        obj._state.db = "default"
        # The only time the token is visible: only its hash is stored.
        messages.warning(
            request, f"Token for worker {worker.name} (copy it now, shown once): {token}"
        )

    @admin.action(description="Drain: keep current streams, accept no new ones")
    def drain(self, request: HttpRequest, queryset: Any) -> None:
        for worker in queryset:
            services.worker_drain(worker=worker)

    @admin.action(description="Rotate the token (shown once)")
    def rotate_token(self, request: HttpRequest, queryset: Any) -> None:
        for worker in queryset:
            token = services.worker_token_rotate(worker=worker)
            messages.warning(request, f"New token for {worker.name} (shown once): {token}")


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "session",
        "user",
        "worker",
        "status",
        "quality_rung",
        "encoder",
        "created_at",
    ]
    list_filter = ["status", "encoder"]
    readonly_fields = [f.name for f in Stream._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
