"""Pages of the scenes app (not the API): the creator page at ``/create/``.

Include from the root urlconf with ``path("", include("apps.scenes.urls"))``.
"""

from django.urls import URLPattern, URLResolver, path
from django.views.generic import TemplateView

urlpatterns: list[URLPattern | URLResolver] = [
    # The page itself is public: it signs in through /api/athena/authenticate and talks to the
    # API with a bearer token, so it holds no server-side session or data.
    path("create/", TemplateView.as_view(template_name="scenes/create.html"), name="scenes-create"),
]
