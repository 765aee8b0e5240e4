from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "announcements"

urlpatterns: list[URLPattern | URLResolver] = [
    path("announcements/", views.announcement_list, name="list"),
    path("announcements/feed.atom", views.announcement_feed, name="feed"),
    path("announcements/<slug:slug>/", views.announcement_detail, name="detail"),
]
