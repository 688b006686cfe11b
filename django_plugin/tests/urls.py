from django.urls import include, path

urlpatterns = [
    path("ftp/", include("djftpd.urls")),
]
