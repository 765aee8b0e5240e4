"""The project's URLs plus one view that enqueues a task, for the tests."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from leb.urls import urlpatterns as project_urlpatterns

from .tasks import note_request_id


def enqueue_view(request: HttpRequest) -> JsonResponse:
    result = note_request_id.enqueue("from-request")
    return JsonResponse({"task": str(result.id)})


urlpatterns = [path("test-enqueue", enqueue_view, name="test-enqueue"), *project_urlpatterns]
