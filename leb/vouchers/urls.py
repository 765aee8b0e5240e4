from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "vouchers"

urlpatterns: list[URLPattern | URLResolver] = [
    path("vouchers/redeem/", views.redeem, name="redeem"),
    path("vouchers/redeem/done/", views.done, name="done"),
]
