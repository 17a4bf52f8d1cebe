from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from reviewers import account_views, sso
from reviewers.views import service_worker

urlpatterns = [
    path("", RedirectView.as_view(url="/queue/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/login/", account_views.SignInView.as_view(), name="login"),
    path("oidc/authenticate/", sso.sso_start, name="oidc_authentication_init"),
    path("oidc/callback/", sso.sso_callback, name="oidc_authentication_callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", account_views.two_factor_settings, name="two-factor"),
    path("accounts/two-factor/verify/", account_views.two_factor_verify, name="two-factor-verify"),
    path("api/v1/policies/", include("policies.api.urls")),
    path("api/v1/review/", include("reviewers.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/", include("evaluation.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("queue/", include("reviewers.urls")),
    path("policies/", include("policies.urls")),
    path("", include("evaluation.urls")),
    path("integrations/", include("integrations.urls")),
    path("sw.js", service_worker, name="service-worker"),
    path("healthz", include("approvals.health_urls")),
]

handler404 = "core.responses.handler404"
handler500 = "core.responses.handler500"
