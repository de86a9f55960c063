{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): the deployer mounts its token, runs helm with writable homes under /tmp and reaches the Kubernetes API. */ -}}
{{- define "deployer.profile" -}}
component: deployer
automountServiceAccountToken: true
config:
  HELM_DRIVER: {{ .Values.rbac.helmStorage | quote }}
  HELM_CACHE_HOME: /tmp/helm/cache
  HELM_CONFIG_HOME: /tmp/helm/config
  HELM_DATA_HOME: /tmp/helm/data
  DEPLOYER_NAMESPACES: {{ include "deployer.namespaces" . | fromYamlArray | join "," | quote }}
  {{- with .Values.policy }}
  DEPLOYER_POLICY: {{ toJson . | quote }}
  {{- end }}
  {{- with .Values.environments }}
  DEPLOYER_ENVIRONMENTS: {{ toJson . | quote }}
  {{- end }}
  DEPLOYER_DRIFT_INTERVAL_SECONDS: {{ .Values.drift.intervalSeconds | quote }}
  DEPLOYER_LEASE_SECONDS: {{ .Values.leases.seconds | quote }}
  {{- with .Values.drift.rules }}
  DEPLOYER_DRIFT: {{ toJson . | quote }}
  {{- end }}
{{- if or .Values.api.existingSecret .Values.git.existingSecret }}
secretEnv:
  {{- with $.Values.api.existingSecret }}
  {{- with $.Values.api.tokenKey }}
  - name: DEPLOYER_API_TOKEN
    secret: {{ $.Values.api.existingSecret | quote }}
    key: {{ . | quote }}
  {{- end }}
  {{- with $.Values.api.tokensKey }}
  - name: DEPLOYER_API_TOKENS
    secret: {{ $.Values.api.existingSecret | quote }}
    key: {{ . | quote }}
  {{- end }}
  {{- end }}
  {{- with $.Values.git.existingSecret }}
  - name: DEPLOYER_GIT_USERNAME
    secret: {{ . | quote }}
    key: {{ $.Values.git.usernameKey | quote }}
  - name: DEPLOYER_GIT_PASSWORD
    secret: {{ . | quote }}
    key: {{ $.Values.git.passwordKey | quote }}
  {{- end }}
{{- end }}
# Replicas: the pod's name is its replica id (a restarted container takes its leases back at
# once); a standby forwards the API to the leader at the address the leader advertises.
fieldEnv:
  - name: DEPLOYER_REPLICA_ID
    fieldPath: metadata.name
  - name: POD_IP
    fieldPath: status.podIP
valueEnv:
  - name: DEPLOYER_ADVERTISE_URL
    value: http://$(POD_IP):8000
ingress:
  - from:
      - podSelector:
          matchLabels:
            {{- include "flotilla-lib.selectorLabels" . | nindent 12 }}
    ports:
      - port: http
        protocol: TCP
egress:
  - to:
      - podSelector:
          matchLabels:
            {{- include "flotilla-lib.selectorLabels" . | nindent 12 }}
    ports:
      - port: 8000
        protocol: TCP
  - to:
      {{- toYaml .Values.networkPolicy.kubernetesApiTo | nindent 6 }}
    ports:
      {{- range .Values.networkPolicy.kubernetesApiPorts }}
      - port: {{ . }}
        protocol: TCP
      {{- end }}
{{- end -}}

{{- /* Usage: include "deployer.namespaces" . | fromYamlArray -> the namespaces of the service releases: rbac.namespaces (or the release namespace), then each environment's namespace in this cluster (one without a kubeContext), each once. */ -}}
{{- define "deployer.namespaces" -}}
{{- $namespaces := .Values.rbac.namespaces | default (list .Release.Namespace) -}}
{{- range .Values.environments -}}
{{- if not .kubeContext -}}
{{- $namespaces = append $namespaces .namespace -}}
{{- end -}}
{{- end -}}
{{- toYaml (uniq $namespaces) -}}
{{- end -}}
