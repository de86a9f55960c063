{{- /* Usage: include "flotilla-lib.serviceaccount" . -> the pods' ServiceAccount (when serviceAccount.create); no token mounted unless the chart's profile asks for one. */ -}}
{{- define "flotilla-lib.serviceaccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- $profile := include "flotilla-lib.profile" . | fromYaml -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "flotilla-lib.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flotilla-lib.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ $profile.automountServiceAccountToken | default false }}
{{- end -}}
{{- end -}}
