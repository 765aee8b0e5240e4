from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "telephony"

urlpatterns: list[URLPattern | URLResolver] = [
    path("phone/voice/", views.voice, name="voice"),
    path("phone/voice/input", views.voice_input, name="voice_input"),
    path("phone/voice/status", views.voice_status, name="voice_status"),
    path("phone/ussd", views.ussd_view, name="ussd"),
]
