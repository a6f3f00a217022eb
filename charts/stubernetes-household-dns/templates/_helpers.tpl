{{- define "stubernetes-household-dns.selectorLabels" -}}
app.kubernetes.io/name: stubernetes-household-dns
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "stubernetes-household-dns.labels" -}}
{{ include "stubernetes-household-dns.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: stubernetes
{{- end -}}
