"""A URLconf without djftpd, for system check djftpd.E004."""

urlpatterns: list = []
