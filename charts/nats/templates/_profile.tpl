{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): the NATS server's component label. */ -}}
{{- define "nats.profile" -}}
component: messaging
{{- end -}}

{{- /* Usage: include "nats.users" . | fromYamlArray -> the users of files/users.conf (read from it), each with a password variable NATS_PASSWORD_<USER> (dashes as underscores). */ -}}
{{- define "nats.users" -}}
{{- $users := list -}}
{{- range regexFindAll "user: [a-z0-9_-]+, password: " (.Files.Get "files/users.conf") -1 -}}
{{- $users = append $users (. | trimPrefix "user: " | trimSuffix ", password: ") -}}
{{- end -}}
{{- toYaml $users -}}
{{- end -}}

{{- /* Usage: include "nats.config" . -> nats.conf: JetStream on the claim, monitoring on 8222, the users of files/users.conf. */ -}}
{{- define "nats.config" -}}
# Rendered by the nats chart; passwords are $NATS_PASSWORD_<USER> environment references.
server_name: $POD_NAME
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
max_payload: {{ .Values.server.maxPayload }}
lame_duck_duration: "{{ .Values.server.lameDuckDurationSeconds }}s"
lame_duck_grace_period: "2s"
{{- if eq .Values.server.logLevel "debug" }}
debug: true
{{- else if eq .Values.server.logLevel "trace" }}
debug: true
trace: true
{{- end }}
jetstream {
  store_dir: {{ include "nats.storeDir" . | quote }}
  max_memory_store: {{ .Values.jetstream.maxMemoryStore }}
  max_file_store: {{ .Values.jetstream.maxFileStore }}
}
{{ .Files.Get "files/users.conf" }}
{{- end -}}

{{- /* Usage: include "nats.storeDir" . -> the JetStream store directory (on the PersistentVolumeClaim). */ -}}
{{- define "nats.storeDir" -}}
/data/jetstream
{{- end -}}
