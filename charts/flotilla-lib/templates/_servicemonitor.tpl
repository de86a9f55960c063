{{- /* Usage: include "flotilla-lib.servicemonitor" . -> a Prometheus Operator ServiceMonitor for /metrics (when serviceMonitor.enabled); with strategy.type canary it labels the series track=canary|stable from the pods' flotilla.dev/track. */ -}}
{{- define "flotilla-lib.servicemonitor" -}}
{{- $m := .Values.serviceMonitor -}}
{{- if $m.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "flotilla-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flotilla-lib.labels" . | nindent 4 }}
    {{- with $m.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/name
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  selector:
    matchLabels:
      {{- include "flotilla-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      scheme: http
      interval: {{ $m.interval }}
      scrapeTimeout: {{ $m.scrapeTimeout }}
      {{- if include "flotilla-lib.canaryStrategy" . }}
      # The label the deployer's canary analysis asks by: track="canary" for the canary's pods,
      # "stable" for the others (they carry no flotilla.dev/track label: see _canary.tpl).
      relabelings:
        - sourceLabels: [__meta_kubernetes_pod_label_flotilla_dev_track]
          regex: (.+)
          targetLabel: track
        - sourceLabels: [__meta_kubernetes_pod_label_flotilla_dev_track]
          regex: ""
          targetLabel: track
          replacement: stable
      {{- end }}
{{- end -}}
{{- end -}}
