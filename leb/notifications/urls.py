from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "notifications"

urlpatterns: list[URLPattern | URLResolver] = [
    path("notifications/", views.centre_view, name="centre"),
    path("notifications/preferences/", views.preferences_view, name="preferences"),
    path(
        "notifications/preferences/rotate-secret/",
        views.rotate_secret_view,
        name="rotate_secret",
    ),
]
