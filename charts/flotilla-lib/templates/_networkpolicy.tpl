{{- /* Usage: include "flotilla-lib.networkpolicy" . -> the NetworkPolicy (when networkPolicy.enabled): ingress to the http port from the listed peers only, egress to DNS, NATS, the database and what the chart's profile adds. */ -}}
{{- define "flotilla-lib.networkpolicy" -}}
{{- $np := .Values.networkPolicy -}}
{{- if $np.enabled -}}
{{- $profile := include "flotilla-lib.profile" . | fromYaml -}}
{{- $http := list (dict "port" "http" "protocol" "TCP") -}}
{{- $ingress := list -}}
{{- if $np.allowIngressFromAnywhere -}}
{{- $ingress = append $ingress (dict "ports" $http) -}}
{{- else -}}
{{- with $np.ingressFrom -}}
{{- $ingress = append $ingress (dict "from" . "ports" $http) -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled $np.metricsFrom -}}
{{- $ingress = append $ingress (dict "from" $np.metricsFrom "ports" $http) -}}
{{- end -}}
{{- end -}}
{{- $ingress = concat $ingress ($profile.ingress | default list) ($np.extraIngress | default list) -}}
{{- $dnsPorts := list (dict "port" 53 "protocol" "UDP") (dict "port" 53 "protocol" "TCP") -}}
{{- $egress := list (dict "to" $np.dnsTo "ports" $dnsPorts) -}}
{{- $nats := dict "ports" (list (dict "port" $np.natsPort "protocol" "TCP")) -}}
{{- with $np.natsTo -}}
{{- $_ := set $nats "to" . -}}
{{- end -}}
{{- $egress = append $egress $nats -}}
{{- if and (hasKey .Values "database") .Values.database.existingSecret -}}
{{- $db := dict "ports" (list (dict "port" $np.databasePort "protocol" "TCP")) -}}
{{- with $np.databaseTo -}}
{{- $_ := set $db "to" . -}}
{{- end -}}
{{- $egress = append $egress $db -}}
{{- end -}}
{{- $egress = concat $egress ($profile.egress | default list) ($np.extraEgress | default list) -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "flotilla-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flotilla-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "flotilla-lib.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  {{- if $ingress }}
  ingress:
    {{- toYaml $ingress | nindent 4 }}
  {{- else }}
  ingress: []
  {{- end }}
  egress:
    {{- toYaml $egress | nindent 4 }}
{{- end -}}
{{- end -}}
