{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): auth mounts its signing keys (AUTH_SIGNING_KEY_FILE) from signingKeys.existingSecret. */ -}}
{{- define "auth.profile" -}}
{{- $keys := .Values.signingKeys -}}
{{- with $keys.existingSecret }}
config:
  AUTH_SIGNING_KEY_FILE: {{ printf "%s/%s" $keys.mountPath $keys.signingKeyKey | quote }}
  {{- with $keys.keyId }}
  AUTH_SIGNING_KEY_ID: {{ . | quote }}
  {{- end }}
  {{- with $keys.previousPublicKeyKey }}
  AUTH_PREVIOUS_PUBLIC_KEY_FILE: {{ printf "%s/%s" $keys.mountPath . | quote }}
  {{- end }}
  {{- with $keys.previousKeyId }}
  AUTH_PREVIOUS_KEY_ID: {{ . | quote }}
  {{- end }}
secretFiles:
  - name: signing-keys
    secret: {{ . | quote }}
    mountPath: {{ $keys.mountPath | quote }}
{{- end }}
{{- end -}}
