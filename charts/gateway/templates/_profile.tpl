{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): the gateway's upstream URLs, and egress to the services it routes to. */ -}}
{{- define "gateway.profile" -}}
{{- $up := .Values.upstreams -}}
config:
  GATEWAY_AUTH_URL: {{ $up.auth | quote }}
  GATEWAY_ORDER_URL: {{ $up.order | quote }}
  GATEWAY_PAYMENT_URL: {{ $up.payment | quote }}
  GATEWAY_JWKS_URL: {{ printf "%s%s" (trimSuffix "/" $up.auth) $up.jwksPath | quote }}
egress:
  - to:
      - podSelector:
          matchExpressions:
            - key: app.kubernetes.io/name
              operator: In
              values: [auth, order, payment]
    ports:
      - port: 8000
        protocol: TCP
{{- end -}}
