from django.urls import path

from .views import simulate_page

urlpatterns = [
    path("simulate/", simulate_page, name="policies-simulate-page"),
]
