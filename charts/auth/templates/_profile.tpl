{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): what auth adds to the shared workload, as YAML. */ -}}
{{- define "auth.profile" -}}
{{- with .Values.signingKeys.existingSecret }}
config:
  AUTH_SIGNING_KEYS_DIR: {{ $.Values.signingKeys.mountPath | quote }}
secretFiles:
  - name: signing-keys
    secret: {{ . | quote }}
    mountPath: {{ $.Values.signingKeys.mountPath | quote }}
{{- end }}
{{- end -}}
