from django.urls import path

from .views import (
    PolicyDetailView,
    PolicyDraftCreateView,
    PolicyDraftPublishView,
    PolicyListCreateView,
    PolicySimulateView,
    PolicyVersionDetailView,
    PolicyVersionListView,
    PolicyVersionRollbackView,
)

urlpatterns = [
    path("", PolicyListCreateView.as_view(), name="policies-list"),
    path("simulate/", PolicySimulateView.as_view(), name="policies-simulate"),
    path("drafts/", PolicyDraftCreateView.as_view(), name="policies-drafts"),
    path("drafts/<int:draft_id>/publish/", PolicyDraftPublishView.as_view(), name="policies-draft-publish"),
    path("versions/", PolicyVersionListView.as_view(), name="policies-versions"),
    path("versions/<int:number>/", PolicyVersionDetailView.as_view(), name="policies-version"),
    path("versions/<int:number>/rollback/", PolicyVersionRollbackView.as_view(), name="policies-rollback"),
    path("<int:policy_id>/", PolicyDetailView.as_view(), name="policies-detail"),
]
