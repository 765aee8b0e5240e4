from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "autokeep"

urlpatterns: list[URLPattern | URLResolver] = [
    path("autokeep/", views.overview, name="overview"),
    path("autokeep/cards/add/", views.add_method, name="add_method"),
    path("autokeep/cards/setup/<uuid:setup_id>/", views.setup_return, name="setup_return"),
    path("autokeep/cards/<int:method_id>/remove/", views.remove_method, name="remove_method"),
    path("autokeep/lines/<int:line_id>/", views.rule_edit, name="rule"),
    path("autokeep/lines/<int:line_id>/pause/", views.pause, name="pause"),
    path("autokeep/lines/<int:line_id>/resume/", views.resume, name="resume"),
    path("autokeep/lines/<int:line_id>/from-plan/", views.from_plan, name="from_plan"),
]
