{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "stubernetes-core.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels of one component. Call with
  (dict "ctx" $ "app" "flannel")
where "app" is a key under .Values that has image.tag (flannel, fleetlock).
These labels are immutable on a workload's selector: never add to them.
*/}}
{{- define "stubernetes-core.selectorLabels" -}}
app.kubernetes.io/name: {{ .app }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/*
Standard labels carried by every object of a component, same arguments as
stubernetes-core.selectorLabels. app.kubernetes.io/version is the component's
pinned image tag. .Values.commonLabels are added but never override these.
*/}}
{{- define "stubernetes-core.labels" -}}
{{- $version := index .ctx.Values .app "image" "tag" | toString | trunc 63 | trimSuffix "-" | trimSuffix "." | trimSuffix "_" -}}
{{- $standard := dict
    "helm.sh/chart" (include "stubernetes-core.chart" .ctx)
    "app.kubernetes.io/name" .app
    "app.kubernetes.io/instance" .ctx.Release.Name
    "app.kubernetes.io/version" $version
    "app.kubernetes.io/component" (index (dict "flannel" "pod-network" "fleetlock" "reboot-coordinator") .app)
    "app.kubernetes.io/part-of" "stubernetes"
    "app.kubernetes.io/managed-by" .ctx.Release.Service -}}
{{- $labels := mustMergeOverwrite (deepCopy (.ctx.Values.commonLabels | default dict)) $standard -}}
{{- toYaml $labels -}}
{{- end -}}

{{/*
A pinned image reference from {repository, tag, digest}: "repo:tag" or
"repo:tag@digest". An empty tag or "latest" fails rendering.
*/}}
{{- define "stubernetes-core.image" -}}
{{- $tag := toString (.tag | default "") -}}
{{- if or (eq $tag "") (eq $tag "latest") -}}
{{- fail (printf "image %s must be pinned to a tag other than \"latest\"" .repository) -}}
{{- end -}}
{{- printf "%s:%s" .repository $tag -}}
{{- with .digest }}@{{ . }}{{ end -}}
{{- end -}}

{{/*
The pod network CIDR, required whenever flannel is rendered.
*/}}
{{- define "stubernetes-core.podCidr" -}}
{{- required "podCidr is required when flannel.enabled is true: set it to the cluster's pod network CIDR (kubeadm networking.podSubnet), e.g. podCidr=10.244.0.0/16" .Values.podCidr -}}
{{- end -}}

{{/*
Namespace of the fleetlock objects: fleetlock.namespace or the release's.
*/}}
{{- define "stubernetes-core.fleetlock.namespace" -}}
{{- .Values.fleetlock.namespace | default .Release.Namespace -}}
{{- end -}}

{{/*
A dotted IPv4 address as an integer (the schema has checked its shape).
*/}}
{{- define "stubernetes-core.ipv4ToInt" -}}
{{- $o := splitList "." . -}}
{{- add (mul (atoi (index $o 0)) 16777216) (mul (atoi (index $o 1)) 65536) (mul (atoi (index $o 2)) 256) (atoi (index $o 3)) -}}
{{- end -}}

{{/*
The fixed ClusterIP of the fleetlock Service, required whenever fleetlock is
rendered; when serviceCidr is set it must lie inside it.
*/}}
{{- define "stubernetes-core.fleetlock.clusterIP" -}}
{{- $ip := required "fleetlock.clusterIP is required when fleetlock.enabled is true: set it to a free IPv4 address inside the cluster's service CIDR (kubeadm networking.serviceSubnet), e.g. fleetlock.clusterIP=10.96.0.15; Zincati on every node uses it as http://<clusterIP>/" .Values.fleetlock.clusterIP -}}
{{- with .Values.serviceCidr -}}
{{- $parts := splitList "/" . -}}
{{- $hostBits := sub 32 (atoi (index $parts 1)) | int -}}
{{- $block := 1 -}}
{{- range until $hostBits -}}
{{- $block = mul $block 2 -}}
{{- end -}}
{{- $network := div (include "stubernetes-core.ipv4ToInt" (index $parts 0) | atoi) $block -}}
{{- $mine := div (include "stubernetes-core.ipv4ToInt" $ip | atoi) $block -}}
{{- if ne $network $mine -}}
{{- fail (printf "fleetlock.clusterIP %s is outside serviceCidr %s: the API server only accepts a Service clusterIP inside the service CIDR" $ip .) -}}
{{- end -}}
{{- end -}}
{{- $ip -}}
{{- end -}}
