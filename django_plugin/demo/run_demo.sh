#!/usr/bin/env bash
# Runs the demo: the demo Django site under gunicorn on 127.0.0.1:8000 and the djftpd
# sidecar (through `manage.py startftpserver`) on FTP 127.0.0.1:2121, in the foreground
# until Ctrl-C or SIGTERM, which stops both. Called by `make demo`, which sets VENV and BIN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${VENV:-$repo/.venv}
export DJFTPD_BINARY=${BIN:-$repo/bin/djftpd}
export DJFTPD_DEMO_DIR=${DJFTPD_DEMO_DIR:-$repo/.demo}
mkdir -p "$DJFTPD_DEMO_DIR/ftp"

if [ -z "${DJFTPD_SECRET:-}" ]; then
  secret_file=$DJFTPD_DEMO_DIR/secret
  if [ ! -s "$secret_file" ]; then
    (umask 077 && "$venv/bin/python" -c 'import secrets; print(secrets.token_hex(32))' >"$secret_file")
  fi
  DJFTPD_SECRET=$(cat "$secret_file")
  export DJFTPD_SECRET
fi
export DJFTPD_DJANGO_URL=${DJFTPD_DJANGO_URL:-http://127.0.0.1:8000/ftp/}
export DJFTPD_OPS_LISTEN=${DJFTPD_OPS_LISTEN:-127.0.0.1:9121}
# SFTP beside FTP; the host key is generated once into the demo's state directory.
export DJFTPD_SFTP_LISTEN=${DJFTPD_SFTP_LISTEN-127.0.0.1:2222}

# S3 homes: every DJFTPD_* and AWS_* variable of this environment reaches Django and the
# sidecar as it is. A self-hosted endpoint usually needs path-style addressing; the bucket
# is created when missing.
if [[ ${DJFTPD_STORAGE:-local} == s3://* ]]; then
  if [ -n "${AWS_ENDPOINT_URL_S3:-${AWS_ENDPOINT_URL:-}}" ]; then
    export DJFTPD_S3_PATH_STYLE=${DJFTPD_S3_PATH_STYLE:-true}
  fi
  "$venv/bin/python" - <<'PY'
import os
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

bucket = urlsplit(os.environ["DJFTPD_STORAGE"]).netloc
path_style = os.environ.get("DJFTPD_S3_PATH_STYLE") == "true"
s3 = boto3.client(
    "s3", config=botocore.config.Config(s3={"addressing_style": "path" if path_style else "auto"})
)
try:
    s3.head_bucket(Bucket=bucket)
except botocore.exceptions.ClientError:
    s3.create_bucket(Bucket=bucket)
    print(f"created bucket {bucket}")
PY
fi

[[ ${DJFTPD_STORAGE:-local} == s3://* ]] && DJFTPD_STORAGE_SHOWN="$DJFTPD_STORAGE/ (alice/, bob/)"

cd "$here"
# The sidecar is not running yet: no cache to purge while the demo users are (re)set.
DJFTPD_SIDECAR_URLS= "$venv/bin/python" manage.py migrate --noinput >/dev/null
DJFTPD_SIDECAR_URLS= "$venv/bin/python" manage.py demo_users

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$venv/bin/gunicorn" demo.wsgi --bind 127.0.0.1:8000 --workers 2 --access-logfile - &
pids+=($!)
"$venv/bin/python" manage.py startftpserver --listen 127.0.0.1:2121 --passive-ports 50000-50099 &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://$DJFTPD_OPS_LISTEN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<MSG

djftpd demo is running (Ctrl-C stops it).
  Django admin:  http://127.0.0.1:8000/admin/   (admin / admin-password)
  Live sessions: http://127.0.0.1:8000/admin/djftpd/livesession/
  FTP dashboard: http://127.0.0.1:8000/admin/djftpd/ftpevent/
  FTP:           127.0.0.1:2121, homes under ${DJFTPD_STORAGE_SHOWN:-$DJFTPD_DEMO_DIR/ftp/}
  SFTP:          127.0.0.1:2222 (same users; keys: manage.py djftpd_keys add alice ~/.ssh/id_ed25519.pub)
  Users:         alice / alice-password (perms elradfmwMT), bob / bob-password (perms elr)

Try:
  curl ftp://alice:alice-password@127.0.0.1:2121/
  echo hello > hello.txt && curl -T hello.txt ftp://alice:alice-password@127.0.0.1:2121/
  curl ftp://alice:alice-password@127.0.0.1:2121/hello.txt
  curl -T hello.txt ftp://bob:bob-password@127.0.0.1:2121/    # refused: bob may only read
  sftp -P 2222 alice@127.0.0.1                                 # password: alice-password

MSG
# Either process ending ends the demo.
wait -n "${pids[@]}" || true
