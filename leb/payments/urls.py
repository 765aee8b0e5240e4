from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "payments"

urlpatterns: list[URLPattern | URLResolver] = [
    path("pay/<uuid:order_id>/start", views.start_payment, name="start"),
    path("pay/return/<uuid:attempt_id>/", views.payment_return, name="return"),
    path("pay/status/<uuid:attempt_id>", views.payment_status, name="status"),
    path("pay/retry/<uuid:attempt_id>/", views.retry_payment, name="retry"),
    path("pay/sandbox/<uuid:attempt_id>/", views.sandbox_checkout, name="sandbox_checkout"),
    path(
        "pay/sandbox/<uuid:attempt_id>/challenge/",
        views.sandbox_challenge,
        name="sandbox_challenge",
    ),
    path("pay/sandbox/<uuid:attempt_id>/paypal/", views.sandbox_paypal, name="sandbox_paypal"),
    path("pay/sandbox/setup/<uuid:setup_id>/", views.sandbox_setup, name="sandbox_setup"),
    path("webhooks/<slug:provider>", views.webhook, name="webhook"),
]
