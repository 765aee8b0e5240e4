from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("account/", views.account_view, name="account"),
    path("account/preferences/", views.preferences_view, name="preferences"),
    path("account/register/", views.register_view, name="register"),
    path("account/login/", views.login_view, name="login"),
    path("account/login/verify/", views.verify_view, name="verify"),
    path("account/logout/", views.logout_view, name="logout"),
    path("account/logout-everywhere/", views.logout_everywhere_view, name="logout_everywhere"),
    path("account/verify/email/send/", views.send_email_link_view, name="send_email_link"),
    path("account/verify/email/<str:token>/", views.verify_email_view, name="verify_email"),
    path("account/verify/phone/", views.verify_phone_view, name="verify_phone"),
    path("account/password-reset/sms/", views.sms_reset_view, name="password_reset_sms"),
    path(
        "account/password-reset/sms/code/",
        views.sms_reset_code_view,
        name="password_reset_sms_code",
    ),
    path("account/two-step/", views.totp_setup_view, name="totp_setup"),
    path("account/two-step/off/", views.totp_disable_view, name="totp_disable"),
    path("account/password-reset/", views.ResetView.as_view(), name="password_reset"),
    path("account/password-reset/sent/", views.ResetDoneView.as_view(), name="password_reset_done"),
    path(
        "account/password-reset/<uidb64>/<token>/",
        views.ResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/password-reset/done/",
        views.ResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
