"""URLs of the djftpd demo site: the admin, and djftpd at /ftp/ (DJFTPD["DJANGO_URL"])."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ftp/", include("djftpd.urls")),
]
