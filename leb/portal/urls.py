from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "portal"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("help/", views.help_page, name="help"),
]
