# djftpd: `make demo` runs the demo site and the sidecar; `make test` runs everything.
VENV   ?= .venv
PYTHON ?= python3
BIN    := bin/djftpd
PIP    := $(VENV)/bin/pip
PYTEST := $(VENV)/bin/pytest

.PHONY: all build venv demo test test-go test-django test-django-postgres test-django-mariadb \
	test-django-newest test-e2e test-deploy deploy-tools lint fuzz clean dist

all: build

# Static, like the image and dist: a cgo build maps libc and ld.so too (1.5 MB more RSS).
build:
	CGO_ENABLED=0 go build -trimpath -o $(BIN) .

# Pinned tools, built once per machine beside Go's build cache (so CI runners that keep
# the cache keep them too): versitygw, the S3-compatible server the S3 tests start.
VERSITYGW_VERSION := v1.8.0
TOOLS_DIR ?= $(shell d=$$(go env GOCACHE) && dirname "$$d")/djftpd-tools
VERSITYGW := $(TOOLS_DIR)/versitygw-$(VERSITYGW_VERSION)/versitygw
# The Go, Django and e2e tests find it here (DJFTPD_SKIP_S3=1 lets them skip without it).
export DJFTPD_VERSITYGW := $(abspath $(VERSITYGW))

.PHONY: tools
tools: $(VERSITYGW)

$(VERSITYGW):
	GOBIN=$(dir $@) GOFLAGS=-buildvcs=false go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(VENV)/.installed: django_plugin/pyproject.toml e2e/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e 'django_plugin[test]' -r e2e/requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: build venv
	VENV=$(abspath $(VENV)) BIN=$(abspath $(BIN)) bash django_plugin/demo/run_demo.sh

test: lint test-go fuzz test-django test-django-newest test-e2e test-deploy

lint: venv
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	$(VENV)/bin/ruff check django_plugin e2e deploy

test-go: tools
	go test -race -count=1 ./...
	# Stack sizes differ under -race: the idle-session memory test runs without it.
	go test -count=1 -run '^TestIdleSessionStackShrinks$$' ./ftpdriver

# The Django suites (default, django-axes, custom user model), run from django_plugin/.
DJANGO_SUITES := ../$(PYTEST) -q && ../$(PYTEST) -q --ds tests.settings_axes tests/axes && \
	../$(PYTEST) -q --ds tests.settings_custom_user tests/customuser

test-django: venv tools test-django-postgres test-django-mariadb
	cd django_plugin && ../$(PYTEST) -q
	cd django_plugin && ../$(PYTEST) -q --ds tests.settings_axes tests/axes
	cd django_plugin && ../$(PYTEST) -q --ds tests.settings_custom_user tests/customuser
	cd django_plugin && PYTHONPATH=. ../$(VENV)/bin/python -m django makemigrations \
	  --check --dry-run --settings tests.settings
	cd django_plugin && PYTHONPATH=. ../$(VENV)/bin/python -m django makemigrations \
	  --check --dry-run --settings tests.settings_custom_user

# The same suites on a throwaway PostgreSQL / MariaDB server that tests/dbserver.py starts
# (temporary directory, private socket and port) and stops (about half a minute each).
test-django-postgres: venv
	cd django_plugin && ../$(VENV)/bin/python tests/dbserver.py postgresql -- sh -c '$(DJANGO_SUITES)'

test-django-mariadb: venv
	cd django_plugin && ../$(VENV)/bin/python tests/dbserver.py mariadb -- sh -c '$(DJANGO_SUITES)'

# Django 6.x needs Python >= 3.12: the newest Django gets a venv of its own on the newest
# Python found (PATH, then pyenv's versions); the main venv runs the newest Django for its Python.
VENV_NEWEST ?= .venv-django-newest
DJANGO_NEWEST ?= 6.1
PYTHON_NEWEST ?= $(shell for v in 3.13 3.12; do \
	  p=$$(command -v python$$v 2>/dev/null) && $$p -c '' 2>/dev/null && { echo $$p; exit; }; \
	  for p in $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$v*/bin/python$$v; do \
	    [ -x "$$p" ] && { echo $$p; exit; }; done; done)

$(VENV_NEWEST)/.installed: django_plugin/pyproject.toml
	@[ -n "$(PYTHON_NEWEST)" ] || { echo "Django $(DJANGO_NEWEST) needs Python >= 3.12: none found"; exit 1; }
	$(PYTHON_NEWEST) -m venv $(VENV_NEWEST)
	$(VENV_NEWEST)/bin/pip install --quiet --upgrade pip
	$(VENV_NEWEST)/bin/pip install --quiet -e 'django_plugin[test]' 'django~=$(DJANGO_NEWEST).0'
	touch $@

