from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


admin.site.site_header = "leb"
admin.site.site_title = "leb ops"

urlpatterns = [
    path("ops/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
