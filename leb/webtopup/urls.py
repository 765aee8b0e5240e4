from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "webtopup"

urlpatterns: list[URLPattern | URLResolver] = [
    path("topup/", views.start, name="start"),
    path("topup/<str:token>/plans/", views.plans, name="plans"),
    path("topup/<str:token>/confirm/<str:choice>/", views.confirm, name="confirm"),
    path("topup/<str:token>/pay/", views.pay, name="pay"),
]
