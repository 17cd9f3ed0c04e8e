{{/* Name of the chart, overridable. */}}
{{- define "kubetx.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name, unless it already contains the chart name. */}}
{{- define "kubetx.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kubetx.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubetx.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetx.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "kubetx.labels" -}}
helm.sh/chart: {{ include "kubetx.chart" . }}
{{ include "kubetx.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubetx
{{- end -}}

{{- define "kubetx.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubetx.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubetx.leaseName" -}}
{{- default (printf "%s-leader" (include "kubetx.fullname" .)) .Values.leaderElection.leaseName | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubetx.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The operator's permissions on transactions, Events and (optionally) Secrets,
derived from what src/ calls; test/support/rbac.ts holds the same list and the
tests fail if the two disagree.
  distributedtransactions        get list watch  informer (list+watch), live read after a 409 (get)
                                 patch           the kubetx.io/finalizer (added before the first call, removed once finished)
                                 delete          ttlAfterFinished clean-up
  distributedtransactions/status update          the only write: PUT of the status subresource with a resourceVersion precondition
  events.k8s.io events           create patch    events.k8s.io/v1 Events, repeats patched into a series
  services, discovery.k8s.io endpointslices
                                 list watch      endpoint.service resolved through the API (no ExternalName, ready EndpointSlice addresses only)
  secrets                        list watch      client TLS material of endpoint.tls: a watch of Secrets labelled kubetx.io/tls=true (tls.readSecrets)
*/}}
{{- define "kubetx.operatorRules" -}}
- apiGroups: ["kubetx.io"]
  resources: ["distributedtransactions"]
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["kubetx.io"]
  resources: ["distributedtransactions/status"]
  verbs: ["update"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
{{- if or .Values.tls.readSecrets .Values.payloadSecrets.read }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- end }}
{{- end -}}

{{/* A Go duration ("1m30s", "500ms") in milliseconds, as a float. */}}
{{- define "kubetx.durationMs" -}}
{{- $units := dict "ns" 0.000001 "us" 0.001 "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9.]+(ns|us|ms|s|m|h)" (toString .) -1 -}}
{{- $number := regexFind "^[0-9.]+" . | float64 -}}
{{- $unit := regexReplaceAll "^[0-9.]+" . "" -}}
{{- $total = addf $total (mulf $number (get $units $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* Checks the schema cannot express; fails the render with a message naming the values. */}}
{{- define "kubetx.validate" -}}
{{- if not .Values.sharding.enabled -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount: %d replicas need leaderElection.enabled=true (two operators reconciling at once would repeat participant calls)" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if gt (int .Values.replicaCount) 10 -}}
{{- fail (printf "replicaCount: %d replicas with one leader are %d idle standbys; at most 10 without sharding.enabled (docs/scaling.md)" (int .Values.replicaCount) (sub (int .Values.replicaCount) 1)) -}}
{{- end -}}
{{- end -}}
{{- if or .Values.leaderElection.enabled .Values.sharding.enabled -}}
{{- $lease := include "kubetx.durationMs" .Values.leaderElection.leaseDuration | float64 -}}
{{- $renew := include "kubetx.durationMs" .Values.leaderElection.renewDeadline | float64 -}}
{{- $retry := include "kubetx.durationMs" .Values.leaderElection.retryPeriod | float64 -}}
{{- if not (and (lt $retry $renew) (lt $renew $lease)) -}}
{{- fail (printf "leaderElection: retryPeriod (%s) < renewDeadline (%s) < leaseDuration (%s) must hold" .Values.leaderElection.retryPeriod .Values.leaderElection.renewDeadline .Values.leaderElection.leaseDuration) -}}
{{- end -}}
{{- end -}}
{{- if eq (int .Values.metrics.port) (int .Values.health.port) -}}
{{- fail (printf "metrics.port and health.port are both %d: the metrics and the probes need ports of their own" (int .Values.metrics.port)) -}}
{{- end -}}
{{- if .Values.podDisruptionBudget.enabled -}}
{{- $max := .Values.podDisruptionBudget.maxUnavailable -}}
{{- if and (not (kindIs "string" $max)) (ge (int $max) (int .Values.replicaCount)) -}}
{{- fail (printf "podDisruptionBudget.maxUnavailable: %d of %d replicas would let a drain take every operator down at once; use fewer than replicaCount" (int $max) (int .Values.replicaCount)) -}}
{{- end -}}
{{- end -}}
{{- range $name, $max := dict "defaultCallTimeout" "1h" "maxCallTimeout" "1h" "resyncPeriod" "24h" "livenessStallTimeout" "1h" -}}
{{- $v := get $.Values $name -}}
{{- if gt (include "kubetx.durationMs" $v | float64) (include "kubetx.durationMs" $max | float64) -}}
{{- fail (printf "%s: %s is longer than %s, which makes no sense for it" $name $v $max) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.defaultTtlAfterFinished (gt (include "kubetx.durationMs" .Values.defaultTtlAfterFinished | float64) (include "kubetx.durationMs" "8760h" | float64)) -}}
{{- fail (printf "defaultTtlAfterFinished: %s is longer than a year (8760h)" .Values.defaultTtlAfterFinished) -}}
{{- end -}}
{{- if gt (include "kubetx.durationMs" .Values.defaultCallTimeout | float64) (include "kubetx.durationMs" .Values.maxCallTimeout | float64) -}}
{{- fail (printf "defaultCallTimeout (%s) must not exceed maxCallTimeout (%s)" .Values.defaultCallTimeout .Values.maxCallTimeout) -}}
{{- end -}}
{{- range $name := list "leaseDuration" "renewDeadline" "retryPeriod" -}}
{{- $v := get $.Values.leaderElection $name -}}
{{- if gt (include "kubetx.durationMs" $v | float64) (include "kubetx.durationMs" "5m" | float64) -}}
{{- fail (printf "leaderElection.%s: %s is longer than 5m: a dead leader would stall every tenant that long" $name $v) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.apiPriorityAndFairness.enabled (gt (int .Values.apiPriorityAndFairness.handSize) (int .Values.apiPriorityAndFairness.queues)) -}}
{{- fail (printf "apiPriorityAndFairness.handSize: %d is more than apiPriorityAndFairness.queues (%d); a hand is dealt from the queues" (int .Values.apiPriorityAndFairness.handSize) (int .Values.apiPriorityAndFairness.queues)) -}}
{{- end -}}
{{- if hasPrefix "svc." .Values.clusterDomain -}}
{{- fail (printf "clusterDomain: %q looks like a Service suffix; give the cluster domain itself (e.g. cluster.local), the chart adds \"svc.\"" .Values.clusterDomain) -}}
{{- end -}}
{{- end -}}

{{- define "kubetx.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetx.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end -}}

{{- define "kubetx.dashboardLabels" -}}
helm.sh/chart: {{ include "kubetx.chart" . }}
{{ include "kubetx.dashboardSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubetx
{{- end -}}

{{- /*
Removes the transition rules (rules reading oldSelf, other than the
create-only `oldSelf.hasValue() || …`) from one schema node, in place.
*/ -}}
{{- define "kubetx.dropTransitionRules" -}}
{{- $kept := list }}
{{- range (index . "x-kubernetes-validations" | default list) }}
{{- if or (not (contains "oldSelf" .rule)) (hasPrefix "oldSelf.hasValue()" .rule) }}
{{- $kept = append $kept . }}
{{- end }}
{{- end }}
{{- if $kept }}
{{- $_ := set . "x-kubernetes-validations" $kept }}
{{- else }}
{{- $_ := unset . "x-kubernetes-validations" }}
{{- end }}
{{- end }}
