{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): the PostgreSQL server's component label. */ -}}
{{- define "postgres.profile" -}}
component: database
{{- end -}}

{{- /* Usage: include "postgres.pgdata" . -> PGDATA: a subdirectory of the claim's mount (initdb wants an empty directory it owns, mode 0700). */ -}}
{{- define "postgres.pgdata" -}}
/var/lib/postgresql/data/pgdata
{{- end -}}

{{- /* Usage: include "postgres.isReady" . -> the exec probe command: pg_isready on the pod's own socket. */ -}}
{{- define "postgres.isReady" -}}
exec:
  command: ["pg_isready", "--quiet", "--host", "/tmp", "--port", "5432", "--username", "postgres"]
{{- end -}}
