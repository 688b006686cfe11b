"""URLs of the djftpd demo site: the admin, and djftpd at /ftp/ (DJFTPD["DJANGO_URL"])."""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ftp/", include("djftpd.urls")),
    # No icon, and no 404 for the browser's request (a console error in the browser check).
    path("favicon.ico", lambda request: HttpResponse(status=204)),
]
# The admin's CSS and JavaScript under gunicorn too (only while DEBUG, as the demo runs).
urlpatterns += staticfiles_urlpatterns()
