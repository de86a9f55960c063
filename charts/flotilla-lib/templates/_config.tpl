{{- /*
Configuration: the non-secret environment in a ConfigMap (hashed into the pod template), and the
secret environment, which only ever references existing Secrets.
*/ -}}

{{- /* Usage: include "flotilla-lib.sqliteDir" . -> where SQLite keeps its file (the database.sqlite.persistence PersistentVolumeClaim). */ -}}
{{- define "flotilla-lib.sqliteDir" -}}
/var/lib/flotilla
{{- end -}}

{{- /* Usage: include "flotilla-lib.natsCredsDir" . -> where the NATS credentials file is mounted. */ -}}
{{- define "flotilla-lib.natsCredsDir" -}}
/var/run/secrets/flotilla/nats
{{- end -}}

{{- /* Usage: include "flotilla-lib.usesSqlite" . -> "true" when the chart has a database but no existingSecret, so SQLite is used (on a PersistentVolumeClaim, one replica: see flotilla-lib.checkDatabase). */ -}}
{{- define "flotilla-lib.usesSqlite" -}}
{{- if and (hasKey .Values "database") (not .Values.database.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.checkDatabase" . -> nothing; fails, naming the field, when the values would lose data: SQLite with more than one pod, or SQLite without a PersistentVolumeClaim. */ -}}
{{- define "flotilla-lib.checkDatabase" -}}
{{- if include "flotilla-lib.usesSqlite" . -}}
{{- $v := .Values -}}
{{- if $v.autoscaling.enabled -}}
{{- fail "database.existingSecret is required with autoscaling.enabled: on SQLite every pod would have its own database. Name a Secret holding DATABASE_URL (PostgreSQL, see charts/README.md), or turn autoscaling off and run one replica on database.sqlite.persistence." -}}
{{- end -}}
{{- if gt (int $v.replicaCount) 1 -}}
{{- fail (printf "database.existingSecret is required with replicaCount: %d: on SQLite every pod would have its own database and lose it with the pod. Name a Secret holding DATABASE_URL (PostgreSQL, see charts/README.md), or set replicaCount: 1 with database.sqlite.persistence.enabled: true." (int $v.replicaCount)) -}}
{{- end -}}
{{- if not $v.database.sqlite.persistence.enabled -}}
{{- fail "database.existingSecret is empty and database.sqlite.persistence.enabled is false: SQLite on an emptyDir loses the database on every rollout. Name a Secret holding DATABASE_URL (PostgreSQL, see charts/README.md), or set database.sqlite.persistence.enabled: true (one replica on a PersistentVolumeClaim)." -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.configData" . -> the ConfigMap's data as YAML (sorted keys); the checksum annotation hashes exactly this. */ -}}
{{- define "flotilla-lib.configData" -}}
{{- include "flotilla-lib.checkDatabase" . -}}
{{- $v := .Values -}}
{{- $profile := include "flotilla-lib.profile" . | fromYaml -}}
{{- $data := dict
  "SERVICE_ENVIRONMENT" $v.config.environment
  "SERVICE_HOST" "0.0.0.0"
  "SERVICE_PORT" "8000"
  "SERVICE_LOG_LEVEL" $v.config.logLevel
  "SERVICE_SHUTDOWN_TIMEOUT_SECONDS" (toString $v.lifecycle.shutdownTimeoutSeconds)
  "NATS_URL" $v.nats.url
  "NATS_STREAM_REPLICAS" (toString $v.nats.streamReplicas)
-}}
{{- if $v.nats.credsKey -}}
{{- $_ := set $data "NATS_CREDS_FILE" (printf "%s/%s" (include "flotilla-lib.natsCredsDir" .) $v.nats.credsKey) -}}
{{- else if $v.nats.user -}}
{{- $_ := set $data "NATS_USER" $v.nats.user -}}
{{- end -}}
{{- if include "flotilla-lib.usesSqlite" . -}}
{{- $_ := set $data "DATABASE_URL" (printf "sqlite+aiosqlite:///%s/%s.db" (include "flotilla-lib.sqliteDir" .) .Chart.Name) -}}
{{- end -}}
{{- with $v.config.otelExporterEndpoint -}}
{{- $_ := set $data "OTEL_EXPORTER_OTLP_ENDPOINT" . -}}
{{- end -}}
{{- range $key, $value := $profile.config -}}
{{- $_ := set $data $key (toString $value) -}}
{{- end -}}
{{- range $key, $value := $v.config.extra -}}
{{- if hasKey $data $key -}}
{{- fail (printf "config.extra.%s: %s is set by the chart; use the dedicated value instead (see charts/README.md)" $key $key) -}}
{{- end -}}
{{- $_ := set $data $key (toString $value) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.configChecksum" . -> sha256 of the ConfigMap data, for the checksum/config pod annotation. */ -}}
{{- define "flotilla-lib.configChecksum" -}}
{{- include "flotilla-lib.configData" . | sha256sum -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.secretEnv" . -> container env entries that read secrets by reference (secretKeyRef), never by value. */ -}}
{{- define "flotilla-lib.secretEnv" -}}
{{- $v := .Values -}}
{{- $profile := include "flotilla-lib.profile" . | fromYaml -}}
{{- $refs := list -}}
{{- if and $v.nats.existingSecret (not $v.nats.credsKey) -}}
{{- $refs = append $refs (dict "name" "NATS_PASSWORD" "secret" $v.nats.existingSecret "key" $v.nats.passwordKey) -}}
{{- end -}}
{{- if and (hasKey $v "database") $v.database.existingSecret -}}
{{- $refs = append $refs (dict "name" "DATABASE_URL" "secret" $v.database.existingSecret "key" $v.database.urlKey) -}}
{{- end -}}
{{- if $v.identity.existingSecret -}}
{{- $refs = append $refs (dict "name" "IDENTITY_SHARED_SECRET" "secret" $v.identity.existingSecret "key" $v.identity.sharedSecretKey) -}}
{{- end -}}
{{- range $profile.secretEnv -}}
{{- $refs = append $refs (dict "name" .name "secret" .secret "key" .key) -}}
{{- end -}}
{{- range $v.extraSecretEnv -}}
{{- $refs = append $refs (dict "name" .name "secret" .existingSecret "key" .key) -}}
{{- end -}}
{{- range $refs }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}
{{- /* The pod's own fields (its name, its IP), then values that may refer to them as $(NAME). */ -}}
{{- range $profile.fieldEnv }}
- name: {{ .name }}
  valueFrom:
    fieldRef:
      fieldPath: {{ .fieldPath }}
{{- end -}}
{{- range $profile.valueEnv }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.configmap" . -> the ConfigMap of the non-secret environment. */ -}}
{{- define "flotilla-lib.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "flotilla-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flotilla-lib.labels" . | nindent 4 }}
data:
  {{- include "flotilla-lib.configData" . | nindent 2 }}
{{- end -}}