# The Django suites once more on the newest Django (and Python).
test-django-newest: $(VENV_NEWEST)/.installed
	cd django_plugin && ../$(VENV_NEWEST)/bin/python -c 'import django, sys; print("Django", django.get_version(), "on Python", sys.version.split()[0])'
	cd django_plugin && ../$(VENV_NEWEST)/bin/pytest -q
	cd django_plugin && ../$(VENV_NEWEST)/bin/pytest -q --ds tests.settings_axes tests/axes
	cd django_plugin && ../$(VENV_NEWEST)/bin/pytest -q --ds tests.settings_custom_user tests/customuser
	cd django_plugin && PYTHONPATH=. ../$(VENV_NEWEST)/bin/python -m django makemigrations \
	  --check --dry-run --settings tests.settings

test-e2e: build venv tools
	DJFTPD_BINARY=$(abspath $(BIN)) $(PYTEST) -q e2e

# Offline checks of deploy/: kustomize manifests, the Helm chart, Dockerfile, compose file,
# systemd unit. helm and kustomize (the components need kustomize v3.7+, newer than the
# kubectl 1.20 Debian ships) are built from source once into a cache beside Go's build cache
# (a few minutes each on a fresh machine; reused by every later run and checkout on the
# machine), and rebuilt only when a cached binary is not the pinned version.
HELM_VERSION      ?= v3.22.0
KUSTOMIZE_VERSION ?= v5.5.0
TOOLS_BIN         ?= $(abspath $(dir $(shell go env GOCACHE))/djftpd-tools/bin)

# $(call go-tool,binary,module,package,version): go install unless the binary is that version.
define go-tool
	@if [ "$$(go version -m $(TOOLS_BIN)/$(1) 2>/dev/null | awk '$$1 == "mod" && $$2 == "$(2)" {print $$3}')" = "$(4)" ]; then \
	  echo "$(1) $(4): $(TOOLS_BIN)/$(1)"; \
	else \
	  echo "building $(1) $(4) into $(TOOLS_BIN) (once per machine, a few minutes)"; \
	  mkdir -p $(TOOLS_BIN) && GOBIN=$(TOOLS_BIN) go install $(3)@$(4); \
	fi
endef

deploy-tools:
	$(call go-tool,helm,helm.sh/helm/v3,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))
	$(call go-tool,kustomize,sigs.k8s.io/kustomize/kustomize/v5,sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

test-deploy: venv deploy-tools
	$(PIP) install --quiet -r deploy/requirements.txt
	PATH="$(TOOLS_BIN):$$PATH" HELM=$(TOOLS_BIN)/helm $(PYTEST) -q deploy

# Every fuzz target of a parser of untrusted input, FUZZTIME each (make test: 3s; the
# corpora found are kept in testdata/fuzz/ and run as seeds by plain go test).
FUZZTIME ?= 3s
FUZZ_TARGETS := ftpdriver:FuzzPORT ftpdriver:FuzzEPRT ftpdriver:FuzzEPSV \
	internal/proxyproto:FuzzProxyHeader ftpdriver:FuzzCommandLine ftpdriver:FuzzUSER ftpdriver:FuzzASCII \
	djangoclient:FuzzParseGrant djangoclient:FuzzSpoolSegment djangoclient:FuzzVerify \
	djangoclient:FuzzEventsAnswer \
	sftpd:FuzzPaths \
	storage:FuzzObjectKey
# Live sessions: the ops listener's /sessions and /sessions/close bodies, and the page cursor.
FUZZ_TARGETS += .:FuzzOpsSessionsRequests ftpdriver:FuzzParseCursor
# SFTP packet tracking of idle-session parking (the client's bytes, cut anywhere).
FUZZ_TARGETS += sftpd:FuzzPacketTracking
# SFTP downloads served by readServer (the client's packets, any bytes).
FUZZ_TARGETS += sftpd:FuzzReadServer

fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  out=$$(go test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$pkg 2>&1) && continue; \
	  echo "$$out" | tail -40; \
	  case "$$out" in *"Failing input written"*) exit 1;; esac; \
	  echo "fuzz $$pkg $$fn: the engine failed without a failing input; once more"; \
	  go test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$pkg >/dev/null || exit 1; \
	done

# A release: the Django app's wheel and sdist, and the static sidecar binary, in dist/.
dist: venv
	rm -rf dist && mkdir -p dist
	$(VENV)/bin/python -m build --no-isolation --outdir dist django_plugin
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o dist/djftpd-$$(go env GOOS)-$$(go env GOARCH) .
	cd dist && sha256sum * > SHA256SUMS
	@ls -l dist

# The Django app's translation template, djftpd/locale/django.pot (and any .po files there),
# from the source; needs GNU gettext. tests/test_i18n.py fails while it is stale.
.PHONY: messages
messages: venv
	cd django_plugin/djftpd && ../../$(VENV)/bin/django-admin makemessages --all --keep-pot --no-location

clean:
	rm -rf bin dist $(VENV) $(VENV_NEWEST) .demo

# Benchmark beside pyftpdlib, django-ftpserver and vsftpd (bench/README.md); about 12 min.
.PHONY: bench
bench:
	bash bench/setup.sh
	bench/.work/venv-bench/bin/python bench/run.py $(BENCH_ARGS)
