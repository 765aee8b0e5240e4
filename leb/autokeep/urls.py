from django.urls import URLPattern, URLResolver

app_name = "autokeep"

urlpatterns: list[URLPattern | URLResolver] = []
