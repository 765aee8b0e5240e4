from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("support/", views.contact, name="contact"),
    path("support/fraud/", views.report_fraud, name="report_fraud"),
    path("support/topup/<uuid:order_id>/report/", views.report_topup, name="report_topup"),
    path("support/tickets/", views.ticket_list, name="tickets"),
    path("support/tickets/<uuid:ticket_id>/", views.ticket_detail, name="ticket"),
    path("support/t/<str:token>/", views.guest_thread, name="guest_thread"),
]
