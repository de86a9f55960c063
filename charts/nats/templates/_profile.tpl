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

{{- /* Usage: include "nats.replicas" . -> the members (cluster.replicas); fails on an even count. */ -}}
{{- define "nats.replicas" -}}
{{- $replicas := int .Values.cluster.replicas -}}
{{- if eq (mod $replicas 2) 0 -}}
{{- fail (printf "cluster.replicas is %d: JetStream's RAFT needs a majority of the members, so an even count tolerates no more lost members than one fewer (2 tolerate none, like 1). Use 1 (a single server), 3 or 5." $replicas) -}}
{{- end -}}
{{- $replicas -}}
{{- end -}}

{{- /* Usage: include "nats.clustered" . -> "true" when the release runs more than one member (routes, PodDisruptionBudget, anti-affinity), else empty. */ -}}
{{- define "nats.clustered" -}}
{{- if gt (int (include "nats.replicas" .)) 1 -}}true{{- end -}}
{{- end -}}

{{- /* Usage: include "nats.routePort" . -> the port the members route to each other on (not in the client Service). */ -}}
{{- define "nats.routePort" -}}
6222
{{- end -}}

{{- /* Usage: include "nats.routes" . | fromYamlArray -> every member's route URL, through the headless Service's DNS names (stable across restarts, unlike pod IPs). */ -}}
{{- define "nats.routes" -}}
{{- $fullname := include "flotilla-lib.fullname" . -}}
{{- $routes := list -}}
{{- range $index := until (int (include "nats.replicas" .)) -}}
{{- $routes = append $routes (printf "nats://%s-%d.%s-headless.%s.svc.cluster.local:%s" $fullname $index $fullname $.Release.Namespace (include "nats.routePort" $)) -}}
{{- end -}}
{{- toYaml $routes -}}
{{- end -}}

{{- /* Usage: include "nats.config" . -> nats.conf: JetStream on the claim, monitoring on 8222, the users of files/users.conf, and with more than one member the cluster block routing to every member. */ -}}
{{- define "nats.config" -}}
# Rendered by the nats chart; passwords are $NATS_PASSWORD_<USER> environment references.
# server_name: the pod's name, unique in the cluster and stable across restarts (JetStream
# knows its peers by it).
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
{{- if include "nats.clustered" . }}
# Every member routes to every other (a route to itself is recognised and dropped); JetStream
# keeps each stream's copies on different members and elects its leaders among them.
cluster {
  name: {{ .Values.cluster.name | default (include "flotilla-lib.fullname" .) }}
  listen: 0.0.0.0:{{ include "nats.routePort" . }}
  {{- if .Values.cluster.noAdvertise }}
  # Clients are not told the members' pod IPs: they reconnect through the members' DNS names
  # in their NATS_URL, which survive a pod's restart on a new IP.
  no_advertise: true
  {{- end }}
  routes: [
    {{- range include "nats.routes" . | fromYamlArray }}
    {{ . }}
    {{- end }}
  ]
}
{{- end }}
{{ .Files.Get "files/users.conf" }}
{{- end -}}

{{- /* Usage: include "nats.storeDir" . -> the JetStream store directory (on the PersistentVolumeClaim). */ -}}
{{- define "nats.storeDir" -}}
/data/jetstream
{{- end -}}
