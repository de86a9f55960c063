{{- /*
The PersistentVolumeClaim of a single-replica SQLite service (database.sqlite.persistence).
*/ -}}

{{- /* Usage: include "flotilla-lib.sqliteClaimName" . -> the claim the SQLite volume uses: database.sqlite.persistence.existingClaim, else "<fullname>-sqlite". */ -}}
{{- define "flotilla-lib.sqliteClaimName" -}}
{{- .Values.database.sqlite.persistence.existingClaim | default (printf "%s-sqlite" (include "flotilla-lib.fullname" .)) -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.sqlitePvc" . -> the SQLite PersistentVolumeClaim, when SQLite is used and no existingClaim is named; kept on uninstall (helm.sh/resource-policy: keep). */ -}}
{{- define "flotilla-lib.sqlitePvc" -}}
{{- if and (include "flotilla-lib.usesSqlite" .) (not .Values.database.sqlite.persistence.existingClaim) -}}
{{- include "flotilla-lib.checkDatabase" . -}}
{{- $p := .Values.database.sqlite.persistence -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "flotilla-lib.sqliteClaimName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flotilla-lib.labels" . | nindent 4 }}
  annotations:
    # The database outlives the release: helm uninstall leaves the claim (delete it by hand).
    helm.sh/resource-policy: keep
spec:
  accessModes:
    - ReadWriteOnce
  {{- with $p.storageClassName }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ $p.size | quote }}
{{- end -}}
{{- end -}}
