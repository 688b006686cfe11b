"""URLs the djftpd sidecar calls. Mount them once, at the URL given as ``DJFTPD["DJANGO_URL"]``::

urlpatterns = [
    path("ftp/", include("djftpd.urls")),
]
"""

from django.urls import path

from djftpd import views

app_name = "djftpd"

urlpatterns = [
    path("auth/", views.auth, name="auth"),
    path("events/", views.events, name="events"),
]
