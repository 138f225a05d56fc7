from django.urls import URLPattern, URLResolver, path

from apps.scenes.api import views

_V = "scenes/<uuid:scene_id>/versions/<uuid:version_id>"

urlpatterns: list[URLPattern | URLResolver] = [
    path("scenes", views.SceneListView.as_view(), name="daedalus-scenes"),
    path("scenes/<uuid:scene_id>", views.SceneDetailView.as_view(), name="daedalus-scene"),
    path(
        "scenes/<uuid:scene_id>/versions",
        views.VersionListView.as_view(),
        name="daedalus-versions",
    ),
    path(_V, views.VersionDetailView.as_view(), name="daedalus-version"),
    path(f"{_V}/report", views.VersionReportView.as_view(), name="daedalus-version-report"),
    path(
        f"{_V}/thumbnail", views.VersionThumbnailView.as_view(), name="daedalus-version-thumbnail"
    ),
    path("scenes/<uuid:scene_id>/publish", views.PublishView.as_view(), name="daedalus-publish"),
    path(
        "scenes/<uuid:scene_id>/unpublish",
        views.UnpublishView.as_view(),
        name="daedalus-unpublish",
    ),
]
