from django.urls import URLPattern, URLResolver, path

from .api import api, docs

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/", api.urls),
    path("api/docs", docs, name="api-docs"),
]
