{{- /* Usage: include "flotilla-lib.servicemonitor" . -> a Prometheus Operator ServiceMonitor for /metrics (when serviceMonitor.enabled); with strategy.type canary it carries the pods' flotilla.dev/track label to the metrics. */ -}}
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
  {{- if include "flotilla-lib.canaryStrategy" . }}
  # The canary's pods say so in their metrics (stable pods have no track label: see _canary.tpl).
  podTargetLabels:
    - {{ include "flotilla-lib.canaryTrackLabel" . }}
  {{- end }}
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
{{- end -}}
{{- end -}}
