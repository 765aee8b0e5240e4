from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, path
from django.views.generic import RedirectView

from . import views

app_name = "portal"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("help/", views.help_page, name="help"),
    # Browsers and bots ask for /favicon.ico whatever the page links to.
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("portal/favicon.ico"), permanent=True),
        name="favicon",
    ),
]
