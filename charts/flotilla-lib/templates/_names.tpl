{{- /*
Names, labels and the image reference shared by every Flotilla chart.
Every helper takes the chart's root context (.) unless its comment says otherwise.
*/ -}}

{{- /* Usage: include "flotilla-lib.name" . -> the chart name, or .Values.nameOverride. */ -}}
{{- define "flotilla-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.fullname" . -> the resource name: fullnameOverride, else the release name when it already contains the chart name, else "<release>-<name>". */ -}}
{{- define "flotilla-lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "flotilla-lib.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.chart" . -> "<chart>-<version>" for the helm.sh/chart label. */ -}}
{{- define "flotilla-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.selectorLabels" . -> the immutable labels a Deployment selects its pods by. */ -}}
{{- define "flotilla-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- /* Usage: include "flotilla-lib.podLabels" . -> labels of the pod template; nothing chart- or Helm-versioned, so a chart upgrade alone rolls no pods. */ -}}
{{- define "flotilla-lib.podLabels" -}}
{{ include "flotilla-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/component: {{ include "flotilla-lib.component" . }}
app.kubernetes.io/part-of: flotilla
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- /* Usage: include "flotilla-lib.labels" . -> the app.kubernetes.io/* labels of every resource; no version, so a new image tag changes nothing but the Deployment. */ -}}
{{- define "flotilla-lib.labels" -}}
helm.sh/chart: {{ include "flotilla-lib.chart" . }}
{{ include "flotilla-lib.selectorLabels" . }}
app.kubernetes.io/component: {{ include "flotilla-lib.component" . }}
app.kubernetes.io/part-of: flotilla
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- /* Usage: include "flotilla-lib.workloadLabels" . -> the Deployment's labels: the common ones plus app.kubernetes.io/version (the image tag). */ -}}
{{- define "flotilla-lib.workloadLabels" -}}
{{ include "flotilla-lib.labels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
{{- end -}}

{{- /* Usage: include "flotilla-lib.serviceAccountName" . -> the ServiceAccount the pods run as. */ -}}
{{- define "flotilla-lib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flotilla-lib.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name an existing ServiceAccount" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.image" . -> "repository@digest" when image.digest is set, else "repository:tag". */ -}}
{{- define "flotilla-lib.image" -}}
{{- $tag := required "image.tag is required: set an immutable tag such as 1.4.2-a8f3d21 (never latest)" .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.profile" . | fromYaml -> the app chart's "<chart>.profile" (what the chart adds to the shared workload) as a dict. */ -}}
{{- define "flotilla-lib.profile" -}}
{{- include (printf "%s.profile" .Chart.Name) . -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.component" . -> the profile's component ("service" unless the chart says otherwise). */ -}}
{{- define "flotilla-lib.component" -}}
{{- (include "flotilla-lib.profile" . | fromYaml).component | default "service" -}}
{{- end -}}
