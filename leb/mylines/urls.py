from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "mylines"

urlpatterns: list[URLPattern | URLResolver] = [
    path("my/lines/", views.line_list_view, name="list"),
    path("my/lines/bind/", views.bind_view, name="bind"),
    path("my/lines/bind/<int:challenge_id>/", views.bind_confirm_view, name="bind_confirm"),
    path("my/lines/<int:line_id>/", views.line_view, name="line"),
    path("my/lines/<int:line_id>/unbind/", views.unbind_view, name="unbind"),
    path("my/lines/<int:line_id>/esim/redownload/", views.redownload_view, name="redownload"),
]
