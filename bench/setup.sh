#!/usr/bin/env bash
# Installs what `make bench` needs, idempotently, under bench/.work/ (git-ignored):
# three venvs (the bench driver + djftpd's demo site, pyftpdlib, django-ftpserver), the
# Debian packages vsftpd, openssh-server, strace and openssl when root (failures only skip
# vsftpd, OpenSSH's SFTP figures / the zero-copy proof), versitygw (make tools, for the S3
# figures), djftpd built from this working tree, the Go load generator and the raw-limit
# server.
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$bench/.." && pwd)
work=$bench/.work
mkdir -p "$work/bin"
PYTHON=${PYTHON:-python3}

venv() { # name marker-spec packages...
  local dir=$work/$1 spec=$2; shift 2
  if [ ! -f "$dir/.installed" ] || [ "$(cat "$dir/.installed")" != "$spec" ]; then
    echo "bench: installing $* into $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$spec" >"$dir/.installed"
  fi
}
venv venv-bench "v1" 'Django>=5.2,<5.3' 'gunicorn>=23' 'matplotlib>=3.8'
venv venv-pyftpdlib "v1" 'pyftpdlib>=2,<3' 'pyopenssl>=24'
venv venv-djftpserver "v1" 'django-ftpserver>=1,<2' 'Django>=5.2,<5.3'

if [ "$(id -u)" = 0 ]; then
  missing=()
  [ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v strace >/dev/null || missing+=(strace)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: apt-get install ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
      >"$work/apt.log" 2>&1 || echo "bench: apt-get failed (see $work/apt.log); affected figures are skipped"
  fi
else
  echo "bench: not root: vsftpd is skipped unless installed and the zero-copy proof may fail"
fi

# djftpd and its Django app come from the committed HEAD, exported to .work/src, so that
# edits in progress in the shared working tree never leak into a run;
# BENCH_DJFTPD_FROM=worktree benchmarks the working tree instead.
if [ "${BENCH_DJFTPD_FROM:-head}" = worktree ]; then
  src=$repo
  desc="worktree $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- . ':!bench' || echo +dirty)"
else
  src=$work/src
  rm -rf "$src" && mkdir -p "$src"
  git -C "$repo" archive HEAD | tar -x -C "$src"
  desc="HEAD $(git -C "$repo" rev-parse --short HEAD)"
fi
make -C "$repo" --no-print-directory tools >"$work/tools.log" 2>&1 ||
  echo "bench: make tools failed (see $work/tools.log); the S3 figures are skipped"
echo "bench: building djftpd ($desc) and the load generator"
# Static, as make build, the image and dist build it (cgo maps libc: 1.5 MB more RSS).
CGO_ENABLED=0 go build -C "$src" -trimpath -o "$work/bin/djftpd" .
(cd "$repo" && go build -o "$work/bin/ftpbench" ./bench/cmd/ftpbench &&
  go build -o "$work/bin/rawlimit" ./bench/cmd/rawlimit)
printf '%s\n%s\n' "$src" "$desc" >"$work/djftpd-source.txt"
