{{/* Names: <release>-djftpd unless the release name already says djftpd. */}}
{{- define "djftpd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; workloads and pods add "djftpd.selector" instead of instance. */}}
{{- define "djftpd.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: djftpd
{{- end -}}

{{- define "djftpd.labels" -}}
{{ include "djftpd.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The selector of one tier: (dict "ctx" $ "component" "ftp"|"web"). Specific to this
chart and release, so no other application's pods are ever selected. */}}
{{- define "djftpd.selector" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference: (dict "img" .Values.image.x "default" tag). No latest, no untagged. */}}
{{- define "djftpd.image" -}}
{{- $tag := .img.tag | default .default | toString -}}
{{- if .img.digest -}}
{{- printf "%s@%s" .img.repository .img.digest -}}
{{- else if or (not $tag) (eq $tag "latest") -}}
{{- fail (printf "image %s: pin a version tag or a digest, not %q" .img.repository $tag) -}}
{{- else -}}
{{- printf "%s:%s" .img.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* ftp.passivePorts as a JSON list of port numbers, checked. */}}
{{- define "djftpd.passivePorts" -}}
{{- $r := splitList "-" (toString .Values.ftp.passivePorts) -}}
{{- $lo := atoi (first $r) -}}
{{- $hi := atoi (last $r) -}}
{{- if or (ne (len $r) 2) (lt $lo 1024) (gt $hi 65535) (gt $lo $hi) -}}
{{- fail (printf "ftp.passivePorts: want FIRST-LAST within 1024-65535, got %q" (toString .Values.ftp.passivePorts)) -}}
{{- end -}}
{{- if and (le $lo 32767) (ge $hi 30000) -}}
{{- fail "ftp.passivePorts must lie outside the NodePort range 30000-32767" -}}
{{- end -}}
{{- if le (add1 (sub $hi $lo)) (int .Values.ftp.maxConnectionsPerIP) -}}
{{- fail "ftp.passivePorts must hold more ports than ftp.maxConnectionsPerIP, or one client address can take them all" -}}
{{- end -}}
{{- toJson (untilStep $lo (int (add1 $hi)) 1) -}}
{{- end -}}

{{/* Seconds: djftpd's preStop sleep; gunicorn's (djftpd's drain and flush done); the grace. */}}
{{- define "djftpd.eventsFlushSeconds" -}}5{{- end -}}
{{- define "djftpd.gunicornGracefulSeconds" -}}10{{- end -}}
{{- define "djftpd.gunicornPreStop" -}}
{{- add .Values.drain.loadBalancerDeregistrationSeconds .Values.ftp.shutdownGraceSeconds (include "djftpd.eventsFlushSeconds" .) -}}
{{- end -}}
{{- define "djftpd.terminationGrace" -}}
{{- add (include "djftpd.gunicornPreStop" .) (include "djftpd.gunicornGracefulSeconds" .) 5 -}}
{{- end -}}

{{- define "djftpd.secretName" -}}
{{- .Values.secret.existingSecret | default (printf "%s-secret" (include "djftpd.fullname" .)) -}}
{{- end -}}

{{/* The generated secret, once per render: the value, the one in the cluster, or random. */}}
{{- define "djftpd.secretValue" -}}
{{- if not .Values.secret._rendered -}}
{{- $value := .Values.secret.value -}}
{{- if not $value -}}
{{- with lookup "v1" "Secret" .Release.Namespace (include "djftpd.secretName" .) -}}
{{- $value = index .data "secret" | b64dec -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values.secret "_rendered" ($value | default (randAlphaNum 64)) -}}
{{- end -}}
{{- .Values.secret._rendered -}}
{{- end -}}

{{/* Pod annotations that roll the pods when the configuration or the secret changes. */}}
{{- define "djftpd.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secret.existingSecret }}
checksum/secret: {{ include "djftpd.secretValue" . | sha256sum }}
{{- end }}
{{- end -}}

{{/* Workload annotations: Stakater Reloader rolls the pods when a Secret kept elsewhere changes. */}}
{{- define "djftpd.workloadAnnotations" -}}
{{- if .Values.secret.existingSecret -}}
secret.reloader.stakater.com/reload: {{ .Values.secret.existingSecret }}
{{- end -}}
{{- end -}}

{{/* AWS_* for S3 storage (DJFTPD_STORAGE), in every container that reads the homes. */}}
{{- define "djftpd.s3Env" -}}
{{- if eq .Values.storage.type "s3" }}
{{- with .Values.storage.s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.s3.endpoint }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: AWS_ACCESS_KEY_ID}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: AWS_SECRET_ACCESS_KEY}
{{- end }}
{{- end }}
{{- end -}}

{{- define "djftpd.djangoEnv" -}}
- name: DJANGO_SETTINGS_MODULE
  value: {{ .Values.django.settingsModule | quote }}
# settings.py: DJFTPD = {"SECRET": Path(os.environ["DJFTPD_SECRET_FILE"]).read_text().strip(), ...}
- name: DJFTPD_SECRET_FILE
  value: /run/secrets/djftpd/secret
{{- include "djftpd.s3Env" . }}
{{- with .Values.django.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "djftpd.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
