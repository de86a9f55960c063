{{- /* Usage: read by flotilla-lib ("flotilla-lib.profile"): the gateway's upstream URLs, and egress to the services it routes to. */ -}}
{{- define "gateway.profile" -}}
config:
  GATEWAY_AUTH_URL: {{ .Values.upstreams.auth | quote }}
  GATEWAY_ORDER_URL: {{ .Values.upstreams.order | quote }}
  GATEWAY_PAYMENT_URL: {{ .Values.upstreams.payment | quote }}
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
