from django.urls import URLPattern, URLResolver

app_name = "telephony"

urlpatterns: list[URLPattern | URLResolver] = []
