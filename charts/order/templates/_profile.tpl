{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): order adds nothing to the shared workload. */ -}}
{{- define "order.profile" -}}
{{- end -}}
