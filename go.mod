module github.com/djftpd/djftpd

go 1.26.8

require (
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8
	github.com/jlaffaye/ftp v0.2.4 // indirect
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	github.com/patrickmn/go-cache v2.1.0+incompatible
	goftp.io/server/v2 v2.0.3 // indirect
	golang.org/x/sync v0.25.0
)
