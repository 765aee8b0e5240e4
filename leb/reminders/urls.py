from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "reminders"

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "calendar/<int:line_id>/<str:token>.ics",
        views.calendar_feed_view,
        name="calendar_feed",
    ),
    path(
        "my/lines/<int:line_id>/calendar/new-link/",
        views.rotate_calendar_view,
        name="calendar_rotate",
    ),
]
