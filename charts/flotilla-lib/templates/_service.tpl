{{- /* Usage: include "flotilla-lib.service" . -> the Service in front of the pods' http port. */ -}}
{{- define "flotilla-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "flotilla-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flotilla-lib.labels" . | nindent 4 }}
  {{- with .Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "flotilla-lib.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}
