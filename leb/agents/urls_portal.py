"""The agent portal's pages, under /agent/portal/ (the agent API stays at /agent/v1/)."""

from django.urls import URLPattern, URLResolver, path

from . import commission
from . import member_views as views

app_name = "agent-portal"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("sell/", views.sell_number, name="sell"),
    path("sell/<str:token>/", views.sell_plans, name="sell_plans"),
    path("sell/<str:token>/<str:plan_code>/", views.sell_quote, name="sell_quote"),
    path("sales/<str:public_id>/", views.sale, name="sale"),
    path("float/", views.float_view, name="float"),
    path("float/statement.csv", views.statement_csv, name="statement_csv"),
    path("commission/", commission.portal_commission, name="commission"),
    path("keys/", views.keys, name="keys"),
    path("keys/<str:key_id>/rotate/", views.key_rotate, name="key_rotate"),
    path("keys/<str:key_id>/revoke/", views.key_revoke, name="key_revoke"),
    path("callback/", views.callback, name="callback"),
    path("card/", views.card, name="card"),
]
