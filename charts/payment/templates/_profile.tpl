{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): payment adds nothing to the shared workload. */ -}}
{{- define "payment.profile" -}}
{{- end -}}
