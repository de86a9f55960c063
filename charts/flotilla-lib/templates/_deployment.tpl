{{- /* Usage: include "flotilla-lib.terminationGracePeriodSeconds" . -> lifecycle.terminationGracePeriodSeconds, or preStop sleep + app shutdown timeout + 5 s; fails when a set value is too short. */ -}}
{{- define "flotilla-lib.terminationGracePeriodSeconds" -}}
{{- $l := .Values.lifecycle -}}
{{- $needed := add (int $l.preStopSleepSeconds) (int $l.shutdownTimeoutSeconds) -}}
{{- if hasKey $l "terminationGracePeriodSeconds" -}}
{{- if lt (int $l.terminationGracePeriodSeconds) $needed -}}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%d) must be at least lifecycle.preStopSleepSeconds + lifecycle.shutdownTimeoutSeconds (%d): raise it, or leave it unset to get %d" (int $l.terminationGracePeriodSeconds) $needed (add $needed 5)) -}}
{{- end -}}
{{- int $l.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add $needed 5 -}}
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.probe" (dict "path" "/healthz" "probe" .Values.probes.liveness) -> one httpGet probe on the http port. */ -}}
{{- define "flotilla-lib.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .probe.initialDelaySeconds | default 0 }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}

{{- /* Usage: include "flotilla-lib.deployment" . -> the (stable) Deployment: restricted security context, probes, limits, graceful shutdown, checksum/config; canary.stableReplicas pods while a canary runs. */ -}}
{{- define "flotilla-lib.deployment" -}}
{{- include "flotilla-lib.checkCanary" . -}}
{{- include "flotilla-lib.deploymentOf" (dict "context" . "track" "") -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.deploymentOf" (dict "context" . "track" "") -> one Deployment of the chart's pods; track "" is the stable one (name, selector and pods exactly as before canaries existed), track "canary" the canary's (see flotilla-lib.canaryDeployment, which passes a context whose image is the canary's). */ -}}
{{- define "flotilla-lib.deploymentOf" -}}
{{- $canary := eq .track "canary" -}}
{{- with .context -}}
{{- $v := .Values -}}
{{- $profile := include "flotilla-lib.profile" . | fromYaml -}}
{{- $name := include "flotilla-lib.name" . -}}
{{- $track := include "flotilla-lib.canaryTrackLabel" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- if $canary }}
  name: {{ include "flotilla-lib.canaryName" . }}
  {{- else }}
  name: {{ include "flotilla-lib.fullname" . }}
  {{- end }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flotilla-lib.workloadLabels" . | nindent 4 }}
    {{- if $canary }}
    {{ $track }}: canary
    {{- end }}
spec:
  {{- if $canary }}
  replicas: {{ $v.canary.replicas }}
  {{- else if include "flotilla-lib.canaryEnabled" . }}
  # A canary runs beside these pods (<fullname>-canary): the deployer sets both replica counts.
  replicas: {{ $v.canary.stableReplicas }}
  {{- else if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ $v.revisionHistoryLimit }}
  minReadySeconds: {{ $v.minReadySeconds }}
  progressDeadlineSeconds: {{ $v.progressDeadlineSeconds }}
  selector:
    matchLabels:
      {{- include "flotilla-lib.selectorLabels" . | nindent 6 }}
      {{- if $canary }}
      {{ $track }}: canary
      {{- end }}
  strategy:
    {{- if include "flotilla-lib.usesSqlite" . }}
    # SQLite: one process per database file, so the old pod stops before the new one starts.
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: {{ $v.rollingUpdate.maxUnavailable }}
      maxSurge: {{ $v.rollingUpdate.maxSurge }}
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "flotilla-lib.podLabels" . | nindent 8 }}
        {{- if $canary }}
        {{ $track }}: canary
        {{- end }}
      annotations:
        {{- if $v.config.rollOnChange }}
        checksum/config: {{ include "flotilla-lib.configChecksum" . }}
        {{- end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "flotilla-lib.serviceAccountName" . }}
      automountServiceAccountToken: {{ $profile.automountServiceAccountToken | default false }}
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ include "flotilla-lib.terminationGracePeriodSeconds" . }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ $v.securityContext.runAsUser }}
        runAsGroup: {{ $v.securityContext.runAsGroup }}
        fsGroup: {{ $v.securityContext.runAsGroup }}
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: {{ $name }}
          image: {{ include "flotilla-lib.image" . | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "flotilla-lib.fullname" . }}
          {{- with include "flotilla-lib.secretEnv" . | trim }}
          env:
            {{- . | nindent 12 }}
          {{- end }}
          startupProbe:
            {{- include "flotilla-lib.probe" (dict "path" "/healthz" "probe" $v.probes.startup) | nindent 12 }}
          livenessProbe:
            {{- include "flotilla-lib.probe" (dict "path" "/healthz" "probe" $v.probes.liveness) | nindent 12 }}
          readinessProbe:
            {{- include "flotilla-lib.probe" (dict "path" "/readyz" "probe" $v.probes.readiness) | nindent 12 }}
          lifecycle:
            # Tells the process to drain (Connection: close, /readyz 503), then waits while the
            # endpoints drop the pod; SIGTERM follows (see kit.draining).
            preStop:
              exec:
                command: ["python", "-m", "kit.prestop", "{{ $v.lifecycle.preStopSleepSeconds }}"]
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            runAsUser: {{ $v.securityContext.runAsUser }}
            runAsGroup: {{ $v.securityContext.runAsGroup }}
            capabilities:
              drop:
                - ALL
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if include "flotilla-lib.usesSqlite" . }}
            - name: data
              mountPath: {{ include "flotilla-lib.sqliteDir" . }}
            {{- end }}
            {{- if $v.nats.credsKey }}
            - name: nats-creds
              mountPath: {{ include "flotilla-lib.natsCredsDir" . }}
              readOnly: true
            {{- end }}
            {{- range $profile.secretFiles }}
            - name: {{ .name }}
              mountPath: {{ .mountPath }}
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit }}
        {{- if include "flotilla-lib.usesSqlite" . }}
        - name: data
          persistentVolumeClaim:
            claimName: {{ include "flotilla-lib.sqliteClaimName" . }}
        {{- end }}
        {{- if $v.nats.credsKey }}
        - name: nats-creds
          secret:
            secretName: {{ required "nats.existingSecret is required when nats.credsKey is set: name the Secret that holds the .creds file" $v.nats.existingSecret }}
            defaultMode: 0440
            items:
              - key: {{ $v.nats.credsKey }}
                path: {{ $v.nats.credsKey }}
        {{- end }}
        {{- range $profile.secretFiles }}
        - name: {{ .name }}
          secret:
            secretName: {{ .secret }}
            defaultMode: 0440
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
{{- end -}}
