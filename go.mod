module github.com/djftpd/djftpd

go 1.26.8
