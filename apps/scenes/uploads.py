"""Streaming upload handling with an early size limit.

``SceneUploadHandler`` replaces Django's handlers for scene uploads: every file goes straight
to a temporary file on disk (never into memory), its SHA-256 is computed chunk by chunk as the
bytes arrive, and the upload is aborted with 413 ``payload_too_large`` as soon as the request
declares (``Content-Length``) or delivers more than the limit, whatever the headers claim.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest

from apps.core.errors import PayloadTooLarge

# Stored files are read and written in chunks of this size, never whole into memory.
CHUNK = 1024 * 1024

# Multipart framing and the small text fields ride on top of the file itself.
FORM_OVERHEAD_BYTES = 1024 * 1024


def too_large(max_bytes: int, seen: int | None = None) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Scene files may be at most {max_bytes // (1024 * 1024)} MiB.",
        detail={"max_bytes": max_bytes, **({"received_bytes": seen} if seen else {})},
    )


def check_content_length(request: HttpRequest, max_bytes: int) -> None:
    """Refuse before reading the body when the declared length is already too large."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes + FORM_OVERHEAD_BYTES:
        raise too_large(max_bytes, declared)


class SceneUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request: HttpRequest | None = None, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.received = 0  # over all files of the request
        self._hash: Any = None

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        if content_length > self.max_bytes + FORM_OVERHEAD_BYTES:
            raise too_large(self.max_bytes, content_length)

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._hash = hashlib.sha256()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.file.close()  # the temporary file is deleted on close
            raise too_large(self.max_bytes, self.received)
        self._hash.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self._hash.hexdigest()  # type: ignore[attr-defined]
        return uploaded
