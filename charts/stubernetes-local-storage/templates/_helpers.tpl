{{- /*
The names and selector labels are the ones the openebs umbrella chart's localpv-provisioner
subchart gives a release named "openebs" (openebs/dynamic-localpv-provisioner
deploy/helm/charts/templates/_helpers.tpl: localpv.fullname is "<release>-localpv-provisioner",
localpv.selectorLabels app, release and component). Kept so that upgrading a release of the
umbrella chart to this one updates its Deployment in place: a Deployment's selector is
immutable.
*/ -}}
{{- define "stubernetes-local-storage.fullname" -}}
{{- printf "%s-localpv-provisioner" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stubernetes-local-storage.selectorLabels" -}}
app: localpv-provisioner
release: {{ .Release.Name | quote }}
component: localpv-provisioner
{{- end -}}

{{- define "stubernetes-local-storage.labels" -}}
{{ include "stubernetes-local-storage.selectorLabels" . }}
openebs.io/component-name: openebs-localpv-provisioner
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/name: stubernetes-local-storage
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: stubernetes
{{- end -}}
