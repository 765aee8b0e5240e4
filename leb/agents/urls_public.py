"""The public pages of this app (the agent API is mounted by urls.py)."""

from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "agents"

urlpatterns: list[URLPattern | URLResolver] = [
    path("agents/", views.agent_list, name="list"),
    path("agents/verify/", views.verify, name="verify"),
]
